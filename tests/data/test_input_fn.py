"""Examples parsed as stored: an absent value is the missing value whatever its storage type."""

import numpy as np
import tensorflow as tf

from keras_dimsel.data import FieldSpec
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import as_model_inputs, feature_description


def _example(**values) -> bytes:
    feature = {}
    for name, value in values.items():
        if isinstance(value, int):
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        elif isinstance(value, float):
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _spec(value_types):
    fields = (
        FieldSpec("site", "categorical", 3, "vocab/site.txt"),
        FieldSpec("price", "numeric", 5, "vocab/price.txt", transform="log_square"),
    )
    return FeatureSpec("clicked", fields, {"train": 10}, value_types=value_types)


def test_an_absent_integer_is_missing_and_a_zero_is_a_value():
    spec = _spec({"clicked": "int", "site": "int", "price": "int"})
    examples = [_example(clicked=1, site=0, price=0), _example(clicked=0)]
    parsed = tf.io.parse_example(tf.constant(examples), feature_description(spec))
    features, label = as_model_inputs(spec, parsed)
    assert features["site"].numpy().tolist() == [b"0", b""]
    price = features["price"].numpy()
    assert price[0] == 0.0 and np.isnan(price[1])
    assert label.numpy().tolist() == [1.0, 0.0]


def test_absent_strings_and_floats_are_missing_too():
    spec = _spec({})
    examples = [_example(clicked=1.0, site="news", price=2.5), _example(clicked=0.0)]
    parsed = tf.io.parse_example(tf.constant(examples), feature_description(spec))
    features, _ = as_model_inputs(spec, parsed)
    assert features["site"].numpy().tolist() == [b"news", b""]
    assert np.isnan(features["price"].numpy()[1])
