"""Tests for `PlannedEmbedding`: exact outputs, weight counts, warm start and saving."""

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.layers.planned_embedding import SUPPORTED_UNIFY, PlannedEmbedding

# vocab_size 3, dim 2: row i is [2i + 1, 2i + 2].
TABLE = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
KERNEL = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
BIAS = [0.5, -0.5, 0.0]


def make_layer(**kwargs) -> PlannedEmbedding:
    kwargs.setdefault("embeddings_initializer", tf.keras.initializers.Constant(TABLE))
    return PlannedEmbedding(vocab_size=3, dim=2, **kwargs)


def make_linear_layer(**kwargs) -> PlannedEmbedding:
    return make_layer(
        output_dim=3,
        unify="linear",
        unify_kernel_initializer=tf.keras.initializers.Constant(KERNEL),
        unify_bias_initializer=tf.keras.initializers.Constant(BIAS),
        **kwargs,
    )


def saved_numbers(directory: str) -> dict:
    """Shapes of the variables of a SavedModel as reloaded, by variable name."""
    return {v.name: v.shape.as_list() for v in tf.saved_model.load(directory).variables}


@pytest.mark.parametrize("ids", [[2, 0], [[2], [0]]])
def test_without_output_dim_returns_the_planned_rows(ids):
    layer = make_layer()
    np.testing.assert_allclose(layer(tf.constant(ids)), [[5.0, 6.0], [1.0, 2.0]])


def test_linear_unify_applies_one_kernel_and_bias():
    layer = make_linear_layer()
    # [5, 6] W + b = [5.5, 5.5, 11]; [1, 2] W + b = [1.5, 1.5, 3].
    np.testing.assert_allclose(layer(tf.constant([[2], [0]])), [[5.5, 5.5, 11.0], [1.5, 1.5, 3.0]])


def test_return_rows_gives_the_unified_and_the_looked_up_rows():
    unified, rows = make_linear_layer()(tf.constant([2, 0]), return_rows=True)
    np.testing.assert_allclose(unified, [[5.5, 5.5, 11.0], [1.5, 1.5, 3.0]])
    np.testing.assert_allclose(rows, [[5.0, 6.0], [1.0, 2.0]])


def test_zero_pad_unify_appends_zeros():
    layer = make_layer(output_dim=4, unify="zero_pad")
    np.testing.assert_allclose(
        layer(tf.constant([2, 1])), [[5.0, 6.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0]]
    )


def test_zero_pad_to_its_own_dimension_is_the_identity():
    layer = make_layer(output_dim=2, unify="zero_pad")
    np.testing.assert_allclose(layer(tf.constant([1])), [[3.0, 4.0]])


def test_float_ids_are_cast_to_integers():
    layer = make_layer()
    np.testing.assert_allclose(layer(tf.constant([1.0])), [[3.0, 4.0]])


@pytest.mark.parametrize(
    "kwargs, weights",
    [
        ({}, {"embedding_table": (3, 2)}),
        ({"output_dim": 4, "unify": "zero_pad"}, {"embedding_table": (3, 2)}),
        (
            {"output_dim": 4, "unify": "linear"},
            {"embedding_table": (3, 2), "unify_kernel": (2, 4), "unify_bias": (4,)},
        ),
    ],
)
def test_trainable_weights_are_the_small_table_plus_the_unify_map(kwargs, weights):
    layer = PlannedEmbedding(vocab_size=3, dim=2, **kwargs)
    layer(tf.constant([0]))
    names = {w.name.split("/")[-1].split(":")[0]: tuple(w.shape) for w in layer.trainable_weights}
    assert names == weights
    linear = kwargs.get("unify") == "linear"
    assert layer.count_params() == 3 * 2 + (2 * 4 + 4 if linear else 0)
    assert layer.embedding_params == 6
    assert layer.non_trainable_weights == []


def test_output_shape_is_computed_without_running():
    assert make_layer().compute_output_shape((None, 1)).as_list() == [None, 2]
    assert make_linear_layer().compute_output_shape((7,)).as_list() == [7, 3]


def test_ids_of_unknown_rank_are_read_as_one_id_per_example():
    layer = make_layer()
    lookup = tf.function(layer, input_signature=[tf.TensorSpec(None, tf.int64)])
    np.testing.assert_allclose(lookup(tf.constant([[2], [0]], tf.int64)), [[5, 6], [1, 2]])


def test_ids_of_another_rank_are_rejected():
    with pytest.raises(ValueError, match=r"ids of shape \[batch\] or \[batch, 1\]"):
        make_layer()(tf.constant([[0, 1]]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocab_size": 0, "dim": 2}, "`vocab_size` must be a positive integer. Received: vocab_"),
        ({"vocab_size": 3, "dim": 0}, "`dim` must be a positive integer. Received: dim=0"),
        ({"vocab_size": 3, "dim": 2.0}, "`dim` must be a positive integer. Received: dim=2.0"),
        (
            {"vocab_size": 3, "dim": 2, "output_dim": -1},
            "`output_dim` must be a positive integer or None. Received: output_dim=-1",
        ),
        (
            {"vocab_size": 3, "dim": 4, "output_dim": 2},
            "`output_dim` must be at least `dim`. Received: dim=4, output_dim=2",
        ),
        (
            {"vocab_size": 3, "dim": 2, "output_dim": 4, "unify": "dense"},
            "`unify` must be one of ('linear', 'zero_pad'). Received: unify='dense'",
        ),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError) as error:
        PlannedEmbedding(**kwargs)
    assert message in str(error.value)


def test_supported_unify_lists_the_methods():
    assert SUPPORTED_UNIFY == ("linear", "zero_pad")


def test_warm_start_copies_the_prefix_of_a_shared_table():
    layer = PlannedEmbedding(vocab_size=3, dim=2, output_dim=4, embeddings_initializer="zeros")
    shared = np.arange(12, dtype=np.float32).reshape(3, 4)  # [vocab, d_N]
    layer.warm_start_from(shared)
    np.testing.assert_array_equal(layer.embedding_table.numpy(), [[0, 1], [4, 5], [8, 9]])


def test_warm_start_copies_a_separate_table_of_the_planned_size():
    layer = make_layer(embeddings_initializer="zeros")
    layer(tf.constant([0]))
    layer.warm_start_from(np.array([[1, 1], [2, 2], [3, 3]], dtype=np.float64))
    np.testing.assert_allclose(layer(tf.constant([2, 0])), [[3.0, 3.0], [1.0, 1.0]])


@pytest.mark.parametrize(
    "shape, message",
    [
        ((4, 2), "has 4 rows but the layer has vocab_size=3"),
        ((3, 1), "has 1 columns, fewer than dim=2"),
        ((6,), "must be 2-D"),
    ],
)
def test_warm_start_rejects_a_table_of_the_wrong_shape(shape, message):
    with pytest.raises(ValueError, match=message):
        make_layer().warm_start_from(np.zeros(shape))


def test_config_round_trip_rebuilds_the_same_layer():
    layer = PlannedEmbedding(
        vocab_size=3,
        dim=2,
        output_dim=3,
        unify="linear",
        embeddings_initializer=tf.keras.initializers.Constant(0.5),
        embeddings_regularizer=tf.keras.regularizers.L2(0.01),
        unify_kernel_initializer=tf.keras.initializers.Constant(2.0),
        unify_bias_initializer=tf.keras.initializers.Constant(1.0),
        name="embedding_user",
    )
    config = layer.get_config()
    for argument in (
        "vocab_size",
        "dim",
        "output_dim",
        "unify",
        "embeddings_initializer",
        "embeddings_regularizer",
        "unify_kernel_initializer",
        "unify_bias_initializer",
    ):
        assert argument in config
    clone = PlannedEmbedding.from_config(config)
    assert clone.get_config() == config
    # Each row is [0.5, 0.5]; [0.5, 0.5] W + b = 2 * 0.5 * 2 + 1 = 3.
    np.testing.assert_allclose(clone(tf.constant([1])), [[3.0, 3.0, 3.0]])
    assert float(tf.add_n(clone.losses)) == pytest.approx(0.01 * 6 * 0.25)


def test_default_config_round_trip():
    layer = PlannedEmbedding(vocab_size=5, dim=4)
    config = layer.get_config()
    assert config["output_dim"] is None and config["embeddings_regularizer"] is None
    assert PlannedEmbedding.from_config(config).get_config() == config


def build_model(layer: PlannedEmbedding) -> tf.keras.Model:
    ids = tf.keras.Input(shape=(1,), dtype=tf.int64, name="ids")
    return tf.keras.Model(ids, layer(ids))


def test_saved_model_round_trip_stores_only_the_small_table(tmp_path):
    model = build_model(make_layer())
    ids = tf.constant([[2], [0], [1]], dtype=tf.int64)
    expected = model(ids).numpy()
    path = str(tmp_path / "saved_model")
    tf.saved_model.save(model, path)

    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(loaded(ids), expected)
    np.testing.assert_allclose(
        loaded.signatures["serving_default"](ids=ids)[model.output_names[0]], expected
    )
    shapes = saved_numbers(path)
    assert list(shapes.values()) == [[3, 2]]
    assert sum(int(np.prod(s)) for s in shapes.values()) == 3 * 2


def test_saved_model_round_trip_with_linear_unify(tmp_path):
    model = build_model(make_linear_layer())
    ids = tf.constant([[2], [0]], dtype=tf.int64)
    path = str(tmp_path / "saved_model")
    tf.saved_model.save(model, path)
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(loaded(ids), [[5.5, 5.5, 11.0], [1.5, 1.5, 3.0]])
    total = sum(int(np.prod(s)) for s in saved_numbers(path).values())
    assert total == 3 * 2 + 2 * 3 + 3


def test_keras_file_round_trip(tmp_path):
    model = build_model(make_layer(output_dim=4, unify="zero_pad"))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert isinstance(loaded.layers[-1], PlannedEmbedding)
    np.testing.assert_allclose(loaded(tf.constant([[1]], dtype=tf.int64)), [[3.0, 4.0, 0.0, 0.0]])


def test_one_gradient_step_updates_only_the_looked_up_rows():
    layer = make_linear_layer()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(tf.constant([0]))))
    variables = layer.trainable_variables
    tf.keras.optimizers.SGD(0.1).apply_gradients(zip(tape.gradient(loss, variables), variables))
    table = layer.embedding_table.numpy()
    assert not np.allclose(table[0], TABLE[0])
    np.testing.assert_array_equal(table[1:], TABLE[1:])
    assert not np.allclose(layer.unify_kernel.numpy(), KERNEL)
