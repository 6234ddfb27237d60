"""Training at production table sizes: each stage's step speed and memory from 10k to 3M ids.

Four measurements, all in one run (`--parts`):

- `stages`: every training stage (the full-dimension baseline, the AutoDim
  search supernet with shared and with separate storage, the retrained
  model of a plan, AMTL) on DeepFM over four Zipf fields whose vocabularies
  give 10k / 300k / 3M ids in all (`--sizes`), with each
  `--embedding-optimizer` (`--optimizers`). Each (stage, size, optimizer)
  runs in a process of its own: the model is built from an in-memory
  artifact (vocabulary files with Zipf counts, no Beam), compiled, traced on
  a few batches, then its own `train_step`, compiled once with
  `tf.function`, is timed over in-memory batches of raw values (`--steps`
  steps, `--repeats` times): lookup, embeddings, network, backward pass and
  optimizer, without the input pipeline. Reported: train examples/s (median
  and mean ± std of the repeats), the process's peak RSS against the memory
  target `1.5 × (table + slot bytes) + 1.5 GiB`, and the bytes of the tables
  and their optimizer slots.
- `fixed`: what every call costs besides its examples, per stage (the
  baseline, the search supernet, the retrained model, AMTL and its compact
  serving model) and size, with the default embedding optimizer, each in a
  process of its own: building the model, the first and the second `fit`
  and `evaluate` of one batch (the second is the fixed cost of a call),
  one `trainable_variables`, evaluation examples/s over `--eval-batches`
  batches, the export (seconds, `saved_model.pb` and asset bytes) and the
  reloaded export's serving latency at the batch size. Latency is then
  measured again with the stage's exports of every size loaded in one
  process and called in turns (`--serve-calls` calls a round, 10 rounds),
  so that a busy period of a shared machine slows every size alike.
- `optimizers`: the optimizer alone: `Embedding(V, 32)` and a small MLP at
  batch 2000, ms per step at each V, for tf_keras `Adam`, `SGD`, `Adagrad`,
  the library's `LazyAdam` and `SplitOptimizer(Adagrad tables, Adam network)`.
- `runs`: the command line as users run it, each command in a process of its
  own: `dimsel baseline`, `search`, `retrain` (of the search's plan), `amtl`
  and `baseline --embedding-optimizer adam`, DeepFM, one epoch over 240,000
  rows written as the Beam job writes its splits. Reported: wall seconds,
  train examples/s, peak RSS, which printed line preceded the peak, and the
  library's own memory estimate (`training_memory_estimate_bytes`).

Targets (the issue "Production-size embedding tables"): each stage's train
examples/s at 3M ids ≥ 0.7 × the same stage at 10k, ≥ 25,000 examples/s for the
DeepFM baseline at 3M, peak RSS within the memory target (the commands' too), the
commands' memory estimates within 25% of their peak RSS; at the largest size,
model build ≤ 10 s, a `fit` or `evaluate` call's fixed cost ≤ 1 s, export ≤ 60 s,
evaluation examples/s ≥ 0.7 × at 10k and serving latency (in turns) ≤ 1.5 × at 10k.

Usage (from the repository root; `make bench-scale`):

    .venv/bin/python benchmarks/scale.py --out benchmarks/results/scale.json
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
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import (  # noqa: E402
    REPO_ROOT,
    code_state,
    machine_description,
    peak_rss_mib,
    rss_mib,
    script_environment,
    spread,
    write_results,
)

#: Values per field of each size; four fields, so 4x the ids in all (plus one OOV id each).
SIZES = {"10k": 2_500, "300k": 75_000, "3M": 760_000, "10M": 2_500_000}
FIELDS = ("c0", "c1", "c2", "c3")
STAGES = ("baseline", "search_shared", "search_separate", "retrain", "amtl")
CANDIDATES = (2, 8, 16, 24, 32)
#: The retrained model's plan: one candidate per field, as a search might choose.
PLAN = dict(zip(FIELDS, (32, 16, 8, 2)))
ZIPF_EXPONENT = 1.1
TRACE_STEPS = 3
GIB = 2**30


def zipf_probabilities(values: int) -> np.ndarray:
    weights = (np.arange(values) + 1.0) ** -ZIPF_EXPONENT
    return weights / weights.sum()


def write_artifact(directory: str, values: int, train_rows: int = 1_600_000):
    """An artifact of four Zipf fields with `values` values each: vocabulary files, no splits.

    The counts are those `train_rows` rows would give (at least 1), most frequent
    first, as the Beam job writes them.
    """
    from keras_dimsel.data import FeatureSpec, FieldSpec
    from keras_dimsel.data.feature_spec import format_vocabulary_line

    os.makedirs(os.path.join(directory, "vocab"), exist_ok=True)
    counts = np.maximum(1, np.round(zipf_probabilities(values) * train_rows)).astype(int)
    fields = []
    for name in FIELDS:
        path = os.path.join(directory, "vocab", f"{name}.txt")
        if not os.path.exists(path):
            with open(path + ".tmp", "w") as f:
                f.writelines(format_vocabulary_line(c, f"{name}_{i}") for i, c in enumerate(counts))
            os.replace(path + ".tmp", path)
        fields.append(FieldSpec(name, "categorical", values + 1, f"vocab/{name}.txt"))
    splits = {"train": train_rows, "validation": train_rows // 8, "test": train_rows // 8}
    return FeatureSpec(label="label", fields=tuple(fields), splits=splits, directory=directory)


def raw_batches(values: int, batches: int, batch_size: int, seed: int) -> list:
    """`(features, labels)` batches of raw string values drawn from the Zipf law.

    One value in a hundred is one the vocabulary does not hold (an OOV id). The
    label depends on the first two fields, so the loss has something to learn.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    probabilities = zipf_probabilities(values)
    out = []
    for _ in range(batches):
        ranks = {name: rng.choice(values, batch_size, p=probabilities) for name in FIELDS}
        unseen = rng.random(batch_size) < 0.01
        features = {
            name: tf.constant(
                np.where(unseen, f"{name}_unseen", np.char.add(f"{name}_", r.astype(str)))
            )
            for name, r in ranks.items()
        }
        logit = 0.8 * np.sin(ranks["c0"] * 0.7) + 0.6 * np.cos(ranks["c1"] * 1.3) - 1.0
        labels = (rng.random(batch_size) < 1 / (1 + np.exp(-logit))).astype(np.float32)
        out.append((features, tf.constant(labels)))
    return out


def stage_model(stage: str, spec, embedding_optimizer: str):
    """The compiled model of a stage, built as the library's runs build it."""
    import tensorflow as tf

    from keras_dimsel.amtl.embeddings import masked_model
    from keras_dimsel.amtl.runs import default_fields
    from keras_dimsel.autodim.model import planned_model, search_model
    from keras_dimsel.autodim.plan import DimensionPlan
    from keras_dimsel.models import full_model, vocab_sizes
    from keras_dimsel.training.optimizers import network_optimizer
    from keras_dimsel.training.settings import DEFAULT_LEARNING_RATE

    optimizer = network_optimizer(embedding_optimizer, DEFAULT_LEARNING_RATE)
    dim = max(CANDIDATES)
    if stage.startswith("search"):
        storage = stage.split("_")[1]
        model = search_model("deepfm", spec, candidates=CANDIDATES, storage=storage, seed=0)
        model.build_weights()
        model.compile(
            optimizer=optimizer,
            arch_optimizer=tf.keras.optimizers.Adam(0.01),
            arch_every=10,
            pretrain_steps=0,
        )
        return model
    if stage == "baseline":
        model = full_model("deepfm", spec, dim=dim)
    elif stage == "retrain":
        plan = DimensionPlan(fields=PLAN, candidates=CANDIDATES, vocab_sizes=vocab_sizes(spec))
        model = planned_model("deepfm", spec, plan)
    elif stage == "amtl":
        model = masked_model("deepfm", spec, default_fields(spec, dim), dim=dim)
    else:
        raise ValueError(f"unknown stage {stage!r}")
    model.build_weights()
    model.compile(optimizer=optimizer)
    return model


def table_bytes(model, embedding_optimizer: str) -> dict:
    """Bytes of the embedding tables and of their optimizer slots (2 for Adam, 1 for Adagrad)."""
    from keras_dimsel.training.memory import OPTIMIZER_SLOTS
    from keras_dimsel.training.optimizers import is_table

    tables = sum(
        int(np.prod(v.shape)) * v.dtype.size for v in model.trainable_variables if is_table(v)
    )
    return {"tables": tables, "slots": OPTIMIZER_SLOTS[embedding_optimizer] * tables}


def measure_stage(args) -> dict:
    """One (stage, size, optimizer) in this process: step speed, memory, export and serving."""
    import tensorflow as tf

    from keras_dimsel.training import exempt_keras_from_autograph, seed_everything

    exempt_keras_from_autograph()
    seed_everything(0)
    values = SIZES[args.size]
    spec = write_artifact(os.path.join(args.work_dir, f"artifact_{args.size}"), values)
    batches = raw_batches(values, args.steps, args.batch_size, seed=1)
    start = time.perf_counter()
    model = stage_model(args.stage, spec, args.embedding_optimizer)
    build_seconds = time.perf_counter() - start
    if args.stage.startswith("search"):
        # As `zip_train_validation(arch_every=10)` pairs them: a validation batch per ten steps.
        validation = raw_batches(values, max(1, args.steps // 10), args.batch_size, seed=2)
        inputs = [(batch, validation[i // 10 % len(validation)]) for i, batch in enumerate(batches)]
    else:
        inputs = batches
    step = tf.function(model.train_step)
    for batch in inputs[:TRACE_STEPS]:
        step(batch)
    rates = []
    for _ in range(args.repeats):
        begin = time.perf_counter()
        for batch in inputs:
            logs = step(batch)
        tf.nest.map_structure(lambda value: value.numpy(), logs)  # waits for the last step
        rates.append(len(inputs) * args.batch_size / (time.perf_counter() - begin))
    result = {
        "stage": args.stage,
        "size": args.size,
        "ids": sum(field.vocab_size for field in spec.fields),
        "embedding_optimizer": args.embedding_optimizer,
        "build_seconds": build_seconds,
        "train_examples_per_second": spread(rates),
        "embedding_params": int(model.embedding_params),
        **table_bytes(model, args.embedding_optimizer),
    }
    result["training_peak_rss_mib"] = peak_rss_mib(reset_worked=False)
    return result


FIXED_STAGES = ("baseline", "search_shared", "retrain", "amtl", "compact")


def fixed_stage_model(stage: str, spec):
    """The compiled model of a stage with the default embedding optimizer; `compact` is the
    serving model of an AMTL model (`amtl.compact_model`), built from it."""
    from keras_dimsel.amtl.compact import compact_model
    from keras_dimsel.training.optimizers import DEFAULT_EMBEDDING_OPTIMIZER

    if stage != "compact":
        return stage_model(stage, spec, DEFAULT_EMBEDDING_OPTIMIZER)
    compact, _ = compact_model(stage_model("amtl", spec, DEFAULT_EMBEDDING_OPTIMIZER))
    compact.compile()
    return compact


def _seconds(function) -> float:
    begin = time.perf_counter()
    function()
    return time.perf_counter() - begin


def measure_fixed(args) -> dict:
    """One stage's per-call costs at one size, in this process (see the `fixed` part)."""
    import tensorflow as tf

    from keras_dimsel.autodim.alternating import zip_train_validation
    from keras_dimsel.export import export_saved_model
    from keras_dimsel.training import exempt_keras_from_autograph, seed_everything

    exempt_keras_from_autograph()
    seed_everything(0)
    values = SIZES[args.size]
    spec = write_artifact(os.path.join(args.work_dir, f"artifact_{args.size}"), values)
    batches = raw_batches(values, args.eval_batches + 1, args.batch_size, seed=1)
    record = {
        "fixed": args.fixed,
        "size": args.size,
        "ids": sum(field.vocab_size for field in spec.fields),
    }
    begin = time.perf_counter()
    model = fixed_stage_model(args.fixed, spec)
    record["build_seconds"] = time.perf_counter() - begin
    features = {name: tf.concat([b[0][name] for b in batches], 0) for name in spec.field_names}
    labels = tf.concat([batch[1] for batch in batches], 0)
    examples = tf.data.Dataset.from_tensor_slices((features, labels)).batch(args.batch_size)
    # One element spec for both, so the timed evaluation does not trace again.
    one = examples.take(1).cache()
    many = examples.skip(1).cache()
    for _ in one.concatenate(many):  # filled before anything is timed
        pass
    if args.fixed != "compact":  # the serving model is not trained
        train = zip_train_validation(one, one) if args.fixed.startswith("search") else one
        record["fit_first_seconds"] = _seconds(lambda: model.fit(train, verbose=0))
        record["fit_seconds"] = _seconds(lambda: model.fit(train, verbose=0))
    record["evaluate_first_seconds"] = _seconds(lambda: model.evaluate(one, verbose=0))
    record["evaluate_seconds"] = _seconds(lambda: model.evaluate(one, verbose=0))
    record["trainable_variables_seconds"] = _seconds(lambda: model.trainable_variables)
    seconds = _seconds(lambda: model.evaluate(many, verbose=0))
    record["eval_examples_per_second"] = args.eval_batches * args.batch_size / seconds
    export = _fixed_export(args.work_dir, args.fixed, args.size)  # replaced if there
    record["export_seconds"] = _seconds(lambda: export_saved_model(model, export))
    record["saved_model_bytes"] = directory_bytes(export)
    record["saved_model_pb_bytes"] = os.path.getsize(os.path.join(export, "saved_model.pb"))
    record["assets_bytes"] = directory_bytes(os.path.join(export, "assets"))
    model = None  # only the reloaded export serves
    tf.keras.backend.clear_session()
    loaded = tf.saved_model.load(export)
    serve = loaded.signatures["serving_default"]
    for _ in range(3):
        serve(**batches[0][0])
    calls = [1000 * _serving_seconds(serve, batches[0][0]) for _ in range(args.serve_calls)]
    record["serving_ms"] = spread(calls)
    record["peak_rss_mib"] = peak_rss_mib(reset_worked=False)
    return record


def _serving_seconds(serve, features: dict) -> float:
    """Seconds of one call of a serving signature, its result read."""
    begin = time.perf_counter()
    serve(**features)["probability"].numpy()
    return time.perf_counter() - begin


def _fixed_export(work_dir: str, stage: str, size: str) -> str:
    """Where the `fixed` part keeps a stage's export until it is served in turns."""
    return os.path.join(own_directory(os.path.join(work_dir, "exports")), f"{stage}_{size}")


#: The file that marks a directory as made by this script: what it may delete in.
OWN_MARK = ".made-by-scale-benchmark"


def own_directory(path: str) -> str:
    """`path`, made and marked by this script; refused when it is another's directory.

    The script deletes only inside such a directory (a run or an export it made
    before), never in one a user pointed `--work-dir` at.
    """
    mark = os.path.join(path, OWN_MARK)
    if os.path.isdir(path) and os.listdir(path) and not os.path.exists(mark):
        raise SystemExit(
            f"{path} exists and was not made by benchmarks/scale.py; use another --work-dir"
        )
    os.makedirs(path, exist_ok=True)
    open(mark, "a").close()
    return path


SERVING_ROUNDS = 10


def serve_in_turns(args) -> dict:
    """Median serving ms of one stage's exports of every size, loaded in one process and
    called in turns: `SERVING_ROUNDS` rounds of `--serve-calls` calls per size."""
    import tensorflow as tf

    served, kept = [], []
    for size in args.sizes:
        loaded = tf.saved_model.load(_fixed_export(args.work_dir, args.serve_in_turns, size))
        features = raw_batches(SIZES[size], 1, args.batch_size, seed=1)[0][0]
        served.append((size, loaded.signatures["serving_default"], features))
        kept.append(loaded)  # a signature needs its loaded object alive
    medians = {size: [] for size in args.sizes}
    for _ in range(SERVING_ROUNDS + 1):  # the first round warms up
        for size, serve, features in served:
            calls = [_serving_seconds(serve, features) for _ in range(args.serve_calls)]
            medians[size].append(1000 * statistics.median(calls))
    return {
        "serving_in_turns": args.serve_in_turns,
        "serving_ms": {size: spread(values[1:]) for size, values in medians.items()},
    }


#: `baseline_adam` is the baseline with `--embedding-optimizer adam` (dense Adam's temporaries).
RUN_STAGES = ("baseline", "search", "retrain", "amtl", "baseline_adam")
#: Rows of each split of a `runs` artifact: an epoch of 120 steps at batch 2000.
RUN_ROWS = {"train": 240_000, "validation": 30_000, "test": 30_000}


def write_run_artifact(directory: str, values: int):
    """The `stages` artifact with gzip TFRecord splits, so that the command line can train on it.

    The rows are drawn as `raw_batches` draws them and encoded as the Beam job
    encodes its splits (`preprocessing.outputs.encode_examples`).
    """
    import dataclasses

    import pyarrow as pa
    import tensorflow as tf

    from keras_dimsel.preprocessing.outputs import encode_examples

    spec = write_artifact(directory, values, train_rows=RUN_ROWS["train"])
    for seed, (split, rows) in enumerate(RUN_ROWS.items()):
        path = os.path.join(directory, split, "part-00000.tfrecord.gz")
        if os.path.exists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tf.io.TFRecordWriter(path + ".tmp", options="GZIP") as writer:
            for features, labels in raw_batches(values, rows // 10_000, 10_000, seed=10 + seed):
                columns = {"label": pa.array(labels.numpy())}
                columns.update(
                    {name: pa.array(v.numpy().astype(str)) for name, v in features.items()}
                )
                for example in encode_examples(pa.RecordBatch.from_pydict(columns)):
                    writer.write(example)
        os.replace(path + ".tmp", path)
    spec = dataclasses.replace(spec, splits=dict(RUN_ROWS))
    spec.save()
    return spec


class Timeline:
    """This process's RSS sampled every 0.1 s, beside the lines the command prints.

    `peaks()` gives the highest RSS seen while each line was the last printed:
    which phase of a run (an epoch, the evaluation, the export) holds the peak.
    """

    def __init__(self):
        import threading

        self.lines = [(time.perf_counter(), "(start)")]
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.1):
            self.samples.append((time.perf_counter(), rss_mib()))

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.lines.append((time.perf_counter(), line.strip()[:80]))
        return sys.__stdout__.write(text)

    def flush(self) -> None:
        sys.__stdout__.flush()

    def __enter__(self):
        self._thread.start()
        sys.stdout = self
        return self

    def __exit__(self, *exc):
        sys.stdout = sys.__stdout__
        self._stop.set()
        self._thread.join()

    def peaks(self, count: int = 4) -> list:
        """The `count` phases of highest RSS: `[line, MiB]`, highest first."""
        starts = [t for t, _ in self.lines] + [float("inf")]
        phases = []
        for (start, line), end in zip(self.lines, starts[1:]):
            seen = [mib for t, mib in self.samples if start <= t < end and mib is not None]
            if seen:
                phases.append([line, max(seen)])
        return sorted(phases, key=lambda phase: -phase[1])[:count]


def measure_run(args) -> dict:
    """One command-line run (`dimsel <stage>`, DeepFM, 1 epoch) at one size, in this process."""
    from keras_dimsel import cli
    from keras_dimsel.autodim.runs import SEARCH_METRICS
    from keras_dimsel.training import RunDir
    from keras_dimsel.training.run_dir import METRICS

    data = os.path.join(args.work_dir, f"run_artifact_{args.size}")
    spec = write_run_artifact(data, SIZES[args.size])
    runs = own_directory(os.path.join(args.work_dir, "runs"))
    output = os.path.join(runs, f"{args.run}_{args.size}")
    shutil.rmtree(output, ignore_errors=True)  # this script's run of an earlier pass
    command = args.run.split("_")[0]
    argv = [command, "--data", data, "--model", "deepfm", "--output", output, "--epochs", "1"]
    if args.run == "baseline_adam":
        argv += ["--embedding-optimizer", "adam"]
    if args.run == "retrain":
        argv += ["--plan", os.path.join(runs, f"search_{args.size}", "plan.json")]
    with Timeline() as timeline:
        begin = time.perf_counter()
        code = cli.main(argv)
        seconds = time.perf_counter() - begin
    if code != 0:
        raise SystemExit(f"dimsel {' '.join(argv)} exited with {code}")
    metrics = RunDir(output).read_json(SEARCH_METRICS if args.run == "search" else METRICS)
    return {
        "run": args.run,
        "size": args.size,
        "ids": sum(field.vocab_size for field in spec.fields),
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(reset_worked=False),
        "peak_phases": timeline.peaks(),
        "memory_estimate_bytes": metrics["training_memory_estimate_bytes"],
        "trainable_numbers": metrics["trainable_numbers"],
        "train_examples_per_second": metrics.get("train_examples_per_second"),
        "saved_model_bytes": directory_bytes(os.path.join(output, "saved_model")),
    }


def directory_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


OPTIMIZER_VARIANTS = ("adam", "sgd", "adagrad", "lazy_adam", "split_adagrad_adam")


def measure_optimizer(args) -> dict:
    """ms per step of `Embedding(V, 32)` + a small MLP under one optimizer, in this process."""
    import tensorflow as tf

    from keras_dimsel.training.optimizers import LazyAdam, SplitOptimizer

    tf.keras.utils.set_random_seed(0)
    rows = 4 * SIZES[args.size] + 4
    optimizers = {
        "adam": lambda: tf.keras.optimizers.Adam(1e-3),
        "sgd": lambda: tf.keras.optimizers.SGD(0.05),
        "adagrad": lambda: tf.keras.optimizers.Adagrad(0.05),
        "lazy_adam": lambda: LazyAdam(1e-3),
        "split_adagrad_adam": lambda: SplitOptimizer(
            tf.keras.optimizers.Adagrad(0.05), tf.keras.optimizers.Adam(1e-3)
        ),
    }
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(4,), dtype="int64"),
            tf.keras.layers.Embedding(rows, 32),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(64, activation="relu"),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=optimizers[args.optimizer](), loss="mse")
    rng = np.random.default_rng(0)
    probabilities = zipf_probabilities(rows)
    batches = [
        (
            tf.constant(rng.choice(rows, (args.batch_size, 4), p=probabilities)),
            tf.constant(rng.random((args.batch_size, 1)), tf.float32),
        )
        for _ in range(args.steps)
    ]
    step = tf.function(model.train_step)
    for batch in batches[:TRACE_STEPS]:
        step(batch)
    times = []
    for _ in range(args.repeats):
        begin = time.perf_counter()
        for batch in batches:
            logs = step(batch)
        logs["loss"].numpy()
        times.append((time.perf_counter() - begin) * 1000 / len(batches))
    return {
        "optimizer": args.optimizer,
        "size": args.size,
        "rows": rows,
        "ms_per_step": spread(times),
        "peak_rss_mib": peak_rss_mib(reset_worked=False),
    }


def run_child(argv: Sequence[str]) -> Optional[dict]:
    """Runs this script on one measurement in a fresh process; its JSON result, or None."""
    command = [sys.executable, os.path.abspath(__file__), *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=script_environment())
    if done.returncode != 0:
        print(f"failed: {' '.join(argv)}\n{done.stderr[-2000:]}", file=sys.stderr, flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_results(path: str) -> dict:
    """The results already measured (a run resumes where it stopped)."""
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def key_of(record: dict) -> str:
    if "stage" in record:
        return f"stage/{record['stage']}/{record['size']}/{record['embedding_optimizer']}"
    if "fixed" in record:
        return f"fixed/{record['fixed']}/{record['size']}"
    if "run" in record:
        return f"run/{record['run']}/{record['size']}"
    if "serving_in_turns" in record:
        return f"serving/{record['serving_in_turns']}"
    return f"optimizer/{record['optimizer']}/{record['size']}"


def summarize(results: dict, args) -> dict:
    stages = [r for r in results.get("records", []) if "stage" in r]
    checks = []
    by_key = {key_of(r): r for r in stages}
    smallest, largest = args.sizes[0], args.sizes[-1]
    for stage in args.stages:
        for optimizer in args.optimizers:
            small = by_key.get(f"stage/{stage}/{smallest}/{optimizer}")
            large = by_key.get(f"stage/{stage}/{largest}/{optimizer}")
            if not (small and large):
                continue
            ratio = (
                large["train_examples_per_second"]["median"]
                / small["train_examples_per_second"]["median"]
            )
            checks.append(
                {
                    "what": f"{stage} ({optimizer}) train examples/s, {largest} / {smallest}",
                    "value": ratio,
                    "target": "≥ 0.7",
                    "met": ratio >= 0.7,
                }
            )
    for record in stages:
        target = 1.5 * (record["tables"] + record["slots"]) / 2**20 + 1.5 * 1024
        record["memory_target_mib"] = target
        if record["size"] == largest:
            checks.append(
                {
                    "what": f"{record['stage']} ({record['embedding_optimizer']}) peak RSS MiB "
                    f"at {largest}",
                    "value": record["training_peak_rss_mib"],
                    "target": f"≤ {target:,.0f}",
                    "met": record["training_peak_rss_mib"] <= target,
                }
            )
    baseline = by_key.get(f"stage/baseline/{largest}/{args.optimizers[0]}")
    if baseline:
        rate = baseline["train_examples_per_second"]["median"]
        checks.append(
            {
                "what": f"baseline ({args.optimizers[0]}) train examples/s at {largest}",
                "value": rate,
                "target": "≥ 25,000",
                "met": rate >= 25_000,
            }
        )
    every = {key_of(r): r for r in results.get("records", [])}
    results["checks"] = checks + fixed_checks(every, smallest, largest) + run_checks(every)
    return results


def _check(what: str, value: float, target: str, met: bool) -> dict:
    return {"what": what, "value": value, "target": target, "met": met}


def run_checks(records: dict) -> list:
    """The `runs` part's targets: the memory estimate within 25% of the peak RSS, and the
    peak within `1.5 × (trainable numbers with 2 slots) + 1.5 GiB`."""
    checks = []
    for record in records.values():
        if "run" not in record:
            continue
        where = f"dimsel {record['run']} at {record['size']}"
        error = record["memory_estimate_bytes"] / 2**20 / record["peak_rss_mib"] - 1
        met = abs(error) <= 0.25
        checks.append(_check(f"{where}: estimate / peak RSS - 1", error, "within ±0.25", met))
        target = 1.5 * 12 * record["trainable_numbers"] / 2**20 + 1.5 * 1024
        peak = record["peak_rss_mib"]
        checks.append(_check(f"{where}: peak RSS MiB", peak, f"≤ {target:,.0f}", peak <= target))
    return checks


def fixed_checks(records: dict, smallest: str, largest: str) -> list:
    """The `fixed` part's targets at the largest size (and its ratios to the smallest)."""
    checks = []
    for stage in FIXED_STAGES:
        small = records.get(f"fixed/{stage}/{smallest}")
        large = records.get(f"fixed/{stage}/{largest}")
        if large:
            checks.append(
                _check(
                    f"{stage} build s at {largest}",
                    large["build_seconds"],
                    "≤ 10",
                    large["build_seconds"] <= 10,
                )
            )
            for call in ("fit", "evaluate"):
                if f"{call}_seconds" in large:
                    seconds = large[f"{call}_seconds"]
                    what = f"{stage} one-batch {call} s at {largest}"
                    checks.append(_check(what, seconds, "≤ 1", seconds <= 1))
            checks.append(
                _check(
                    f"{stage} export s at {largest}",
                    large["export_seconds"],
                    "≤ 60",
                    large["export_seconds"] <= 60,
                )
            )
        if small and large:
            ratio = large["eval_examples_per_second"] / small["eval_examples_per_second"]
            checks.append(
                _check(
                    f"{stage} eval examples/s, {largest} / {smallest}", ratio, "≥ 0.7", ratio >= 0.7
                )
            )
        turns = records.get(f"serving/{stage}")
        if turns and smallest in turns["serving_ms"] and largest in turns["serving_ms"]:
            ms = turns["serving_ms"]
            ratio = ms[largest]["median"] / ms[smallest]["median"]
            checks.append(
                _check(
                    f"{stage} serving latency in turns, {largest} / {smallest}",
                    ratio,
                    "≤ 1.5",
                    ratio <= 1.5,
                )
            )
    return checks


def markdown(summary: dict) -> str:
    machine, settings = summary["machine"], summary["settings"]
    lines = [
        "# Training at production table sizes",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores, "
        f"{machine['memory_gib']} GiB, TensorFlow {machine['tensorflow']}, Python "
        f"{machine['python']}. Commit {summary['code']['commit'][:12] or 'unknown'}, "
        f"{summary['date']}.",
        "",
        f"Command: `{summary['command']}`",
        "",
        f"DeepFM over four Zipf fields (exponent {ZIPF_EXPONENT}); batch size "
        f"{settings['batch_size']}; {settings['steps']} steps timed {settings['repeats']} "
        "times per cell, each cell in a process of its own (see the script's docstring).",
        "",
        "## Stages",
        "",
        "| stage | ids | embedding optimizer | train examples/s (median) | mean ± std "
        "| peak RSS MiB | memory target MiB | tables + slots MiB | build s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["records"]:
        if "stage" not in r:
            continue
        speed = r["train_examples_per_second"]
        lines.append(
            f"| {r['stage']} | {r['ids']:,} | {r['embedding_optimizer']} | "
            f"{speed['median']:,.0f} | {speed['mean']:,.0f} ± {speed['std']:,.0f} | "
            f"{r['training_peak_rss_mib']:,.0f} | {r.get('memory_target_mib', 0):,.0f} | "
            f"{(r['tables'] + r['slots']) / 2**20:,.0f} | {r['build_seconds']:.1f} |"
        )
    lines += fixed_markdown(summary["records"], settings)
    lines += runs_markdown(summary["records"])
    optimizer_records = [r for r in summary["records"] if "optimizer" in r]
    if optimizer_records:
        lines += optimizer_markdown(optimizer_records, settings)
    lines += ["", "## Targets", "", "| check | value | target | met |", "|---|---:|---|---|"]
    for check in summary["checks"]:
        value = check["value"]
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
        lines.append(
            f"| {check['what']} | {shown} | {check['target']} | {'yes' if check['met'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def optimizer_markdown(records: list, settings: dict) -> list:
    """The `optimizers` part's table: ms per step by optimizer and table size."""
    sizes = [s for s in settings["sizes"] if any(r["size"] == s for r in records)]
    lines = [
        "",
        "## The optimizer alone",
        "",
        "`Embedding(V, 32)` + MLP, batch size "
        f"{settings['batch_size']}, ms per step (median of {settings['repeats']}):",
        "",
    ]
    lines.append("| optimizer | " + " | ".join(f"V = {s}" for s in sizes) + " |")
    lines.append("|---|" + "---:|" * len(sizes))
    for optimizer in OPTIMIZER_VARIANTS:
        cells = []
        for size in sizes:
            match = [r for r in records if r["optimizer"] == optimizer and r["size"] == size]
            cells.append(f"{match[0]['ms_per_step']['median']:.1f}" if match else "")
        if any(cells):
            lines.append(f"| {optimizer} | " + " | ".join(cells) + " |")
    return lines


def runs_markdown(records: list) -> list:
    """The `runs` part's table: a row per command and size."""
    runs = [r for r in records if "run" in r]
    if not runs:
        return []
    lines = [
        "",
        "## The command line",
        "",
        f"`dimsel <command> --model deepfm --epochs 1` on {RUN_ROWS['train']:,} train rows "
        "(batch 2000, default embedding optimizer; `retrain` takes the plan of `search`). "
        "The peak phase is the last line the command had printed when its RSS peaked.",
        "",
        "| command | ids | wall s | train examples/s | peak RSS MiB | estimate MiB "
        "| trainable numbers | peak phase |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        phase = r["peak_phases"][0][0].split(" - ")[0][:40] if r["peak_phases"] else ""
        rate = r["train_examples_per_second"]
        lines.append(
            f"| {r['run']} | {r['ids']:,} | {r['seconds']:.0f} | "
            f"{f'{rate:,.0f}' if rate else ''} | {r['peak_rss_mib']:,.0f} | "
            f"{r['memory_estimate_bytes'] / 2**20:,.0f} | {r['trainable_numbers']:,} | {phase} |"
        )
    return lines


def fixed_markdown(records: list, settings: dict) -> list:
    """The `fixed` part's table: a row per (stage, size)."""
    fixed = [r for r in records if "fixed" in r]
    if not fixed:
        return []
    turns = {r["serving_in_turns"]: r["serving_ms"] for r in records if "serving_in_turns" in r}
    lines = [
        "",
        "## Fixed costs of a call",
        "",
        "Default embedding optimizer. `fit` and `evaluate`: one batch, the second call "
        f"(the first traces). Evaluation over {settings.get('eval_batches')} batches. "
        "Serving: median ms of a call on one batch, in the stage's own process and in turns "
        "with the exports of every size loaded in one process.",
        "",
        "| stage | ids | build s | fit s (1st) | evaluate s (1st) | trainable_variables s "
        "| eval examples/s | export s | saved_model.pb MiB | assets MiB | SavedModel MiB "
        "| serving ms | serving ms in turns | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in fixed:
        fit = f"{r['fit_seconds']:.2f} ({r['fit_first_seconds']:.1f})" if "fit_seconds" in r else ""
        in_turns = turns.get(r["fixed"], {}).get(r["size"])
        in_turns = f"{in_turns['median']:.1f}" if in_turns else ""
        lines.append(
            f"| {r['fixed']} | {r['ids']:,} | {r['build_seconds']:.1f} | {fit} | "
            f"{r['evaluate_seconds']:.2f} ({r['evaluate_first_seconds']:.1f}) | "
            f"{r['trainable_variables_seconds']:.3f} | {r['eval_examples_per_second']:,.0f} | "
            f"{r['export_seconds']:.1f} | {r['saved_model_pb_bytes'] / 2**20:.2f} | "
            f"{r['assets_bytes'] / 2**20:.1f} | {r['saved_model_bytes'] / 2**20:,.1f} | "
            f"{r['serving_ms']['median']:.1f} | {in_turns} | {r['peak_rss_mib']:,.0f} |"
        )
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=["10k", "300k", "3M"])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument(
        "--optimizers", nargs="+", default=["lazy_adam", "adam"], help="embedding optimizers"
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("optimizers", "fixed", "stages", "runs"),
        default=["optimizers", "fixed", "stages", "runs"],
    )
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serve-calls", type=int, default=20)
    parser.add_argument("--eval-batches", type=int, default=50)
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks/results/scale.json"))
    parser.add_argument(
        "--work-dir", default=os.path.join(tempfile.gettempdir(), "keras_dimsel_scale")
    )
    # One measurement in this process (how the parent runs each cell).
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--embedding-optimizer", help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", help=argparse.SUPPRESS)
    parser.add_argument("--fixed", help=argparse.SUPPRESS)
    parser.add_argument("--serve-in-turns", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    measurements = {
        "stage": measure_stage,
        "optimizer": measure_optimizer,
        "fixed": measure_fixed,
        "serve_in_turns": serve_in_turns,
        "run": measure_run,
    }
    for option, measure in measurements.items():
        if getattr(args, option):
            print(json.dumps(measure(args)))
            return 0

    os.makedirs(args.work_dir, exist_ok=True)
    results = load_results(args.out)
    records = {key_of(r): r for r in results.get("records", [])}
    common = [
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--repeats",
        str(args.repeats),
        "--serve-calls",
        str(args.serve_calls),
        "--eval-batches",
        str(args.eval_batches),
        "--work-dir",
        args.work_dir,
    ]
    cells = []
    if "optimizers" in args.parts:
        cells += [
            ["--optimizer", optimizer, "--size", size]
            for size in args.sizes
            for optimizer in OPTIMIZER_VARIANTS
        ]
    if "fixed" in args.parts:
        cells += [
            ["--fixed", stage, "--size", size] for stage in FIXED_STAGES for size in args.sizes
        ]
        # After all sizes of a stage: its exports served in turns, then deleted.
        cells += [["--serve-in-turns", stage, "--sizes", *args.sizes] for stage in FIXED_STAGES]
    if "runs" in args.parts:  # the search before the retrain of its plan
        cells += [["--run", stage, "--size", size] for size in args.sizes for stage in RUN_STAGES]
    if "stages" in args.parts:
        cells += [
            ["--stage", stage, "--size", size, "--embedding-optimizer", optimizer]
            for size in args.sizes
            for stage in args.stages
            for optimizer in args.optimizers
        ]
    summary = {
        "benchmark": "scale",
        "command": " ".join(["python", "benchmarks/scale.py", *(argv or sys.argv[1:])]),
        "settings": {
            "sizes": args.sizes,
            "values_per_field": {size: SIZES[size] for size in args.sizes},
            "batch_size": args.batch_size,
            "steps": args.steps,
            "repeats": args.repeats,
            "eval_batches": args.eval_batches,
            "candidates": list(CANDIDATES),
            "plan": PLAN,
        },
    }
    for cell in cells:
        if key_of_cell(cell) in records:
            continue
        started = time.perf_counter()
        record = run_child(cell + common)
        if cell[0] == "--serve-in-turns":
            for size in args.sizes:
                shutil.rmtree(_fixed_export(args.work_dir, cell[1], size), ignore_errors=True)
        if record is None:
            continue
        records[key_of(record)] = record
        print(f"{key_of(record)}: {time.perf_counter() - started:.0f} s", flush=True)
        summary.update(
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            code=code_state(),
            machine=machine_description(),
            records=list(records.values()),
        )
        write_results(summarize(summary, args), markdown(summary), args.out)
    return 0


def key_of_cell(cell: Sequence[str]) -> str:
    """The record key a child run on `cell` will give (see `key_of`)."""
    if cell[0] == "--serve-in-turns":
        return f"serving/{cell[1]}"
    options = dict(zip(cell[0::2], cell[1::2]))
    if "--fixed" in options:
        return f"fixed/{options['--fixed']}/{options['--size']}"
    if "--run" in options:
        return f"run/{options['--run']}/{options['--size']}"
    if "--stage" in options:
        return f"stage/{options['--stage']}/{options['--size']}/{options['--embedding-optimizer']}"
    return f"optimizer/{options['--optimizer']}/{options['--size']}"


if __name__ == "__main__":
    sys.exit(main())
