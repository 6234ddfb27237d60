"""Fixed costs of every model stage as the vocabularies grow from thousands to millions of ids.

A model's per-call costs should not grow with its vocabularies: building it,
one `fit` or `evaluate` call, `trainable_variables`, the export, serving a
batch. This script measures them on four Zipf-distributed categorical fields
(generated vocabularies and counts written as an artifact's `vocab/<field>.txt`
files and an in-memory `FeatureSpec`; no Beam job) at several total sizes,
for each model stage:

| stage | model |
|---|---|
| `full` | `models.full_model("deepfm", dim=32)`, the baseline |
| `plan` | `autodim.model.planned_model`, a retrain of a fixed plan |
| `search` | `autodim.model.search_model`, the supernet (alternating step) |
| `amtl` | `amtl.masked_model`, the two largest fields masked, at dim 32 |
| `compact` | `amtl.compact_model` of that AMTL model (its serving form) |

Each (size, stage) runs in a fresh process, which reports:

- `build_s`: constructing the model and `build_weights()` (for `compact`,
  building the AMTL model and `compact_model` of it);
- `fit_first_s`, `fit_second_s`: wall seconds of `fit` on one batch of 2000
  examples (the first traces); tf_keras's SGD (`search`: SGD for the
  network, Adam for alpha, alpha updated every step);
- `step_s`: the median of 5 `train_on_batch` calls on that batch, one
  training step as Keras runs it. tf_keras's SGD keeps a momentum slot even at
  momentum 0 and rescales it over every table row in every step, so a step
  grows with the tables (the optimizer's cost, not a fixed one);
- `fit_sparse_s`: the second one-batch `fit` after compiling again with
  `tf.keras.optimizers.legacy.SGD`, whose step is row-sparse: the fixed cost
  of a `fit` call plus one step that does not grow with the tables;
- `evaluate_first_s`, `evaluate_second_s`: the same for `evaluate`;
- `trainable_variables_s`: one `len(model.trainable_variables)`;
- `eval_examples_per_s`: one `evaluate` over 20 batches of 2000, as
  `training.runner.evaluate` measures `examples_per_second`;
- `export_s`, `saved_model_pb_bytes`, `assets_bytes`, `variables_bytes`:
  `export.export_saved_model` and the sizes of what it wrote;
- `serving_ms`: median of 30 calls of the reloaded `serving_default` on
  2000 raw examples (after 3 untimed calls);
- `serving_round_robin_ms`: the same latency with the stage's exports of
  every size loaded in one process and called in turns, 10 rounds of 10
  calls (`serve_round_robin`): the fair comparison across sizes on a shared
  machine;
- `peak_rss_mib`: the process's peak resident memory.

Usage (from the repository root):

    TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/scale_fixed_costs.py \\
        --ids 11000 300000 3000000 --out benchmarks/results/scale_fixed_costs.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import (  # noqa: E402
    REPO_ROOT,
    code_state,
    machine_description,
    peak_rss_mib,
    script_environment,
    write_results,
)

STAGES = ("full", "plan", "search", "amtl", "compact")
#: The fields and their shares of the ids: a large, a mid-sized and two small tables.
FIELD_SHARES = {"item": 0.55, "user": 0.35, "site": 0.09, "device": 0.01}
AMTL_FIELDS = ("item", "user")
DIM = 32
BATCH = 2000
EVAL_BATCHES = 20
SERVING_CALLS = 30
SERVING_ROUNDS = 10
ZIPF_EXPONENT = 1.05
#: Shares of a batch's values that are unseen or missing (the OOV id's inputs).
UNSEEN_SHARE, MISSING_SHARE = 0.02, 0.01


def field_vocabulary(name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`size` distinct 8-hex-digit values (as Criteo's) and their Zipf counts, most frequent first.

    Ties are ordered by value, as the Beam job writes them.
    """
    ranks = np.arange(1, size + 1, dtype=np.uint64)
    salt = np.uint64(sum(name.encode()))
    # An odd multiplier is a bijection modulo 2^32: distinct ranks, distinct values.
    codes = (ranks * np.uint64(2654435761) + salt) % np.uint64(2**32)
    values = np.char.mod("%08x", codes.astype(np.int64))
    counts = np.maximum(1, (1e6 / ranks.astype(np.float64) ** ZIPF_EXPONENT).astype(np.int64))
    order = np.lexsort((values, -counts))
    return values[order], counts[order]


def write_artifact(directory: str, total_ids: int) -> None:
    """Writes `vocab/<field>.txt` and `feature_spec.json` of fields summing to `total_ids`."""
    from keras_dimsel.data.feature_spec import FeatureSpec, FieldSpec

    os.makedirs(os.path.join(directory, "vocab"), exist_ok=True)
    fields = []
    for name, share in FIELD_SHARES.items():
        values, counts = field_vocabulary(name, max(2, int(total_ids * share)))
        with open(os.path.join(directory, "vocab", f"{name}.txt"), "w") as f:
            f.write("".join(f"{c} {v}\n" for c, v in zip(counts.tolist(), values.tolist())))
        fields.append(FieldSpec(name, "categorical", len(values) + 1, f"vocab/{name}.txt"))
    splits = {"train": 1_000_000, "validation": 100_000, "test": 100_000}
    FeatureSpec("label", tuple(fields), splits, directory=directory).save()


def batches(spec, count: int, seed: int) -> list:
    """`count` batches of raw features drawn by the fields' counts, with unseen and missing
    values, and labels."""
    rng = np.random.default_rng(seed)
    size = count * BATCH
    columns = {}
    for field in spec.fields:
        values, counts = spec.vocabulary(field.name)
        drawn = np.asarray(values, dtype=object)[
            rng.choice(len(values), size=size, p=np.asarray(counts) / np.sum(counts))
        ]
        draw = rng.random(size)
        drawn[draw < UNSEEN_SHARE] = "never-seen"
        drawn[(draw >= UNSEEN_SHARE) & (draw < UNSEEN_SHARE + MISSING_SHARE)] = ""
        columns[field.name] = drawn.astype(str)
    labels = (rng.random(size) < 0.2).astype(np.float32)
    return [
        ({name: column[i * BATCH : (i + 1) * BATCH] for name, column in columns.items()},
         labels[i * BATCH : (i + 1) * BATCH])
        for i in range(count)
    ]  # fmt: skip


def _timed(function) -> tuple:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _directory_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def build_stage(stage: str, spec):
    """The model of a stage, built, and its compile arguments."""
    import tensorflow as tf

    from keras_dimsel import amtl
    from keras_dimsel.autodim.model import planned_model, search_model
    from keras_dimsel.autodim.plan import DimensionPlan
    from keras_dimsel.models import full_model, vocab_sizes

    compile_arguments = {"optimizer": tf.keras.optimizers.SGD(0.01)}
    if stage == "full":
        model = full_model("deepfm", spec, dim=DIM)
    elif stage == "plan":
        dims = {name: 8 if name in AMTL_FIELDS else 2 for name in spec.field_names}
        plan = DimensionPlan(
            fields=dims, candidates=(2, 8, 16, 24, 32), vocab_sizes=vocab_sizes(spec)
        )
        model = planned_model("deepfm", spec, plan)
    elif stage == "search":
        model = search_model("deepfm", spec, seed=0)
        compile_arguments.update(
            arch_optimizer=tf.keras.optimizers.Adam(0.001), arch_every=1, pretrain_steps=0
        )
    else:
        model = amtl.masked_model("deepfm", spec, list(AMTL_FIELDS), dim=DIM)
    model.build_weights()
    if stage == "compact":
        model, _ = amtl.compact_model(model)
        compile_arguments = {}
    return model, compile_arguments


def measure(stage: str, data: str) -> dict:
    """Every measurement of one stage at one size, in this process."""
    import tensorflow as tf

    from keras_dimsel._compat import exempt_keras_from_autograph
    from keras_dimsel.autodim.alternating import zip_train_validation
    from keras_dimsel.data.feature_spec import FeatureSpec
    from keras_dimsel.export import export_saved_model

    exempt_keras_from_autograph()  # as the training runner does
    tf.keras.utils.set_random_seed(0)
    spec = FeatureSpec.load(data)
    examples = batches(spec, EVAL_BATCHES + 1, seed=1)
    one = tf.data.Dataset.from_tensors(examples[0])
    many = tf.data.Dataset.from_generator(
        lambda: iter(examples[1:]),
        output_signature=(
            {name: tf.TensorSpec([None], tf.string) for name in spec.field_names},
            tf.TensorSpec([None], tf.float32),
        ),
    ).cache()
    list(many)  # filled before anything is timed
    result = {"stage": stage, "total_ids": sum(f.vocab_size - 1 for f in spec.fields)}
    seconds, (model, compile_arguments) = _timed(lambda: build_stage(stage, spec))
    result["build_s"] = seconds
    model.compile(**compile_arguments)
    if stage != "compact":  # the serving form is not trained
        train = zip_train_validation(one, one) if stage == "search" else one
        result["fit_first_s"], _ = _timed(lambda: model.fit(train, verbose=0))
        result["fit_second_s"], _ = _timed(lambda: model.fit(train, verbose=0))
        # A search step's batch is a (train, validation) pair, the others' (features, labels).
        batch = (next(iter(train)),) if stage == "search" else next(iter(train))
        steps = [_timed(lambda: model.train_on_batch(*batch))[0] for _ in range(5)]
        result["step_s"] = statistics.median(steps)
        sparse = {**compile_arguments, "optimizer": tf.keras.optimizers.legacy.SGD(0.01)}
        model.compile(**sparse)
        model.fit(train, verbose=0)  # traces the new train function
        result["fit_sparse_s"], _ = _timed(lambda: model.fit(train, verbose=0))
    result["evaluate_first_s"], _ = _timed(lambda: model.evaluate(one, verbose=0))
    result["evaluate_second_s"], _ = _timed(lambda: model.evaluate(one, verbose=0))
    result["trainable_variables_s"], count = _timed(lambda: len(model.trainable_variables))
    result["trainable_variables"] = count
    seconds, _ = _timed(lambda: model.evaluate(many, verbose=0))
    result["eval_examples_per_s"] = EVAL_BATCHES * BATCH / seconds
    path = _export_path(data, stage)  # kept for `serve_round_robin`
    shutil.rmtree(path, ignore_errors=True)
    result["export_s"], _ = _timed(lambda: export_saved_model(model, path))
    result["saved_model_pb_bytes"] = os.path.getsize(os.path.join(path, "saved_model.pb"))
    result["assets_bytes"] = _directory_bytes(os.path.join(path, "assets"))
    result["variables_bytes"] = _directory_bytes(os.path.join(path, "variables"))
    model = None  # only the reloaded SavedModel serves
    tf.keras.backend.clear_session()
    result["load_s"], loaded = _timed(lambda: tf.saved_model.load(path))
    serve = loaded.signatures["serving_default"]
    features = {name: tf.constant(v) for name, v in examples[0][0].items()}
    for _ in range(3):
        serve(**features)["probability"].numpy()
    calls = []
    for _ in range(SERVING_CALLS):
        seconds, _ = _timed(lambda: serve(**features)["probability"].numpy())
        calls.append(seconds)
    result["serving_ms"] = 1000 * statistics.median(calls)
    result["peak_rss_mib"] = peak_rss_mib(False)
    return result


def _export_path(data: str, stage: str) -> str:
    return os.path.join(data, "exports", stage)


def _serving_call(loaded, features: dict) -> float:
    """Seconds of one call of a loaded export's `serving_default`."""
    serve = loaded.signatures["serving_default"]
    start = time.perf_counter()
    serve(**features)["probability"].numpy()
    return time.perf_counter() - start


def serve_round_robin(stage: str, datas: Sequence[str]) -> dict:
    """Median ms of a serving call of one stage's export at every size, the sizes taking turns.

    The exports of all sizes are loaded in one process and called in rounds
    of `SERVING_CALLS // 3` calls each, size after size, so that a busy
    period of a shared machine slows every size alike.
    """
    import tensorflow as tf

    from keras_dimsel.data.feature_spec import FeatureSpec

    served = []
    for data in datas:
        spec = FeatureSpec.load(data)
        loaded = tf.saved_model.load(_export_path(data, stage))
        features = {name: tf.constant(v) for name, v in batches(spec, 1, seed=1)[0][0].items()}
        served.append((data, loaded, features))
    medians = {data: [] for data in datas}
    for _ in range(SERVING_ROUNDS + 1):
        for data, loaded, features in served:
            calls = [_serving_call(loaded, features) for _ in range(SERVING_CALLS // 3)]
            medians[data].append(statistics.median(calls))
    # The first round warms up.
    return {data: 1000 * statistics.median(values[1:]) for data, values in medians.items()}


COLUMNS = (
    ("build_s", "build s", "{:.2f}"),
    ("fit_first_s", "fit 1st s", "{:.2f}"),
    ("fit_second_s", "fit 2nd s", "{:.2f}"),
    ("step_s", "step s", "{:.2f}"),
    ("fit_sparse_s", "fit sparse s", "{:.2f}"),
    ("evaluate_first_s", "eval 1st s", "{:.2f}"),
    ("evaluate_second_s", "eval 2nd s", "{:.2f}"),
    ("trainable_variables_s", "trainable_variables s", "{:.3f}"),
    ("eval_examples_per_s", "eval ex/s", "{:,.0f}"),
    ("export_s", "export s", "{:.1f}"),
    ("saved_model_pb_bytes", "saved_model.pb MB", "{:.2f}", 1e-6),
    ("assets_bytes", "assets MB", "{:.2f}", 1e-6),
    ("serving_ms", "serving ms", "{:.1f}"),
    ("serving_round_robin_ms", "serving round-robin ms", "{:.1f}"),
    ("peak_rss_mib", "peak RSS MiB", "{:,.0f}"),
)


def report(summary: dict) -> str:
    """The results as one Markdown table, a row per (stage, size)."""
    header = ["stage", "ids"] + [column[1] for column in COLUMNS]
    lines = [
        "# Fixed costs by vocabulary size",
        "",
        f"Commit {summary['code']['commit'][:10]}"
        + (" (library modified)" if summary["code"]["library_modified"] else "")
        + f", {summary['machine']['cpus_usable']} cores, {summary['machine']['memory_gib']} GiB,"
        f" TensorFlow {summary['machine']['tensorflow']}, {summary['date']}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in summary["results"]:
        cells = [row["stage"], f"{row['total_ids']:,}"]
        for key, _, form, *scale in COLUMNS:
            value = row.get(key)
            cells.append("" if value is None else form.format(value * (scale[0] if scale else 1)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _child(arguments: list) -> dict:
    """Runs this script on `arguments` in a fresh process; its last line of output, parsed."""
    command = [sys.executable, os.path.abspath(__file__), *arguments]
    done = subprocess.run(
        command, env=script_environment(), capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{' '.join(arguments)} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, nargs="+", default=[11_000, 300_000, 3_000_000])
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks", "work", "scale_fixed_costs")
    )
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks", "results", "scale_fixed_costs.json")
    )
    # A child process: one stage at one size, or with --serve the stage's exports at every size.
    parser.add_argument("--measure", metavar="DATA", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stages = args.stages.split(",")
    if args.measure and args.serve:
        print(json.dumps(serve_round_robin(stages[0], args.measure.split(","))))
        return 0
    if args.measure:
        print(json.dumps(measure(stages[0], args.measure)))
        return 0
    results = []
    datas = [os.path.join(args.work_dir, f"ids_{total}") for total in args.ids]
    for data, total in zip(datas, args.ids):
        if not os.path.exists(os.path.join(data, "feature_spec.json")):
            write_artifact(data, total)
        for stage in stages:
            results.append(_child(["--measure", data, "--stages", stage]))
            print(json.dumps(results[-1]), flush=True)
    for stage in stages:
        medians = _child(["--measure", ",".join(datas), "--stages", stage, "--serve"])
        for data, row in zip(datas, [row for row in results if row["stage"] == stage]):
            row["serving_round_robin_ms"] = medians[data]
            shutil.rmtree(_export_path(data, stage))
    summary = {
        "benchmark": "scale_fixed_costs",
        "date": datetime.date.today().isoformat(),
        "machine": machine_description(("tensorflow", "tf-keras", "numpy")),
        "code": code_state(),
        "settings": {
            "fields": FIELD_SHARES,
            "amtl_fields": list(AMTL_FIELDS),
            "dim": DIM,
            "batch": BATCH,
            "eval_batches": EVAL_BATCHES,
            "serving_calls": SERVING_CALLS,
            "serving_rounds": SERVING_ROUNDS,
            "zipf_exponent": ZIPF_EXPONENT,
        },
        "results": results,
    }
    write_results(summary, report(summary), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
