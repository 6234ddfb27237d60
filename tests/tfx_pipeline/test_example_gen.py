"""`RawExampleGen`'s read transform on the real public samples (DirectRunner)."""

import json

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing.util import assert_that

from keras_dimsel.data.datasets import make_reader
from tfx_pipeline.example_gen import _ReadRawExamples

CASES = [
    ("criteo", "criteo/criteo_sample.txt"),
    ("avazu", "avazu/avazu_sample.txt"),
    ("movielens-100k", "ml-100k"),
]


def _check_examples(expected_rows: int, fields: list, label: str):
    def check(serialized):
        assert len(serialized) == expected_rows
        for record in serialized[:20]:
            features = tf.train.Example.FromString(record).features.feature
            assert set(features) == {*fields, label}
            assert features[label].float_list.value[0] in (0.0, 1.0)

    return check


@pytest.mark.parametrize("dataset,path", CASES, ids=[case[0] for case in CASES])
def test_reads_every_row_of_a_real_sample_as_one_example(dataset, path, shared_data):
    inputs = [str(shared_data / path)]
    reader = make_reader(dataset, inputs)
    rows = 0
    for path, has_header in reader.data_files():
        with open(path, "rb") as f:
            lines = f.read().split(b"\n", 1)[1] if has_header else f.read()
        rows += reader.parse(lines, path).batch.num_rows
    assert rows > 0
    properties = {"custom_config": json.dumps({"dataset": dataset, "inputs": inputs})}
    with beam.Pipeline() as pipeline:
        examples = pipeline | _ReadRawExamples(properties, split_pattern="*")
        assert_that(
            examples,
            _check_examples(rows, [field.name for field in reader.fields], reader.label),
        )
