"""How raw values become vocabulary tokens, in NumPy/Arrow (for the Beam job).

The TensorFlow twins of these functions live in `keras_dimsel.data.lookup`; a
test checks that both give the same token for the same raw value, so the
vocabulary counted by Beam is the vocabulary the model looks up.

Rules (documented in the feature spec module):

- categorical: the value itself; an empty value becomes `MISSING_TOKEN`.
- numeric, `log_square` (the Criteo rule): `floor(ln(v)^2)` for v > 2, else
  `floor(v)` clipped to [-2^53, 2^53], as a decimal integer string.
- numeric, `quantiles`: the bucket index `searchsorted(boundaries, v, "right")`.
- numeric, NaN (empty cell): `MISSING_TOKEN`.

Numbers are float32 in the examples, so tokens are computed from the float32
value (promoted to float64), exactly as the model sees it.

A field with hash buckets (`dimsel preprocess --max-vocab-size/--hash-buckets`)
sends every token outside its vocabulary to bucket
`Fingerprint64(token) mod buckets`, the function of
`tf.strings.to_hash_bucket_fast`: `hash_buckets` computes it here, for the
bucket counts, and `FeatureLookup` in the model.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MISSING_TOKEN = "[MISSING]"
#: Tokens are hashed this many at a time (bounds the memory of a huge vocabulary).
_HASH_SLICE = 1 << 20


def bucket_token(bucket: int) -> str:
    """The name of hash bucket `bucket` in `FeatureSpec.vocabulary` (`[BUCKET 3]`).

    Only a label for reports: a raw value spelled like this is hashed like any other.
    """
    return f"[BUCKET {bucket}]"


def hash_buckets(values: pa.Array, num_buckets: int) -> np.ndarray:
    """The hash bucket of each token: `Fingerprint64(token) mod num_buckets`.

    Computed by TensorFlow's own `tf.strings.to_hash_bucket_fast` (loaded
    only when a field has buckets), so the model, which calls the same op on
    the same tokens, finds every value in the bucket its count went to.

    Args:
        values: pa.Array or pa.ChunkedArray of strings, the tokens.
        num_buckets: int, the number of buckets (positive).

    Returns:
        int64 array of bucket indices in [0, num_buckets).
    """
    import tensorflow as tf

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    buckets = np.empty(len(values), dtype=np.int64)
    for start in range(0, len(values), _HASH_SLICE):
        part = values.slice(start, _HASH_SLICE).to_numpy(zero_copy_only=False)
        hashed = tf.strings.to_hash_bucket_fast(part.astype(object), num_buckets)
        buckets[start : start + len(part)] = hashed.numpy()
    return buckets


def categorical_tokens(values: pa.Array) -> pa.Array:
    """Categorical values to tokens: the value, or `MISSING_TOKEN` when empty."""
    values = values.cast(pa.string())
    empty = pc.fill_null(pc.equal(values, ""), True)
    return pc.if_else(empty, MISSING_TOKEN, values)


def log_square_buckets(values: np.ndarray) -> np.ndarray:
    """The Criteo rule on float64: floor(ln(v)^2) for v > 2, else floor(v)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        squared_log = np.floor(np.square(np.log(np.where(values > 2, values, 3.0))))
    # Clipped so that any finite float32 has an int64 token (|v| > 2^53 is not a count).
    return np.clip(np.where(values > 2, squared_log, np.floor(values)), -(2.0**53), 2.0**53)


def numeric_tokens(
    values: np.ndarray,
    transform: str,
    boundaries: Optional[Sequence[float]] = None,
) -> pa.Array:
    """Numeric values (float32, NaN = missing) to tokens under `transform`."""
    values = np.asarray(values, dtype=np.float32).astype(np.float64)
    missing = np.isnan(values)
    if transform == "log_square":
        buckets = log_square_buckets(np.where(missing, 0.0, values))
    elif transform == "quantiles":
        edges = np.asarray(boundaries, dtype=np.float64)
        buckets = np.searchsorted(edges, np.where(missing, 0.0, values), side="right")
    else:
        raise ValueError(
            f"`transform` must be 'log_square' or 'quantiles'. Received: {transform!r}"
        )
    tokens = pa.array(buckets.astype(np.int64)).cast(pa.string())
    return pc.if_else(pa.array(missing), MISSING_TOKEN, tokens)
