"""The serving contract of the exported models, checked on the reloaded SavedModels.

Two exports, each reloaded with plain `tf.saved_model.load`: a retrained AutoDim
DeepFM (stage `plan`, raw values in `serving_default`) and an AMTL compact FM
exported the TFX way (serialized examples in `serving_default`, raw values in
`serving_raw`). The raw-value tests run on both.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.amtl.compact import compact_model
from keras_dimsel.amtl.embeddings import masked_model
from keras_dimsel.autodim.model import planned_model
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.data.datasets import make_reader
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import export_saved_model
from keras_dimsel.models import vocab_sizes
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run

BATCH = 4
#: the export and the name of its raw-value signature
RAW_SIGNATURES = [("plan", "serving_default"), ("compact", "serving_raw")]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    output = str(tmp_path_factory.mktemp("artifact"))
    reader = make_reader("synthetic", [], output_dir=output, rows=1000, seed=0)
    return run(reader, PreprocessConfig(output_dir=output, min_count=2))


def _test_features(spec, batch_size=BATCH) -> dict:
    features, _ = next(iter(make_dataset(spec, "test", batch_size=batch_size)))
    return {name: value.numpy() for name, value in features.items()}


def _move_every_weight(model) -> None:
    # Away from the initial values (the first-order weights start at zero), so
    # that the probability depends on every input, as after training; the signs
    # are mixed so that the logits stay small and the probabilities apart.
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if not weight.dtype.is_floating:
            continue
        step = rng.uniform(0.01, 0.1, weight.shape) * rng.choice([-1.0, 1.0], weight.shape)
        if "moving_variance" in weight.name:
            step = np.abs(step)
        weight.assign(weight.numpy() + step)


@pytest.fixture(scope="module")
def exports(spec, tmp_path_factory):
    """`{"plan": loaded, "compact": loaded}`, the two reloaded SavedModels."""
    tf.keras.utils.set_random_seed(0)
    directory = tmp_path_factory.mktemp("exports")
    features = _test_features(spec)
    plan_dims = {name: (8 if name in ("user", "item") else 2) for name in spec.field_names}
    sizes = vocab_sizes(spec)
    plan = planned_model(
        "deepfm", spec, DimensionPlan(fields=plan_dims, candidates=(2, 8), vocab_sizes=sizes)
    )
    plan(features)
    _move_every_weight(plan)
    export_saved_model(plan, str(directory / "plan"))
    masked = masked_model("fm", spec, ["user", "item"], dim=8)
    masked(features)
    _move_every_weight(masked)
    compact, _ = compact_model(masked)
    export_saved_model(compact, str(directory / "compact"), serve_examples=True)
    return {name: tf.saved_model.load(str(directory / name)) for name in ("plan", "compact")}


@pytest.fixture(params=RAW_SIGNATURES, ids=[name for name, _ in RAW_SIGNATURES])
def serve_raw(request, exports):
    name, signature = request.param
    return exports[name].signatures[signature]


def _probabilities(serve, **features) -> np.ndarray:
    return serve(**features)["probability"].numpy()


def _missing_row(spec, size=1) -> dict:
    """The documented missing value of every field: `""` or NaN."""
    return {
        f.name: np.array([b""] * size, dtype=object)
        if f.kind == "categorical"
        else np.full([size], np.nan, np.float32)
        for f in spec.fields
    }


def test_unseen_empty_and_nan_values_give_one_finite_probability_per_example(spec, serve_raw):
    features = _test_features(spec)
    for f in spec.fields:
        if f.kind == "categorical":
            features[f.name][1] = b"never-seen-in-train"
            features[f.name][2] = b""
        else:
            features[f.name][2] = np.nan
    missing = _missing_row(spec)
    features = {name: np.concatenate([value, missing[name]]) for name, value in features.items()}
    probabilities = _probabilities(serve_raw, **features)
    assert probabilities.shape == (BATCH + 1,)
    assert np.all(np.isfinite(probabilities)) and np.all((probabilities > 0) & (probabilities < 1))
    # The probability depends on the inputs: the equalities below are not vacuous.
    assert len(np.unique(probabilities)) > 2


def test_an_empty_string_is_the_missing_token_and_unseen_values_share_the_oov_id(spec, serve_raw):
    features = _test_features(spec, batch_size=1)
    most_frequent = spec.vocabulary("user")[0][0]
    served = {}
    for user in ("", "[MISSING]", "never-seen-1", "never-seen-2", most_frequent):
        served[user] = _probabilities(serve_raw, **dict(features, user=np.array([user])))[0]
    assert served[""] == served["[MISSING]"]
    assert served["never-seen-1"] == served["never-seen-2"]
    assert served["never-seen-1"] != served[most_frequent]


def test_an_empty_batch_gives_an_empty_output(spec, serve_raw):
    assert _probabilities(serve_raw, **_missing_row(spec, size=0)).shape == (0,)


def test_inputs_of_different_batch_sizes_are_refused_naming_the_features(spec, serve_raw):
    features = dict(_test_features(spec), item=np.array(["i1"] * 6))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="serving input `item` has 6 values but `user` has 4: "
        "every feature needs one value per example",
    ):
        serve_raw(**features)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="`price` has 1 values but `user` has 4"
    ):
        serve_raw(**dict(_test_features(spec), price=np.array([1.0], np.float32)))


def _tensors(features: dict) -> dict:
    return {name: tf.constant(value) for name, value in features.items()}


def test_inputs_of_another_rank_are_refused_naming_the_feature(spec, serve_raw):
    features = _test_features(spec)
    # Given tensors, the loaded signature passes them on unchecked: the model checks them.
    expected = r"Shape of tensor item \[4,1\] is not compatible with expected shape \[\?\]"
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        serve_raw(**_tensors(dict(features, item=features["item"][:, None])))
    # Every input at [batch, 2] would otherwise flatten into 2 * batch outputs.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Shape of tensor \w+ \[4,2\]"):
        serve_raw(**_tensors({name: np.stack([v, v], axis=1) for name, v in features.items()}))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Shape of tensor price \[\] "):
        serve_raw(**_tensors(dict(features, price=np.float32(1.0))))
    # NumPy arrays and lists are converted by the Python binding, which checks them first.
    with pytest.raises(
        TypeError,
        match=r"Can not cast TensorSpec\(shape=\(4, 1\), dtype=tf.string, name='item'\) "
        r"to TensorSpec\(shape=\(None,\), dtype=tf.string, name='item'\)",
    ):
        serve_raw(**dict(features, item=features["item"][:, None]))


def test_infinite_numbers_are_refused(spec, serve_raw):
    price = np.array([1.0, np.inf, -np.inf, np.nan], np.float32)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="serving input `price` holds 2 infinite value\\(s\\): send NaN for a missing number",
    ):
        serve_raw(**dict(_test_features(spec), price=price))


def test_wrong_dtypes_are_refused_naming_the_feature_or_its_position(spec, serve_raw):
    features = _test_features(spec)
    # Among tensors only, TensorFlow names the input by its position in the
    # sorted order of the names.
    names = sorted(serve_raw.structured_input_signature[1])
    price, user = names.index("price"), names.index("user")
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=rf"input #{price}\(zero-based\) was expected to be a float tensor "
        "but is a string tensor",
    ):
        serve_raw(**_tensors(dict(features, price=np.array(["1.5"] * BATCH))))
    ids = np.array([17, 3, 17, 5])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=rf"input #{user}\(zero-based\) was expected to be a string tensor "
        "but is a int64 tensor",
    ):
        serve_raw(**_tensors(dict(features, user=ids)))
    # Given NumPy arrays or lists, the Python binding names the feature.
    with pytest.raises(
        TypeError, match=r"Can not cast TensorSpec\(shape=\(4,\), dtype=tf.string, name='price'\)"
    ):
        serve_raw(**dict(features, price=tf.constant(["1.5"] * BATCH)))
    with pytest.raises(TypeError, match=r"Cannot convert \[17, 3\] to EagerTensor of dtype string"):
        serve_raw(**dict(_test_features(spec, batch_size=2), user=[17, 3]))
    # Integer ids cast to their decimal strings, the tokens the vocabulary holds.
    as_strings = dict(features, user=tf.strings.as_string(ids))
    np.testing.assert_array_equal(
        _probabilities(serve_raw, **as_strings),
        _probabilities(serve_raw, **dict(features, user=np.array(["17", "3", "17", "5"]))),
    )
    np.testing.assert_array_equal(
        _probabilities(serve_raw, **dict(features, user=ids.astype(str))),
        _probabilities(serve_raw, **as_strings),
    )


def test_a_missing_feature_is_a_type_error_naming_it(spec, serve_raw):
    features = _test_features(spec)
    del features["item"]
    with pytest.raises(TypeError, match="missing a required argument: 'item'"):
        serve_raw(**features)


def _example(**values) -> bytes:
    """A serialized `tf.train.Example` holding only the given features."""
    feature = {}
    for name, value in values.items():
        if isinstance(value, bytes):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_absent_features_of_an_example_serve_as_the_documented_defaults(spec, exports):
    serve = exports["compact"].signatures["serving_default"]
    raw = exports["compact"].signatures["serving_raw"]
    known = {name: values[0] for name, values in _test_features(spec).items()}
    rows = [
        dict(known),  # every feature present
        {n: v for n, v in known.items() if n not in ("user", "price")},
        {"item": known["item"]},
        {},  # an empty Example: every feature absent
    ]
    served = serve(examples=tf.constant([_example(**row) for row in rows]))["probability"]
    missing = {name: values[0] for name, values in _missing_row(spec).items()}
    explicit = {
        name: np.array([row.get(name, missing[name]) for row in rows]) for name in spec.field_names
    }
    expected = _probabilities(raw, **explicit)
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-6)
    assert len(np.unique(expected)) == len(rows)
    empty = serve(examples=tf.zeros([0], tf.string))["probability"]
    assert empty.shape == (0,)


def test_examples_with_a_value_of_the_wrong_type_or_an_infinite_number_are_refused(exports):
    serve = exports["compact"].signatures["serving_default"]
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="Key: user, Index: 1.  Data types don't match. Data type: float",
    ):
        serve(examples=tf.constant([_example(user=b"u1"), _example(user=17.0)]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`price` holds 1 infinite value"):
        serve(examples=tf.constant([_example(price=float("inf"))]))
