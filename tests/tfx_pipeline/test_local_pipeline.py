"""The whole pipeline on LocalDagRunner: executions, cache, the pushed model, bad data."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from keras_dimsel.export import saved_embedding_params
from tfx_pipeline import local_runner

pytestmark = pytest.mark.e2e

COMPONENTS = {
    "CsvExampleGen", "StatisticsGen", "FieldSchemaGen", "ExampleValidator",
    "FeatureStatisticsGen", "BaselineTrainer", "Trainer", "Evaluator", "Pusher",
}  # fmt: skip
# A tiny run: the test is about the wiring; blessing is checked with a wide tolerance.
SMALL = ["--rows", "3000", "--epochs", "2", "--dim", "8", "--tolerance", "1.0", "--keep-best"]


def _executions_by_component(output: str) -> dict:
    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        os.path.join(output, "metadata.sqlite")
    )
    store = metadata_store.MetadataStore(config)
    states = {}
    for context in store.get_contexts_by_type("node"):
        name = context.name.split(".")[-1]
        executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
        states[name] = [e.last_known_state for e in executions]
    return states


def _examples(rows: list) -> list:
    serialized = []
    for row in rows:
        feature = {
            name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
            if isinstance(value, str)
            else tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
            for name, value in row.items()
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        serialized.append(example.SerializeToString())
    return serialized


def test_pipeline_runs_caches_and_pushes_a_compact_model(tmp_path):
    output = str(tmp_path / "run")
    argv = ["--dataset", "synthetic", "--output", output, "--method", "autodim", *SMALL]
    assert local_runner.main(argv) == 0
    first = _executions_by_component(output)
    assert set(first) == COMPONENTS
    complete = metadata_store_pb2.Execution.COMPLETE
    assert all(states == [complete] for states in first.values()), first
    # --keep-best reaches the trainers: the baseline and the retrain keep their best epoch.
    kept = [
        json.load(open(os.path.join(root, "metrics.json")))
        for root, _, files in os.walk(os.path.join(output, "pipeline_root"))
        if "metrics.json" in files
    ]
    assert len(kept) >= 2 and all(m["best_epoch"] in (1, 2) for m in kept), kept

    assert local_runner.main(argv) == 0
    second = _executions_by_component(output)
    cached = metadata_store_pb2.Execution.CACHED
    assert all(states == [complete, cached] for states in second.values()), second

    versions = tf.io.gfile.listdir(os.path.join(output, "serving"))
    assert len(versions) == 1
    pushed = os.path.join(output, "serving", versions[0].rstrip("/"))
    model = tf.saved_model.load(pushed)
    rows = [
        {"user": "u1", "item": "i2", "category": "c3", "device": "d1", "noise_high": "h5",
         "noise_mid": "m7", "noise_low": "l2", "price": 120.0},
        {"user": "never-seen", "item": "", "category": "c1", "device": "d0",
         "noise_high": "h1", "noise_mid": "m1", "noise_low": "l1", "price": 3.5},
    ]  # fmt: skip
    from_examples = model.signatures["serving_default"](examples=tf.constant(_examples(rows)))
    raw = {
        name: tf.constant([row[name] for row in rows], tf.string if name != "price" else tf.float32)
        for name in rows[0]
    }
    from_raw = model.signatures["serving_raw"](**raw)
    probability = from_examples["probability"].numpy()
    assert probability.shape == (2,) and np.all((probability > 0) & (probability < 1))
    np.testing.assert_allclose(probability, from_raw["probability"].numpy(), rtol=1e-6)
    assets = tf.io.gfile.listdir(os.path.join(pushed, "assets"))
    assert {"user.txt", "item.txt", "price.txt"} <= set(assets)

    baseline_models = os.path.join(output, "pipeline_root", "BaselineTrainer", "model")
    (baseline_run,) = tf.io.gfile.listdir(baseline_models)
    baseline = os.path.join(baseline_models, baseline_run.rstrip("/"), "Format-Serving")
    assert saved_embedding_params(pushed) < saved_embedding_params(baseline)


def _write_csv(path, header: str, rows: list) -> str:
    with open(path, "w") as f:
        f.write(header + "\n")
        f.writelines(row + "\n" for row in rows)
    return str(path)


def _clean_rows(count: int = 400) -> list:
    rng = np.random.default_rng(0)
    return [
        f"{int(rng.integers(0, 2))},u{int(rng.integers(0, 50))},{rng.uniform(1, 100):.2f}"
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    "header, rows, named",
    [
        ("clicked,user", [row.rsplit(",", 1)[0] for row in _clean_rows()], "price"),
        ("clicked,user,price", _clean_rows() + ["1,u3,cheap"], "price"),
    ],
    ids=["missing_column", "string_in_numeric_column"],
)
def test_bad_csv_stops_at_validation_and_pushes_nothing(tmp_path, capsys, header, rows, named):
    data = _write_csv(tmp_path / "clicks.csv", header, rows)
    output = str(tmp_path / "run")
    argv = [
        "--dataset", "csv", "--input", data, "--label", "clicked", "--categorical", "user",
        "--numeric", "price", "--output", output, "--epochs", "1",
    ]  # fmt: skip
    assert local_runner.main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: the data does not follow the schema") and named in error
    states = _executions_by_component(output)
    assert "Trainer" not in states and "BaselineTrainer" not in states
    assert not os.path.exists(os.path.join(output, "serving"))
