"""`SearchEmbeddings` computes all fields at once, with the numbers of each field's layers alone."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.autodim import SearchEmbeddings
from keras_dimsel.layers.candidate_embedding import CandidateEmbedding, unify_candidates
from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector, select_candidates

VOCAB_SIZES = {"user": 50, "item": 7, "genre": 3, "user id": 120}


def _embeddings(**kwargs):
    tf.keras.utils.set_random_seed(0)
    embeddings = SearchEmbeddings(VOCAB_SIZES, seed=11, **kwargs)
    rng = np.random.default_rng(0)
    ids = {name: tf.constant(rng.integers(0, size, 64)) for name, size in VOCAB_SIZES.items()}
    embeddings(ids)
    # Alpha and temperature away from their starting values, as in the middle of a search.
    for selector in embeddings.selectors.values():
        selector.alpha_logits.assign(rng.normal(size=selector.num_candidates).astype(np.float32))
        selector.temperature.assign(0.3)
    return embeddings, ids


def _step(embeddings, ids, call, training):
    """Outputs, gradients and the variables afterwards of one call, state restored."""
    saved = [tf.identity(v) for v in embeddings.weights]
    with tf.GradientTape() as tape:
        outputs = call(ids, training)
        loss = tf.add_n([tf.reduce_sum(tf.sin(x)) * (i + 1) for i, x in enumerate(outputs)])
    grads = tape.gradient(loss, embeddings.trainable_variables)
    after = [v.numpy() for v in embeddings.weights]
    for variable, value in zip(embeddings.weights, saved):
        variable.assign(value)
    return [x.numpy() for x in outputs], [tf.convert_to_tensor(g).numpy() for g in grads], after


@pytest.mark.parametrize(
    "storage, unify, rank_scaling, hard",
    [
        ("shared", "linear", True, False),
        ("separate", "linear", False, True),
        ("shared", "zero_pad", True, True),
        ("separate", "zero_pad", True, False),
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_all_fields_at_once_give_each_field_what_its_layers_give_alone(
    storage, unify, rank_scaling, hard, training
):
    embeddings, ids = _embeddings(
        storage=storage, unify=unify, rank_scaling=rank_scaling, hard=hard
    )

    def one_by_one(ids, training):
        return [
            embeddings.selectors[name](
                embeddings.embeddings[name](ids[name], training=training), training=training
            )
            for name in VOCAB_SIZES
        ]

    together = _step(embeddings, ids, embeddings, training)
    alone = _step(embeddings, ids, one_by_one, training)
    # Outputs, gradients, then every variable after the call (moving statistics, noise
    # counters): equal up to float32 rounding, at the scale of each array (a gradient
    # through BatchNorm is a difference of larger terms).
    for kind, got, expected in zip(("outputs", "gradients", "variables"), together, alone):
        for i, (x, y) in enumerate(zip(got, expected)):
            scale = float(np.max(np.abs(y))) if y.size else 0.0
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5 * scale, err_msg=f"{kind} {i}")


def _traced_ops(fields: int) -> dict:
    vocab_sizes = {f"f{i}": 10 + i for i in range(fields)}
    embeddings = SearchEmbeddings(vocab_sizes, seed=0)
    ids = {name: tf.zeros([8], tf.int64) for name in vocab_sizes}
    embeddings(ids)

    @tf.function
    def step(ids):
        with tf.GradientTape() as tape:
            loss = tf.add_n([tf.reduce_sum(x) for x in embeddings(ids, training=True)])
        return tape.gradient(loss, embeddings.trainable_variables)

    graph = step.get_concrete_function(ids).graph
    types = [op.type for op in graph.get_operations()]
    return {"all": len(types), "products": sum("MatMul" in t for t in types)}


def test_a_traced_step_has_the_same_products_for_any_number_of_fields():
    three, twelve = _traced_ops(3), _traced_ops(12)
    assert three["products"] == twelve["products"] > 0
    # What stays per field: the lookup, the variables' reads and updates, and the
    # selector's weights, forward and backward: 88 ops, against 235 one field at a time.
    assert (twelve["all"] - three["all"]) / 9 < 100, (three, twelve)


def test_fields_unified_together_must_compute_the_same_function():
    layers = [CandidateEmbedding(5, (2, 4)), CandidateEmbedding(5, (2, 8))]
    for layer in layers:
        layer.build((None,))
    with pytest.raises(ValueError, match="must have the same candidates"):
        unify_candidates(layers, [tf.constant([1]), tf.constant([2])])


def test_selectors_that_mix_together_must_have_as_many_candidates():
    selectors = [DimensionGumbelSelector(2), DimensionGumbelSelector(3)]
    for selector, n in zip(selectors, (2, 3)):
        selector.build((None, n, 4))
    with pytest.raises(ValueError, match=r"same number of candidates. Received: \[2, 3\]"):
        select_candidates(selectors, tf.zeros([2, 1, 2, 4]))


def test_a_search_embeddings_built_by_its_first_call_has_the_names_of_its_layers():
    embeddings, _ = _embeddings()
    names = {v.name for v in embeddings.weights}
    expected = {
        f"search_embeddings/{layer}_{scope}/{weight}:0"
        for scope, (layer, weight) in itertools.product(
            ("user", "item", "genre", "user_id_f8c3fcf8"),
            [("candidates", "candidate_table"), ("candidates", "unify_kernel"),
             ("candidates", "unify_bias"), ("candidates", "batch_norm/moving_mean"),
             ("candidates", "batch_norm/moving_variance"), ("selector", "alpha_logits"),
             ("selector", "temperature"), ("selector", "noise_seed")],
        )
    }  # fmt: skip
    assert {name.split("/", 1)[1] for name in names} == {name.split("/", 1)[1] for name in expected}
