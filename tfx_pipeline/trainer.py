"""The Trainer's `run_fn`: search → derive → retrain, AMTL, or the full-dimension model.

Settings arrive in `fn_args.custom_config` (see `configs.DEFAULT_TRAIN_CONFIG`):
`method` (autodim, amtl, fde), `model`, `dim`, `epochs`, `batch_size`, `seed`,
`candidates`, `derive`, `budget`, `length_penalty`, `keep_best`, `embedding_optimizer`,
and `feature_statistics`
(added by our `Trainer`). The run directory of the library's pipeline lands
in `fn_args.model_run_dir`; the exported model (serialized `tf.Example`s in,
click probability out, raw values under `serving_raw`) in
`fn_args.serving_model_dir`, and the full run, which an AMTL warm start reads,
beside it in the Model artifact.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

from keras_dimsel import amtl, pipeline
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.training import RunDir, TrainSettings
from tfx_pipeline import configs

#: the library's run directory inside the Model artifact (for warm starts)
RUN_DIR = "dimsel_run"


def choose_strategy() -> tf.distribute.Strategy:
    """The `tf.distribute` strategy for the devices present.

    Several workers in `TF_CONFIG`: `MultiWorkerMirroredStrategy`; several
    GPUs: `MirroredStrategy`; one GPU: `OneDeviceStrategy` on it; else the
    default strategy (CPU).
    """
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    gpus = tf.config.list_logical_devices("GPU")
    if workers > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
    elif gpus:
        strategy = tf.distribute.OneDeviceStrategy(gpus[0].name)
    else:
        strategy = tf.distribute.get_strategy()
    logging.info(
        "training with %s (%d GPU(s), %d worker(s))", type(strategy).__name__, len(gpus), workers
    )
    return strategy


def copy_tree(source: str, destination: str) -> None:
    """Copies a directory tree with `tf.io.gfile` (local, gs://, ...)."""
    for directory, _, files in tf.io.gfile.walk(source):
        target = os.path.join(destination, os.path.relpath(directory, source))
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(directory, name), os.path.join(target, name), True)


def train(config: dict, run_dir: str, base_run: str | None = None) -> str:
    """Runs the configured method into `run_dir`; returns the directory of its export."""
    method = config.get("method", configs.DEFAULT_METHOD)
    if method not in configs.METHODS:
        raise ValueError(f"`method` must be one of {configs.METHODS}. Received: {method!r}")
    spec = FeatureSpec.load(config["feature_statistics"])
    model = config.get("model", configs.DEFAULT_MODEL)
    settings = TrainSettings(
        epochs=config.get("epochs"),
        batch_size=config.get("batch_size"),
        seed=int(config.get("seed", 0)),
        serve_examples=True,
        keep_best=bool(config.get("keep_best", False)),
        embedding_optimizer=config.get(
            "embedding_optimizer", configs.DEFAULT_TRAIN_CONFIG["embedding_optimizer"]
        ),
    )
    candidates = tuple(config.get("candidates") or configs.DEFAULT_TRAIN_CONFIG["candidates"])
    dim = int(config.get("dim") or configs.DEFAULT_DIM)
    if method == "fde":
        pipeline.baseline(spec, model, run_dir, dim=dim, settings=settings)
        return RunDir(run_dir).saved_model
    if method == "amtl":
        pipeline.amtl(
            spec,
            model,
            run_dir,
            settings=settings,
            max_dim=dim,
            warm_start=base_run,
            length_penalty=float(config.get("length_penalty", amtl.DEFAULT_LENGTH_PENALTY)),
        )
        return RunDir(run_dir).saved_model
    search_dir = os.path.join(run_dir, "search")
    plan = pipeline.search(
        spec,
        model,
        search_dir,
        candidates=candidates,
        budget=config.get("budget"),
        derive=config.get("derive", "alpha"),
        settings=settings,
    )
    retrain_dir = os.path.join(run_dir, "retrain")
    pipeline.retrain(spec, plan, model, retrain_dir, settings=settings)
    return RunDir(retrain_dir).saved_model


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (see the module doc)."""
    config = dict(fn_args.custom_config or {})
    base_run = None
    if fn_args.base_model:
        base_run = os.path.join(os.path.dirname(fn_args.base_model.rstrip("/")), RUN_DIR)
    with choose_strategy().scope():
        exported = train(config, fn_args.model_run_dir, base_run)
    copy_tree(exported, fn_args.serving_model_dir)
    copy_tree(
        fn_args.model_run_dir, os.path.join(os.path.dirname(fn_args.serving_model_dir), RUN_DIR)
    )
