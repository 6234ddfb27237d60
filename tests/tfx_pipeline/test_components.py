"""The pipeline's own pieces, without running a pipeline: schema, layout, compile."""

import json

import numpy as np
import pyarrow as pa
import pytest
from tensorflow_metadata.proto.v0 import schema_pb2

from keras_dimsel.data.reader import FieldDef
from tfx_pipeline import kubeflow_runner
from tfx_pipeline.feature_statistics import reader_batch
from tfx_pipeline.field_schema import field_schema

FIELDS = [
    {"name": "user", "kind": "categorical", "transform": None},
    {"name": "site", "kind": "categorical", "transform": None},
    {"name": "price", "kind": "numeric", "transform": "quantiles"},
    {"name": "age", "kind": "numeric", "transform": "quantiles"},
]


def _feature(schema, name):
    return next(f for f in schema.feature if f.name == name)


def test_field_schema_declares_every_column_and_keeps_numbers_numeric():
    observed = {
        "clicked": schema_pb2.INT,
        "user": schema_pb2.INT,  # integer ids: kept as INT, read as tokens
        "site": schema_pb2.FLOAT,  # floats are no categorical tokens
        "price": schema_pb2.BYTES,  # text in a numeric column
        "age": schema_pb2.INT,
    }
    schema = field_schema("clicked", FIELDS, observed)
    assert [f.name for f in schema.feature] == ["clicked", "user", "site", "price", "age"]
    assert all(f.presence.min_count == 1 for f in schema.feature)
    label = _feature(schema, "clicked")
    assert label.type == schema_pb2.INT and (label.int_domain.min, label.int_domain.max) == (0, 1)
    assert _feature(schema, "user").type == schema_pb2.INT
    assert _feature(schema, "site").type == schema_pb2.BYTES
    assert _feature(schema, "price").type == schema_pb2.FLOAT
    assert _feature(schema, "age").type == schema_pb2.INT


def test_a_missing_column_is_still_declared():
    schema = field_schema("clicked", FIELDS, {"clicked": schema_pb2.FLOAT})
    assert _feature(schema, "clicked").type == schema_pb2.FLOAT
    assert _feature(schema, "price").type == schema_pb2.FLOAT
    assert _feature(schema, "user").type == schema_pb2.BYTES


def test_reader_batch_takes_the_first_value_and_the_reader_types():
    offsets = pa.array([0, 1, 1, 2], pa.int32())
    batch = pa.RecordBatch.from_arrays(
        [
            pa.ListArray.from_arrays(offsets, pa.array([1, 0], pa.int64())),
            pa.ListArray.from_arrays(offsets, pa.array([17, 4], pa.int64())),
            pa.ListArray.from_arrays(offsets, pa.array([b"a", b"b"])),
            pa.ListArray.from_arrays(offsets, pa.array([2.5, 3.0], pa.float32())),
        ],
        names=["clicked", "user", "site", "price"],
    )
    fields = [FieldDef(f["name"], f["kind"], f["transform"]) for f in FIELDS]
    flat = reader_batch(batch, "clicked", fields)
    assert flat.schema.names == ["clicked", "user", "site", "price", "age"]
    assert flat.column(0).to_pylist()[::2] == [1.0, 0.0] and flat.column(0)[1].as_py() is None
    assert flat.column(1).to_pylist() == ["17", None, "4"]
    assert flat.column(2).to_pylist() == ["a", None, "b"]
    np.testing.assert_allclose(flat.column(3).to_numpy(zero_copy_only=False), [2.5, np.nan, 3.0])
    assert flat.column(4).null_count == 3  # the absent column: all missing
    assert flat.schema.field("user").type == pa.string()
    assert flat.schema.field("price").type == pa.float32()


@pytest.mark.parametrize("method", ["autodim", "amtl"])
def test_pipeline_compiles_for_kubeflow_v2_with_our_components(tmp_path, method):
    output = str(tmp_path / "pipeline.json")
    argv = ["--output", output, "--method", method, "--dataset", "criteo"]
    assert kubeflow_runner.main(argv) == 0
    with open(output) as f:
        compiled = json.load(f)
    spec = compiled["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {
        "FileBasedExampleGen", "StatisticsGen", "FieldSchemaGen", "ExampleValidator",
        "FeatureStatisticsGen", "BaselineTrainer", "Trainer", "Evaluator", "Pusher",
    }  # fmt: skip
    text = json.dumps(spec)
    for executor in (
        "tfx_pipeline.example_gen.Executor",
        "tfx_pipeline.trainer_component.Executor",
        "tfx_pipeline.feature_statistics",
        "tfx_pipeline.field_schema",
    ):
        assert executor in text
    assert "tfx_pipeline.trainer.run_fn" in text
    assert ("BaselineTrainer" in json.dumps(tasks["Trainer"])) == (method == "amtl")


def test_frappe_pipeline_compiles_with_the_readers_ten_fields(tmp_path):
    from keras_dimsel.data import frappe

    output = str(tmp_path / "pipeline.json")
    argv = ["--output", output, "--dataset", "frappe", "--input", "gs://b/frappe/train.libfm"]
    assert kubeflow_runner.main(argv) == 0
    label, fields = kubeflow_runner.declared_fields("frappe", "ignored", [], [])
    assert label == "label" and [f["name"] for f in fields] == list(frappe.FIELDS)
    with open(output) as f:
        text = f.read()
    assert all(f'\\"{name}\\"' in text for name in frappe.FIELDS)
    assert "frappe" in text
