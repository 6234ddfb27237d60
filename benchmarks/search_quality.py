"""Does the search find the structure planted in the synthetic data? Measured over seeds.

The synthetic generator (`keras_dimsel/data/synthetic.py`) plants the answer:
`user` and `item` interact through rank-8 latent vectors, `category`,
`device` and `price` have scalar effects, and `noise_high`, `noise_mid` and
`noise_low` have none. For each derivation (`--derive alpha`, the paper's
argmax, and `--derive probe`) and each seed, the script runs the search
(`dimsel search --model deepfm`, all other settings at their defaults) on one
preprocessed data set and records:

- the plan, the selection weights alpha and (probe) the probe losses;
- `interaction_larger`: both interaction fields get a larger dim than every
  noise field;
- `informative_larger_on_average`: the mean dim of the informative fields
  (interaction and scalar) is larger than that of the noise fields;
- `noise_weighs_smallest_more` (alpha only): every noise field puts more
  weight on the smallest candidate than both interaction fields.

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

from keras_dimsel.autodim.plan import DERIVE_METHODS  # noqa: E402
from keras_dimsel.autodim.runs import run_search  # noqa: E402
from keras_dimsel.training import TrainSettings  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from autodim_speed import prepare_data  # noqa: E402
from machine import REPO_ROOT, code_state, machine_description, write_results  # noqa: E402


def judge(plan, roles: dict) -> dict:
    noise = [name for name, role in roles.items() if role == "noise"]
    interaction = [name for name, role in roles.items() if role == "interaction"]
    informative = [name for name, role in roles.items() if role != "noise"]
    dims = plan.fields
    result = {
        "plan": dims,
        "alpha": {name: [round(p, 4) for p in values] for name, values in plan.alpha.items()},
        "probe_loss": {
            name: [round(v, 5) for v in values] for name, values in plan.probe_loss.items()
        },
        "embedding_params_fraction": plan.embedding_params / plan.full_embedding_params,
        "interaction_larger": min(dims[n] for n in interaction) > max(dims[n] for n in noise),
        "informative_larger_on_average": statistics.mean(dims[n] for n in informative)
        > statistics.mean(dims[n] for n in noise),
    }
    if not plan.probe_loss:
        # With probing alpha stays at equal weights, so this says nothing there.
        result["noise_weighs_smallest_more"] = min(plan.alpha[n][0] for n in noise) > max(
            plan.alpha[n][0] for n in interaction
        )
    return result


def markdown(summary: dict) -> str:
    machine, settings = summary["machine"], summary["settings"]
    checks = ("interaction_larger", "informative_larger_on_average", "noise_weighs_smallest_more")
    fields = summary["fields"]
    lines = [
        "# AutoDim search quality on the synthetic data",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores, TensorFlow "
        f"{machine['tensorflow']}. Commit {summary['code']['commit'] or 'unknown'}, "
        f"{summary['date']}.",
        "",
        f"{settings['rows']:,} synthetic rows (data seed {settings['data_seed']}), DeepFM, "
        "every other search setting at its default; one search per derivation and "
        "training seed. Dimensions chosen per field:",
        "",
        "| derive | seed | " + " | ".join(fields) + " | embedding params | "
        + " | ".join(checks) + " |",
        "|---" * (3 + len(fields) + len(checks)) + "|",
    ]  # fmt: skip
    for run in summary["runs"]:
        dims = " | ".join(str(run["plan"][name]) for name in fields)
        marks = " | ".join(
            ("yes" if run[check] else "no") if check in run else "n/a" for check in checks
        )
        share = f"{run['embedding_params_fraction']:.1%}"
        lines.append(f"| {run['derive']} | {run['seed']} | {dims} | {share} | {marks} |")
    for derive in summary["settings"]["derive"]:
        runs = [run for run in summary["runs"] if run["derive"] == derive]
        lines += ["", f"Rate over seeds, `--derive {derive}`:", ""]
        for check in checks:
            if check in runs[0]:
                lines.append(f"- `{check}`: {sum(run[check] for run in runs)} of {len(runs)}")
    lines.append("")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--derive",
        nargs="+",
        choices=DERIVE_METHODS,
        default=list(DERIVE_METHODS),
    )
    parser.add_argument(
        "--arch-every",
        type=int,
        default=10,
        help="network steps per alpha update (run_search's arch_every, default 10)",
    )
    parser.add_argument(
        "--anneal-fraction",
        type=float,
        default=None,
        help="the temperature reaches its floor after this fraction of each search "
        "(run_search's anneal_fraction); default: run_search's default schedule",
    )
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
    for derive in args.derive:
        for seed in args.seeds:
            output = os.path.join(args.work_dir, f"search_{derive}_seed{seed}")
            plan = run_search(
                spec,
                "deepfm",
                output,
                derive=derive,
                arch_every=args.arch_every,
                anneal_fraction=args.anneal_fraction,
                settings=TrainSettings(seed=seed),
            )
            runs.append({"derive": derive, "seed": seed, **judge(plan, roles)})
            print(f"derive {derive}, seed {seed}: {plan.fields}", flush=True)
    summary = {
        "benchmark": "search_quality",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code": code_state(),
        "machine": machine_description(),
        "settings": {
            "rows": args.rows,
            "data_seed": args.data_seed,
            "model": "deepfm",
            "derive": args.derive,
            "arch_every": args.arch_every,
            "anneal_fraction": args.anneal_fraction,
        },
        "fields": list(spec.field_names),
        "runs": runs,
    }
    write_results(summary, markdown(summary), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
