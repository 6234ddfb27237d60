"""`FeatureStatisticsGen`: the Beam job's feature statistics, on ExampleGen's splits.

The component runs the same `ComputeFeatureStatistics` PTransform as
`dimsel preprocess` (frequencies, vocabularies, quantile boundaries) over the
train split of ExampleGen, and writes a feature statistics artifact that the
library reads like any other (`FeatureSpec.load(uri)`): `feature_spec.json`
plus `vocab/`, with the splits pointing at ExampleGen's files. It first reads
ExampleValidator's anomalies and stops the run, naming them, when the data
broke the schema, so nothing is trained on bad data.
"""

import json
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact, standard_artifact_utils
from tfx.utils import io_utils
from tfx_bsl.public import tfxio

from keras_dimsel.data.reader import DataError, FieldDef
from keras_dimsel.preprocessing.pipeline import (
    ComputeFeatureStatistics,
    PreprocessConfig,
    make_feature_spec,
    write_feature_spec,
)
from keras_dimsel.preprocessing.statistics import VOCAB_DIR
from tfx_pipeline import configs
from tfx_pipeline.field_schema import SCHEMA_FILE, VALUE_TYPES, read_statistics

_ANOMALIES_FILE = "SchemaDiff.pb"
_BATCH_SIZE = 8192


class FeatureStatistics(artifact.Artifact):
    """A feature statistics artifact: `feature_spec.json` and `vocab/`."""

    TYPE_NAME = "keras_dimsel.FeatureStatistics"


def anomaly_messages(uri: str, split_names: str) -> list:
    """One line per anomaly ExampleValidator found, `split: feature: description`."""
    messages = []
    for split in standard_artifact_utils.decode_split_names(split_names):
        path = os.path.join(uri, f"Split-{split}", _ANOMALIES_FILE)
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(io_utils.read_bytes_file(path))
        for feature, info in sorted(anomalies.anomaly_info.items()):
            messages.append(f"{split}: {feature}: {info.description or info.short_description}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            messages.append(f"{split}: (dataset): {info.description or info.short_description}")
    return messages


def _first_values(column: pa.Array) -> pa.Array:
    """A list column to its first value per row (null for an empty or null list)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column.values) == 0:
        return pa.nulls(len(column), column.type.value_type)
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    starts = column.offsets.to_numpy()[:-1]
    present = lengths > 0
    taken = column.values.take(pa.array(np.where(present, starts, 0)))
    return pc.if_else(pa.array(present), taken, pa.scalar(None, taken.type))


def reader_batch(batch: pa.RecordBatch, label: str, fields) -> pa.RecordBatch:
    """tf.Example record batches (list columns) to the reader layout of the Beam job:
    the label and numeric fields as float32, categorical fields as strings."""
    names = batch.schema.names
    columns, schema = [], []
    for name, kind in [(label, "numeric")] + [(f.name, f.kind) for f in fields]:
        if name in names:
            values = _first_values(batch.column(names.index(name)))
        else:
            values = pa.nulls(batch.num_rows)
        target = pa.string() if kind == "categorical" else pa.float32()
        if kind == "categorical" and pa.types.is_binary(values.type):
            values = values.cast(pa.string())
        columns.append(values.cast(target))
        schema.append(pa.field(name, target))
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(schema))


def _write_spec(_, label, fields, dataset, config, vocab, boundaries, extra):
    spec = make_feature_spec(label, fields, dataset, config, vocab, boundaries, **extra)
    return write_feature_spec(spec, config.output_dir)


@tfx.dsl.components.component(use_beam=True)
def FeatureStatisticsGen(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    feature_statistics: tfx.dsl.components.OutputArtifact[FeatureStatistics],
    dataset: tfx.dsl.components.Parameter[str],
    label: tfx.dsl.components.Parameter[str],
    fields: tfx.dsl.components.Parameter[str],
    min_count: tfx.dsl.components.Parameter[int] = configs.MIN_COUNT,
    num_buckets: tfx.dsl.components.Parameter[int] = configs.NUM_BUCKETS,
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
):
    """Counts the train split's values into vocabularies and buckets.

    Args:
        examples: ExampleGen's splits (`train`, `eval`, `test`).
        statistics: StatisticsGen's output (the number of examples per split).
        schema: the declared schema (which columns hold integers).
        anomalies: ExampleValidator's output; any anomaly stops the run here.
        feature_statistics: the output artifact.
        dataset: the dataset's name, recorded in the spec.
        label: the label column.
        fields: JSON list of `{"name", "kind", "transform"}` in model input order.
        min_count: values seen fewer times in train map to the OOV id.
        num_buckets: buckets of the `quantiles` numeric fields.

    Raises:
        DataError: naming every anomaly, when ExampleValidator found any.
    """
    problems = anomaly_messages(anomalies.uri, anomalies.split_names)
    if problems:
        raise DataError(
            f"the data does not follow the schema ({len(problems)} anomalies): "
            + "; ".join(problems)
        )
    field_defs = [FieldDef(f["name"], f["kind"], f.get("transform")) for f in json.loads(fields)]
    declared = io_utils.SchemaReader().read(os.path.join(schema.uri, SCHEMA_FILE))
    defaults = {f.name: "bytes" if f.kind == "categorical" else "float" for f in field_defs}
    defaults[label] = "float"
    value_types = {
        feature.name: VALUE_TYPES[feature.type]
        for feature in declared.feature
        if VALUE_TYPES[feature.type] != defaults.get(feature.name)
    }
    splits = {}
    for split, name in configs.SPLIT_NAMES.items():
        counted = read_statistics(statistics.uri, name)
        splits[split] = int(counted.datasets[0].num_examples) if counted.datasets else 0
    patterns = {
        split: os.path.join(examples.uri, f"Split-{name}", "*")
        for split, name in configs.SPLIT_NAMES.items()
    }
    output = feature_statistics.uri
    config = PreprocessConfig(output_dir=output, min_count=min_count, num_buckets=num_buckets)
    tf.io.gfile.makedirs(os.path.join(output, VOCAB_DIR))
    source = tfxio.TFExampleRecord(
        file_pattern=patterns["train"],
        schema=declared,
        telemetry_descriptors=["keras_dimsel", "FeatureStatisticsGen"],
    )
    extra = {"splits": splits, "split_patterns": patterns, "value_types": value_types}
    with beam_pipeline as pipeline:
        train = (
            pipeline
            | "ReadTrain" >> source.BeamSource(batch_size=_BATCH_SIZE)
            | "ToReaderLayout"
            >> beam.Map(lambda batch: ("train", 0, reader_batch(batch, label, field_defs)))
        )
        computed = train | "ComputeFeatureStatistics" >> ComputeFeatureStatistics(
            field_defs, config
        )
        _ = (
            pipeline
            | "Start" >> beam.Create([None])
            | "WriteFeatureSpec"
            >> beam.Map(
                _write_spec,
                label,
                field_defs,
                dataset,
                config,
                vocab=beam.pvalue.AsDict(computed["vocab"]),
                boundaries=beam.pvalue.AsDict(computed["boundaries"]),
                extra=extra,
            )
        )
