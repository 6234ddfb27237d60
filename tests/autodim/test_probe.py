"""Tests for probing a searched model: the loss of each field at each candidate."""

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.autodim.probe import find_selectors, forced_candidate, probe_losses
from keras_dimsel.layers import CandidateEmbedding, DimensionGumbelSelector

CANDIDATES = (1, 2, 4)
VOCAB = 6


def two_field_model():
    """ids a, b -> zero-padded candidates (no BatchNorm) -> selectors -> sum of entries."""
    inputs, vectors = {}, []
    for name in ("a", "b"):
        inputs[name] = tf.keras.Input(shape=(), dtype=tf.int32, name=name)
        candidates = CandidateEmbedding(
            VOCAB,
            CANDIDATES,
            unify="zero_pad",
            batch_norm=False,
            embeddings_initializer=tf.keras.initializers.RandomUniform(-1, 1, seed=len(vectors)),
            name=f"candidates_{name}",
        )(inputs[name])
        vectors.append(
            DimensionGumbelSelector(len(CANDIDATES), name=f"selector_{name}")(candidates)
        )
    output = tf.keras.layers.Add()([tf.reduce_sum(v, axis=-1, keepdims=True) for v in vectors])
    model = tf.keras.Model(inputs, output)
    model.compile(loss="mse")
    return model


def data():
    rng = np.random.default_rng(0)
    features = {name: rng.integers(0, VOCAB, size=32).astype(np.int32) for name in ("a", "b")}
    labels = rng.normal(size=(32, 1)).astype(np.float32)
    return features, labels


def as_dataset(features, labels):
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(10)


def by_hand(model, features, labels, field, index):
    """MSE with `field` at candidate `index` alone and the other field at softmax(alpha)."""
    prediction = np.zeros(len(labels))
    for name in ("a", "b"):
        table = model.get_layer(f"candidates_{name}").tables[0].numpy()  # shared [V, 4]
        prefixes = [np.pad(table[:, :d], [(0, 0), (0, max(CANDIDATES) - d)]) for d in CANDIDATES]
        logits = model.get_layer(f"selector_{name}").alpha_logits.numpy()
        weights = np.exp(logits) / np.exp(logits).sum()
        if name == field:
            weights = np.eye(len(CANDIDATES))[index]
        mixed = sum(w * p for w, p in zip(weights, prefixes))
        prediction += mixed[features[name]].sum(axis=1)
    return float(np.mean((prediction - labels[:, 0]) ** 2))


def test_probe_losses_match_the_model_with_one_candidate_per_field_by_hand():
    model = two_field_model()
    features, labels = data()
    model.get_layer("selector_a").alpha_logits.assign([0.3, -0.2, 0.5])
    model.get_layer("selector_b").alpha_logits.assign([-1.0, 0.0, 1.0])
    losses = probe_losses(model, as_dataset(features, labels))
    assert list(losses) == ["selector_a", "selector_b"]
    for selector_name, row in losses.items():
        field = selector_name[-1]
        expected = [by_hand(model, features, labels, field, n) for n in range(3)]
        np.testing.assert_allclose(row, expected, rtol=1e-5)
    # The candidates differ, so the probe tells them apart.
    assert len(set(np.round(losses["selector_a"], 6))) == 3


def test_probe_restores_the_alpha_logits():
    model = two_field_model()
    features, labels = data()
    model.get_layer("selector_a").alpha_logits.assign([0.3, -0.2, 0.5])
    before = [layer.alpha_logits.numpy() for layer in find_selectors(model).values()]
    probe_losses(model, as_dataset(features, labels))
    after = [layer.alpha_logits.numpy() for layer in find_selectors(model).values()]
    np.testing.assert_array_equal(np.stack(before), np.stack(after))


def test_forced_candidate_restores_the_logits_when_the_block_raises():
    selector = DimensionGumbelSelector(3)
    selector(tf.zeros([1, 3, 2]))
    selector.alpha_logits.assign([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError):
        with forced_candidate(selector, 1):
            np.testing.assert_allclose(selector.probabilities().numpy(), [0, 1, 0], atol=1e-12)
            raise RuntimeError("interrupted")
    np.testing.assert_array_equal(selector.alpha_logits.numpy(), [1.0, 2.0, 3.0])


def test_forced_candidate_rejects_an_index_outside_the_candidates():
    selector = DimensionGumbelSelector(3)
    selector(tf.zeros([1, 3, 2]))
    with pytest.raises(ValueError, match=r"`index` must be in \[0, 3\). Received: index=3"):
        with forced_candidate(selector, 3):
            pass


def test_probe_of_a_model_without_selectors_is_an_error():
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="no DimensionGumbelSelector to probe"):
        probe_losses(model, (np.zeros((4, 2)), np.zeros((4, 1))))


def test_find_selectors_prefers_the_field_names_of_field_embeddings():
    from keras_dimsel.autodim.embeddings import SearchEmbeddings

    class Searched(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.field_embeddings = SearchEmbeddings({"user": 5, "genre": 3}, candidates=(2, 4))

    model = Searched()
    selectors = find_selectors(model)
    assert list(selectors) == ["user", "genre"]
    assert selectors["genre"] is model.field_embeddings.selectors["genre"]
