"""`RawExampleGen`: an ExampleGen over the library's dataset readers.

CSV files go through TFX's own `CsvExampleGen`. The other layouts (Criteo and
Avazu TSV/CSV without the TFX conventions, MovieLens' joined files) are read
by the same readers as `dimsel preprocess`, on Beam, and written as
`tf.train.Example`s; ExampleGen's driver, splitting and writing are TFX's.
Rows a reader rejects as malformed are counted in the log and left out.
"""

from __future__ import annotations

import json
import logging
from typing import Sequence

import apache_beam as beam
from tfx import v1 as tfx
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from keras_dimsel.data.datasets import make_reader
from keras_dimsel.preprocessing.outputs import encode_examples
from keras_dimsel.preprocessing.read import REJECTED_TAG, ReadRows


def _count_rejected(rejected) -> int:
    logging.warning("RawExampleGen: %d malformed rows left out", len(rejected[1]))
    return len(rejected[1])


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _ReadRawExamples(pipeline, exec_properties: dict, split_pattern: str):
    """Reads the configured dataset's files into serialized `tf.train.Example`s."""
    config = json.loads(exec_properties.get("custom_config") or "{}")
    reader = make_reader(config["dataset"], config["inputs"])
    read = pipeline | "ReadRows" >> ReadRows(reader)
    _ = read[REJECTED_TAG] | "CountRejected" >> beam.Map(_count_rejected)
    return read["rows"] | "EncodeExamples" >> beam.FlatMap(
        lambda element: encode_examples(element[1].batch)
    )


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor reading with `keras_dimsel.data` readers."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ReadRawExamples


def RawExampleGen(
    dataset: str, input_base: str, input_pattern: str, inputs: Sequence[str], output_config
) -> FileBasedExampleGen:
    """An ExampleGen reading `inputs` (files or folders under `input_base`) as `dataset`.

    Args:
        dataset: str, a `dimsel preprocess --dataset` name other than csv.
        input_base: str, the folder ExampleGen fingerprints for its cache.
        input_pattern: str, the files of `input_base` that are fingerprinted.
        inputs: list of str, what the reader reads.
        output_config: `example_gen_pb2.Output`, the splits.
    """
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=tfx.proto.Input(
            splits=[tfx.proto.Input.Split(name="all", pattern=input_pattern)]
        ),
        custom_config={"dataset": dataset, "inputs": list(inputs)},
        output_config=output_config,
        custom_executor_spec=executor_spec.BeamExecutorSpec(Executor),
    )
