"""SavedModel export time: the library's `serving_root` against saving the Keras model itself.

`export_saved_model` saves a plain `tf.Module` holding the model's variables,
lookup tables and signatures. The alternative it replaced saves the Keras
model as the SavedModel's root with the same signature, which makes
TensorFlow walk every layer's Keras attributes. Both export a freshly built
model of the Criteo sample (39 fields, the study's artifact, made by the Beam
job on first use) each round, alternating, and both outputs are checked to
serve the same probabilities.

Usage (from the repository root):

    .venv/bin/python benchmarks/export_speed.py --model deepfm --repeats 5 \
        --out benchmarks/results/export_speed.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_dimsel.data.input_fn import make_dataset  # noqa: E402
from keras_dimsel.export import SERVING_OUTPUT, export_saved_model, raw_signature  # noqa: E402
from keras_dimsel.models import MODELS, full_model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from amtl_speed import spread  # noqa: E402
from first_step import DEFAULT_DATA_ROOT, criteo_sample  # noqa: E402
from machine import REPO_ROOT, code_state, machine_description, write_results  # noqa: E402


def save_keras_root(model, directory: str) -> None:
    """The replaced export: the Keras model is the SavedModel's root."""
    tf.saved_model.save(model, directory, signatures={"serving_default": raw_signature(model)})


EXPORTS = {"keras_root": save_keras_root, "serving_root": export_saved_model}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(MODELS), default="deepfm")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="the public samples")
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks", "work", "study")
    )
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks", "results", "export_speed.json")
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    spec = criteo_sample(args.data_root, args.work_dir)
    features, _ = next(iter(make_dataset(spec, "test", batch_size=256)))
    seconds = {name: [] for name in EXPORTS}
    outputs = {}
    directory = tempfile.mkdtemp()
    for repeat in range(args.repeats):
        for name, export in EXPORTS.items():
            tf.keras.backend.clear_session()
            model = full_model(args.model, spec, dim=args.dim)
            model(features)
            path = os.path.join(directory, f"{name}_{repeat}")
            start = time.perf_counter()
            export(model, path)
            seconds[name].append(time.perf_counter() - start)
            if repeat == 0:  # each export serves what the model it saved computes
                served = tf.saved_model.load(path).signatures["serving_default"](**features)
                expected = model(features, training=False).numpy()
                outputs[name] = float(np.abs(served[SERVING_OUTPUT].numpy() - expected).max())
    ratio = np.median(seconds["serving_root"]) / np.median(seconds["keras_root"])
    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/export_speed.py", *(argv or sys.argv[1:])]),
        "machine": machine_description(("tensorflow", "tf-keras")),
        "code": code_state(),
        "model": args.model,
        "fields": len(spec.fields),
        "dim": args.dim,
        "seconds": {name: spread(values) for name, values in seconds.items()},
        "max_abs_difference_to_the_model": outputs,
        "ratio": float(ratio),
    }
    rows = [
        f"| {name} | {s['median']:.1f} | {s['mean']:.1f} ± {s['std']:.1f} |"
        for name, s in summary["seconds"].items()
    ]
    report = "\n".join(
        [
            "# SavedModel export time",
            "",
            f"{args.model}, {summary['fields']} fields of the Criteo sample, dim {args.dim}, "
            f"{args.repeats} rounds, a fresh model per export, alternating; "
            f"{summary['machine']['cpu_model']}, {summary['machine']['cpus_usable']} usable "
            f"cores, run {summary['date']}.",
            "",
            "| export | median s | mean ± std s |",
            "|---|---|---|",
            *rows,
            "",
            f"serving_root / keras_root (medians): **{ratio:.2f}**. Both serve the model's "
            f"probabilities (max abs difference {max(outputs.values()):.1e}).",
            "",
        ]
    )
    write_results(summary, report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
