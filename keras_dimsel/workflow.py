"""The training commands as functions: baseline, search, retrain.

Each takes the artifact (`FeatureSpec`), trains on its train split, and writes
machine-readable results into a run directory:

- `metrics.json`: test AUC, logloss, embedding parameters, examples/second;
- `saved_model/`: the compact export (raw features in, probability out);
- `weights/`: the trained weights (`CTRModel.network_weights`, a checkpoint);
- search only: `plan.json`, `alpha_history.csv`, TensorBoard scalars in
  `logs/`, and the plot `search.png`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_dimsel import _io
from keras_dimsel.checkpointing import (
    CHECKPOINTS,
    DEFAULT_CHECKPOINT_EVERY,
    BestEpoch,
    ResumableFit,
    epoch_seed,
)
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import export_saved_model
from keras_dimsel.models import make_model
from keras_dimsel.search.alternating import zip_train_validation
from keras_dimsel.search.memory import check_search_memory, default_budget
from keras_dimsel.search.plan import DEFAULT_TOLERANCE, DimensionPlan
from keras_dimsel.search.probe import probe_losses
from keras_dimsel.search.temperature import TemperatureSchedule

DEFAULT_CANDIDATES = (2, 8, 16, 24, 32)
DEFAULT_LEARNING_RATE = 1e-3
# How far (in logits) alpha can travel over a search by default; see run_search.
ARCH_TRAVEL = 3.0
# The search tables a retrain can warm start from, in the search run directory.
SEARCH_TABLES = "search_tables.npz"
# The trained weights of a baseline or retrain run (`CTRModel.network_weights`),
# what an AMTL warm start reads.
WEIGHTS = os.path.join("weights", "model")
# The sub-directories of a `dimsel run`, in the order the steps run.
RUN_STEPS = ("data", "baseline", "search", "autodim")
# How a search derives its plan: argmax of alpha, or probing the searched model.
DERIVE_METHODS = ("alpha", "probe")
# At least this many steps per epoch: small data sets get smaller batches.
_MIN_STEPS_PER_EPOCH = 100


@dataclasses.dataclass
class TrainSettings:
    """Epochs, batch size and seed, with defaults fitted to the data at hand.

    `batch_size=None` picks 2000 (the papers' setting) or less, so that an
    epoch has at least 100 steps; `epochs=None` picks 3. `serve_examples`
    exports in the TFX convention (see `export_saved_model`). Training writes
    a checkpoint every `checkpoint_every` steps and at each epoch end, and a
    run restarted with the same output directory continues from the last one
    (`keras_dimsel.checkpointing`).

    `keep_best=True` ends a run that trains a final model (baseline, retrain,
    AMTL) with the weights of its epoch of best validation AUC, instead of
    the last epoch's: on small data a model can overfit within the epochs
    asked for. The search always keeps its last state.

    Args:
        epochs: int or None, passes over the train split.
        batch_size: int or None, examples per batch.
        seed: int, the seed of the weights, the shuffling, dropout and the Gumbel noise.
        serve_examples: bool, export with a serialized-example signature.
        checkpoint_every: int >= 0, steps between checkpoints; 0 = epoch ends only.
        keep_best: bool, end with the epoch of best validation AUC.

    Examples:

        >>> spec = FeatureSpec(
        ...     label="label", fields=(), splits={"train": 50_000, "validation": 5000, "test": 5000}
        ... )
        >>> settings = TrainSettings().resolve(spec)  # 50,000 / 100 steps per epoch
        >>> settings.epochs, settings.batch_size, settings.keep_best
        (3, 500, False)
        >>> TrainSettings(epochs=1, batch_size=2000).resolve(spec).batch_size
        2000
    """

    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    seed: int = 0
    serve_examples: bool = False
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    keep_best: bool = False

    def resolve(self, spec: FeatureSpec) -> TrainSettings:
        """The settings with every default filled in for the data of `spec`.

        Args:
            spec: FeatureSpec, the artifact (its split sizes).

        Returns:
            A new TrainSettings with `epochs` and `batch_size` set.

        Raises:
            ValueError: when the train or test split is empty, or a setting is not positive.
        """
        train_rows = spec.splits.get("train", 0)
        if train_rows <= 0:
            raise ValueError(f"the train split of {spec.directory} is empty")
        if spec.splits.get("test", 0) <= 0:
            raise ValueError(f"the test split of {spec.directory} is empty")
        batch = self.batch_size or int(np.clip(train_rows // _MIN_STEPS_PER_EPOCH, 64, 2000))
        for name, value in (("epochs", self.epochs), ("batch_size", batch)):
            if value is not None and value <= 0:
                raise ValueError(f"`{name}` must be a positive integer. Received: {value}")
        if self.checkpoint_every < 0:
            raise ValueError(
                f"`checkpoint_every` must be an integer >= 0. Received: {self.checkpoint_every}"
            )
        return dataclasses.replace(self, epochs=self.epochs or 3, batch_size=batch)

    def steps_per_epoch(self, spec: FeatureSpec) -> int:
        """Training steps in one epoch over the train split of `spec` (resolved settings)."""
        return -(-spec.splits["train"] // self.batch_size)

    def train_epochs(self, spec: FeatureSpec):
        """The train split of each epoch, in an order fixed by the seed and the epoch.

        Returns:
            A callable from the epoch index to its shuffled dataset of batches.
        """

        def epoch_data(epoch: int) -> tf.data.Dataset:
            seed = epoch_seed(self.seed, epoch)
            return make_dataset(spec, "train", self.batch_size, shuffle=True, seed=seed)

        return epoch_data

    def record(self) -> dict:
        """What defines a run's training (the options a resumed run must share)."""
        record = {"epochs": self.epochs, "batch_size": self.batch_size, "seed": self.seed}
        if self.keep_best:  # absent when off: runs made before the option still resume
            record["keep_best"] = True
        return record


def _seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow, and makes TensorFlow's ops deterministic.

    With op determinism on, the same seed gives the same weights, plan and
    metrics on the same machine and software (tests/test_reliability.py).
    """
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _data_record(spec: FeatureSpec) -> dict:
    """What identifies the data of a run: split sizes and each field's vocabulary size."""
    return {
        "splits": dict(spec.splits),
        "vocab_sizes": {field.name: field.vocab_size for field in spec.fields},
    }


def evaluate(model, spec: FeatureSpec, batch_size: int) -> dict:
    """Test AUC, logloss and serving throughput (examples/second) of a model.

    Args:
        model: a compiled `CTRModel`.
        spec: FeatureSpec, the artifact whose test split is read.
        batch_size: int, examples per batch.

    Returns:
        dict with `auc`, `logloss`, `embedding_params` and `examples_per_second`.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = make_model("fm", spec, stage="full", dim=4, fields=["user", "device"])
        >>> model.compile()
        >>> metrics = evaluate(model, spec, batch_size=64)
        >>> sorted(metrics)
        ['auc', 'embedding_params', 'examples_per_second', 'logloss']
        >>> metrics["embedding_params"]  # (79 + 9) ids * 4
        352
    """
    test = make_dataset(spec, "test", batch_size=batch_size)
    model.evaluate(test.take(1), verbose=0)  # traces the graph outside the timing
    start = time.perf_counter()
    results = model.evaluate(test, return_dict=True, verbose=0)
    seconds = time.perf_counter() - start
    return {
        "auc": float(results["auc"]),
        "logloss": float(results["logloss"]),
        "embedding_params": int(model.embedding_params),
        "examples_per_second": float(spec.splits["test"] / seconds),
    }


def _write_json(path: str, record: dict) -> None:
    _io.write_text_atomically(path, json.dumps(record, indent=2) + "\n")


def _fit_resumably(
    model, spec, settings: TrainSettings, output: str, options: dict, **fit_arguments
) -> tuple[ResumableFit, Optional[float], dict]:
    """Trains a compiled, built model over the run's epochs, resuming from its checkpoints.

    With `settings.keep_best` and `validation_data`, the model ends with the
    weights of its epoch of best validation AUC (`BestEpoch`, kept beside the
    checkpoints so a restarted run still knows it).

    Args:
        model: a compiled Keras model, built on a batch.
        spec: FeatureSpec, the artifact.
        settings: TrainSettings, resolved.
        output: str, the run directory (checkpoints in `output/checkpoints`).
        options: dict, the run's options (a restart must give the same).
        **fit_arguments: `epoch_data` (default: the shuffled train split),
            `validation_data`, `callbacks`, `verbose` of `ResumableFit.fit`.

    Returns:
        `(run, examples_per_second, kept)`: the `ResumableFit` (call `remove()`
        once the results are written), the training throughput of the steps
        this call ran (None when the run had no steps left), and for the
        metrics `{"best_epoch": e, "best_val_auc": v}` when the best epoch was
        kept, else `{}`.
    """
    keep_best = settings.keep_best and fit_arguments.get("validation_data") is not None
    run = ResumableFit(
        model,
        output,
        {**options, **settings.record(), "data": _data_record(spec)},
        settings.steps_per_epoch(spec),
        settings.epochs,
        every=settings.checkpoint_every,
    )
    done = run.restore()
    fit_arguments.setdefault("epoch_data", settings.train_epochs(spec))
    if keep_best:
        best = BestEpoch(model, os.path.join(output, CHECKPOINTS, "best"), monitor="val_auc")
        fit_arguments["callbacks"] = [*fit_arguments.get("callbacks", ()), best]
    seconds = run.fit(**fit_arguments)
    record = best.restore_best() if keep_best else None
    kept = {"best_epoch": record["epoch"], "best_val_auc": record["val_auc"]} if record else {}
    epochs_done, steps_into_epoch = divmod(done, run.steps_per_epoch)
    examples_before = epochs_done * spec.splits["train"] + steps_into_epoch * settings.batch_size
    examples = spec.splits["train"] * settings.epochs - examples_before
    return run, (examples / seconds if seconds else None), kept


def _fit_and_export(
    model, spec, settings: TrainSettings, output: str, options: dict, extra: dict
) -> dict:
    model.compile(optimizer=tf.keras.optimizers.Adam(DEFAULT_LEARNING_RATE))
    model(next(iter(make_dataset(spec, "train", settings.batch_size)))[0])
    validation = make_dataset(spec, "validation", settings.batch_size)
    run, examples_per_second, kept = _fit_resumably(
        model, spec, settings, output, options, validation_data=validation
    )
    metrics = evaluate(model, spec, settings.batch_size)
    metrics["train_examples_per_second"] = examples_per_second
    metrics.update(kept)
    metrics.update(extra)
    model.network_weights().write(os.path.join(output, WEIGHTS))
    export_saved_model(model, os.path.join(output, "saved_model"), settings.serve_examples)
    # Written last: a run directory with metrics.json is complete.
    _write_json(os.path.join(output, "metrics.json"), metrics)
    run.remove()
    return metrics


def run_baseline(
    spec: FeatureSpec,
    model_name: str,
    output: str,
    dim: int = 32,
    settings: Optional[TrainSettings] = None,
) -> dict:
    """Trains the full-dimension model (every field at `dim`) and exports it.

    Writes `metrics.json`, `weights/` and `saved_model/` into `output`.

    Args:
        spec: FeatureSpec, the artifact.
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        output: str, the run directory.
        dim: int, the dimension of every field.
        settings: TrainSettings or None (the defaults).

    Returns:
        The metrics written to `metrics.json` (test AUC and logloss,
        embedding parameters, throughputs, `dim` and `model`).

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> settings = TrainSettings(epochs=1, batch_size=64)
        >>> output = os.path.join(directory, "baseline")
        >>> metrics = run_baseline(spec, "fm", output, dim=8, settings=settings)  # doctest: +SKIP
        >>> metrics["embedding_params"]  # doctest: +SKIP
        3008
    """
    settings = (settings or TrainSettings()).resolve(spec)
    _seed_everything(settings.seed)
    _io.makedirs(output)
    model = make_model(model_name, spec, stage="full", dim=dim)
    full = {"full_embedding_params": int(model.embedding_params), "dim": dim}
    options = {"command": "baseline", "model": model_name, "dim": dim}
    return _fit_and_export(model, spec, settings, output, options, {**full, "model": model_name})


class AlphaHistory(tf.keras.callbacks.Callback):
    """Records softmax(alpha) of every field every `every` steps (CSV + TensorBoard).

    Args:
        field_embeddings: the model's `FieldEmbeddings` (search stage).
        path: str, the CSV file (`step, field, candidate, probability` rows).
        log_dir: str or None, a TensorBoard log directory.
        every: int, steps between records.

    Examples:

        Given to `fit(..., callbacks=[history])`, it records at the start, every
        `every` steps and at the end of each `fit`; here the hooks are called by hand:

        >>> import pathlib, tempfile
        >>> from keras_dimsel.models.field_embeddings import FieldEmbeddings
        >>> embeddings = FieldEmbeddings({"user": 10}, stage="search", candidates=(2, 4))
        >>> _ = embeddings({"user": tf.constant([1, 2])})
        >>> path = pathlib.Path(tempfile.mkdtemp(), "alpha_history.csv")
        >>> history = AlphaHistory(embeddings, str(path), every=10)
        >>> history.on_train_begin()
        >>> history.on_train_end()
        >>> print(path.read_text().strip())
        step,field,candidate,probability
        0,user,2,0.500000
        0,user,4,0.500000
    """

    def __init__(self, field_embeddings, path: str, log_dir: Optional[str] = None, every=10):
        super().__init__()
        # The batch hook reads no logs: Keras then skips converting them to NumPy every step.
        self._supports_tf_logs = True
        self._fields = field_embeddings
        self._path = path
        self._every = every
        self._step = 0
        self._writer = tf.summary.create_file_writer(log_dir) if log_dir else None
        self.rows: list[tuple[int, str, int, float]] = []

    def _record(self) -> None:
        if self.rows and self.rows[-1][0] == self._step:
            return  # already recorded at this step (e.g. the end of an epoch)
        candidates = self._fields.candidates
        for name, probabilities in self._fields.selection_probabilities().items():
            for dim, p in zip(candidates, probabilities):
                self.rows.append((self._step, name, dim, float(p)))
                if self._writer is not None:
                    with self._writer.as_default(step=self._step):
                        tf.summary.scalar(f"alpha/{name}/{dim}", p)

    def restore(self, step: int) -> None:
        """Continues a resumed run: keeps the rows of `path` up to `step`, counts from there."""
        self._step = step
        self.rows = []
        if step and _io.exists(self._path):
            with _io.open_file(self._path) as f:
                for line in f.read().splitlines()[1:]:
                    at, name, dim, p = line.split(",")
                    if int(at) <= step:
                        self.rows.append((int(at), name, int(dim), float(p)))

    def flush(self) -> None:
        """Writes the rows recorded so far to `path`."""
        lines = ["step,field,candidate,probability"]
        lines += [f"{s},{f},{d},{p:.6f}" for s, f, d, p in self.rows]
        _io.write_text_atomically(self._path, "\n".join(lines) + "\n")
        if self._writer is not None:
            self._writer.flush()

    def on_train_begin(self, logs=None):
        if self._step == 0:
            self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self._every == 0:
            self._record()

    def on_train_end(self, logs=None):
        self._record()
        self.flush()


def run_search(
    spec: FeatureSpec,
    model_name: str,
    output: str,
    candidates: Sequence[int] = DEFAULT_CANDIDATES,
    storage: str = "shared",
    unify: str = "linear",
    arch_every: int = 10,
    pretrain_steps: Optional[int] = None,
    mode: str = "alternating",
    arch_learning_rate: Optional[float] = None,
    hard: bool = False,
    rank_scaling: bool = True,
    temperature_schedule: Optional[TemperatureSchedule] = None,
    budget: Optional[float] = None,
    derive: str = "alpha",
    tolerance: float = DEFAULT_TOLERANCE,
    settings: Optional[TrainSettings] = None,
    memory_budget: Optional[int] = None,
    learning_rate: float = DEFAULT_LEARNING_RATE,
) -> DimensionPlan:
    """Searches one dimension per field (AutoDim) and writes `plan.json`.

    `pretrain_steps=None` pre-trains the network with alpha frozen for the
    first half epoch. `arch_learning_rate=None` scales alpha's Adam step to
    the number of alpha updates the run will make: the paper's 0.001 assumes
    thousands of updates (20,000 steps per Criteo epoch); on a small data set
    the same rate would leave alpha where it started, so the rate is raised to
    `ARCH_TRAVEL / updates` (Adam moves a logit by at most about the rate per
    update), never below 0.001. `hard` samples one candidate per example with
    a straight-through gradient; `rank_scaling` is `CandidateEmbedding`'s
    correction of linear candidates; `temperature_schedule=None` is the
    paper's `TemperatureSchedule()`. `budget` (a fraction of the full
    model's embedding parameters) derives the most probable plan that fits it
    instead of the plain argmax (`DimensionPlan.within_budget`).

    `derive="alpha"` takes the argmax of alpha (the paper's Eq. 13);
    `derive="probe"` evaluates the searched model on the validation split with
    each field forced to each candidate and keeps, per field, the smallest
    candidate within `tolerance` of its best loss (`DimensionPlan.from_losses`).
    A probe compares candidates the supernet has trained equally, so with
    `derive="probe"` and `pretrain_steps=None` alpha stays at equal weights
    for the whole run (a one-shot supernet); trained alpha starves the
    candidates it turns away from, and their probe losses then say little.

    Besides `plan.json`, the run directory gets `alpha_history.csv`, the
    TensorBoard scalars in `logs/`, `search.png`, `search_metrics.json` and
    the search tables a retrain can warm start from.

    Args:
        spec: FeatureSpec, the artifact (its validation split fits alpha).
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        output: str, the run directory.
        candidates: sequence of int, the candidate dimensions d_1 < ... < d_N.
        storage: str, `"shared"` or `"separate"` candidate tables.
        unify: str, `"linear"` or `"zero_pad"`.
        arch_every: int, network steps per alpha update.
        pretrain_steps: int or None, first steps with alpha frozen (see above).
        mode: str, `"alternating"` or `"joint"` (see `AlternatingSearch`).
        arch_learning_rate: float or None, alpha's Adam rate (see above).
        hard: bool, straight-through one-hot selection.
        rank_scaling: bool, see `CandidateEmbedding`.
        temperature_schedule: TemperatureSchedule or None.
        budget: float in (0, 1] or None, see above.
        derive: str, `"alpha"` or `"probe"`.
        tolerance: float, the probe loss tolerance (`derive="probe"`).
        settings: TrainSettings or None (the defaults).
        memory_budget: int or None, bytes the supernet may take in training
            (`keras_dimsel.search.memory`); None is 80% of the physical memory.
        learning_rate: float > 0, the network's Adam rate (the paper's 0.001).

    Returns:
        The DimensionPlan written to `plan.json`.

    Raises:
        ValueError: on an unknown `derive`, an empty validation split, or a
            budget no plan can fit.
        MemoryBudgetError: when the supernet's estimated memory exceeds
            `memory_budget` (checked before anything is built).

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> settings = TrainSettings(epochs=1, batch_size=64)
        >>> output = os.path.join(directory, "search")
        >>> plan = run_search(  # doctest: +SKIP
        ...     spec, "fm", output, candidates=(2, 8), settings=settings
        ... )
        >>> DimensionPlan.load(output) == plan  # doctest: +SKIP
        True
    """
    settings = (settings or TrainSettings()).resolve(spec)
    if derive not in DERIVE_METHODS:
        raise ValueError(f"`derive` must be one of {DERIVE_METHODS}. Received: derive={derive!r}")
    if spec.splits.get("validation", 0) <= 0:
        raise ValueError(
            f"the validation split of {spec.directory} is empty: the search fits alpha on "
            "validation batches (give the preprocessing a validation ratio, e.g. --split 8:1:1)"
        )
    if budget is not None and not min(candidates) / max(candidates) <= budget <= 1:
        # Checked before the search: the smallest plan is d_1 / d_N of the full model.
        raise ValueError(
            f"no plan fits a budget of {budget:g}: with candidates {tuple(candidates)} the "
            f"smallest plan takes {min(candidates) / max(candidates):.1%} of the full model"
        )
    vocab_sizes = {field.name: field.vocab_size for field in spec.fields}
    print(
        check_search_memory(
            vocab_sizes,
            candidates,
            storage,
            default_budget() if memory_budget is None else memory_budget,
        )
    )
    _seed_everything(settings.seed)
    _io.makedirs(output)
    steps_per_epoch = settings.steps_per_epoch(spec)
    total_steps = steps_per_epoch * settings.epochs
    if pretrain_steps is None:
        # Probing needs every candidate trained: alpha stays at equal weights throughout.
        pretrain_steps = total_steps if derive == "probe" else steps_per_epoch // 2
    model = make_model(
        model_name,
        spec,
        stage="search",
        candidates=candidates,
        storage=storage,
        unify=unify,
        rank_scaling=rank_scaling,
        hard=hard,
        seed=settings.seed,
    )
    if arch_learning_rate is None:
        updates = max(1, (total_steps - pretrain_steps) // (1 if mode == "joint" else arch_every))
        arch_learning_rate = max(DEFAULT_LEARNING_RATE, ARCH_TRAVEL / updates)
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be positive. Received: {learning_rate!r}")
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        arch_optimizer=tf.keras.optimizers.Adam(arch_learning_rate),
        arch_every=arch_every,
        pretrain_steps=pretrain_steps,
        mode=mode,
        temperature_schedule=temperature_schedule,
    )
    model(next(iter(make_dataset(spec, "train", settings.batch_size)))[0])
    history = AlphaHistory(
        model.field_embeddings,
        os.path.join(output, "alpha_history.csv"),
        log_dir=os.path.join(output, "logs"),
    )
    train_epochs = settings.train_epochs(spec)

    def epoch_data(epoch: int) -> tf.data.Dataset:
        # Alpha's validation batches, in an order of their own per epoch.
        validation = make_dataset(
            spec,
            "validation",
            settings.batch_size,
            shuffle=True,
            seed=epoch_seed(settings.seed + 1, epoch),
        )
        return zip_train_validation(train_epochs(epoch), validation, arch_every)

    options = {
        "command": "search",
        "model": model_name,
        "candidates": list(candidates),
        "storage": storage,
        "unify": unify,
        "arch_every": arch_every,
        "pretrain_steps": pretrain_steps,
        "mode": mode,
        "arch_learning_rate": arch_learning_rate,
        "learning_rate": learning_rate,
        "hard": hard,
        "rank_scaling": rank_scaling,
        "temperature_schedule": _describe_schedule(model.temperature_schedule),
    }
    run, examples_per_second, _ = _fit_resumably(
        model, spec, settings, output, options, epoch_data=epoch_data, callbacks=[history]
    )
    vocab_sizes = {name: spec.field(name).vocab_size for name in model.field_names}
    alpha = model.field_embeddings.selection_probabilities()
    if derive == "probe":
        losses = probe_losses(model, make_dataset(spec, "validation", settings.batch_size))
        plan = DimensionPlan.from_losses(
            losses, tuple(candidates), vocab_sizes, tolerance, budget, alpha=alpha
        )
    else:
        plan = DimensionPlan.from_alpha(alpha, tuple(candidates), vocab_sizes, budget)
    save_search_tables(model.field_embeddings, os.path.join(output, SEARCH_TABLES))
    _write_json(
        os.path.join(output, "search_metrics.json"),
        {
            "model": model_name,
            "train_examples_per_second": examples_per_second,
            "epochs": settings.epochs,
            "batch_size": settings.batch_size,
            "pretrain_steps": pretrain_steps,
            "arch_every": arch_every,
            "arch_learning_rate": arch_learning_rate,
            "learning_rate": learning_rate,
            "storage": storage,
            "unify": unify,
            "mode": mode,
            "hard": hard,
            "rank_scaling": rank_scaling,
            "budget": budget,
            "derive": derive,
            "tolerance": tolerance if derive == "probe" else None,
            "temperature_schedule": _describe_schedule(model.temperature_schedule),
        },
    )
    plot_search(history.rows, plan, os.path.join(output, "search.png"))
    # Written last: a search directory with plan.json is complete.
    plan.save(os.path.join(output, "plan.json"))
    run.remove()
    return plan


def _describe_schedule(schedule) -> object:
    return schedule.get_config() if hasattr(schedule, "get_config") else repr(schedule)


def save_search_tables(field_embeddings, path: str) -> None:
    """Writes the search-stage embedding tables, the source of a warm start.

    Keys: `<field>` for the shared table [vocab, d_N]; `<field>@<d>` for the
    separate table of candidate d.

    Args:
        field_embeddings: a built search-stage `FieldEmbeddings`.
        path: str, the `.npz` file to write.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.models.field_embeddings import FieldEmbeddings
        >>> embeddings = FieldEmbeddings(
        ...     {"user": 10, "genre": 3}, stage="search", candidates=(2, 4)
        ... )
        >>> _ = embeddings({"user": tf.constant([1, 5]), "genre": tf.constant([0, 2])})
        >>> path = os.path.join(tempfile.mkdtemp(), SEARCH_TABLES)
        >>> save_search_tables(embeddings, path)
        >>> {name: table.shape for name, table in np.load(path).items()}
        {'user': (10, 4), 'genre': (3, 4)}
    """
    arrays = {}
    for name, layer in field_embeddings.embeddings.items():
        if layer.storage == "shared":
            arrays[name] = layer.tables[0].numpy()
        else:
            for dim, table in zip(layer.candidates, layer.tables):
                arrays[f"{name}@{dim}"] = table.numpy()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _io.write_bytes_atomically(path, buffer.getvalue())


def load_warm_start_tables(run_dir: str, plan: DimensionPlan) -> dict:
    """The table each field of `plan` starts from, read from a search run.

    Args:
        run_dir: str, a `run_search` output directory.
        plan: DimensionPlan, the dimensions to start from.

    Returns:
        dict of field to a `[vocab_size, n]` array, n >= the planned dim; give
        it to `PlannedEmbedding.warm_start_from`.

    Raises:
        FileNotFoundError: when `run_dir` holds no search tables.
        ValueError: when a field or its planned dimension has no table there.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.models.field_embeddings import FieldEmbeddings
        >>> embeddings = FieldEmbeddings(
        ...     {"user": 10, "genre": 3}, stage="search", candidates=(2, 4), storage="separate"
        ... )
        >>> _ = embeddings({"user": tf.constant([1, 5]), "genre": tf.constant([0, 2])})
        >>> run_dir = tempfile.mkdtemp()
        >>> save_search_tables(embeddings, os.path.join(run_dir, SEARCH_TABLES))
        >>> plan = DimensionPlan(
        ...     fields={"user": 4, "genre": 2},
        ...     candidates=(2, 4),
        ...     vocab_sizes={"user": 10, "genre": 3},
        ... )
        >>> tables = load_warm_start_tables(run_dir, plan)
        >>> {name: table.shape for name, table in tables.items()}  # each chosen candidate's table
        {'user': (10, 4), 'genre': (3, 2)}
    """
    path = os.path.join(run_dir, SEARCH_TABLES)
    if not _io.exists(path):
        raise FileNotFoundError(f"{path} not found: --warm-start takes a `dimsel search` run")
    with _io.open_file(path, "rb") as f:
        arrays = dict(np.load(io.BytesIO(f.read())))
    tables = {}
    for name, dim in plan.fields.items():
        table = arrays.get(name, arrays.get(f"{name}@{dim}"))
        if table is None:
            raise ValueError(
                f"the search run {run_dir} has no table for field {name!r} at dim {dim}"
            )
        if table.shape[1] < dim:
            raise ValueError(
                f"the search table of field {name!r} in {run_dir} has {table.shape[1]} "
                f"columns, fewer than the planned dim {dim}"
            )
        tables[name] = table
    return tables


def _plan_model(model_name: str, spec: FeatureSpec, plan: DimensionPlan, unify: str):
    """The retrain-stage model of a plan: one table [vocab, chosen dim] per field."""
    return make_model(
        model_name,
        spec,
        stage="plan",
        fields=plan.field_names,
        plan_dims=plan.fields,
        candidates=plan.candidates,
        unify=unify,
    )


def run_retrain(
    spec: FeatureSpec,
    plan: DimensionPlan,
    model_name: str,
    output: str,
    unify: str = "linear",
    warm_start: Optional[str] = None,
    settings: Optional[TrainSettings] = None,
) -> dict:
    """Retrains a physically smaller model with the plan's dimensions and exports it.

    `warm_start` names a search run directory: each table then starts from the
    search table of its field (the first `dim` columns of the shared table, or
    the separate table of the chosen dim) instead of a random initialisation.

    Args:
        spec: FeatureSpec, the artifact the plan was searched on.
        plan: DimensionPlan, the dimension of every field.
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        output: str, the run directory.
        unify: str, `"linear"` or `"zero_pad"` (models that need equal dimensions).
        warm_start: str or None, a `run_search` output directory.
        settings: TrainSettings or None (the defaults).

    Returns:
        The metrics written to `metrics.json`, with the plan's `fields`.

    Raises:
        ValueError: when the plan does not match the fields or vocabulary sizes of `spec`.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> settings = TrainSettings(epochs=1, batch_size=64)
        >>> search = os.path.join(directory, "search")
        >>> plan = run_search(  # doctest: +SKIP
        ...     spec, "fm", search, candidates=(2, 8), settings=settings
        ... )
        >>> output = os.path.join(directory, "autodim")
        >>> metrics = run_retrain(  # doctest: +SKIP
        ...     spec, plan, "fm", output, warm_start=search, settings=settings
        ... )
        >>> metrics["embedding_params"] == plan.embedding_params  # doctest: +SKIP
        True
    """
    settings = (settings or TrainSettings()).resolve(spec)
    plan.check_fields(spec.field_names)
    for name, vocab_size in plan.vocab_sizes.items():
        if spec.field(name).vocab_size != vocab_size:
            raise ValueError(
                f"the plan was searched on other data: field {name!r} has vocab_size "
                f"{vocab_size} in the plan and {spec.field(name).vocab_size} in {spec.directory}"
            )
    _seed_everything(settings.seed)
    _io.makedirs(output)
    model = _plan_model(model_name, spec, plan, unify)
    if warm_start:
        tables = load_warm_start_tables(warm_start, plan)
        for name, table in tables.items():
            model.field_embeddings.embeddings[name].warm_start_from(table)
    extra = {
        "model": model_name,
        "full_embedding_params": plan.full_embedding_params,
        "fields": plan.fields,
        "warm_start": warm_start,
    }
    options = {
        "command": "retrain",
        "model": model_name,
        "fields": dict(plan.fields),
        "candidates": list(plan.candidates),
        "unify": unify,
        "warm_start": warm_start,
    }
    return _fit_and_export(model, spec, settings, output, options, extra)


def comparison_report(plan: DimensionPlan, baseline: dict, autodim: dict) -> str:
    """The end of `dimsel run`: the plan per field, then both models on the test split.

    Args:
        plan: DimensionPlan, the searched plan.
        baseline: dict, the full-dimension model's metrics (`run_baseline`).
        autodim: dict, the retrained model's metrics (`run_retrain`).

    Returns:
        str, the plan's `summary_table`, a blank line, then the comparison.

    Examples:

        >>> plan = DimensionPlan(
        ...     fields={"user": 8, "genre": 2},
        ...     candidates=(2, 8),
        ...     vocab_sizes={"user": 1000, "genre": 20},
        ... )
        >>> baseline = {"auc": 0.7712, "logloss": 0.4561, "embedding_params": 8160, "dim": 8}
        >>> autodim = {"auc": 0.7705, "logloss": 0.4570, "embedding_params": 8040}
        >>> print(comparison_report(plan, baseline, autodim))
        field  vocab_size  dim  params  full_params  of_full
        ----------------------------------------------------
        user        1,000    8   8,000        8,000   100.0%
        genre          20    2      40          160    25.0%
        ----------------------------------------------------
        total       1,020        8,040        8,160    98.5%
        candidates [2, 8]; full model uses dim 8; saving 1.5% of embedding parameters
        <BLANKLINE>
        model       test AUC  logloss  embedding params  of full
        full dim 8    0.7712   0.4561             8,160   100.0%
        AutoDim       0.7705   0.4570             8,040    98.5%
        AUC difference -0.0007; 1.5% fewer embedding parameters
    """
    full_params = baseline["embedding_params"]
    rows = [
        ("model", "test AUC", "logloss", "embedding params", "of full"),
        (
            f"full dim {baseline.get('dim', plan.max_dim)}",
            f"{baseline['auc']:.4f}",
            f"{baseline['logloss']:.4f}",
            f"{full_params:,}",
            "100.0%",
        ),
        (
            "AutoDim",
            f"{autodim['auc']:.4f}",
            f"{autodim['logloss']:.4f}",
            f"{autodim['embedding_params']:,}",
            f"{autodim['embedding_params'] / full_params:.1%}",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])])
        for row in rows
    ]
    difference = autodim["auc"] - baseline["auc"]
    return "\n".join(
        [
            plan.summary_table(),
            "",
            *lines,
            f"AUC difference {difference:+.4f}; "
            f"{1 - autodim['embedding_params'] / full_params:.1%} fewer embedding parameters",
        ]
    )


def plot_search(rows, plan: DimensionPlan, path: str) -> None:
    """Alpha trajectories per field (probability of each candidate over steps).

    Args:
        rows: list of `(step, field, candidate, probability)` (`AlphaHistory.rows`).
        plan: DimensionPlan, the fields and candidates (the chosen one drawn thicker).
        path: str, the PNG file to write.

    Examples:

        >>> import tempfile
        >>> plan = DimensionPlan(fields={"user": 8}, candidates=(2, 8), vocab_sizes={"user": 1000})
        >>> rows = [  # (step, field, candidate, probability)
        ...     (0, "user", 2, 0.5), (0, "user", 8, 0.5), (10, "user", 2, 0.2), (10, "user", 8, 0.8)
        ... ]
        >>> path = os.path.join(tempfile.mkdtemp(), "search.png")
        >>> plot_search(rows, plan, path)
        >>> os.path.getsize(path) > 1000
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = plan.field_names
    columns = min(4, len(fields))
    line_count = -(-len(fields) // columns)
    figure, axes = plt.subplots(
        line_count, columns, figsize=(3.2 * columns, 2.4 * line_count), squeeze=False
    )
    for axis, name in zip(axes.flat, fields):
        for dim in plan.candidates:
            points = [(s, p) for s, f, d, p in rows if f == name and d == dim]
            if points:
                steps, values = zip(*points)
                axis.plot(steps, values, label=str(dim), lw=2 if dim == plan.fields[name] else 1)
        axis.set_title(f"{name}: dim {plan.fields[name]}", fontsize=9)
        axis.set_ylim(0, 1)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(fields) :]:
        axis.axis("off")
    axes.flat[0].legend(title="candidate", fontsize=7, title_fontsize=7)
    figure.supxlabel("training step", fontsize=9)
    figure.supylabel("softmax(alpha)", fontsize=9)
    figure.tight_layout()
    with _io.open_file(path, "wb") as f:
        figure.savefig(f, format="png", dpi=110)
    plt.close(figure)
