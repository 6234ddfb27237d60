"""Speed and peak memory of the study's models against the full-dimension model (FDE).

The speed step of the benchmark study (`python -m benchmarks.study` runs it when
its records are missing), on synthetic data:

- training (kind `throughput`): the variants of `autodim_speed.py` (full, search,
  retrain with linear and zero-pad unify) and AMTL, traced first, then one `fit`
  epoch of each per repeat, round-robin, over batches held in memory; examples/s
  of wall time;
- serving: the full, retrained AutoDim and compact AMTL models exported as `dimsel`
  exports them, reloaded, `serving_default` called on one batch of test rows; per
  repeat the median of `--calls` calls;
- preprocessing: the Beam job against the pandas baseline from `preprocess_speed.py`,
  run here (`--preprocess run`) or read from its committed results;
- peak memory (kind `memory`): each model trains one epoch, or serves, in a fresh
  process (a process's peak is all the kernel tells, and TensorFlow's allocator keeps
  what it freed). A job reads its data, notes its resident memory, resets the
  kernel's peak counter, then builds and trains the model (or loads the SavedModel
  its training job exported and calls it); the increase is the model's cost.

Ratios compare medians: the variant over FDE (Beam over the baseline).

Usage (from the repository root):

    .venv/bin/python benchmarks/study_speed.py --rows 100000 --out /tmp/speed

writes `throughput.json` and `memory.json`, lists of the study's records, into `--out`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from typing import Dict, List, Optional, Sequence  # noqa: E402

import tensorflow as tf  # noqa: E402

from keras_dimsel import amtl  # noqa: E402
from keras_dimsel.autodim import zip_train_validation  # noqa: E402
from keras_dimsel.data.feature_spec import FeatureSpec  # noqa: E402
from keras_dimsel.data.input_fn import make_dataset  # noqa: E402
from keras_dimsel.export import export_saved_model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from amtl_speed import time_serving  # noqa: E402
from autodim_speed import (  # noqa: E402
    Variant,
    build_variants,
    compiled_model,
    prepare_data,
    search_plan,
    training_data,
)
from machine import (  # noqa: E402
    REPO_ROOT,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    script_environment,
    spread,
)

COMMITTED_PREPROCESS = os.path.join(REPO_ROOT, "benchmarks", "results", "preprocess_speed.json")
#: The Beam variant and the baseline `beam_vs_pandas` compares (preprocess_speed.py's target).
BEAM_VARIANT, PANDAS_VARIANT = "beam_counting/in_memory", "baseline_counting"
#: The target of each comparison: the study's (issue) or, marked, the script's own.
TARGETS = {
    "search_vs_fde": ">= 0.5",
    "retrain_vs_fde": ">= 1.0",
    "retrain_zero_pad_vs_fde": ">= 1.0 (autodim_speed.py)",
    "amtl_vs_fde": ">= 0.5 (amtl_speed.py)",
    "serving_latency_vs_fde": "<= 1.0",
    "amtl_serving_latency_vs_fde": "<= 1.2 (amtl_speed.py)",
    "beam_vs_pandas": "<= 2.0 (preprocess_speed.py)",
}
LATENCY = "seconds per serving_default call (lower is faster)"
ARCH_EVERY = 10
#: The variants whose training is compared with FDE's (the `full` variant).
TRAINED = ("search", "retrain", "retrain_zero_pad", "amtl")
#: Serving comparison: (the model served against FDE's, what it is).
SERVED = {
    "serving": ("autodim", "the retrained AutoDim model"),
    "amtl_serving": ("amtl", "the compact AMTL model"),
}
#: Memory jobs that run side by side, stage by stage: each needs the files of the one before.
STAGES = (("train_fde", "train_search", "train_amtl"), ("train_retrain",))
STAGES += (("serve_fde", "serve_autodim", "serve_amtl"),)
#: The SavedModel each serving job loads, written by a training job.
EXPORT_OF = {"serve_fde": "fde", "serve_autodim": "retrain", "serve_amtl": "amtl"}
#: Memory record name: (variant job, FDE job).
COMPARISONS = {
    "search_peak_memory_vs_fde": ("train_search", "train_fde"),
    "retrain_peak_memory_vs_fde": ("train_retrain", "train_fde"),
    "amtl_peak_memory_vs_fde": ("train_amtl", "train_fde"),
    "serving_peak_memory_vs_fde": ("serve_autodim", "serve_fde"),
    "amtl_serving_peak_memory_vs_fde": ("serve_amtl", "serve_fde"),
}


def _ratio(name: str, numerator: dict, denominator: dict, **fields) -> dict:
    return {
        "kind": "throughput",
        "name": name,
        "ratio": numerator["median"] / denominator["median"],
        "target": TARGETS[name],
        "numerator": numerator,
        "denominator": denominator,
        **fields,
    }


def preprocessing_record(args: argparse.Namespace) -> dict:
    """`beam_vs_pandas`: the Beam job's counting over the single-process baseline, in seconds.

    `preprocess_speed.py` runs as a script, in a process of its own: its DoFns then travel
    to Beam's workers by value; imported here, by reference to a module they cannot import.
    """
    out = COMMITTED_PREPROCESS
    source = "benchmarks/results/preprocess_speed.json (committed results, not re-run)"
    if args.preprocess == "run":
        out = os.path.join(args.work_dir, "preprocess_speed.json")
        source = f"preprocess_speed.py run by the study on {args.preprocess_rows:,} rows"
        command = [sys.executable, os.path.join(REPO_ROOT, "benchmarks", "preprocess_speed.py")]
        command += ["--rows", str(args.preprocess_rows), "--out", out]
        command += ["--repeats", str(args.preprocess_repeats)]
        command += ["--warmup-rows", str(min(20_000, args.preprocess_rows))]  # its default
        command += ["--work-dir", os.path.join(args.work_dir, "preprocess_speed")]
        if not os.path.exists(out):
            completed = subprocess.run(command, env=script_environment())
            if completed.returncode != 0:
                raise RuntimeError(f"preprocess_speed.py failed (exit {completed.returncode})")
    with open(out) as f:
        report = json.load(f)
    measured = report["measurements"]
    return _ratio(
        "beam_vs_pandas",
        spread(measured[BEAM_VARIANT]["seconds"]),
        spread(measured[PANDAS_VARIANT]["seconds"]),
        unit="seconds (lower is faster)",
        variants=[BEAM_VARIANT, PANDAS_VARIANT],
        source=source,
        measured=report.get("date"),
        rows=report["settings"]["rows"],
    )


def training_speed(variants, examples: int, repeats: int) -> Dict[str, dict]:
    """Examples/s of one `fit` epoch of every `autodim_speed.Variant`, traced first, then
    round-robin over `repeats` (the drifts of a shared machine hit all alike)."""
    for variant in variants:
        variant.trace()
    for repeat in range(repeats):
        for variant in variants:
            rate = variant.time_epoch(examples)
            print(f"speed repeat {repeat + 1}: train {variant.name:16s} {rate:10,.0f} ex/s")
    return {variant.name: spread(variant.examples_per_second) for variant in variants}


def serving_latency(models: dict, features: dict, directory: str, calls: int, repeats: int):
    """Seconds per `serving_default` call of every model, exported into `directory` as
    `dimsel` exports it and reloaded: per repeat the median of `calls` calls, round-robin."""
    signatures = {}
    for name, model in models.items():
        export_saved_model(model, os.path.join(directory, f"serving_{name}"))
        loaded = tf.saved_model.load(os.path.join(directory, f"serving_{name}"))
        signatures[name] = loaded.signatures["serving_default"]
    for serve in signatures.values():
        time_serving(serve, features, 3)  # warm up
    seconds = {name: [] for name in signatures}
    for repeat in range(repeats):
        for name, serve in signatures.items():
            seconds[name].append(time_serving(serve, features, calls))
            print(f"speed repeat {repeat + 1}: serve {name:8s} {seconds[name][-1] * 1e3:7.2f} ms")
    return {name: spread(values) for name, values in seconds.items()}


def throughput_records(rates: dict, latency: dict, params: dict, settings: dict, calls: int):
    """The `throughput` records of training (`rates` and embedding `params` by variant,
    `full` the FDE) and of serving (`latency` by model, `fde` the FDE).

    >>> rates = {n: {"median": 50.0} for n in TRAINED} | {"full": {"median": 100.0}}
    >>> latency = {"fde": {"median": 0.004}, "autodim": {"median": 0.003}}
    >>> latency["amtl"] = {"median": 0.005}
    >>> records = throughput_records(rates, latency, dict.fromkeys(TRAINED, 8), {}, calls=2)
    >>> [(r["name"], r["ratio"]) for r in records][3:]
    [('amtl_vs_fde', 0.5), ('serving_latency_vs_fde', 0.75), ('amtl_serving_latency_vs_fde', 1.25)]
    """
    records = [
        _ratio(
            f"{name}_vs_fde",
            rates[name],
            rates["full"],
            unit="training examples/s",
            settings=settings,
            embedding_params=params[name],
        )
        for name in TRAINED
    ]
    for name, (served, description) in SERVED.items():
        records.append(
            _ratio(
                f"{name}_latency_vs_fde",
                latency[served],
                latency["fde"],
                unit=LATENCY,
                compact=description,
                settings={**settings, "calls": calls},
            )
        )
    return records


def measure_speed(args: argparse.Namespace) -> List[dict]:
    """The `throughput` records: `search_vs_fde`, `retrain_vs_fde`, `retrain_zero_pad_vs_fde`,
    `amtl_vs_fde`, `serving_latency_vs_fde`, `amtl_serving_latency_vs_fde`, `beam_vs_pandas`."""
    os.makedirs(args.work_dir, exist_ok=True)
    preprocessing = preprocessing_record(args)  # first: the cheapest to fail
    spec = prepare_data(args.rows, 0, args.work_dir)
    variants, plan = build_variants(spec, args.model, args.batch_size, ARCH_EVERY, "memory")
    masked = compiled_model("amtl", spec, args.model)
    variants.append(Variant("amtl", masked, variants[0].dataset))
    rates = training_speed(variants, spec.splits["train"], args.repeats)
    by_name = {variant.name: variant.model for variant in variants}
    compact, _ = amtl.compact_model(by_name["amtl"])
    models = {"fde": by_name["full"], "autodim": by_name["retrain"], "amtl": compact}
    features, _ = next(iter(make_dataset(spec, "test", args.batch_size)))
    latency = serving_latency(models, features, args.work_dir, args.calls, args.repeats)
    settings = {
        "rows": args.rows,
        "train_examples": spec.splits["train"],
        "model": args.model,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "input": "memory",
        "plan": plan.fields,
    }
    params = {name: int(model.embedding_params) for name, model in by_name.items()}
    return throughput_records(rates, latency, params, settings, args.calls) + [preprocessing]


def run_job(job: str, data: str, model_name: str, batch_size: int, exports: str, calls: int):
    """One memory job, in this (fresh) process: its record in MiB."""
    if rss_mib() is None:
        raise RuntimeError("the memory jobs read /proc/self/status, which this system lacks")
    spec, plan = FeatureSpec.load(data), os.path.join(exports, "plan.json")
    tf.keras.utils.set_random_seed(0)
    if job.startswith("train_"):
        name = job[len("train_") :]
        train, validation = training_data(spec, batch_size, "memory")
        if name == "search":
            train = zip_train_validation(train, validation, ARCH_EVERY)
        before, reset = rss_mib(), reset_peak_rss()
        dims = None
        if name == "retrain":
            with open(plan) as f:
                dims = json.load(f)
        model = compiled_model(
            "full" if name == "fde" else name, spec, model_name, ARCH_EVERY, dims
        )
        model.fit(train, epochs=1, verbose=0)
        peak = peak_rss_mib(reset)
        result = {"embedding_params": int(model.embedding_params)}
        if name == "search":  # what the retrain job reads
            with open(plan, "w") as f:
                json.dump(search_plan(model, spec).fields, f)
        else:
            if name == "amtl":
                model, _ = amtl.compact_model(model)
            export_saved_model(model, os.path.join(exports, name))
    else:
        features, _ = next(iter(make_dataset(spec, "test", batch_size)))
        before, reset = rss_mib(), reset_peak_rss()
        signature = tf.saved_model.load(os.path.join(exports, EXPORT_OF[job])).signatures
        for _ in range(calls):
            signature["serving_default"](**features)
        peak = peak_rss_mib(reset)
        result = {"calls": calls}
    increase = peak - before
    print(f"memory {job:14s} {increase:8,.0f} MiB above {before:,.0f} MiB (peak {peak:,.0f} MiB)")
    return {
        "job": job,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "increase_mib": increase,
    } | result


def run_in_process(job: str, directory: str, data: str, args: argparse.Namespace) -> dict:
    """`run_job` in a fresh process; a job that fails names itself and its error."""
    context = multiprocessing.get_context("spawn")
    exports = os.path.join(directory, "exports")
    os.makedirs(exports, exist_ok=True)
    job_args = (job, data, args.model, args.batch_size, exports, args.calls)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        try:
            return pool.submit(run_job, *job_args).result()
        except Exception as error:
            raise RuntimeError(
                f"memory job {job} failed: {type(error).__name__}: {error}"
            ) from error


def memory_records(rounds: Sequence[Dict[str, dict]], settings: dict) -> List[dict]:
    """The `memory` records: per comparison, the median increases over the rounds and ratio.

    >>> def job(increase):
    ...     return {"increase_mib": increase, "peak_rss_mib": 1000 + increase}
    >>> one = {n: job(250 if n == "train_search" else 100) for s in STAGES for n in s}
    >>> two = {n: job(230 if n == "train_search" else 120) for s in STAGES for n in s}
    >>> search = memory_records([one, two], {})[0]
    >>> search["name"], round(search["ratio"], 3), search["numerator"]["median"]
    ('search_peak_memory_vs_fde', 2.182, 240.0)
    """
    result = []
    for name, (variant, fde) in COMPARISONS.items():
        sides = {}
        for side, job in (("numerator", variant), ("denominator", fde)):
            sides[side] = spread([r[job]["increase_mib"] for r in rounds])
            sides[side]["peak_rss_mib"] = spread([r[job]["peak_rss_mib"] for r in rounds])
        record = {
            "kind": "memory",
            "name": name,
            "ratio": sides["numerator"]["median"] / sides["denominator"]["median"],
            "unit": "MiB of peak resident memory above the process before the model",
            **sides,
            "jobs": [variant, fde],
            "settings": settings,
        }
        if "embedding_params" in rounds[0].get(variant, {}):
            record["embedding_params"] = rounds[0][variant]["embedding_params"]
            record["fde_embedding_params"] = rounds[0][fde]["embedding_params"]
        result.append(record)
    return result


def measure_memory(args: argparse.Namespace, jobs: int = 2) -> List[dict]:
    """Every memory record: `--memory-repeats` rounds of every job, `jobs` processes side
    by side within a stage."""
    spec = prepare_data(args.rows, 0, args.work_dir)
    rounds = []
    for repeat in range(args.memory_repeats):
        print(f"memory round {repeat + 1} of {args.memory_repeats}")
        directory = os.path.join(args.work_dir, "memory", f"round{repeat}")
        results = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            for stage in STAGES:
                futures = {
                    job: pool.submit(run_in_process, job, directory, spec.directory, args)
                    for job in stage
                }
                results.update({job: future.result() for job, future in futures.items()})
        rounds.append(results)
    settings = {
        "rows": sum(spec.splits.values()),
        "train_examples": spec.splits["train"],
        "model": args.model,
        "batch_size": args.batch_size,
        "repeats": args.memory_repeats,
        "calls": args.calls,
        "processes_side_by_side": jobs,
    }
    return memory_records(rounds, settings)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic rows")
    parser.add_argument("--model", default="deepfm", choices=("fm", "wide_deep", "deepfm"))
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per model")
    parser.add_argument("--calls", type=int, default=10, help="serving calls per repeat")
    parser.add_argument("--preprocess", choices=("committed", "run"), default="committed")
    parser.add_argument("--preprocess-rows", type=int, default=1_000_000)
    parser.add_argument("--preprocess-repeats", type=int, default=3)
    parser.add_argument("--memory-repeats", type=int, default=1, help="rounds of memory jobs")
    parser.add_argument(
        "--measure", action="append", choices=("throughput", "memory"), help="default: both"
    )
    parser.add_argument("--out", required=True, help="the directory of the record files")
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks", "work", "study_speed")
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    for name in args.measure or ("throughput", "memory"):
        records = measure_speed(args) if name == "throughput" else measure_memory(args)
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(records, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
