"""`CompactMaskedEmbedding`: a table whose rows have their own lengths, re-padded at lookup."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class CompactMaskedEmbedding(tf.keras.layers.Layer):
    """The serving form of a masked embedding: row f keeps its first k_f + 1 numbers.

    After AMTL training every value f has a fixed length n_f = k_f + 1, and
    its masked embedding is the first n_f entries of its row followed by zeros.
    This layer stores exactly those numbers, concatenated row after row in
    one flat variable `embedding_values` of size sum_f n_f, with the row
    boundaries in `row_splits` (int64, V + 1 entries). A lookup reads each
    id's row at its offsets and pads it with zeros to `max_dim`, so the
    downstream layers see the same `[batch, max_dim]` vectors as in training,
    without a mask network, in time that does not grow with V.

    Args:
        lengths: sequence of int in [1, max_dim], the length n_f of every row.
        max_dim: int, D, the padded dimension.

    Input shape:
        int ids of shape `[batch]`.

    Output shape:
        `[batch, max_dim]`.

    Examples:

        >>> table = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # a trained [V, D] table
        >>> layer = CompactMaskedEmbedding.from_table(table, lengths=[1, 3])
        >>> layer(tf.constant([1, 0])).numpy().tolist()
        [[4.0, 5.0, 6.0], [1.0, 0.0, 0.0]]
        >>> layer.embedding_params  # 1 + 3 numbers stored instead of 2 * 3
        4
    """

    def __init__(self, lengths: Sequence[int], max_dim: int, **kwargs: Any):
        super().__init__(**kwargs)
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or lengths.size == 0:
            raise ValueError("`lengths` must be a non-empty sequence of row lengths.")
        if not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(f"`lengths` must be integers. Received dtype {lengths.dtype}")
        bad = np.flatnonzero((lengths < 1) | (lengths > max_dim))
        if bad.size:
            raise ValueError(
                f"Every length must be in [1, {max_dim}]; row {int(bad[0])} has "
                f"{int(lengths[bad[0]])}."
            )
        self._lengths = lengths.astype(np.int64)  # not a list, which Keras would walk
        self.max_dim = int(max_dim)
        self._splits = np.concatenate([[0], np.cumsum(self._lengths)])

    @classmethod
    def from_table(
        cls, table: Any, lengths: Sequence[int], **kwargs: Any
    ) -> CompactMaskedEmbedding:
        """The compact layer holding the first `lengths[f]` entries of each row of `table`.

        Args:
            table: array-like of shape `[V, D]`, the trained (masked) table.
            lengths: sequence of int, the kept length of each of the V rows.
            **kwargs: base `Layer` arguments (name, dtype, ...).

        Returns:
            A built CompactMaskedEmbedding with `max_dim = D`.

        Raises:
            ValueError: when `table` is not 2-D with one row per length.
        """
        table = np.asarray(table, dtype=np.float32)
        if table.ndim != 2 or table.shape[0] != len(lengths):
            raise ValueError(
                f"`table` must have one row per length ({len(lengths)}). "
                f"Received shape {table.shape}"
            )
        layer = cls(lengths, max_dim=table.shape[1], **kwargs)
        layer.assign_table(table)
        return layer

    def assign_table(self, table: Any) -> None:
        """Stores the first `lengths[f]` entries of each row f of a `[V, max_dim]` table.

        Args:
            table: array-like of shape `[V, max_dim]`.

        Raises:
            ValueError: when `table` has another shape.
        """
        table = np.asarray(table, dtype=np.float32)
        if table.shape != (self.vocab_size, self.max_dim):
            raise ValueError(
                f"`table` must have shape {(self.vocab_size, self.max_dim)}. "
                f"Received shape {table.shape}"
            )
        self.build(None)
        keep = np.arange(self.max_dim)[None, :] < self._lengths[:, None]
        self.embedding_values.assign(table[keep])  # row-major: row after row

    @property
    def lengths(self) -> list:
        """The length n_f of every row."""
        return self._lengths.tolist()

    @property
    def vocab_size(self) -> int:
        """The number of rows V."""
        return int(self._lengths.size)

    @property
    def embedding_params(self) -> int:
        """Numbers stored: the sum of the row lengths."""
        return int(self._splits[-1])

    def build(self, input_shape):
        if self.built:
            return
        self.embedding_values = self.add_weight(
            name="embedding_values",
            shape=(self.embedding_params,),
            initializer="zeros",
            trainable=True,
        )
        self.row_splits = self.add_weight(
            name="row_splits",
            shape=self._splits.shape,
            dtype="int64",
            initializer=tf.keras.initializers.Constant(self._splits),
            trainable=False,
        )
        super().build(input_shape)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        # Row f is values[splits[f]:splits[f + 1]]: each id's row is read at its
        # offsets, zero-padded to max_dim. A `tf.RaggedTensor` of all rows
        # gathered by id gives the same, in time that grows with the rows.
        ids = tf.reshape(tf.cast(ids, tf.int64), [-1])
        starts = tf.gather(self.row_splits, ids)
        lengths = tf.gather(self.row_splits, ids + 1) - starts
        columns = tf.range(self.max_dim, dtype=tf.int64)
        keep = columns[None, :] < lengths[:, None]
        offsets = tf.where(keep, starts[:, None] + columns[None, :], 0)
        values = tf.gather(tf.cast(self.embedding_values, self.compute_dtype), offsets)
        return tf.where(keep, values, tf.zeros_like(values))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:1].concatenate([self.max_dim])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"lengths": self._lengths.tolist(), "max_dim": self.max_dim})
        return config
