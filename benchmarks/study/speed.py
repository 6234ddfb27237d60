"""Speed and peak memory against the full-dimension model (FDE), on synthetic data.

Speed (`measure_speed`, kind `throughput`), one run per comparison, one batch size:

- training: the variants of `autodim_speed.py` (full, search, retrain with linear and
  zero-pad unify) and AMTL, traced first, then one `fit` epoch of each per repeat,
  round-robin, over batches held in memory; examples/s of wall time;
- serving: the full, retrained AutoDim and compact AMTL models exported as `dimsel`
  exports them, reloaded, `serving_default` called on one batch of test rows; per
  repeat the median of `calls` calls;
- preprocessing: the Beam job against the pandas baseline from `preprocess_speed.py`,
  run here (`Speed.preprocess == "run"`) or read from its committed results.

Peak memory (`measure_memory`, kind `memory`): each model trains one epoch, or serves,
in a fresh process (a process's peak is all the kernel tells, and TensorFlow's
allocator keeps what it freed). A job reads its data, notes its resident memory,
resets the kernel's peak counter, then builds and trains the model (or loads the
SavedModel its training job exported and calls it); the increase is the model's cost.

Ratios compare medians: the variant over FDE (Beam over the baseline).
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys
from typing import Dict, List, Sequence

from benchmarks.machine import (
    REPO_ROOT,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    script_environment,
    spread,
)
from benchmarks.study.config import Speed

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


def preprocessing_record(speed: Speed, work_dir: str) -> dict:
    """`beam_vs_pandas`: the Beam job's counting over the single-process baseline, in seconds.

    `preprocess_speed.py` runs as a script, in a process of its own: its DoFns then travel
    to Beam's workers by value; imported here, by reference to a module they cannot import.
    """
    out = COMMITTED_PREPROCESS
    source = "benchmarks/results/preprocess_speed.json (committed results, not re-run)"
    if speed.preprocess == "run":
        out = os.path.join(work_dir, "preprocess_speed.json")
        source = f"preprocess_speed.py run by the study on {speed.preprocess_rows:,} rows"
        command = [sys.executable, os.path.join(REPO_ROOT, "benchmarks", "preprocess_speed.py")]
        command += ["--rows", str(speed.preprocess_rows), "--out", out]
        command += ["--repeats", str(speed.preprocess_repeats)]
        command += ["--warmup-rows", str(min(20_000, speed.preprocess_rows))]  # its default
        command += ["--work-dir", os.path.join(work_dir, "preprocess_speed")]
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


def measure_speed(speed: Speed, work_dir: str) -> List[dict]:
    """The `throughput` records: `search_vs_fde`, `retrain_vs_fde`, `retrain_zero_pad_vs_fde`,
    `amtl_vs_fde`, `serving_latency_vs_fde`, `amtl_serving_latency_vs_fde`, `beam_vs_pandas`."""
    import tensorflow as tf

    from benchmarks import amtl_speed, autodim_speed
    from keras_dimsel import amtl
    from keras_dimsel.data.input_fn import make_dataset
    from keras_dimsel.export import export_saved_model

    os.makedirs(work_dir, exist_ok=True)
    preprocessing = preprocessing_record(speed, work_dir)  # first: the cheapest to fail
    spec = autodim_speed.prepare_data(speed.rows, 0, work_dir)
    variants, plan = autodim_speed.build_variants(
        spec, speed.model, speed.batch_size, ARCH_EVERY, source="memory"
    )
    masked = autodim_speed.compiled_model("amtl", spec, speed.model)
    variants.append(autodim_speed.Variant("amtl", masked, variants[0].dataset))
    for variant in variants:
        variant.trace()
    for repeat in range(speed.repeats):
        for variant in variants:
            rate = variant.time_epoch(spec.splits["train"])
            print(f"speed repeat {repeat + 1}: train {variant.name:16s} {rate:10,.0f} ex/s")
    by_name = {variant.name: variant for variant in variants}
    compact, _ = amtl.compact_model(by_name["amtl"].model)
    models = {"fde": by_name["full"].model, "autodim": by_name["retrain"].model, "amtl": compact}
    signatures = {}
    for name, model in models.items():
        export_saved_model(model, os.path.join(work_dir, f"serving_{name}"))
        loaded = tf.saved_model.load(os.path.join(work_dir, f"serving_{name}"))
        signatures[name] = loaded.signatures["serving_default"]
    features, _ = next(iter(make_dataset(spec, "test", speed.batch_size)))
    for serve in signatures.values():
        amtl_speed.time_serving(serve, features, 3)  # warm up
    seconds = {name: [] for name in signatures}
    for repeat in range(speed.repeats):
        for name, serve in signatures.items():
            seconds[name].append(amtl_speed.time_serving(serve, features, speed.calls))
            print(f"speed repeat {repeat + 1}: serve {name:8s} {seconds[name][-1] * 1e3:7.2f} ms")

    settings = {
        "rows": speed.rows,
        "train_examples": spec.splits["train"],
        "model": speed.model,
        "batch_size": speed.batch_size,
        "repeats": speed.repeats,
        "input": "memory",
        "plan": plan.fields,
    }
    rates = {name: spread(v.examples_per_second) for name, v in by_name.items()}
    records = [
        _ratio(
            f"{name}_vs_fde",
            rates[name],
            rates["full"],
            unit="training examples/s",
            settings=settings,
            embedding_params=int(by_name[name].model.embedding_params),
        )
        for name in ("search", "retrain", "retrain_zero_pad", "amtl")
    ]
    latency = {name: spread(values) for name, values in seconds.items()}
    serving = {**settings, "calls": speed.calls}
    for name, compact in (("serving", "autodim"), ("amtl_serving", "amtl")):
        model = "the retrained AutoDim model" if compact == "autodim" else "the compact AMTL model"
        records.append(
            _ratio(
                f"{name}_latency_vs_fde",
                latency[compact],
                latency["fde"],
                unit=LATENCY,
                compact=model,
                settings=serving,
            )
        )
    return records + [preprocessing]


def run_job(job: str, data: str, model_name: str, batch_size: int, exports: str, calls: int):
    """One memory job, in this (fresh) process: its record in MiB."""
    import tensorflow as tf

    from benchmarks.autodim_speed import compiled_model, search_plan, training_data
    from keras_dimsel import amtl
    from keras_dimsel.autodim import zip_train_validation
    from keras_dimsel.data.feature_spec import FeatureSpec
    from keras_dimsel.data.input_fn import make_dataset
    from keras_dimsel.export import export_saved_model

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


def run_in_process(job: str, directory: str, data: str, speed: Speed) -> dict:
    """`run_job` in a fresh process; a job that fails names itself and its error."""
    context = multiprocessing.get_context("spawn")
    exports = os.path.join(directory, "exports")
    os.makedirs(exports, exist_ok=True)
    args = (job, data, speed.model, speed.batch_size, exports, speed.calls)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        try:
            return pool.submit(run_job, *args).result()
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


def measure_memory(speed: Speed, work_dir: str, data: str, jobs: int = 2) -> List[dict]:
    """Every memory record: `speed.memory_repeats` rounds of every job on the artifact
    `data`, `jobs` processes side by side within a stage."""
    from keras_dimsel.data.feature_spec import FeatureSpec

    rounds = []
    for repeat in range(speed.memory_repeats):
        print(f"memory round {repeat + 1} of {speed.memory_repeats}")
        directory, results = os.path.join(work_dir, f"round{repeat}"), {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            for stage in STAGES:
                futures = {j: pool.submit(run_in_process, j, directory, data, speed) for j in stage}
                results.update({job: future.result() for job, future in futures.items()})
        rounds.append(results)
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
    return memory_records(rounds, settings)
