"""FeatureSpec files, the FeatureLookup layer and the tf.data input function."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.data.feature_spec import FeatureSpec, FieldSpec, read_vocabulary
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.data.lookup import FeatureLookup


@pytest.fixture
def artifact(tmp_path):
    """A hand-made artifact: one categorical, one log_square and one quantile field."""
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "color.txt").write_text("5 red\n3 [MISSING]\n2 blue\n")
    (tmp_path / "vocab" / "clicks.txt").write_text("4 1\n2 21\n1 -1\n")
    (tmp_path / "vocab" / "price.txt").write_text("6 1\n3 0\n1 2\n")
    spec = {
        "label": "y",
        "fields": [
            {"name": "color", "kind": "categorical", "vocab_size": 4,
             "vocab_file": "vocab/color.txt", "oov_index": 0},
            {"name": "clicks", "kind": "numeric", "vocab_size": 4,
             "vocab_file": "vocab/clicks.txt", "oov_index": 0, "transform": "log_square"},
            {"name": "price", "kind": "numeric", "vocab_size": 4,
             "vocab_file": "vocab/price.txt", "oov_index": 0, "transform": "quantiles",
             "boundaries": [1.0, 10.0]},
        ],
        "splits": {"train": 2, "validation": 0, "test": 0},
        "rejected_rows": 0,
    }  # fmt: skip
    (tmp_path / "feature_spec.json").write_text(json.dumps(spec))
    return FeatureSpec.load(str(tmp_path))


def test_feature_spec_round_trip(artifact, tmp_path):
    assert artifact.field("price").boundaries == (1.0, 10.0)
    assert artifact.vocabulary("color") == (["red", "[MISSING]", "blue"], [5, 3, 2])
    (tmp_path / "copy").mkdir()
    artifact.save(str(tmp_path / "copy"))
    copy = FeatureSpec.load(str(tmp_path / "copy"))
    assert copy.to_json() == artifact.to_json()


def test_feature_spec_errors_name_the_problem(artifact, tmp_path):
    with pytest.raises(KeyError, match="Known fields: color, clicks, price"):
        artifact.field("size")
    with pytest.raises(FileNotFoundError, match="run `dimsel preprocess"):
        FeatureSpec.load(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="`kind` of field 'x' must be one of"):
        FieldSpec("x", "dense", 2, "vocab/x.txt")
    with pytest.raises(ValueError, match="`transform` of numeric field 'x'"):
        FieldSpec("x", "numeric", 2, "vocab/x.txt")


def test_malformed_vocabulary_line_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("3 a\nb\n")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected '<count> <value>'"):
        read_vocabulary(str(path))


def test_lookup_maps_vocabulary_oov_and_missing(artifact):
    lookup = FeatureLookup(artifact)
    ids = lookup(
        {
            "color": tf.constant(["red", "blue", "", "purple"]),
            # 1 -> "1", 100 -> floor(ln(100)^2) = 21, NaN -> [MISSING] (not in vocab), -1
            "clicks": tf.constant([1.0, 100.0, math.nan, -1.0]),
            # boundaries [1, 10]: 0.5 -> 0, 1.0 -> 1 (right side), 10 -> 2, 5 -> 1
            "price": tf.constant([0.5, 1.0, 10.0, 5.0]),
        }
    )
    assert ids["color"].numpy().tolist() == [1, 3, 2, 0]
    assert ids["clicks"].numpy().tolist() == [1, 2, 0, 3]
    assert ids["price"].numpy().tolist() == [2, 1, 3, 1]
    assert lookup.vocabulary_size("color") == 4


def test_lookup_keeps_a_column_shape(artifact):
    lookup = FeatureLookup(artifact, fields=["color"])
    ids = lookup({"color": tf.constant([["red"], ["blue"]])})
    assert ids["color"].shape == (2, 1)


def test_lookup_reports_missing_inputs_and_unknown_fields(artifact):
    with pytest.raises(KeyError, match="No field named 'size'"):
        FeatureLookup(artifact, fields=["size"])
    with pytest.raises(ValueError, match=r"missing input feature\(s\) \['price'\]"):
        FeatureLookup(artifact)({"color": tf.constant(["red"]), "clicks": tf.constant([1.0])})


def test_lookup_config_round_trip_with_its_assets(artifact, tmp_path):
    lookup = FeatureLookup(artifact, fields=["color", "price"])
    config = lookup.get_config()
    assert artifact.directory not in json.dumps(config)  # no path: the vocabularies are assets
    rebuilt = FeatureLookup.from_config(config)
    assert rebuilt.fields == ["color", "price"]
    inputs = {"color": tf.constant(["blue", "red", "never-seen"]), "price": tf.constant([3.0] * 3)}
    assert set(rebuilt(inputs)["color"].numpy().tolist()) == {0}  # no vocabulary loaded yet
    assets = tmp_path / "assets"
    assets.mkdir()
    lookup.save_assets(str(assets))
    rebuilt.load_assets(str(assets))
    for name in ("color", "price"):
        assert rebuilt(inputs)[name].numpy().tolist() == lookup(inputs)[name].numpy().tolist()


def test_lookup_survives_saved_model_export(artifact, tmp_path):
    lookup = FeatureLookup(artifact)

    class Ids(tf.Module):
        def __init__(self):
            super().__init__()
            self.lookup = lookup

        @tf.function(
            input_signature=[
                {
                    "color": tf.TensorSpec([None], tf.string),
                    "clicks": tf.TensorSpec([None], tf.float32),
                    "price": tf.TensorSpec([None], tf.float32),
                }
            ]
        )
        def __call__(self, features):
            return self.lookup(features)

    tf.saved_model.save(Ids(), str(tmp_path / "model"))
    reloaded = tf.saved_model.load(str(tmp_path / "model"))
    features = {
        "color": tf.constant(["blue", "nope"]),
        "clicks": tf.constant([100.0, 1.0]),
        "price": tf.constant([20.0, 0.0]),
    }
    got = {k: v.numpy().tolist() for k, v in reloaded(features).items()}
    assert got == {"color": [3, 0], "clicks": [2, 1], "price": [3, 2]}


def _example(**features):
    feature = {}
    for name, value in features.items():
        if isinstance(value, bytes):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_make_dataset_parses_examples_and_fills_absent_features(artifact, tmp_path):
    (tmp_path / "train").mkdir()
    options = tf.io.TFRecordOptions("GZIP")
    with tf.io.TFRecordWriter(str(tmp_path / "train" / "part-00000.tfrecord.gz"), options) as w:
        w.write(_example(y=1.0, color=b"red", clicks=3.0, price=2.5))
        w.write(_example(y=0.0, clicks=1.0))  # color and price absent
    features, labels = next(iter(make_dataset(artifact, "train", batch_size=8)))
    assert labels.numpy().tolist() == [1.0, 0.0]
    assert features["color"].numpy().tolist() == [b"red", b""]
    assert features["price"].numpy()[0] == 2.5 and np.isnan(features["price"].numpy()[1])
    ids = FeatureLookup(artifact)(features)
    assert ids["color"].numpy().tolist() == [1, 2]  # absent -> [MISSING], id 2


def test_make_dataset_errors(artifact):
    with pytest.raises(FileNotFoundError, match="no examples for split 'test'"):
        make_dataset(artifact, "test")
    with pytest.raises(ValueError, match="`split` must be one of"):
        make_dataset(artifact, "dev")
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        make_dataset(artifact, "train", batch_size=0)
