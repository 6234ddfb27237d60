"""Does the search find the structure planted in the synthetic data? Measured over seeds.

The synthetic generator (`keras_dimsel/data/synthetic.py`) plants the answer:
`user` and `item` interact through rank-8 latent vectors, `category`,
`device` and `price` have scalar effects, and `noise_high`, `noise_mid` and
`noise_low` have none. For each seed the script runs the default search
(`dimsel search --model deepfm`, all defaults but the seed) on one
preprocessed data set and records:

- the plan and the selection weights alpha of every field;
- `interaction_larger`: both interaction fields get a larger dim than every
  noise field;
- `informative_larger_on_average`: the mean dim of the informative fields
  (interaction and scalar) is larger than that of the noise fields;
- `noise_weighs_smallest_more`: every noise field puts more weight on the
  smallest candidate than both interaction fields.

Usage (from the repository root):

    .venv/bin/python benchmarks/search_quality.py --rows 100000 --seeds 0 1 2 \
        --out benchmarks/results/search_quality.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from keras_dimsel import workflow  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from autodim_speed import prepare_data  # noqa: E402
from machine import REPO_ROOT, code_state, machine_description, write_results  # noqa: E402


def judge(plan, roles: dict) -> dict:
    noise = [name for name, role in roles.items() if role == "noise"]
    interaction = [name for name, role in roles.items() if role == "interaction"]
    informative = [name for name, role in roles.items() if role != "noise"]
    dims = plan.fields
    return {
        "plan": dims,
        "alpha": {name: [round(p, 4) for p in values] for name, values in plan.alpha.items()},
        "embedding_params_fraction": plan.embedding_params / plan.full_embedding_params,
        "interaction_larger": min(dims[n] for n in interaction) > max(dims[n] for n in noise),
        "informative_larger_on_average": statistics.mean(dims[n] for n in informative)
        > statistics.mean(dims[n] for n in noise),
        "noise_weighs_smallest_more": min(plan.alpha[n][0] for n in noise)
        > max(plan.alpha[n][0] for n in interaction),
    }


def markdown(summary: dict) -> str:
    machine, settings = summary["machine"], summary["settings"]
    checks = ("interaction_larger", "informative_larger_on_average", "noise_weighs_smallest_more")
    lines = [
        "# AutoDim search quality on the synthetic data",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores, TensorFlow "
        f"{machine['tensorflow']}. Commit {summary['code']['commit'] or 'unknown'}, "
        f"{summary['date']}.",
        "",
        f"{settings['rows']:,} synthetic rows (data seed {settings['data_seed']}), DeepFM, "
        "every search setting at its default; one search per training seed.",
        "",
        "| seed | " + " | ".join(summary["fields"]) + " | " + " | ".join(checks) + " |",
        "|---" * (1 + len(summary["fields"]) + len(checks)) + "|",
    ]
    for run in summary["runs"]:
        dims = " | ".join(str(run["plan"][name]) for name in summary["fields"])
        marks = " | ".join("yes" if run[check] else "no" for check in checks)
        lines.append(f"| {run['seed']} | {dims} | {marks} |")
    lines += ["", "Rate over seeds:", ""]
    for check in checks:
        hits = sum(run[check] for run in summary["runs"])
        lines.append(f"- `{check}`: {hits} of {len(summary['runs'])}")
    lines.append("")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks/results/search_quality.json")
    )
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks/work/search_quality")
    )
    args = parser.parse_args(argv)

    spec = prepare_data(args.rows, args.data_seed, args.work_dir)
    with open(os.path.join(spec.directory, "raw", "ground_truth.json")) as f:
        roles = {name: field["role"] for name, field in json.load(f)["fields"].items()}
    roles["price"] = "scalar"
    runs = []
    for seed in args.seeds:
        output = os.path.join(args.work_dir, f"search_seed{seed}")
        plan = workflow.run_search(
            spec, "deepfm", output, settings=workflow.TrainSettings(seed=seed)
        )
        runs.append({"seed": seed, **judge(plan, roles)})
        print(f"seed {seed}: {plan.fields}", flush=True)
    summary = {
        "benchmark": "search_quality",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code": code_state(),
        "machine": machine_description(),
        "settings": {"rows": args.rows, "data_seed": args.data_seed, "model": "deepfm"},
        "fields": list(spec.field_names),
        "runs": runs,
    }
    write_results(summary, markdown(summary), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
