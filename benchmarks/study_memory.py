"""The study's peak-memory comparisons: each model trains, or serves, in a process of its own.

Peak memory is a property of a whole process (TensorFlow's allocator keeps
what it freed), so every measurement runs in a fresh Python process, one
job each:

- training (`train_fde`, `train_search`, `train_retrain`, `train_amtl`): the
  process imports the library, reads the synthetic train split (and, for the
  search, the validation split) into memory as the speed comparisons do, then
  notes its resident memory, resets the kernel's peak counter and builds,
  compiles and trains the model for one epoch. The job's number is the peak
  resident memory during that epoch minus the memory before the model was
  built: tables, optimizer slots, traced graphs and the step's working
  memory. The retrain job uses the plan of the search job of the same round.
- serving (`serve_fde`, `serve_autodim`, `serve_amtl`): the process reads one
  batch of test rows, notes its memory, resets the peak counter, loads the
  SavedModel the training job exported (the full model, the retrained
  AutoDim model, the compact AMTL model) and calls `serving_default` on the
  batch `calls` times.

The records (`kind: "memory"`) compare each model with the full-dimension
model of the same round: `ratio` is the median increase of the variant over
the median increase of FDE, over `Speed.memory_repeats` rounds. The whole
process's peak is in the records too; it includes about 600 MiB of imported
libraries and the data held in memory, the same in every job.

A job run by hand (from the repository root):

    TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/study_memory.py --job train_fde \\
        --data DIR --model deepfm --batch-size 2000 --exports EXPORTS --out fde.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from typing import Dict, List, Optional, Sequence  # noqa: E402

import tensorflow as tf  # noqa: E402

from keras_dimsel import amtl  # noqa: E402
from keras_dimsel.autodim.alternating import zip_train_validation  # noqa: E402
from keras_dimsel.data.feature_spec import FeatureSpec  # noqa: E402
from keras_dimsel.data.input_fn import make_dataset  # noqa: E402
from keras_dimsel.export import export_saved_model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from autodim_speed import compiled_model, search_plan, training_data  # noqa: E402
from machine import peak_rss_mib, reset_peak_rss, rss_mib, script_environment, spread  # noqa: E402

TRAINING_JOBS = ("train_fde", "train_search", "train_retrain", "train_amtl")
SERVING_JOBS = ("serve_fde", "serve_autodim", "serve_amtl")
JOBS = TRAINING_JOBS + SERVING_JOBS
#: Jobs that can run side by side, in order: each stage needs the files of the one before.
STAGES = (("train_fde", "train_search", "train_amtl"), ("train_retrain",), SERVING_JOBS)
#: The SavedModel each serving job loads, written by the training job of the same model.
EXPORT_OF = {"serve_fde": "fde", "serve_autodim": "retrain", "serve_amtl": "amtl"}
PLAN = "plan.json"
#: Record name: (variant job, FDE job).
COMPARISONS = {
    "search_peak_memory_vs_fde": ("train_search", "train_fde"),
    "retrain_peak_memory_vs_fde": ("train_retrain", "train_fde"),
    "amtl_peak_memory_vs_fde": ("train_amtl", "train_fde"),
    "serving_peak_memory_vs_fde": ("serve_autodim", "serve_fde"),
    "amtl_serving_peak_memory_vs_fde": ("serve_amtl", "serve_fde"),
}
ARCH_EVERY = 10


# ---------------------------------------------------------------------------
# One job, in its own process.


def _training_model(job: str, spec, model_name: str, exports: str):
    """The compiled model of a training job, as the speed comparisons build it."""
    name = job[len("train_") :]
    plan_dims = None
    if name == "fde":
        name = "full"  # autodim_speed's name of the full-dimension variant
    elif name == "retrain":
        with open(os.path.join(exports, PLAN)) as f:
            plan_dims = json.load(f)
    return compiled_model(name, spec, model_name, ARCH_EVERY, plan_dims)


def _export(job: str, model, spec, model_name: str, exports: str) -> None:
    """What a training job leaves for the next stage: the search's plan, the others' exports."""
    if job == "train_search":
        with open(os.path.join(exports, PLAN), "w") as f:
            json.dump(search_plan(model, spec).fields, f)
        return
    if job == "train_amtl":
        model, _ = amtl.compact_model(model)
    export_saved_model(model, os.path.join(exports, job[len("train_") :]))


def run_job(job: str, data: str, model_name: str, batch_size: int, exports: str, calls: int):
    """Runs one job in this process and returns its memory record (MiB)."""
    if rss_mib() is None:
        raise SystemExit("the memory jobs read /proc/self/status, which this system does not have")
    spec = FeatureSpec.load(data)
    tf.keras.utils.set_random_seed(0)
    if job in TRAINING_JOBS:
        train, validation = training_data(spec, batch_size, "memory")
        if job == "train_search":
            train = zip_train_validation(train, validation, ARCH_EVERY)
        before = rss_mib()
        reset = reset_peak_rss()
        model = _training_model(job, spec, model_name, exports)
        model.fit(train, epochs=1, verbose=0)
        peak = peak_rss_mib(reset)
        result = {"embedding_params": int(model.embedding_params)}
        _export(job, model, spec, model_name, exports)
    else:
        features, _ = next(iter(make_dataset(spec, "test", batch_size)))
        before = rss_mib()
        reset = reset_peak_rss()
        serve = tf.saved_model.load(os.path.join(exports, EXPORT_OF[job]))
        signature = serve.signatures["serving_default"]
        for _ in range(calls):
            signature(**features)
        peak = peak_rss_mib(reset)
        result = {"calls": calls}
    return {
        "job": job,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "increase_mib": peak - before,
        "peak_reset": reset,
        **result,
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--job", required=True, choices=JOBS)
    parser.add_argument("--data", required=True, help="the synthetic artifact")
    parser.add_argument("--model", default="deepfm")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--exports", required=True, help="plan and SavedModels between jobs")
    parser.add_argument("--calls", type=int, default=10, help="serving calls of a serving job")
    parser.add_argument("--out", required=True, help="the job's JSON record")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    os.makedirs(args.exports, exist_ok=True)
    record = run_job(args.job, args.data, args.model, args.batch_size, args.exports, args.calls)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(
        f"memory {args.job:14s} {record['increase_mib']:8,.0f} MiB above "
        f"{record['rss_before_mib']:,.0f} MiB (peak {record['peak_rss_mib']:,.0f} MiB)"
    )
    return 0


# ---------------------------------------------------------------------------
# The study's step: every job of every round, then the records.


def _run_process(job: str, directory: str, data: str, speed) -> dict:
    out = os.path.join(directory, f"{job}.json")
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--job",
        job,
        "--data",
        data,
        "--model",
        speed.model,
        "--batch-size",
        str(speed.batch_size),
        "--exports",
        os.path.join(directory, "exports"),
        "--calls",
        str(speed.calls),
        "--out",
        out,
    ]
    completed = subprocess.run(command, env=script_environment(), capture_output=True, text=True)
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"memory job {job} failed (exit {completed.returncode}):\n{tail}")
    print(completed.stdout.strip().splitlines()[-1])
    with open(out) as f:
        return json.load(f)


def run_round(directory: str, data: str, speed, jobs: int = 2) -> Dict[str, dict]:
    """One round: every job once, `jobs` processes at a time within a stage."""
    os.makedirs(os.path.join(directory, "exports"), exist_ok=True)
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for stage in STAGES:
            futures = {job: pool.submit(_run_process, job, directory, data, speed) for job in stage}
            results.update({job: future.result() for job, future in futures.items()})
    return results


def records(rounds: Sequence[Dict[str, dict]], settings: dict) -> List[dict]:
    """The `kind: "memory"` records of the rounds: medians of the increases, and their ratio.

    Examples:

        >>> def job(increase, peak):
        ...     return {"increase_mib": increase, "peak_rss_mib": peak, "rss_before_mib": 1000}
        >>> one = {name: job(100, 1100) for name in JOBS}
        >>> one["train_search"] = job(250, 1250)
        >>> two = {name: job(120, 1120) for name in JOBS}
        >>> two["train_search"] = job(230, 1230)
        >>> search = records([one, two], {})[0]
        >>> search["name"], round(search["ratio"], 3), search["numerator"]["median"]
        ('search_peak_memory_vs_fde', 2.182, 240.0)
    """
    result = []
    for name, (variant, fde) in COMPARISONS.items():
        numerator = spread([r[variant]["increase_mib"] for r in rounds])
        denominator = spread([r[fde]["increase_mib"] for r in rounds])
        result.append(
            {
                "kind": "memory",
                "name": name,
                "ratio": numerator["median"] / denominator["median"],
                "unit": "MiB of peak resident memory above the process before the model",
                "numerator": {
                    **numerator,
                    "peak_rss_mib": spread([r[variant]["peak_rss_mib"] for r in rounds]),
                },
                "denominator": {
                    **denominator,
                    "peak_rss_mib": spread([r[fde]["peak_rss_mib"] for r in rounds]),
                },
                "jobs": [variant, fde],
                "settings": settings,
                **_embedding_params(rounds[0], variant, fde),
            }
        )
    return result


def _embedding_params(round_: Dict[str, dict], variant: str, fde: str) -> dict:
    if "embedding_params" not in round_.get(variant, {}):
        return {}
    return {
        "embedding_params": round_[variant]["embedding_params"],
        "fde_embedding_params": round_[fde]["embedding_params"],
    }


def measure(speed, work_dir: str, cache: str, data: str, jobs: int = 2) -> List[dict]:
    """Every memory record of the study, measured in `work_dir` and written to the file `cache`.

    Args:
        speed: `study_config.Speed`; its `memory_repeats` rounds are run.
        work_dir: str, where the jobs write their records and exports.
        cache: str, the JSON file the records are written to.
        data: str, the synthetic artifact of the speed comparisons.
        jobs: int, processes side by side within a stage.
    """
    rounds = []
    for repeat in range(speed.memory_repeats):
        print(f"memory round {repeat + 1} of {speed.memory_repeats}")
        rounds.append(run_round(os.path.join(work_dir, f"round{repeat}"), data, speed, jobs))
    spec = FeatureSpec.load(data)
    settings = {
        "rows": sum(spec.splits.values()),
        "train_examples": spec.splits["train"],
        "model": speed.model,
        "batch_size": speed.batch_size,
        "repeats": speed.memory_repeats,
        "calls": speed.calls,
        "processes_side_by_side": jobs,
    }
    result = records(rounds, settings)
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    with open(cache, "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    sys.exit(main())
