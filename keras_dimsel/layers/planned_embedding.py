"""`PlannedEmbedding`: one field's retrain-stage embedding at its planned dimension."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from keras_dimsel.layers._utils import clone_initializer

SUPPORTED_UNIFY = ("linear", "zero_pad")


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class PlannedEmbedding(tf.keras.layers.Layer):
    """Embedding of one field with the dimension chosen by the search.

    After the search, field m keeps only the candidate d_k it selected
    (Eq. 13), as a physically smaller table X_m of shape [V_m, d_k], so the
    retrained model stores V_m * d_k embedding numbers instead of V_m * d_N.
    When the downstream layers need a common dimension (FM, DeepFM, inner
    products), the looked-up row e = X_m[id] is unified to `output_dim` with
    the same method as in the search, but with one transform per field and no
    BatchNorm or Gumbel noise:

        linear:   x = e W_m + b_m,      W_m in R^{d_k x output_dim}
        zero_pad: x = [e, 0, ..., 0]    (output_dim - d_k zeros)

    With `output_dim=None` the row is returned as is, for models (e.g. a pure
    MLP) that take the concatenation of mixed dimensions.

    Args:
        vocab_size: int, the number of ids V_m of the field.
        dim: int, the planned dimension d_k.
        output_dim: int or None, the dimension to unify to (at least `dim`);
            None returns the [batch, dim] rows without unifying.
        unify: str, one of `SUPPORTED_UNIFY`: "linear" (a dense map with bias)
            or "zero_pad" (no weights). Only used when `output_dim` is set.
        embeddings_initializer: initializer of the table.
        embeddings_regularizer: regularizer of the table, or None.
        unify_kernel_initializer: initializer of the linear unify kernel.
        unify_bias_initializer: initializer of the linear unify bias.
        **kwargs: base `Layer` arguments (name, dtype, ...).

    Input shape:
        Integer ids of shape `[batch]` or `[batch, 1]`.

    Output shape:
        `[batch, output_dim]`, or `[batch, dim]` when `output_dim` is None.

    Examples:

        >>> layer = PlannedEmbedding(vocab_size=1000, dim=4, output_dim=16)
        >>> print(layer(tf.constant([3, 17])).shape)
        (2, 16)
        >>> layer.embedding_params  # 1000 * 4: the table stays at the planned dimension
        4000
        >>> vectors, rows = layer(tf.constant([3, 17]), return_rows=True)
        >>> print(rows.shape)
        (2, 4)

    References:
        Zhao et al., "AutoDim: Field-aware Embedding Space Searching in
        Recommender Systems", WWW 2021, §2.2.2 (Eq. 2-4) and §2.4.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        output_dim: Optional[int] = None,
        unify: str = "linear",
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        unify_kernel_initializer: Any = "glorot_uniform",
        unify_bias_initializer: Any = "zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not _is_positive_int(vocab_size):
            raise ValueError(
                f"`vocab_size` must be a positive integer. Received: vocab_size={vocab_size!r}"
            )
        if not _is_positive_int(dim):
            raise ValueError(f"`dim` must be a positive integer. Received: dim={dim!r}")
        if output_dim is not None and not _is_positive_int(output_dim):
            raise ValueError(
                "`output_dim` must be a positive integer or None. "
                f"Received: output_dim={output_dim!r}"
            )
        if output_dim is not None and output_dim < dim:
            raise ValueError(
                f"`output_dim` must be at least `dim`. Received: dim={dim}, output_dim={output_dim}"
            )
        if unify not in SUPPORTED_UNIFY:
            raise ValueError(f"`unify` must be one of {SUPPORTED_UNIFY}. Received: unify={unify!r}")
        self.vocab_size = int(vocab_size)
        self.dim = int(dim)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.unify = unify
        self.embeddings_initializer = tf.keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = tf.keras.regularizers.get(embeddings_regularizer)
        self.unify_kernel_initializer = tf.keras.initializers.get(unify_kernel_initializer)
        self.unify_bias_initializer = tf.keras.initializers.get(unify_bias_initializer)

    @property
    def embedding_params(self) -> int:
        """Numbers in the embedding table, vocab_size * dim (the unify map excluded)."""
        return self.vocab_size * self.dim

    @property
    def _uses_linear(self) -> bool:
        return self.output_dim is not None and self.unify == "linear"

    def build(self, input_shape=None):
        self.embedding_table = self.add_weight(
            name="embedding_table",
            shape=(self.vocab_size, self.dim),
            initializer=clone_initializer(self.embeddings_initializer),
            regularizer=self.embeddings_regularizer,
        )
        if self._uses_linear:
            self.unify_kernel = self.add_weight(
                name="unify_kernel",
                shape=(self.dim, self.output_dim),
                initializer=clone_initializer(self.unify_kernel_initializer),
            )
            self.unify_bias = self.add_weight(
                name="unify_bias",
                shape=(self.output_dim,),
                initializer=clone_initializer(self.unify_bias_initializer),
            )
        super().build(input_shape)

    def call(self, ids: tf.Tensor, return_rows: bool = False):
        """Looks up and unifies the rows of `ids`.

        With `return_rows=True` returns `(unified, rows)`: the rows also as
        looked up, at the planned dimension, for layers that take mixed
        dimensions (an MLP over the concatenation).

        Args:
            ids: integer ids of shape `[batch]` or `[batch, 1]`.
            return_rows: bool, also return the rows before unifying.

        Returns:
            `[batch, output_dim]` vectors (`[batch, dim]` when `output_dim` is
            None), or the pair `(vectors, rows)`.

        Raises:
            ValueError: when `ids` has another shape.
        """
        ids = tf.convert_to_tensor(ids)
        if ids.shape.rank is None:
            # Unknown rank (e.g. a loosely typed signature): one id per example.
            ids = tf.reshape(ids, [-1])
        elif ids.shape.rank == 2 and ids.shape[-1] == 1:
            ids = tf.squeeze(ids, axis=-1)
        elif ids.shape.rank != 1:
            raise ValueError(
                f"PlannedEmbedding expects ids of shape [batch] or [batch, 1]. "
                f"Received shape: {ids.shape}"
            )
        if not ids.dtype.is_integer:
            ids = tf.cast(ids, tf.int64)
        rows = tf.nn.embedding_lookup(self.embedding_table, ids)
        if return_rows:
            return self.unify_rows(rows), rows
        return self.unify_rows(rows)

    def unify_rows(self, rows: tf.Tensor) -> tf.Tensor:
        """Maps looked-up [batch, dim] rows to [batch, output_dim] (as is when None).

        Args:
            rows: float tensor of shape `[batch, dim]`.

        Returns:
            A `[batch, output_dim]` tensor, or `rows` when `output_dim` is None.
        """
        if self.output_dim is None:
            return rows
        if self.unify == "linear":
            return tf.matmul(rows, self.unify_kernel) + self.unify_bias
        return tf.pad(rows, [[0, 0], [0, self.output_dim - self.dim]])

    def compute_output_shape(self, input_shape) -> tf.TensorShape:
        batch = tf.TensorShape(input_shape)[:1]
        return batch.concatenate([self.output_dim or self.dim])

    def warm_start_from(self, table: Any) -> None:
        """Initialises the table from a search-stage table.

        With shared storage the search table of the field is [vocab_size, d_N]
        and candidate d_k is its first d_k columns; with separate storage the
        candidate's own table is [vocab_size, d_k]. Both cases copy the first
        `dim` columns. The unify weights are left as they are: the search-stage
        transforms map into a BatchNorm the retrained model does not have.

        Args:
            table: array-like of shape [vocab_size, n] with n >= dim.

        Raises:
            ValueError: when the table is not 2-D, has another number of rows,
                or fewer than `dim` columns.

        Examples:

            >>> layer = PlannedEmbedding(vocab_size=3, dim=2)
            >>> search_table = np.arange(12.0).reshape(3, 4)  # shared storage, d_N = 4
            >>> layer.warm_start_from(search_table)
            >>> layer.embedding_table.numpy().tolist()
            [[0.0, 1.0], [4.0, 5.0], [8.0, 9.0]]
        """
        table = np.asarray(table)
        if table.ndim != 2:
            raise ValueError(
                f"The warm-start table must be 2-D [vocab_size, columns]. "
                f"Received shape: {table.shape}"
            )
        if table.shape[0] != self.vocab_size:
            raise ValueError(
                f"The warm-start table has {table.shape[0]} rows but the layer has "
                f"vocab_size={self.vocab_size}."
            )
        if table.shape[1] < self.dim:
            raise ValueError(
                f"The warm-start table has {table.shape[1]} columns, fewer than dim={self.dim}."
            )
        if not self.built:
            self.build(tf.TensorShape([None]))
        self.embedding_table.assign(table[:, : self.dim].astype(self.embedding_table.dtype.name))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "dim": self.dim,
                "output_dim": self.output_dim,
                "unify": self.unify,
                "embeddings_initializer": tf.keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "embeddings_regularizer": tf.keras.regularizers.serialize(
                    self.embeddings_regularizer
                ),
                "unify_kernel_initializer": tf.keras.initializers.serialize(
                    self.unify_kernel_initializer
                ),
                "unify_bias_initializer": tf.keras.initializers.serialize(
                    self.unify_bias_initializer
                ),
            }
        )
        return config
