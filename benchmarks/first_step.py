"""The first training step of a search against the full model's: trace, first run, steady steps.

Before its first step, `fit` traces the training step into a graph, op by op
in Python, and TensorFlow optimises that graph (Grappler) when it first runs
it. For a search supernet over many fields this costs more than many epochs
of a small data set, and it is paid again by every process (each `dimsel`
command). Each round starts a fresh process per model, in turn, which:

- builds and compiles the model as `dimsel baseline` (the full model, every
  field at the largest candidate) and `dimsel search` (the supernet with the
  alternating step, its network and alpha optimizers) do;
- times `get_concrete_function` of the training step (the trace), then its
  first call (graph optimisation and the step), then the median of 50 steps
  after 20 more (the steady state), over the same cached batches;
- counts the ops of the traced graph.

Usage (from the repository root):

    .venv/bin/python benchmarks/first_step.py --repeats 3 \
        --out benchmarks/results/first_step.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import REPO_ROOT, code_state, machine_description, spread, write_results  # noqa: E402

sys.path.insert(0, REPO_ROOT)
from benchmarks.study.cells import CellRunner, StudyError  # noqa: E402
from benchmarks.study.config import CANDIDATES, CONFIGS, DEFAULT_DATA_ROOT  # noqa: E402

MODELS = ("full", "search")


def criteo_sample(data_root: str, work_dir: str):
    """The study's artifact of the Criteo sample (10,000 rows), made on first use."""
    try:
        return CellRunner(CONFIGS["full"], "", work_dir, data_root).spec("criteo")
    except StudyError as error:
        raise SystemExit(str(error)) from None


def measure(model_name: str, kind: str, artifact: str) -> dict:
    """One model's first step, in this process (which must not have traced anything)."""
    import numpy as np
    import tensorflow as tf

    from keras_dimsel.autodim import search_model, zip_train_validation
    from keras_dimsel.data import FeatureSpec, make_dataset
    from keras_dimsel.models import full_model
    from keras_dimsel.training import exempt_keras_from_autograph
    from keras_dimsel.training.optimizers import network_optimizer

    exempt_keras_from_autograph()
    tf.keras.utils.set_random_seed(0)
    spec = FeatureSpec.load(artifact)
    train = make_dataset(spec, "train", batch_size=256, shuffle=True, seed=0)
    train = train.take(20).cache().repeat()
    if kind == "full":
        model = full_model(model_name, spec, dim=max(CANDIDATES))
        model.compile(optimizer=network_optimizer("lazy_adam"))
        data = train
    else:
        model = search_model(model_name, spec, candidates=CANDIDATES)
        model.compile(
            optimizer=network_optimizer("lazy_adam"),
            arch_optimizer=tf.keras.optimizers.Adam(3e-2),
            arch_every=10,
        )
        validation = make_dataset(spec, "validation", batch_size=256, shuffle=True, seed=1)
        data = zip_train_validation(train, validation.take(2).cache().repeat(), arch_every=10)
    batches = iter(data)
    step = model.make_train_function()
    start = time.perf_counter()
    graph = step.get_concrete_function(batches).graph
    trace = time.perf_counter() - start
    start = time.perf_counter()
    float(step(batches)["loss"])
    first = time.perf_counter() - start
    for _ in range(20):
        step(batches)
    times = []
    for _ in range(50):
        start = time.perf_counter()
        float(step(batches)["loss"])
        times.append(time.perf_counter() - start)
    ops = len(graph.as_graph_def().node) + sum(
        len(function.node_def) for function in graph.as_graph_def().library.function
    )
    return {
        "trace_s": trace,
        "first_run_s": first,
        "first_step_s": trace + first,
        "steady_step_ms": float(np.median(times)) * 1000,
        "ops": ops,
        "fields": len(spec.fields),
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="deepfm", choices=("fm", "wide_deep", "deepfm"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="the public samples")
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks", "work", "study")
    )
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks", "results", "first_step.json")
    )
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "ARTIFACT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.measure:  # the child process of one measurement
        print(json.dumps(measure(args.model, *args.measure)))
        return 0
    artifact = criteo_sample(args.data_root, args.work_dir).directory
    rounds = {kind: [] for kind in MODELS}
    for _ in range(args.repeats):
        for kind in MODELS:
            command = [sys.executable, os.path.abspath(__file__), "--model", args.model]
            result = subprocess.run(
                [*command, "--measure", kind, artifact], capture_output=True, text=True
            )
            if result.returncode != 0:
                raise SystemExit(f"{kind} failed:\n{result.stderr[-3000:]}")
            rounds[kind].append(json.loads(result.stdout.strip().splitlines()[-1]))
    keys = ("trace_s", "first_run_s", "first_step_s", "steady_step_ms")
    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/first_step.py", *(argv or sys.argv[1:])]),
        "machine": machine_description(("tensorflow", "tf-keras")),
        "code": code_state(),
        "model": args.model,
        "fields": rounds["search"][0]["fields"],
        "candidates": list(CANDIDATES),
        "rounds": rounds,
        "ops": {kind: rounds[kind][0]["ops"] for kind in MODELS},
        "spread": {
            kind: {key: spread([r[key] for r in rounds[kind]]) for key in keys} for kind in MODELS
        },
    }
    medians = {
        kind: {key: value["median"] for key, value in summary["spread"][kind].items()}
        for kind in MODELS
    }
    rows = []
    for kind, m in medians.items():
        first = summary["spread"][kind]["first_step_s"]
        rows.append(
            f"| {kind} | {summary['ops'][kind]:,} | {m['trace_s']:.1f} | {m['first_run_s']:.1f} "
            f"| {m['first_step_s']:.1f} ({first['mean']:.1f} ± {first['std']:.1f}) "
            f"| {m['steady_step_ms']:.1f} |"
        )
    ratio = medians["search"]["first_step_s"] / medians["full"]["first_step_s"]
    steps = medians["search"]["first_step_s"] / (medians["search"]["steady_step_ms"] / 1000)
    report = "\n".join(
        [
            "# The first training step",
            "",
            f"{args.model} on the {summary['fields']} fields of the Criteo sample, batch 256; "
            f"{args.repeats} rounds of a fresh process per model, in turn; "
            f"{summary['machine']['cpu_model']}, {summary['machine']['cpus_usable']} usable "
            f"cores, run {summary['date']} at {summary['code']['commit'][:7]}.",
            "",
            "| model | ops traced | trace s | first run s | first step s (mean ± std) "
            "| steady step ms |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"The search's first step costs **{ratio:.1f}x** the full model's, as much as "
            f"**{steps:,.0f}** of its steady steps.",
            "",
        ]
    )
    write_results(summary, report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
