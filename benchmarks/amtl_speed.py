"""AMTL speed: masked training and compact serving against the full-dimension model.

One process, one synthetic data set, one batch size:

- training: examples/s of one `fit` epoch of the full-dimension model and of
  the AMTL model (the default fields of `dimsel amtl` masked: the largest
  tables), round-robin over the repeats; `--input` as in `autodim_speed.py`
  (default: the parsed batches held in memory); target AMTL ≥ 0.5× full.
- serving: both models exported as `dimsel` exports them (the AMTL model in
  its compact form, after one untimed training epoch so the lengths are
  learnt ones), reloaded with `tf.saved_model.load`, and `serving_default`
  called on one batch of raw test features; the latency of a call is the
  median of `--calls` calls per repeat, round-robin; target compact ≤ 1.2×
  full.

Usage (from the repository root):

    .venv/bin/python benchmarks/amtl_speed.py --rows 200000 --repeats 7 \
        --out benchmarks/results/amtl_speed.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import tensorflow as tf  # noqa: E402

from keras_dimsel import amtl  # noqa: E402
from keras_dimsel.data.input_fn import make_dataset  # noqa: E402
from keras_dimsel.export import export_saved_model  # noqa: E402
from keras_dimsel.models import full_model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from autodim_speed import INPUTS, Variant, prepare_data, training_data  # noqa: E402
from machine import REPO_ROOT, code_state, machine_description, spread, write_results  # noqa: E402


def time_serving(serve, features: dict, calls: int) -> float:
    """Median seconds of one `serving_default` call over `calls` calls."""
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        serve(**features)["probability"].numpy()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--model", default="deepfm", choices=("fm", "wide_deep", "deepfm"))
    parser.add_argument("--max-dim", type=int, default=amtl.DEFAULT_MAX_DIM)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--length-penalty", type=float, default=amtl.DEFAULT_LENGTH_PENALTY)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20, help="serving calls per repeat")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks/results/amtl_speed.json")
    )
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks/work/autodim_speed")
    )
    parser.add_argument(
        "--input", choices=INPUTS, default="memory",
        help="what each training epoch reads (see benchmarks/autodim_speed.py)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    spec = prepare_data(args.rows, args.seed, args.work_dir)
    fields = amtl.default_fields(spec, args.max_dim)
    train, _ = training_data(spec, args.batch_size, args.input)
    tf.keras.utils.set_random_seed(0)
    full = full_model(args.model, spec, dim=args.max_dim)
    masked = amtl.masked_model(
        args.model, spec, fields, dim=args.max_dim, length_penalty=args.length_penalty
    )
    variants = [Variant("full", full, train), Variant("amtl", masked, train)]
    for variant in variants:
        variant.model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        variant.trace()
    for repeat in range(args.repeats):
        for variant in variants:
            rate = variant.time_epoch(spec.splits["train"])
            print(f"repeat {repeat + 1}: train {variant.name:5s} {rate:10,.0f} examples/s")

    compact, lengths = amtl.compact_model(masked)
    exports = {}
    for name, model in (("full", full), ("compact", compact)):
        directory = os.path.join(args.work_dir, f"serving_{name}")
        export_saved_model(model, directory)
        exports[name] = tf.saved_model.load(directory).signatures["serving_default"]
    features, _ = next(iter(make_dataset(spec, "test", args.batch_size)))
    latency = {name: [] for name in exports}
    for serve in exports.values():
        time_serving(serve, features, 3)  # warm up
    for repeat in range(args.repeats):
        for name, serve in exports.items():
            seconds = time_serving(serve, features, args.calls)
            latency[name].append(seconds)
            print(f"repeat {repeat + 1}: serve {name:7s} {seconds * 1000:8.2f} ms per batch")

    training = {v.name: spread(v.examples_per_second) for v in variants}
    serving = {name: spread(values) for name, values in latency.items()}
    summary = {
        "benchmark": "amtl_speed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code": code_state(),
        "machine": machine_description(),
        "settings": {
            "rows": args.rows,
            "train_examples": spec.splits["train"],
            "model": args.model,
            "max_dim": args.max_dim,
            "fields": fields,
            "batch_size": args.batch_size,
            "length_penalty": args.length_penalty,
            "repeats": args.repeats,
            "input": args.input,
            "calls": args.calls,
        },
        "training_examples_per_second": training,
        "serving_seconds_per_batch": serving,
        "embedding_params": {
            "full": int(full.embedding_params),
            "compact": int(compact.embedding_params),
        },
        "average_dim": {name: float(values.mean()) for name, values in lengths.items()},
        "ratios": {
            "amtl_training_vs_full": training["amtl"]["median"] / training["full"]["median"],
            "compact_latency_vs_full": serving["compact"]["median"] / serving["full"]["median"],
        },
        "targets": {"amtl_training_vs_full": ">= 0.5", "compact_latency_vs_full": "<= 1.2"},
    }
    write_results(summary, markdown(summary), args.out)
    return 0


def markdown(summary: dict) -> str:
    machine, settings, ratios = summary["machine"], summary["settings"], summary["ratios"]
    training, serving = (
        summary["training_examples_per_second"],
        summary["serving_seconds_per_batch"],
    )
    train_ok = ratios["amtl_training_vs_full"] >= 0.5
    serve_ok = ratios["compact_latency_vs_full"] <= 1.2
    lines = [
        "# AMTL speed",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores, "
        f"{machine['memory_gib']} GiB, TensorFlow {machine['tensorflow']}, "
        f"Python {machine['python']}. Commit {summary['code']['commit'] or 'unknown'}, "
        f"{summary['date']}.",
        "",
        f"{settings['model']} on {settings['train_examples']:,} synthetic training examples, "
        f"max dim {settings['max_dim']}, masked fields {settings['fields']}, batch size "
        f"{settings['batch_size']}, length penalty {settings['length_penalty']}; "
        f"{settings['repeats']} repeats, round-robin; training input read from "
        f"{settings.get('input', 'files')}.",
        "",
        "| training | median examples/s | mean ± std | ratio to full | target |",
        "|---|---|---|---|---|",
        f"| full | {training['full']['median']:,.0f} | {training['full']['mean']:,.0f} ± "
        f"{training['full']['std']:,.0f} | 1.00 | |",
        f"| amtl | {training['amtl']['median']:,.0f} | {training['amtl']['mean']:,.0f} ± "
        f"{training['amtl']['std']:,.0f} | {ratios['amtl_training_vs_full']:.2f} | ≥ 0.5 "
        f"({'met' if train_ok else 'NOT met'}) |",
        "",
        f"| serving, batch {settings['batch_size']} | median ms | mean ± std ms | ratio to full "
        "| target | embedding params |",
        "|---|---|---|---|---|---|",
    ]
    params = summary["embedding_params"]
    for name in ("full", "compact"):
        result = serving[name]
        ratio = result["median"] / serving["full"]["median"]
        target = "" if name == "full" else f"≤ 1.2 ({'met' if serve_ok else 'NOT met'})"
        lines.append(
            f"| {name} | {result['median'] * 1000:.2f} | {result['mean'] * 1000:.2f} ± "
            f"{result['std'] * 1000:.2f} | {ratio:.2f} | {target} | {params[name]:,} |"
        )
    lines += ["", f"Average dims of the compact model: {summary['average_dim']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
