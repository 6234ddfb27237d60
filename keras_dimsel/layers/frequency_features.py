"""`FrequencyFeatures`: the frequency attributes of each id of a field, from its counts.

The counts are the train-split counts the Beam job wrote into the vocabulary
files (`DIR/vocab/<field>.txt`); nothing is recounted here.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from keras_dimsel.layers._utils import as_int_array

#: The columns of the feature table, in order.
FEATURE_NAMES = ("count", "log_count", "percentile")
#: The column `AdaptiveMaskTwinsLayer` mixes its twins by (the standardised log count).
LOG_COUNT_INDEX = FEATURE_NAMES.index("log_count")


def frequency_table(counts: Sequence[int], standardize: bool = True) -> np.ndarray:
    """The `[V, 3]` table of count, log count and percentile rank of every id.

    - `count`: the train count of the value;
    - `log_count`: log(1 + count);
    - `percentile`: the share of the field's ids with a smaller count, ties
      sharing the mean of their ranks, in [0, 1].

    With `standardize`, every column is shifted and scaled to mean 0 and
    standard deviation 1 over the field's ids (each id counts once, whatever
    its frequency), so the statistics are those of the whole table, never of a
    batch. A constant column becomes zeros.

    Args:
        counts: sequence of int >= 0, the count of each id, indexed by id.
        standardize: bool, whether to standardise the columns.

    Returns:
        float32 array of shape `[len(counts), 3]`.

    Raises:
        ValueError: when `counts` is empty, not one-dimensional, or holds a
            negative or non-finite number.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(
            f"`counts` must be a non-empty sequence of counts. Received shape {counts.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(counts) | (counts < 0))
    if bad.size:
        raise ValueError(
            f"`counts` must be finite and >= 0; id {int(bad[0])} has {counts[bad[0]]!r}"
        )
    order = np.argsort(counts, kind="stable")
    ranks = np.empty_like(counts)
    ranks[order] = np.arange(counts.size, dtype=np.float64)
    # Ties share the mean of their ranks, so equal counts get equal features.
    _, inverse, tie_counts = np.unique(counts, return_inverse=True, return_counts=True)
    mean_rank = np.bincount(inverse, weights=ranks) / tie_counts
    percentile = mean_rank[inverse] / max(counts.size - 1, 1)
    table = np.stack([counts, np.log1p(counts), percentile], axis=1)
    if standardize:
        std = table.std(axis=0)
        table = (table - table.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return table.astype(np.float32)


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class FrequencyFeatures(tf.keras.layers.Layer):
    """Maps the ids of one field to their frequency attributes.

    A constant (non-trainable) `[V, 3]` table built by `frequency_table`; the
    call is a row lookup. Ids outside `[0, V)` are an error of the caller
    (the lookup layers never produce them).

    Args:
        counts: sequence of int, the train count of every id of the field,
            indexed by id (the OOV id 0 included, with count 0: unseen values
            get zero-count features).
        standardize: bool, standardise each column over the field's ids.

    Input shape:
        int ids of shape `[batch]`.

    Output shape:
        `[batch, 3]`: count, log count and percentile, in `FEATURE_NAMES` order.

    Examples:

        The counts of a field are `[0] + spec.vocabulary(name)[1]` (the OOV id first):

        >>> counts = [0, 50, 20, 5, 1]
        >>> layer = FrequencyFeatures(counts, standardize=False)
        >>> count, log_count, percentile = layer(tf.constant([1])).numpy()[0].tolist()
        >>> count, round(log_count, 3), percentile  # id 1 is the most frequent of the 5 ids
        (50.0, 3.932, 1.0)
        >>> print(FrequencyFeatures(counts)(tf.constant([1, 0, 3])).shape)  # standardised
        (3, 3)
    """

    def __init__(self, counts: Sequence[int], standardize: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self._counts = as_int_array(counts)  # not a list, which Keras would walk
        self.standardize = bool(standardize)
        self._table = frequency_table(self._counts, self.standardize)

    @property
    def counts(self) -> list:
        """The train count of every id, indexed by id."""
        return self._counts.tolist()

    @property
    def vocab_size(self) -> int:
        """The number of ids V of the field."""
        return int(self._counts.size)

    def distinct_features(self) -> tuple:
        """The distinct rows of the feature table and the row of each id among them.

        Ids of equal count share a row, so a function of the features alone (the
        length a mask gives an id) is worked out once per distinct row: a few
        thousand in a Zipf field of millions of ids, instead of millions.

        Returns:
            `(rows, index)`: float32 array `[U, 3]` and int64 array `[V]`, with
            `table[i] == rows[index[i]]` for every id i.
        """
        if not self.built:
            self.build(None)
        table = np.ascontiguousarray(self.table.numpy())
        keys = table.view(np.dtype((np.void, table.strides[0]))).reshape(-1)
        _, first, index = np.unique(keys, return_index=True, return_inverse=True)
        return table[first], index.reshape(-1).astype(np.int64)

    def build(self, input_shape):
        self.table = self.add_weight(
            name="table",
            shape=self._table.shape,
            dtype="float32",
            initializer=tf.keras.initializers.Constant(self._table),
            trainable=False,
            experimental_autocast=False,
        )
        super().build(input_shape)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.table, tf.reshape(ids, [-1]))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:1].concatenate([len(FEATURE_NAMES)])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"counts": self._counts.tolist(), "standardize": self.standardize})
        return config
