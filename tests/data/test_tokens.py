"""The NumPy/Arrow token rules (Beam side) and their TensorFlow twins give equal tokens."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from keras_dimsel.data import lookup, tokens

MISSING = "[MISSING]"


def numpy_tokens(values, transform, boundaries=None) -> list[str]:
    return tokens.numeric_tokens(np.asarray(values), transform, boundaries).to_pylist()


def tf_tokens(values, transform, boundaries=None) -> list[str]:
    result = lookup.numeric_tokens(tf.constant(np.asarray(values)), transform, boundaries)
    return [t.decode("utf-8") for t in result.numpy().tolist()]


def random_float32(seed: int, size: int = 20_000) -> np.ndarray:
    """Random float32 values over magnitudes 1e-6..1e38, both signs, plus edge values."""
    rng = np.random.default_rng(seed)
    magnitudes = 10.0 ** rng.uniform(-6.0, 38.0, size)
    values = magnitudes * rng.choice([-1.0, 1.0], size)
    finfo = np.finfo(np.float32)
    edges = [np.nan, 1e30, -1e30, finfo.max, -finfo.max, finfo.tiny, 0.0, -0.0, 2.0, 3.0]
    edges += [np.nextafter(np.float32(2), np.float32(3)), np.nextafter(np.float32(2), 0)]
    return np.concatenate([values, edges]).astype(np.float32)


# ---------------------------------------------------------------------------
# log_square


def test_log_square_hand_computed_tokens():
    values = np.float32([np.nan, -10, -2.5, -0.0, 0, 1, 1.5, 2, 2.5, 3, 10, 100, 200_000, 1e30])
    expected = [MISSING, "-10", "-3", "0", "0", "1", "1", "2", "0", "1", "5", "21", "148", "4771"]
    assert numpy_tokens(values, "log_square") == expected
    assert tf_tokens(values, "log_square") == expected


def test_log_square_huge_negative_values_are_clipped_to_minus_2_pow_53():
    values = np.float32([-1e30, -np.finfo(np.float32).max])
    expected = [str(-(2**53))] * 2
    assert numpy_tokens(values, "log_square") == expected
    assert tf_tokens(values, "log_square") == expected


def test_log_square_numpy_and_tf_agree_on_all_integers_minus10_to_200000():
    values = np.arange(-10, 200_001).astype(np.float32)
    numpy_result = numpy_tokens(values, "log_square")
    assert numpy_result == tf_tokens(values, "log_square")
    # -10..2 are their own token; 3..200000 fall in buckets 1..148 (ln(200000)^2 = 148.99).
    assert set(numpy_result) == {str(k) for k in range(-10, 149)}


@pytest.mark.parametrize("seed", [0, 1])
def test_log_square_numpy_and_tf_agree_on_random_float32(seed):
    values = random_float32(seed)
    assert numpy_tokens(values, "log_square") == tf_tokens(values, "log_square")


def test_log_square_numpy_and_tf_agree_next_to_bucket_edges():
    # ln(v)^2 is an integer k at v = exp(sqrt(k)); check the float32 values around each edge.
    edges = np.exp(np.sqrt(np.arange(1, 7800))).astype(np.float32)
    edges = edges[np.isfinite(edges)]
    values = np.concatenate(
        [edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(0))]
    )
    assert numpy_tokens(values, "log_square") == tf_tokens(values, "log_square")


# ---------------------------------------------------------------------------
# quantiles

BOUNDARIES = [-1.5, 0.0, 2.5, 100.0, 1e6]


def test_quantile_tokens_hand_computed_values_on_boundaries_go_right():
    values = np.float32([-2, -1.5, -1, 0, -0.0, 1, 2.5, 3, 100, 1e6, 1e7, np.nan, 1e30, -1e30])
    expected = ["0", "1", "1", "2", "2", "2", "3", "3", "4", "5", "5", MISSING, "5", "0"]
    assert numpy_tokens(values, "quantiles", BOUNDARIES) == expected
    assert tf_tokens(values, "quantiles", BOUNDARIES) == expected


@pytest.mark.parametrize("seed", [0, 1])
def test_quantile_tokens_numpy_and_tf_agree_on_random_values(seed):
    rng = np.random.default_rng(seed)
    boundaries = sorted(np.float32(rng.normal(0.0, 10.0, 50)).tolist())
    on_edges = np.float32(boundaries)
    values = np.concatenate(
        [random_float32(seed, 5_000), np.float32(rng.normal(0.0, 20.0, 5_000)), on_edges]
    )
    assert numpy_tokens(values, "quantiles", boundaries) == tf_tokens(
        values, "quantiles", boundaries
    )


def test_quantile_tokens_with_no_boundaries_are_bucket_0():
    values = np.float32([-5, 0, 7, np.nan])
    assert numpy_tokens(values, "quantiles", []) == ["0", "0", "0", MISSING]
    assert tf_tokens(values, "quantiles", []) == ["0", "0", "0", MISSING]


def test_unknown_transform_is_a_value_error_in_both():
    with pytest.raises(ValueError, match=r"`transform` must be 'log_square' or 'quantiles'"):
        tokens.numeric_tokens(np.float32([1]), "log")
    with pytest.raises(ValueError, match=r"`transform` must be 'log_square' or 'quantiles'"):
        lookup.numeric_tokens(tf.constant([1.0]), "log")


# ---------------------------------------------------------------------------
# categorical


def test_categorical_empty_value_is_missing_in_both():
    values = ["", "a", " ", "[MISSING]", "ünï"]
    expected = [MISSING, "a", " ", MISSING, "ünï"]
    assert tokens.categorical_tokens(pa.array(values)).to_pylist() == expected
    tf_result = lookup.categorical_tokens(tf.constant(values)).numpy().tolist()
    assert [t.decode("utf-8") for t in tf_result] == expected


def test_categorical_null_is_missing():
    assert tokens.categorical_tokens(pa.array(["x", None])).to_pylist() == ["x", MISSING]


def test_categorical_integers_become_decimal_strings_in_both():
    values = [7, -2, 0]
    assert tokens.categorical_tokens(pa.array(values)).to_pylist() == ["7", "-2", "0"]
    tf_result = lookup.categorical_tokens(tf.constant(values, tf.int64)).numpy().tolist()
    assert tf_result == [b"7", b"-2", b"0"]
