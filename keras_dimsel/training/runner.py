"""The resumable runner: fit over a run's epochs from its checkpoints, evaluate, export.

`train_and_export` is what every run that trains a final model does (the
baseline, a retrain after a search, and, with its own export, AMTL): compile,
build from the artifact, fit resumably, evaluate on the test split, write the
weights, the SavedModel and, last, `metrics.json`.
"""

from __future__ import annotations

import os
import time
from typing import Optional

from keras_dimsel._compat import exempt_keras_from_autograph
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import export_saved_model
from keras_dimsel.training.checkpointing import CHECKPOINTS, BestEpoch, ResumableFit
from keras_dimsel.training.memory import describe_training_memory, model_training_memory
from keras_dimsel.training.run_dir import RUN_RECORD, RunDir
from keras_dimsel.training.settings import TrainSettings, data_record
from keras_dimsel.training.tensorboard import LOGS, TrainingLogs


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
        >>> from keras_dimsel.models import full_model
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = full_model("fm", spec, dim=4, fields=["user", "device"])
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


def fit_resumably(
    model,
    spec,
    settings: TrainSettings,
    output: str,
    options: dict,
    extra_memory: int = 0,
    log_extra=None,
    **fit_arguments,
) -> tuple[ResumableFit, Optional[float], dict]:
    """Trains a compiled, built model over the run's epochs, resuming from its checkpoints.

    With `settings.keep_best` and `validation_data`, the model ends with the
    weights of its epoch of best validation AUC (`BestEpoch`, kept beside the
    checkpoints so a restarted run still knows it). Before training it prints
    (unless `verbose=0`) and records the estimate of the training's memory
    (`keras_dimsel.training.memory`).

    Args:
        model: a compiled Keras model, built on a batch.
        spec: FeatureSpec, the artifact.
        settings: TrainSettings, resolved.
        output: str, the run directory (checkpoints in `output/checkpoints`).
        options: dict, the run's options (a restart must give the same).
        extra_memory: int, bytes the run holds beside the model after
            training (AMTL: its compact copy), for the memory estimate.
        log_extra: callable or None, `log_extra(step)` writes a method's own
            TensorBoard summaries at each epoch end (`TrainingLogs`, in
            `output/logs`, where the run's metrics and learning rates go).
        **fit_arguments: `epoch_data` (default: the shuffled train split),
            `validation_data`, `callbacks`, `verbose` of `ResumableFit.fit`.

    Examples:

        >>> import tempfile
        >>> import tensorflow as tf
        >>> spec = FeatureSpec(label="label", fields=(), splits={"train": 40, "test": 8})
        >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> _ = model(tf.zeros([1, 2]))
        >>> def epoch_data(epoch):
        ...     x = tf.random.stateless_normal([40, 2], seed=[epoch, 0])
        ...     return tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8)
        >>> settings = TrainSettings(epochs=2, batch_size=8).resolve(spec)
        >>> run, examples_per_second, kept = fit_resumably(
        ...     model, spec, settings, tempfile.mkdtemp(), {"lr": 0.001},
        ...     epoch_data=epoch_data, verbose=0,
        ... )
        >>> run.steps_done, sorted(kept)
        (10, ['trainable_numbers', 'training_memory_estimate_bytes'])

    Returns:
        `(run, examples_per_second, kept)`: the `ResumableFit` (call `remove()`
        once the results are written), the training throughput of the steps
        this call ran (None when the run had no steps left), and entries for
        the metrics: `training_memory_estimate_bytes` and `trainable_numbers`,
        and `best_epoch` and `best_val_auc` when the best epoch was kept.
    """
    exempt_keras_from_autograph()
    ids = sum(field.vocab_size for field in spec.fields)
    estimate, numbers = model_training_memory(
        model, ids, settings.embedding_optimizer, extra_memory
    )
    log_dir = os.path.join(output, LOGS)
    if fit_arguments.get("verbose", 1):
        print(describe_training_memory(estimate, numbers, settings.embedding_optimizer))
        print(f"TensorBoard logs: {log_dir} (tensorboard --logdir {log_dir})")
    fit_arguments["callbacks"] = [
        *fit_arguments.get("callbacks", ()),
        TrainingLogs(log_dir, extra=log_extra),
    ]
    keep_best = settings.keep_best and fit_arguments.get("validation_data") is not None
    run = ResumableFit(
        model,
        output,
        {**options, **settings.record(), "data": data_record(spec)},
        settings.steps_per_epoch(spec),
        settings.epochs,
        every=settings.checkpoint_every,
        batch_size=settings.batch_size,
    )
    done = run.restore()
    fit_arguments.setdefault("epoch_data", settings.train_epochs(spec))
    if keep_best:
        best = BestEpoch(model, os.path.join(output, CHECKPOINTS, "best"), monitor="val_auc")
        fit_arguments["callbacks"] = [*fit_arguments.get("callbacks", ()), best]
    seconds = run.fit(**fit_arguments)
    record = best.restore_best() if keep_best else None
    kept = {"training_memory_estimate_bytes": estimate, "trainable_numbers": numbers}
    if record:
        kept.update(best_epoch=record["epoch"], best_val_auc=record["val_auc"])
    epochs_done, steps_into_epoch = divmod(done, run.steps_per_epoch)
    examples_before = epochs_done * spec.splits["train"] + steps_into_epoch * settings.batch_size
    examples = spec.splits["train"] * settings.epochs - examples_before
    return run, (examples / seconds if seconds else None), kept


def train_and_export(
    model, spec: FeatureSpec, settings: TrainSettings, output: str, options: dict, extra: dict
) -> dict:
    """Trains a built model resumably, evaluates it, writes weights, SavedModel and metrics.

    Args:
        model: a `CTRModel`, not compiled (`settings.optimizer()`); it is
            built from the artifact after `compile` unless it is built already.
        spec: FeatureSpec, the artifact.
        settings: TrainSettings, resolved.
        output: str, the run directory.
        options: dict, what defines the run (a restart must give the same).
        extra: dict, more entries for `metrics.json`.

    Returns:
        The metrics written to `metrics.json`.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.models import full_model
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> spec = run(make_reader("synthetic", output_dir=directory, rows=200),
        ...            PreprocessConfig(output_dir=directory))
        >>> settings = TrainSettings(epochs=1, batch_size=64, seed=0).resolve(spec)
        >>> output = os.path.join(directory, "run")
        >>> metrics = train_and_export(
        ...     full_model("fm", spec, dim=2), spec, settings, output, {"dim": 2}, {"dim": 2}
        ... )
        training: about ... of memory (...)
        epoch 1/1 - ...
        >>> RunDir(output).read_metrics() == metrics, metrics["dim"]
        (True, 2)
        >>> sorted(os.listdir(output))
        ['logs', 'metrics.json', 'run.json', 'saved_model', 'weights']
    """
    model.compile(optimizer=settings.optimizer())
    if not model.built:
        model.build_weights()
    validation = make_dataset(spec, "validation", settings.batch_size)
    run, examples_per_second, kept = fit_resumably(
        model, spec, settings, output, options, validation_data=validation
    )
    metrics = evaluate(model, spec, settings.batch_size)
    metrics["train_examples_per_second"] = examples_per_second
    metrics.update(kept)
    metrics.update(extra)
    run_dir = RunDir(output)
    run_dir.write_json(RUN_RECORD, run.options)
    model.network_weights().write(run_dir.weights)
    export_saved_model(model, run_dir.saved_model, settings.serve_examples)
    run_dir.write_metrics(metrics)  # last: a run directory with metrics.json is complete
    run.remove()
    return metrics
