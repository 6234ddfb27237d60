"""Tests for `AdaptiveMaskTwinsLayer` and `FrequencyFeatures`, with hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.layers import AdaptiveMaskTwinsLayer, FrequencyFeatures
from keras_dimsel.layers.adaptive_mask import prefix_mask
from keras_dimsel.layers.frequency_features import FEATURE_NAMES, frequency_table

D = 4
# Two values; column 1 is the standardised log count: the first value is rare
# (a = sigmoid(-2)), the second frequent (a = sigmoid(2)).
FEATURES = np.array([[0.5, -2.0, 0.0], [1.0, 2.0, 1.0]], np.float32)
EMBEDDINGS = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], np.float32)
# One linear layer per branch (no hidden layers): logits = s @ W + b.
HIGH_KERNEL = np.array(
    [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0, 0.0]], np.float32
)
LOW_KERNEL = np.array(
    [[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]], np.float32
)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def make_layer(**kwargs) -> AdaptiveMaskTwinsLayer:
    kwargs.setdefault("hidden_units", ())
    layer = AdaptiveMaskTwinsLayer(max_dim=D, **kwargs)
    layer([EMBEDDINGS, FEATURES])
    layer.high.layers[-1].kernel.assign(HIGH_KERNEL)
    layer.high.layers[-1].bias.assign(np.zeros(D, np.float32))
    if layer.low is not None:
        layer.low.layers[-1].kernel.assign(LOW_KERNEL)
        layer.low.layers[-1].bias.assign(np.full(D, 0.5, np.float32))
    return layer


def expected_logits(twins=True):
    high = FEATURES @ HIGH_KERNEL
    if not twins:
        return high
    low = FEATURES @ LOW_KERNEL + 0.5
    a = sigmoid(FEATURES[:, 1:2])
    return a * high + (1 - a) * low


def test_prefix_mask_of_a_selection_keeps_the_first_k_plus_one_entries():
    hard = tf.constant([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(
        prefix_mask(hard).numpy(), [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    )
    # m = t M with M[i][j] = 1 for j <= i, for a soft selection too.
    soft = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)
    lower = np.tril(np.ones((D, D), np.float32))
    np.testing.assert_allclose(prefix_mask(tf.constant(soft)).numpy(), soft @ lower, rtol=1e-6)


def test_twin_mixing_weights_the_branches_by_the_normalised_frequency():
    layer = make_layer()
    np.testing.assert_allclose(
        layer.mixing_weight(FEATURES).numpy(), sigmoid(FEATURES[:, 1:2]), rtol=1e-6
    )
    np.testing.assert_allclose(
        layer.length_logits(FEATURES).numpy(), expected_logits(), rtol=1e-5, atol=1e-6
    )


def test_inference_masks_each_embedding_to_its_argmax_length():
    layer = make_layer()
    logits = expected_logits()
    k = logits.argmax(axis=-1)
    # The rare value (a = 0.12) follows l-AML, whose logits are [3, .5, .5, .5]: k = 0.
    # The frequent one (a = 0.88) follows h-AML, whose logits are [0, 1, 0, 5]: k = 3.
    assert k.tolist() == [0, 3]
    masks = (np.arange(D)[None, :] <= k[:, None]).astype(np.float32)
    np.testing.assert_allclose(layer([EMBEDDINGS, FEATURES]).numpy(), EMBEDDINGS * masks)
    np.testing.assert_allclose(
        layer([EMBEDDINGS, FEATURES], training=False).numpy(), EMBEDDINGS * masks
    )
    np.testing.assert_array_equal(layer.lengths(FEATURES).numpy(), k + 1)


def test_single_branch_aml_uses_h_aml_alone():
    layer = make_layer(twins=False)
    assert layer.low is None
    np.testing.assert_allclose(layer.length_logits(FEATURES).numpy(), expected_logits(False))
    # h-AML logits: [0, 0, 0, -3.5] (first maximum: k = 0) and [0, 1, 0, 5] (k = 3).
    np.testing.assert_array_equal(layer.lengths(FEATURES).numpy(), [1, 4])


def _loss_and_gradients(layer, relaxed_mask=None):
    weights = tf.constant([[1.0, -1.0, 2.0, 0.5], [0.3, 0.2, -0.4, 1.0]])
    with tf.GradientTape() as tape:
        if relaxed_mask is None:
            output = layer([EMBEDDINGS, FEATURES], training=True)
        else:
            output = EMBEDDINGS * relaxed_mask(layer.length_logits(FEATURES))
        loss = tf.reduce_sum(output * weights)
    variables = layer.trainable_variables
    return output, tape.gradient(loss, variables)


def test_straight_through_forward_is_hard_while_gradients_flow_through_the_soft_choice():
    temperature = 0.7
    layer = make_layer(temperature=temperature)
    output, gradients = _loss_and_gradients(layer)
    k = expected_logits().argmax(axis=-1)
    hard = (np.arange(D)[None, :] <= k[:, None]).astype(np.float32)
    np.testing.assert_allclose(output.numpy(), EMBEDDINGS * hard, rtol=1e-6, atol=1e-6)

    def soft_mask(logits):
        return prefix_mask(tf.nn.softmax(logits / temperature, axis=-1))

    _, reference = _loss_and_gradients(layer, soft_mask)
    for got, want in zip(gradients, reference):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert any(np.abs(g.numpy()).max() > 0 for g in gradients)


def test_without_straight_through_training_uses_the_soft_mask():
    layer = make_layer(temperature=2.0, straight_through=False)
    output = layer([EMBEDDINGS, FEATURES], training=True).numpy()
    soft = softmax(expected_logits() / 2.0)
    np.testing.assert_allclose(output, EMBEDDINGS * (soft @ np.tril(np.ones((D, D)))), rtol=1e-5)
    # Outside training the mask is the hard one in every variant.
    k = expected_logits().argmax(axis=-1)
    hard = (np.arange(D)[None, :] <= k[:, None]).astype(np.float32)
    np.testing.assert_allclose(layer([EMBEDDINGS, FEATURES]).numpy(), EMBEDDINGS * hard)


def test_branches_have_the_same_shape_and_no_shared_weights():
    layer = AdaptiveMaskTwinsLayer(max_dim=8, hidden_units=(16, 4))
    layer([tf.zeros([2, 8]), tf.zeros([2, 3])])
    high = [v.shape for v in layer.high.trainable_variables]
    low = [v.shape for v in layer.low.trainable_variables]
    assert high == low == [(3, 16), (16,), (16, 4), (4,), (4, 8), (8,)]
    assert not {id(v) for v in layer.high.variables} & {id(v) for v in layer.low.variables}
    # The twins start from different random kernels.
    assert not np.allclose(layer.high.layers[0].kernel.numpy(), layer.low.layers[0].kernel.numpy())
    assert len(layer.trainable_variables) == 12


@pytest.mark.parametrize("twins", [True, False])
def test_an_initial_length_is_every_value_s_length_until_the_first_update(twins):
    from keras_dimsel.layers.adaptive_mask import INITIAL_LENGTH_MARGIN

    # Counts from 0 to 10^6: the standardised features span a wide range.
    counts = [0, 1_000_000, 5000, 20, 5, 1, 1, 1]
    features = FrequencyFeatures(counts)(tf.range(8))
    embeddings = tf.reshape(tf.range(8 * D, dtype=tf.float32), [8, D]) + 1.0
    for start in (D, 2):
        layer = AdaptiveMaskTwinsLayer(max_dim=D, initial_length=start, twins=twins)
        layer([embeddings, features])
        assert layer.lengths(features).numpy().tolist() == [start] * 8
        kept = (np.arange(D) < start).astype(np.float32)
        for training in (False, True):  # the hard mask, also in training (STE)
            np.testing.assert_array_equal(
                layer([embeddings, features], training=training).numpy(), embeddings * kept
            )
        # The same logits for every value: the bias, the margin on the start length.
        expected = np.where(np.arange(D) == start - 1, INITIAL_LENGTH_MARGIN, 0.0)
        np.testing.assert_allclose(layer.length_logits(features).numpy(), [expected] * 8)

    # The kernels start at zero, but the gradient reaches them at once.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer([embeddings, features], training=True) * -1.0)
    gradients = tape.gradient(loss, [b.layers[-1].kernel for b in (layer.high, layer.low) if b])
    assert all(np.abs(g.numpy()).max() > 0 for g in gradients)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_dim": 0}, "`max_dim` must be a positive integer"),
        ({"max_dim": 4, "temperature": 0.0}, "`temperature` must be a finite number > 0"),
        ({"max_dim": 4, "hidden_units": (8, 0)}, "`hidden_units` must be positive integers"),
        ({"max_dim": 4, "twins": "yes"}, "`twins` must be a boolean"),
        ({"max_dim": 4, "straight_through": 1}, "`straight_through` must be a boolean"),
        ({"max_dim": 4, "mixing_index": -1}, "`mixing_index` must be an integer >= 0"),
        ({"max_dim": 4, "initial_length": 5}, r"`initial_length` must be None or an integer in"),
        ({"max_dim": 4, "initial_length": 0}, r"in \[1, max_dim=4\]"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveMaskTwinsLayer(**kwargs)


def test_inputs_that_do_not_fit_are_rejected():
    with pytest.raises(ValueError, match="dimension 3, but the layer was built for max_dim=4"):
        AdaptiveMaskTwinsLayer(max_dim=4)([tf.zeros([2, 3]), tf.zeros([2, 3])])
    with pytest.raises(ValueError, match="1 column\\(s\\); the twins mix by column 1"):
        AdaptiveMaskTwinsLayer(max_dim=4)([tf.zeros([2, 4]), tf.zeros([2, 1])])
    with pytest.raises(ValueError, match="expects \\[embeddings, frequency_features\\]"):
        AdaptiveMaskTwinsLayer(max_dim=4)(tf.zeros([2, 4]))


def test_config_round_trip():
    layer = AdaptiveMaskTwinsLayer(
        max_dim=6, hidden_units=(5,), activation="tanh", temperature=0.3,
        straight_through=False, twins=False, mixing_index=2, initial_length=3,
        name="amtl_user",
    )  # fmt: skip
    config = layer.get_config()
    restored = AdaptiveMaskTwinsLayer.from_config(config)
    assert restored.get_config() == config
    serialized = tf.keras.layers.serialize(layer)
    assert serialized["registered_name"] == "keras_dimsel>AdaptiveMaskTwinsLayer"


def small_model():
    ids = tf.keras.Input((), dtype=tf.int64, name="ids")
    table = tf.keras.layers.Embedding(5, D, name="table")(ids)
    features = FrequencyFeatures([0, 100, 10, 3, 1], name="frequency")(ids)
    masked = AdaptiveMaskTwinsLayer(max_dim=D, hidden_units=(8,), name="amtl")([table, features])
    return tf.keras.Model(ids, masked)


@pytest.mark.parametrize("filename", ["model.keras", "saved"])
def test_file_round_trips_keep_the_masked_output(tmp_path, filename):
    tf.keras.utils.set_random_seed(0)
    model = small_model()
    ids = np.array([0, 1, 2, 3, 4])
    expected = model(ids).numpy()
    path = str(tmp_path / filename)
    if filename.endswith(".keras"):
        model.save(path)
        loaded = tf.keras.models.load_model(path)
        assert isinstance(loaded.get_layer("amtl"), AdaptiveMaskTwinsLayer)
        np.testing.assert_allclose(loaded(ids).numpy(), expected, rtol=1e-6)
    else:
        tf.saved_model.save(model, path)
        loaded = tf.saved_model.load(path)
        np.testing.assert_allclose(loaded(tf.constant(ids), training=False).numpy(), expected)


def test_frequency_table_by_hand():
    counts = [0, 5, 5, 10, 1]
    raw = frequency_table(counts, standardize=False)
    # Sorted counts 0, 1, 5, 5, 10 have ranks 0..4; the tied 5s share 2.5.
    np.testing.assert_allclose(raw[:, 0], counts)
    np.testing.assert_allclose(raw[:, 1], np.log1p(counts), rtol=1e-6)
    np.testing.assert_allclose(raw[:, 2], [0.0, 0.625, 0.625, 1.0, 0.25])
    table = frequency_table(counts)
    np.testing.assert_allclose(table.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(table.std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(table[:, 0], (raw[:, 0] - 4.2) / np.std(raw[:, 0]), rtol=1e-5)
    assert FEATURE_NAMES == ("count", "log_count", "percentile")


def test_frequency_table_of_equal_counts_is_zeros_and_bad_counts_are_named():
    np.testing.assert_array_equal(frequency_table([3, 3, 3]), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="id 2 has -1.0"):
        frequency_table([1, 2, -1])
    with pytest.raises(ValueError, match="non-empty"):
        frequency_table([])


def test_frequency_features_look_up_rows_and_serve_unseen_ids_as_zero_counts():
    counts = [0, 100, 10, 3, 1]
    layer = FrequencyFeatures(counts, standardize=False)
    np.testing.assert_allclose(
        layer(tf.constant([1, 0])).numpy(), frequency_table(counts, False)[[1, 0]]
    )
    assert layer(tf.constant([0]))[0, 0].numpy() == 0.0
    assert layer.trainable_variables == []
    assert FrequencyFeatures.from_config(layer.get_config()).counts == counts


def test_distinct_features_are_one_row_per_distinct_count_and_rebuild_the_table():
    counts = [0, 100, 10, 3, 1, 10, 1, 1, 0]
    layer = FrequencyFeatures(counts)
    rows, index = layer.distinct_features()
    assert rows.shape == (len(set(counts)), 3)
    np.testing.assert_array_equal(rows[index], layer(tf.range(len(counts))).numpy())
    assert index[2] == index[5] and index[4] == index[6] == index[7] and index[0] == index[8]


def test_length_penalty_adds_the_average_length_in_training_only():
    from keras_dimsel.amtl.embeddings import MaskedEmbeddings

    layer = MaskedEmbeddings(
        {"user": 50, "genre": 5}, dim=D, value_counts={"user": list(range(50))},
        mask_options={"hidden_units": ()}, length_penalty=0.3,
    )  # fmt: skip
    ids = {"user": tf.constant([1, 2, 3]), "genre": tf.constant([0, 1, 2])}
    layer(ids)
    logits = layer.masks["user"].high.layers[-1]
    logits.kernel.assign(tf.zeros_like(logits.kernel))
    logits.bias.assign([0.0, 0.0, 1.0, 0.0])  # every value: k = 2, length 3
    low = layer.masks["user"].low.layers[-1]
    low.kernel.assign(tf.zeros_like(low.kernel))
    low.bias.assign([0.0, 0.0, 1.0, 0.0])
    layer(ids, training=False)
    assert layer.losses == []
    with tf.GradientTape() as tape:
        layer(ids, training=True)
        (penalty,) = layer.losses
    np.testing.assert_allclose(penalty.numpy(), 0.3 * 3 / D, rtol=1e-6)
    # Through the relaxed mask the penalty pulls the logits toward shorter lengths.
    gradient = tape.gradient(penalty, logits.bias).numpy()
    assert gradient[3] > gradient[0]


def test_compact_embedding_stores_each_row_prefix_and_pads_at_lookup():
    from keras_dimsel.layers import CompactMaskedEmbedding

    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    layer = CompactMaskedEmbedding.from_table(table, lengths=[1, 4, 2])
    np.testing.assert_array_equal(layer.embedding_values.numpy(), [0, 4, 5, 6, 7, 8, 9])
    assert layer.embedding_params == 7
    np.testing.assert_array_equal(
        layer(tf.constant([2, 0, 1])).numpy(),
        [[8, 9, 0, 0], [0, 0, 0, 0], [4, 5, 6, 7]],
    )
    with pytest.raises(ValueError, match=r"in \[1, 4\]; row 1 has 5"):
        CompactMaskedEmbedding([1, 5], max_dim=4)
    with pytest.raises(ValueError, match="one row per length"):
        CompactMaskedEmbedding.from_table(table, lengths=[1, 2])
    restored = CompactMaskedEmbedding.from_config(layer.get_config())
    assert restored.lengths == [1, 4, 2] and restored.max_dim == 4
