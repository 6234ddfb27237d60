"""Tests for `CandidateEmbedding`: lookup, unify, BatchNorm, weights, errors, saving."""

import doctest
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.layers import candidate_embedding
from keras_dimsel.layers.candidate_embedding import CandidateEmbedding

# vocab 3, candidates (1, 2). Shared table rows; separate tables per candidate.
SHARED_TABLE = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
TABLE_1 = [[1.0], [2.0], [3.0]]
TABLE_2 = [[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]
# Unify maps: x @ W_n + b_n.
KERNEL_1 = [[2.0, -1.0]]
BIAS_1 = [0.5, 1.0]
KERNEL_2 = [[1.0, 2.0], [0.0, 1.0]]
BIAS_2 = [0.0, -1.0]
IDS = [2, 0]


def _short_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _assign(layer, values: dict) -> None:
    by_name = {_short_name(w): w for w in layer.weights}
    for name, value in values.items():
        by_name[name].assign(value)


def _layer(storage, unify, batch_norm=False, **kwargs):
    layer = CandidateEmbedding(
        vocab_size=3,
        candidates=(1, 2),
        storage=storage,
        unify=unify,
        batch_norm=batch_norm,
        **kwargs,
    )
    layer.build((None,))
    if storage == "shared":
        _assign(layer, {"candidate_table": SHARED_TABLE})
    else:
        _assign(layer, {"candidate_table_1": TABLE_1, "candidate_table_2": TABLE_2})
    if unify == "linear":
        _assign(layer, {"unify_kernel": _kernel(storage), "unify_bias": BIAS_1 + BIAS_2})
    return layer


def _kernel(storage):
    """KERNEL_1 and KERNEL_2 in the layer's one kernel: column block n maps candidate n."""
    if storage == "shared":  # the input is the row [x1, x2]; candidate 1 is its prefix [x1]
        return [KERNEL_1[0] + KERNEL_2[0], [0.0, 0.0] + KERNEL_2[1]]
    # separate: the input is [table_1 row, table_2 row], the kernel block diagonal
    return [KERNEL_1[0] + [0.0, 0.0], [0.0, 0.0] + KERNEL_2[0], [0.0, 0.0] + KERNEL_2[1]]


def test_shared_zero_pad_takes_row_prefixes_and_pads_with_zeros():
    out = _layer("shared", "zero_pad")(tf.constant(IDS))
    # id 2 -> row [5, 6]: candidate 1 = [5] padded, candidate 2 = [5, 6].
    np.testing.assert_allclose(out, [[[5, 0], [5, 6]], [[1, 0], [1, 2]]])


def test_separate_zero_pad_reads_one_table_per_candidate():
    out = _layer("separate", "zero_pad")(tf.constant(IDS))
    np.testing.assert_allclose(out, [[[3, 0], [50, 60]], [[1, 0], [10, 20]]])


def test_shared_linear_maps_each_prefix_with_its_own_kernel_and_bias():
    out = _layer("shared", "linear")(tf.constant(IDS))
    # id 2: [5] @ [[2, -1]] + [.5, 1] = [10.5, -4]; [5, 6] @ [[1, 2], [0, 1]] + [0, -1] = [5, 15].
    # id 0: [1] -> [2.5, 0];                       [1, 2] -> [1, 4] + [0, -1] = [1, 3].
    np.testing.assert_allclose(out, [[[10.5, -4], [5, 15]], [[2.5, 0], [1, 3]]])


def test_separate_linear_maps_each_table_with_its_own_kernel_and_bias():
    out = _layer("separate", "linear")(tf.constant(IDS))
    # id 2: [3] -> [6.5, -2]; [50, 60] -> [50, 160] + [0, -1] = [50, 159].
    # id 0: [1] -> [2.5, 0];  [10, 20] -> [10, 40] + [0, -1] = [10, 39].
    np.testing.assert_allclose(out, [[[6.5, -2], [50, 159]], [[2.5, 0], [10, 39]]])


def test_constant_initializer_fills_the_table():
    layer = CandidateEmbedding(
        vocab_size=3,
        candidates=(1, 2),
        unify="zero_pad",
        batch_norm=False,
        embeddings_initializer=tf.keras.initializers.Constant(SHARED_TABLE),
    )
    np.testing.assert_allclose(layer(tf.constant([1])), [[[3, 0], [3, 4]]])


def test_mixed_precision_policy_gives_float16_outputs_from_float32_tables():
    layer = CandidateEmbedding(vocab_size=3, candidates=(1, 2), dtype="mixed_float16")
    out = layer(tf.constant([0, 2]), training=True)
    assert out.dtype == tf.float16
    assert {w.dtype for w in layer.weights} == {tf.float32}


def test_ids_of_shape_batch_by_one_give_the_same_output():
    layer = _layer("shared", "linear")
    np.testing.assert_allclose(layer(tf.constant([[2], [0]])), layer(tf.constant(IDS)))


def test_int64_ids_are_accepted():
    layer = _layer("separate", "zero_pad")
    np.testing.assert_allclose(
        layer(tf.constant(IDS, dtype=tf.int64)), layer(tf.constant(IDS, dtype=tf.int32))
    )


def test_output_shape_is_batch_by_candidates_by_largest_dim():
    layer = CandidateEmbedding(vocab_size=10)
    out = layer(tf.constant([1, 2, 3]))
    assert out.shape == (3, 5, 32)
    assert layer.compute_output_shape((None,)) == tf.TensorShape([None, 5, 32])
    assert (layer.num_candidates, layer.output_dim) == (5, 32)


def test_batch_norm_in_training_normalises_each_candidate_over_the_batch():
    table = [[1.0, 0.0], [3.0, 1.0], [5.0, 4.0], [7.0, 9.0]]
    layer = CandidateEmbedding(
        vocab_size=4,
        candidates=(1, 2),
        unify="zero_pad",
        embeddings_initializer=tf.keras.initializers.Constant(table),
    )
    out = layer(tf.constant([0, 1, 2, 3]), training=True).numpy()
    # Candidate 1 is [1, 3, 5, 7]: mean 4, variance 5, BatchNorm epsilon 1e-3.
    np.testing.assert_allclose(
        out[:, 0, 0], (np.array([1, 3, 5, 7]) - 4) / np.sqrt(5.001), rtol=1e-5
    )
    np.testing.assert_array_equal(out[:, 0, 1], 0.0)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, 1, :].var(axis=0), 1.0, atol=1e-3)


@pytest.mark.parametrize(
    "rank_scaling, factors",
    [(False, [1.0, 1.0, 1.0]), (True, [0.5, 0.5**0.5, 1.0])],  # sqrt(d_n / d_N), d_N = 4
)
def test_batch_norm_after_linear_map_normalises_each_candidate_over_the_batch(
    rank_scaling, factors
):
    tf.keras.utils.set_random_seed(7)
    layer = CandidateEmbedding(
        vocab_size=6, candidates=(1, 2, 4), unify="linear", rank_scaling=rank_scaling
    )
    plain = CandidateEmbedding(vocab_size=6, candidates=(1, 2, 4), unify="linear", batch_norm=False)
    plain.build((None,))
    ids = tf.constant([0, 1, 2, 3, 4, 5])
    out = layer(ids, training=True).numpy()
    for source, target in zip(layer.trainable_weights, plain.trainable_weights):
        target.assign(source)
    mapped = plain(ids).numpy()
    # Eq. 2 per candidate and column: batch mean and (biased) batch variance, epsilon 1e-3,
    # then the rank factor of each candidate.
    expected = (mapped - mapped.mean(axis=0)) / np.sqrt(mapped.var(axis=0) + 1e-3)
    expected *= np.array(factors)[None, :, None]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)


@pytest.mark.parametrize("storage", ["shared", "separate"])
def test_linear_batch_norm_equals_a_batch_norm_layer_after_the_map(storage):
    """Outputs, gradients and moving statistics of a Keras BatchNormalization after x K + b."""
    tf.keras.utils.set_random_seed(3)
    candidates, d_max = (2, 4, 8), 8
    layer = CandidateEmbedding(
        vocab_size=40, candidates=candidates, storage=storage, unify="linear", rank_scaling=True
    )
    plain = CandidateEmbedding(
        vocab_size=40, candidates=candidates, storage=storage, unify="linear", batch_norm=False
    )
    plain.build((None,))
    layer.build((None,))
    for source, target in zip(layer.trainable_weights, plain.trainable_weights):
        target.assign(source * 3.0 + 0.5)  # away from zero, so the bias and mean matter
        source.assign(target)
    # The fused kernel, as a BatchNorm layer over [batch, 1, 1, columns] runs.
    reference = tf.keras.layers.BatchNormalization(center=False, scale=False, fused=True)
    reference.build((None, 1, 1, len(candidates) * d_max))
    factors = np.repeat([(d / d_max) ** 0.5 for d in candidates], d_max).astype(np.float32)

    def expected(ids, training):
        mapped = tf.reshape(plain(ids), [-1, 1, 1, len(candidates) * d_max])
        normalized = tf.reshape(reference(mapped, training=training), [-1, len(factors)])
        return tf.reshape(normalized * factors, [-1, len(candidates), d_max])

    for step in range(3):
        ids = tf.constant(np.random.default_rng(step).integers(0, 40, size=64))
        with tf.GradientTape(persistent=True) as tape:
            out = layer(ids, training=True)
            ref = expected(ids, training=True)
            weights = tf.constant(
                np.random.default_rng(10 + step).normal(size=out.shape), tf.float32
            )
            loss, ref_loss = tf.reduce_sum(out * weights), tf.reduce_sum(ref * weights)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
        grads = tape.gradient(loss, layer.trainable_weights)
        ref_grads = tape.gradient(ref_loss, plain.trainable_weights)
        for weight, grad, ref_grad in zip(layer.trainable_weights, grads, ref_grads):
            grad, ref_grad = (tf.convert_to_tensor(g) for g in (grad, ref_grad))
            np.testing.assert_allclose(grad, ref_grad, rtol=1e-3, atol=1e-3, err_msg=weight.name)
            if "unify_bias" in weight.name:
                # BatchNorm without a shift removes the bias: no gradient, exactly.
                np.testing.assert_array_equal(grad, 0.0)
    # What moved since the start (mean 0, variance 1), so small batch variances still count.
    for name, start in (("moving_mean", 0.0), ("moving_variance", 1.0)):
        ours = next(w for w in layer.non_trainable_weights if name in w.name)
        np.testing.assert_allclose(ours - start, getattr(reference, name) - start, rtol=1e-3)
    ids = tf.constant([0, 7, 39])
    np.testing.assert_allclose(layer(ids), expected(ids, training=False), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        layer(ids, training=tf.constant(False)), expected(ids, False), rtol=1e-4, atol=1e-4
    )


def test_rank_scaling_gives_every_candidate_unit_variance_per_direction_it_spans():
    tf.keras.utils.set_random_seed(11)
    layer = CandidateEmbedding(
        vocab_size=500,
        candidates=(2, 8),
        unify="linear",
        embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=1.0),
    )
    out = layer(tf.range(500), training=True).numpy()
    for n, dim in enumerate((2, 8)):
        eigenvalues = np.linalg.eigvalsh(np.cov(out[:, n, :], rowvar=False, bias=True))
        # Rank d_n and total variance d_n: the variance of each spanned direction averages 1.
        assert np.sum(eigenvalues > 1e-4) == dim
        np.testing.assert_allclose(eigenvalues.sum(), dim, rtol=1e-2)


def test_batch_norm_outside_training_uses_moving_statistics():
    table = [[1.0, 0.0], [3.0, 1.0], [5.0, 4.0], [7.0, 9.0]]
    layer = CandidateEmbedding(
        vocab_size=4,
        candidates=(1, 2),
        unify="zero_pad",
        embeddings_initializer=tf.keras.initializers.Constant(table),
    )
    # Fresh moving statistics are mean 0, variance 1.
    np.testing.assert_allclose(
        layer(tf.constant([3]), training=False),
        [[[7 / np.sqrt(1.001), 0], np.array([7, 9]) / np.sqrt(1.001)]],
    )
    layer(tf.constant([0, 1, 2, 3]), training=True)
    moving_mean = {w.name: w.numpy() for w in layer.non_trainable_weights}
    # Shared zero padding normalises the d_N columns once (candidate n is a prefix of
    # them); momentum 0.99: 0.99 * 0 + 0.01 * the batch means 4 and 3.5.
    np.testing.assert_allclose(
        moving_mean[f"{layer.name}/batch_norm/moving_mean:0"], [0.04, 0.035], rtol=1e-6
    )


@pytest.mark.parametrize(
    "storage, unify, columns",
    [
        ("shared", "zero_pad", 2),  # the d_N columns every candidate is a prefix of
        ("separate", "zero_pad", 3),  # d_1 + d_2
        ("shared", "linear", 4),  # N * d_N
        ("separate", "linear", 4),
    ],
)
def test_batch_norm_keeps_statistics_per_candidate_column_and_no_trainable_weights(
    storage, unify, columns
):
    layer = CandidateEmbedding(vocab_size=3, candidates=(1, 2), storage=storage, unify=unify)
    layer.build((None,))
    trainable = 1 if storage == "shared" else 2
    assert len(layer.trainable_weights) == trainable + (2 if unify == "linear" else 0)
    assert {w.name.split("/")[-2]: w.shape for w in layer.non_trainable_weights} == {
        "batch_norm": (columns,)
    }
    assert sorted(_short_name(w) for w in layer.non_trainable_weights) == [
        "moving_mean",
        "moving_variance",
    ]


@pytest.mark.parametrize(
    "storage, unify, expected",
    [
        ("shared", "linear", {
            "candidate_table": (3, 2), "unify_kernel": (2, 4), "unify_bias": (4,),
        }),
        ("shared", "zero_pad", {"candidate_table": (3, 2)}),
        ("separate", "linear", {
            "candidate_table_1": (3, 1), "candidate_table_2": (3, 2),
            "unify_kernel": (3, 4), "unify_bias": (4,),
        }),
        ("separate", "zero_pad", {"candidate_table_1": (3, 1), "candidate_table_2": (3, 2)}),
    ],
)  # fmt: skip
def test_trainable_weight_names_and_shapes_per_configuration(storage, unify, expected):
    layer = CandidateEmbedding(vocab_size=3, candidates=(1, 2), storage=storage, unify=unify)
    layer.build((None,))
    assert len(layer.trainable_weights) == len(expected)
    assert {_short_name(w): tuple(w.shape) for w in layer.trainable_weights} == expected
    assert len(layer.non_trainable_weights) == 2  # one BatchNorm's moving mean and variance


@pytest.mark.parametrize(
    "storage, vocab_size, candidates, expected",
    [
        ("shared", 3, (1, 2), 6),
        ("separate", 3, (1, 2), 9),
        ("shared", 10, (2, 8, 16, 24, 32), 320),
        ("separate", 10, (2, 8, 16, 24, 32), 820),
    ],
)
def test_embedding_params_counts_table_numbers(storage, vocab_size, candidates, expected):
    layer = CandidateEmbedding(vocab_size, candidates, storage=storage)
    assert layer.embedding_params == expected
    layer.build((None,))
    tables = [w for w in layer.trainable_weights if "candidate_table" in w.name]
    assert sum(int(np.prod(w.shape)) for w in tables) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocab_size": 0}, "`vocab_size` must be a positive integer. Received: vocab_size=0"),
        ({"vocab_size": 2.5}, "`vocab_size` must be a positive integer. Received: vocab_size=2.5"),
        ({"vocab_size": True}, "`vocab_size` must be a positive integer. "
                               "Received: vocab_size=True"),
        ({"candidates": ()}, "`candidates` must not be empty. Received: candidates=()"),
        ({"candidates": 8}, "`candidates` must be a non-empty sequence of positive integers. "
                            "Received: candidates=8"),
        ({"candidates": (0, 2)}, "`candidates` must contain only positive integers. "
                                 "Received: candidates=(0, 2)"),
        ({"candidates": (2, 4.5)}, "`candidates` must contain only positive integers. "
                                   "Received: candidates=(2, 4.5)"),
        ({"candidates": (8, 2)}, "`candidates` must be strictly increasing (sorted, no "
                                 "duplicates). Received: candidates=(8, 2)"),
        ({"candidates": (2, 2, 4)}, "`candidates` must be strictly increasing (sorted, no "
                                    "duplicates). Received: candidates=(2, 2, 4)"),
        ({"storage": "dense"}, "`storage` must be one of ('shared', 'separate'). "
                               "Received: storage='dense'"),
        ({"unify": "pad"}, "`unify` must be one of ('linear', 'zero_pad'). Received: unify='pad'"),
        ({"batch_norm": "yes"}, "`batch_norm` must be a bool. Received: batch_norm='yes'"),
        ({"rank_scaling": 1}, "`rank_scaling` must be a bool. Received: rank_scaling=1"),
    ],
)  # fmt: skip
def test_bad_arguments_are_rejected_with_the_received_value(kwargs, message):
    arguments = {"vocab_size": 3, **kwargs}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        CandidateEmbedding(**arguments)


def test_ids_of_a_bad_shape_are_rejected():
    layer = CandidateEmbedding(vocab_size=3, candidates=(1, 2))
    with pytest.raises(ValueError, match=re.escape("expects ids of shape [batch] or [batch, 1]")):
        layer(tf.constant([[0, 1], [1, 2]]))


def test_float_ids_are_rejected():
    layer = CandidateEmbedding(vocab_size=3, candidates=(1, 2))
    with pytest.raises(ValueError, match="expects integer ids"):
        layer(tf.constant([0.0, 1.0]))


def test_config_round_trip_gives_an_equal_layer_and_equal_outputs():
    tf.keras.utils.set_random_seed(3)
    layer = CandidateEmbedding(
        vocab_size=5,
        candidates=[2, 3],
        storage="separate",
        unify="linear",
        embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.1),
        embeddings_regularizer=tf.keras.regularizers.L2(0.01),
        name="field_a",
    )
    ids = tf.constant([0, 4, 2])
    expected = layer(ids, training=False)
    config = layer.get_config()
    assert {k: config[k] for k in ("vocab_size", "candidates", "storage", "unify")} == {
        "vocab_size": 5,
        "candidates": [2, 3],
        "storage": "separate",
        "unify": "linear",
    }
    assert config["batch_norm"] is True
    assert config["rank_scaling"] is True
    assert config["embeddings_initializer"]["class_name"] == "RandomNormal"
    assert config["embeddings_regularizer"]["class_name"] == "L2"

    restored = CandidateEmbedding.from_config(config)
    assert restored.get_config() == config
    assert restored.candidates == (2, 3)
    restored.build((None,))
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(restored(ids, training=False), expected)
    # The regularizer reaches each table: two losses for the separate tables.
    assert len(restored.losses) == 2


def test_default_config_round_trip_keeps_default_arguments():
    layer = CandidateEmbedding(vocab_size=7)
    restored = CandidateEmbedding.from_config(layer.get_config())
    assert restored.candidates == (2, 8, 16, 24, 32)
    assert (restored.storage, restored.unify, restored.batch_norm) == ("shared", "linear", True)
    assert restored.embeddings_regularizer is None


def _model(layer):
    ids = tf.keras.Input(shape=(1,), dtype=tf.int64, name="ids")
    candidates = layer(ids)
    logits = tf.keras.layers.Dense(1)(tf.keras.layers.Flatten()(candidates))
    return tf.keras.Model(ids, logits)


def test_saved_model_round_trip_gives_the_same_predictions(tmp_path):
    tf.keras.utils.set_random_seed(11)
    model = _model(CandidateEmbedding(vocab_size=6, candidates=(2, 4), storage="shared"))
    model(tf.constant([[0], [1], [2], [3], [4], [5]], tf.int64), training=True)  # moves BN stats
    ids = tf.constant([[5], [0], [3]], tf.int64)
    expected = model(ids, training=False).numpy()

    tf.saved_model.save(model, str(tmp_path / "model"))
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    np.testing.assert_allclose(loaded(ids, training=False), expected, rtol=1e-6)
    served = loaded.signatures["serving_default"](ids=ids)
    np.testing.assert_allclose(next(iter(served.values())), expected, rtol=1e-6)


@pytest.mark.parametrize("filename", ["model.keras", "model.h5"])
def test_keras_file_round_trip_gives_the_same_predictions(tmp_path, filename):
    tf.keras.utils.set_random_seed(12)
    model = _model(CandidateEmbedding(vocab_size=6, candidates=(1, 3), storage="separate"))
    ids = tf.constant([[5], [0], [3]], tf.int64)
    expected = model(ids, training=False).numpy()

    path = str(tmp_path / filename)
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert isinstance(loaded.layers[1], CandidateEmbedding)
    np.testing.assert_allclose(loaded(ids, training=False), expected, rtol=1e-6)


def test_shared_table_gradient_reaches_looked_up_rows_only():
    layer = _layer("shared", "zero_pad")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant([2, 0, 2])))
    (grad,) = tape.gradient(loss, layer.trainable_weights)
    # Column 0 feeds both candidates, column 1 only the largest; id 2 is looked up twice.
    np.testing.assert_allclose(tf.convert_to_tensor(grad), [[2, 1], [0, 0], [4, 2]])


def test_separate_tables_gradient_reaches_looked_up_rows_only():
    layer = _layer("separate", "zero_pad")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant([2, 0, 2])))
    grad_1, grad_2 = tape.gradient(loss, layer.trainable_weights)
    np.testing.assert_allclose(tf.convert_to_tensor(grad_1), [[1], [0], [2]])
    np.testing.assert_allclose(tf.convert_to_tensor(grad_2), [[1, 1], [0, 0], [2, 2]])


@pytest.mark.parametrize("storage", ["shared", "separate"])
def test_gradient_with_linear_unify_and_batch_norm_skips_rows_not_looked_up(storage):
    tf.keras.utils.set_random_seed(5)
    layer = CandidateEmbedding(vocab_size=5, candidates=(1, 2), storage=storage)
    target = tf.random.normal((3, 2, 2))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant([4, 1, 4]), training=True) * target)
    tables = [w for w in layer.trainable_weights if "candidate_table" in w.name]
    for grad in tape.gradient(loss, tables):
        grad = tf.convert_to_tensor(grad).numpy()
        np.testing.assert_array_equal(grad[[0, 2, 3]], 0.0)
        assert np.abs(grad[[1, 4]]).sum() > 0


def test_docstring_example_runs():
    globs = {"tf": tf, "CandidateEmbedding": CandidateEmbedding}
    (test,) = doctest.DocTestFinder(recurse=False).find(CandidateEmbedding, globs=globs)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert (runner.failures, runner.tries) == (0, 3)


def test_supported_values_are_module_constants():
    assert candidate_embedding.SUPPORTED_STORAGE == ("shared", "separate")
    assert candidate_embedding.SUPPORTED_UNIFY == ("linear", "zero_pad")


@pytest.mark.parametrize("storage", ["shared", "separate"])
def test_unify_kernel_is_zero_outside_the_candidate_blocks_and_stays_zero(storage):
    tf.keras.utils.set_random_seed(5)
    layer = CandidateEmbedding(vocab_size=3, candidates=(1, 2), storage=storage, unify="linear")
    layer.build((None,))
    # Column block n (2 columns) maps candidate n; shared: rows [0, d_n), separate: its own rows.
    outside = np.ones((2 if storage == "shared" else 3, 4), bool)
    outside[0:1, 0:2] = False
    outside[(slice(0, 2) if storage == "shared" else slice(1, 3)), 2:4] = False
    np.testing.assert_array_equal(layer.unify_kernel.numpy()[outside], 0.0)
    optimizer = tf.keras.optimizers.Adam(0.1)
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(tf.constant([0, 1, 2]), training=True) - 1.0))
        optimizer.apply_gradients(
            zip(tape.gradient(loss, layer.trainable_weights), layer.trainable_weights)
        )
    kernel = layer.unify_kernel.numpy()
    np.testing.assert_array_equal(kernel[outside], 0.0)
    assert np.all(kernel[~outside] != 0.0)
    # Each candidate's own map, cut out of the one kernel and bias.
    pairs = layer.candidate_unify_weights()
    assert [(tuple(k.shape), tuple(b.shape)) for k, b in pairs] == [((1, 2), (2,)), ((2, 2), (2,))]
    rows_2 = slice(0, 2) if storage == "shared" else slice(1, 3)
    np.testing.assert_array_equal(pairs[1][0], kernel[rows_2, 2:])
    np.testing.assert_array_equal(pairs[0][1], layer.unify_bias.numpy()[:2])


def test_candidate_unify_weights_needs_the_linear_unify():
    layer = CandidateEmbedding(vocab_size=3, candidates=(1, 2), unify="zero_pad")
    layer.build((None,))
    with pytest.raises(ValueError, match="Only the linear unify has weights"):
        layer.candidate_unify_weights()
