"""Trains a library model under `tf.distribute.ParameterServerStrategy` on a localhost cluster.

Run as `python -m tests.training.parameter_server_job ARTIFACT OUTPUT`, in a
process of its own: connecting to a cluster changes the process's eager
context for good. The cluster (two workers, two parameter servers) runs
in-process, as `tf.distribute.Server`s on free localhost ports; the tables are
split over both parameter servers (`MinSizePartitioner`). For each stage in
turn, on the one cluster, the job builds the stage's model (`baseline`:
`full_model`; `retrain`: `planned_model` of a fixed plan) under the strategy
and trains it with `model.fit` for two epochs
with the default embedding optimizer (at rate 0.01: there are few steps). It
writes the weights, reads them into the same model built without the
strategy and exports that one to `OUTPUT/<stage>`. It prints one JSON line,
per stage: the shards of each table, the loss of each epoch, the test AUC
computed on the coordinator and the served probabilities of a few test rows
beside the trained model's.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_dimsel.autodim.model import planned_model  # noqa: E402
from keras_dimsel.autodim.plan import DimensionPlan  # noqa: E402
from keras_dimsel.data.feature_spec import FeatureSpec  # noqa: E402
from keras_dimsel.data.input_fn import make_dataset  # noqa: E402
from keras_dimsel.export import export_saved_model  # noqa: E402
from keras_dimsel.models import full_model, vocab_sizes  # noqa: E402
from keras_dimsel.training.optimizers import network_optimizer  # noqa: E402

BATCH = 256


def free_ports(count: int) -> list:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def localhost_strategy(workers: int = 2, parameter_servers: int = 2):
    """A `ParameterServerStrategy` over `tf.distribute.Server`s in this process."""
    ports = free_ports(workers + parameter_servers)
    cluster = tf.train.ClusterSpec(
        {
            "worker": [f"localhost:{port}" for port in ports[:workers]],
            "ps": [f"localhost:{port}" for port in ports[workers:]],
        }
    )
    # The servers share this process's thread pool: with fewer inter-op threads than
    # workers + 1, a worker's step and the coordinator wait for each other for ever.
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=workers + 1)
    servers = [
        tf.distribute.Server(cluster, job, index, protocol="grpc", config=config)
        for job, count in (("worker", workers), ("ps", parameter_servers))
        for index in range(count)
    ]
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(cluster, rpc_layer="grpc")
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=256, max_shards=parameter_servers
    )
    strategy = tf.distribute.ParameterServerStrategy(resolver, variable_partitioner=partitioner)
    return strategy, servers


def stage_model(stage: str, spec: FeatureSpec):
    if stage == "baseline":
        return full_model("deepfm", spec, dim=8)
    sizes = vocab_sizes(spec)
    dims = {name: (8 if size > 50 else 2) for name, size in sizes.items()}
    plan = DimensionPlan(fields=dims, candidates=(2, 8), vocab_sizes=sizes)
    return planned_model("deepfm", spec, plan)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels == 1
    count = positives.sum()
    return float((ranks[positives].sum() - count * (count + 1) / 2) / (count * (~positives).sum()))


STAGES = ("baseline", "retrain")


def main(artifact: str, output: str) -> dict:
    spec = FeatureSpec.load(artifact)
    strategy, _servers = localhost_strategy()
    return {
        stage: train_and_export(strategy, spec, stage, os.path.join(output, stage))
        for stage in STAGES
    }


def train_and_export(strategy, spec: FeatureSpec, stage: str, directory: str) -> dict:
    """One stage's model trained under `strategy`, exported from a single-machine copy."""
    os.makedirs(directory, exist_ok=True)
    export = os.path.join(directory, "saved_model")
    with strategy.scope():
        model = stage_model(stage, spec)
        model.build_weights()
        model.compile(optimizer=network_optimizer(learning_rate=0.01))
    tables = {
        name: len(getattr(layer.embedding_table, "variables", [layer.embedding_table]))
        for name, layer in model.field_embeddings.embeddings.items()
    }
    steps = spec.splits["train"] // BATCH

    def dataset_fn(context):
        return make_dataset(spec, "train", BATCH, shuffle=True, repeat=True, seed=0)

    history = model.fit(
        tf.keras.utils.experimental.DatasetCreator(dataset_fn),
        epochs=2,
        steps_per_epoch=steps,
        verbose=0,
    )
    labels, scores = [], []
    for features, label in make_dataset(spec, "test", BATCH):
        scores.append(model(features, training=False).numpy())
        labels.append(label.numpy())
    labels, scores = np.concatenate(labels), np.concatenate(scores)
    # The serving model is a single-machine one: the weights, written from the
    # shards (as every run writes them), are read into the model built without
    # the strategy, which is exported.
    weights = os.path.join(directory, "weights")
    model.network_weights().write(weights)
    local = stage_model(stage, spec)
    local.build_weights()
    local.network_weights().read(weights).assert_existing_objects_matched()
    export_saved_model(local, export)
    features, _ = next(iter(make_dataset(spec, "test", 8)))
    served = tf.saved_model.load(export).signatures["serving_default"](**features)
    return {
        "table_shards": tables,
        "losses": [float(loss) for loss in history.history["loss"]],
        "test_auc": auc(labels, scores),
        "served": served["probability"].numpy().tolist(),
        "model": model(features, training=False).numpy().tolist(),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3])))
