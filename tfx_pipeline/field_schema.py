"""`FieldSchemaGen`: the schema the data must follow, from the declared fields.

TFX's SchemaGen infers a schema from the data itself, so it accepts whatever
the data holds: a column that is missing is simply not in the schema, and a
numeric column with a stray string becomes a string column. Ours is written
from the fields the dataset declares (the reader's label and fields), so that
ExampleValidator names those problems as anomalies:

- every declared column must be present (`presence.min_count = 1`): a missing
  column is reported as such;
- a numeric field must hold numbers (INT or FLOAT, whichever the column holds):
  text in it is a type anomaly;
- a categorical field holds text or integer ids (a float column is an anomaly:
  its tokens would not match the vocabulary);
- the label must be a number in [0, 1].
"""

import json
import os

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx import v1 as tfx
from tfx.utils import io_utils

from keras_dimsel.data.reader import FieldDef

SCHEMA_FILE = "schema.pbtxt"
_STATS_FILE = "FeatureStats.pb"
_STATS_TYPES = {
    statistics_pb2.FeatureNameStatistics.INT: schema_pb2.INT,
    statistics_pb2.FeatureNameStatistics.FLOAT: schema_pb2.FLOAT,
    statistics_pb2.FeatureNameStatistics.STRING: schema_pb2.BYTES,
    statistics_pb2.FeatureNameStatistics.BYTES: schema_pb2.BYTES,
}
#: schema type to `FeatureSpec.value_types`
VALUE_TYPES = {schema_pb2.INT: "int", schema_pb2.FLOAT: "float", schema_pb2.BYTES: "bytes"}


def csv_fields(categorical, numeric) -> list:
    """The `FieldDef`s of a CSV's declared columns (numeric ones bucketed by quantiles)."""
    return [FieldDef(name, "categorical") for name in categorical] + [
        FieldDef(name, "numeric", "quantiles") for name in numeric
    ]


def field_dicts(fields) -> list:
    """`FieldDef`s as the `{"name", "kind", "transform"}` dicts the components take."""
    return [{"name": f.name, "kind": f.kind, "transform": f.transform} for f in fields]


def observed_types(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> dict:
    """The schema type of each feature as the statistics saw it."""
    types = {}
    for dataset in statistics.datasets:
        for feature in dataset.features:
            name = feature.path.step[0] if feature.path.step else feature.name
            types[name] = _STATS_TYPES.get(feature.type, schema_pb2.BYTES)
    return types


def field_schema(label: str, fields: list, observed: dict) -> schema_pb2.Schema:
    """The schema of the declared `fields` (dicts with name and kind) and `label`.

    Args:
        label: str, the label column.
        fields: list of dict, each with `name` and `kind` (categorical / numeric).
        observed: dict of column to the schema type the data shows (absent
            when the column is missing).
    """
    schema = schema_pb2.Schema()
    label_feature = schema.feature.add(name=label)
    label_feature.presence.min_count = 1
    label_feature.presence.min_fraction = 1.0
    if observed.get(label) == schema_pb2.INT:
        label_feature.type = schema_pb2.INT
        label_feature.int_domain.min, label_feature.int_domain.max = 0, 1
    else:
        label_feature.type = schema_pb2.FLOAT
        label_feature.float_domain.min, label_feature.float_domain.max = 0.0, 1.0
    for field in fields:
        feature = schema.feature.add(name=field["name"])
        feature.presence.min_count = 1
        seen = observed.get(field["name"])
        if field["kind"] == "numeric":
            feature.type = seen if seen in (schema_pb2.INT, schema_pb2.FLOAT) else schema_pb2.FLOAT
        else:
            feature.type = schema_pb2.INT if seen == schema_pb2.INT else schema_pb2.BYTES
    return schema


def read_statistics(uri: str, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """The statistics StatisticsGen wrote for one split (`URI/Split-<split>/`)."""
    path = os.path.join(uri, f"Split-{split}", _STATS_FILE)
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    statistics.ParseFromString(io_utils.read_bytes_file(path))
    return statistics


@tfx.dsl.components.component
def FieldSchemaGen(
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    label: tfx.dsl.components.Parameter[str],
    fields: tfx.dsl.components.Parameter[str],
):
    """Writes the declared schema (see the module doc) as `schema.pbtxt`.

    Args:
        statistics: StatisticsGen's output; its train split tells INT from
            FLOAT columns.
        schema: the output Schema artifact.
        label: the label column.
        fields: JSON list of `{"name", "kind", "transform"}` in model input order.
    """
    observed = observed_types(read_statistics(statistics.uri, "train"))
    declared = field_schema(label, json.loads(fields), observed)
    io_utils.write_pbtxt_file(os.path.join(schema.uri, SCHEMA_FILE), declared)
