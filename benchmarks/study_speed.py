"""The study's speed comparisons, built from the existing benchmark scripts.

One run per comparison, on one synthetic data set and one batch size:

- training: the variants of `autodim_speed.py` (full dimension, AutoDim
  search, retrain with linear and with zero-pad unify) plus the AMTL model of
  `amtl_speed.py`, each traced first, then one `fit` epoch of every variant
  per repeat, round-robin, over batches held in memory; examples/s of wall time.
- serving: the full-dimension model, the retrained AutoDim model and the
  compact AMTL model exported as `dimsel` exports them, reloaded with
  `tf.saved_model.load`, and `serving_default` called on one batch of test
  rows; per repeat the median of `calls` calls (`amtl_speed.time_serving`),
  and the records quote the median over repeats.
- preprocessing: the Beam job against the pandas/pyarrow baseline, from
  `preprocess_speed.py`: run here (`Speed.preprocess == "run"`) or read from its
  committed results (`"committed"`), which the record says in `source`.

Ratios compare medians: examples/s of the variant over the full model's for
training, seconds of the variant over the full model's for serving and of
Beam over the baseline for preprocessing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import List

import amtl_speed
import autodim_speed
import tensorflow as tf
from machine import REPO_ROOT, script_environment, spread
from study_config import Speed

from keras_dimsel import amtl
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import export_saved_model

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


def _ratio_record(name: str, numerator: dict, denominator: dict, **fields) -> dict:
    return {
        "kind": "throughput",
        "name": name,
        "ratio": numerator["median"] / denominator["median"],
        "target": TARGETS[name],
        "numerator": numerator,
        "denominator": denominator,
        **fields,
    }


def time_training(speed: Speed, work_dir: str):
    """Examples/s of the full, search, retrain and AMTL models; returns (variants, spec, plan)."""
    spec = autodim_speed.prepare_data(speed.rows, 0, work_dir)
    variants, plan = autodim_speed.build_variants(
        spec, speed.model, speed.batch_size, arch_every=10, source="memory"
    )
    masked = autodim_speed.compiled_model("amtl", spec, speed.model)
    variants.append(autodim_speed.Variant("amtl", masked, variants[0].dataset))
    for variant in variants:
        variant.trace()
    for repeat in range(speed.repeats):
        for variant in variants:
            rate = variant.time_epoch(spec.splits["train"])
            print(f"speed repeat {repeat + 1}: train {variant.name:16s} {rate:10,.0f} ex/s")
    return variants, spec, plan


def time_serving(speed: Speed, work_dir: str, spec, models: dict) -> dict:
    """Per model, the median seconds of one `serving_default` call, per repeat."""
    signatures = {}
    for name, model in models.items():
        directory = os.path.join(work_dir, f"serving_{name}")
        export_saved_model(model, directory)
        signatures[name] = tf.saved_model.load(directory).signatures["serving_default"]
    features, _ = next(iter(make_dataset(spec, "test", speed.batch_size)))
    for serve in signatures.values():
        amtl_speed.time_serving(serve, features, 3)  # warm up
    seconds = {name: [] for name in signatures}
    for repeat in range(speed.repeats):
        for name, serve in signatures.items():
            seconds[name].append(amtl_speed.time_serving(serve, features, speed.calls))
            print(f"speed repeat {repeat + 1}: serve {name:8s} {seconds[name][-1] * 1e3:7.2f} ms")
    return seconds


def _run_preprocess_speed(speed: Speed, out: str, work_dir: str) -> None:
    """Runs `preprocess_speed.py` as a script, in a process of its own.

    As a script its DoFns travel to Beam's worker processes by value; imported
    into this process, they would travel by reference to a module the workers
    cannot import (`benchmarks/` is not a package on their path).
    """
    script = os.path.join(REPO_ROOT, "benchmarks", "preprocess_speed.py")
    command = [sys.executable, script, "--rows", str(speed.preprocess_rows), "--out", out]
    command += ["--repeats", str(speed.preprocess_repeats)]
    command += ["--work-dir", os.path.join(work_dir, "preprocess_speed")]
    completed = subprocess.run(command, env=script_environment())
    if completed.returncode != 0:
        raise RuntimeError(f"preprocess_speed.py failed (exit {completed.returncode}): {command}")


def preprocessing_record(speed: Speed, work_dir: str) -> dict:
    """`beam_vs_pandas`: the Beam job's counting over the single-process baseline, in seconds."""
    if speed.preprocess == "run":
        out = os.path.join(work_dir, "preprocess_speed.json")
        if not os.path.exists(out):
            _run_preprocess_speed(speed, out, work_dir)
        source = f"preprocess_speed.py run by the study on {speed.preprocess_rows:,} rows"
    else:
        out = COMMITTED_PREPROCESS
        source = "benchmarks/results/preprocess_speed.json (committed results, not re-run)"
    with open(out) as f:
        report = json.load(f)
    measurements = report["measurements"]

    def seconds(name):
        return spread(measurements[name]["seconds"])

    return _ratio_record(
        "beam_vs_pandas",
        seconds(BEAM_VARIANT),
        seconds(PANDAS_VARIANT),
        unit="seconds (lower is faster)",
        variants=[BEAM_VARIANT, PANDAS_VARIANT],
        source=source,
        measured=report.get("date"),
        rows=report["settings"]["rows"],
    )


def measure(speed: Speed, work_dir: str, cache: str) -> List[dict]:
    """Every speed record of the study, measured in `work_dir` and cached in the file `cache`.

    Returns:
        list of `kind: "throughput"` records: `search_vs_fde`,
        `retrain_vs_fde`, `retrain_zero_pad_vs_fde`, `amtl_vs_fde`,
        `serving_latency_vs_fde`, `amtl_serving_latency_vs_fde`, `beam_vs_pandas`.
    """
    if os.path.exists(cache):
        with open(cache) as f:
            return json.load(f)
    os.makedirs(work_dir, exist_ok=True)
    preprocessing = preprocessing_record(speed, work_dir)  # first: the cheapest to fail
    variants, spec, plan = time_training(speed, work_dir)
    by_name = {variant.name: variant for variant in variants}
    compact, _ = amtl.compact_model(by_name["amtl"].model)
    seconds = time_serving(
        speed,
        work_dir,
        spec,
        {"fde": by_name["full"].model, "autodim": by_name["retrain"].model, "amtl": compact},
    )
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
        _ratio_record(
            f"{name}_vs_fde",
            rates[variant],
            rates["full"],
            unit="training examples/s",
            settings=settings,
            embedding_params=int(by_name[variant].model.embedding_params),
        )
        for name, variant in (
            ("search", "search"),
            ("retrain", "retrain"),
            ("retrain_zero_pad", "retrain_zero_pad"),
            ("amtl", "amtl"),
        )
    ]
    latency = {name: spread(values) for name, values in seconds.items()}
    serving = {**settings, "calls": speed.calls}
    records += [
        _ratio_record(
            "serving_latency_vs_fde",
            latency["autodim"],
            latency["fde"],
            unit="seconds per serving_default call (lower is faster)",
            compact="the retrained AutoDim model",
            settings=serving,
        ),
        _ratio_record(
            "amtl_serving_latency_vs_fde",
            latency["amtl"],
            latency["fde"],
            unit="seconds per serving_default call (lower is faster)",
            compact="the compact AMTL model",
            settings=serving,
        ),
        preprocessing,
    ]
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    with open(cache, "w") as f:
        json.dump(records, f, indent=2)
    return records
