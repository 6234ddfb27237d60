"""`CandidateEmbedding`: the N candidate embeddings of one field in the AutoDim search stage."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from keras_dimsel.autodim import DEFAULT_CANDIDATES
from keras_dimsel.layers._utils import clone_initializer, is_int, static_cond

SUPPORTED_STORAGE = ("shared", "separate")
SUPPORTED_UNIFY = ("linear", "zero_pad")


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class CandidateEmbedding(tf.keras.layers.Layer):
    """Looks up the N candidate embeddings of one field and unifies them to one dimension.

    AutoDim (Zhao et al., 2021) gives each feature field N candidate embedding
    dimensions d_1 < ... < d_N and learns which one to keep. This layer holds the
    candidates of one field during the search stage and returns all of them,
    brought to the common dimension d_N, so that a selector can mix them.

    Storage (§2.2.1):

    - `"shared"` (weight sharing): one table X of shape `[vocab_size, d_N]`;
      candidate n of value v is the first d_n numbers of its row,
      x^n = X[v, :d_n]. The front columns are trained by every candidate.
    - `"separate"`: one table X^n of shape `[vocab_size, d_n]` per candidate,
      x^n = X^n[v].

    Unifying the dimensions (§2.2.2):

    - `"linear"`: a dense map per candidate, shared by all values of the field,
      followed by BatchNorm over the batch (Eq. 1-2):

          x~^n = W_n^T x^n + b_n,   W_n in R^{d_n x d_N},  b_n in R^{d_N}
          x^^n = (x~^n - mu_B^n) / sqrt(var_B^n + eps)

    - `"zero_pad"`: BatchNorm of the raw candidate, then zeros up to d_N
      (Eq. 3-4), with no extra weights:

          x~^n = (x^n - mu_B^n) / sqrt(var_B^n + eps)
          x^^n = [x~^n, 0, ..., 0]   (d_N - d_n zeros)

    The N maps are stored as one kernel of shape `[d_N, N * d_N]` (shared
    storage: W_n in the first d_n rows of column block n) or `[d_1 + ... + d_N,
    N * d_N]` (separate storage: block diagonal) and one bias `[N * d_N]`, so
    the optimizer updates two weights per field, not 2N. The entries outside
    the blocks are zero and masked in the forward pass, so they stay zero;
    `candidate_unify_weights()` cuts out each (W_n, b_n).

    BatchNorm makes the candidates comparable in magnitude. It has no learned
    scale or shift (`center=False, scale=False`), so it cannot undo the selection
    weights applied afterwards. With `batch_norm=False` the normalisation is left
    out and x^^n = x~^n (linear) or the padded x^n (zero_pad).

    Rank scaling (`rank_scaling=True`, linear unify with BatchNorm): x^^n is
    multiplied by sqrt(d_n / d_N). After the linear map, candidate n spans only
    d_n of the d_N directions, yet BatchNorm gives each of its d_N outputs unit
    variance, so its variance per direction is d_N / d_n times that of the
    largest candidate. The first-order gradient of the loss in a selection
    weight is the correlation of that candidate's output with the loss
    gradient, and concentrated variance inflates it: without the scaling the
    search drifts to the smallest candidate in every field, informative or not
    (measured on the synthetic data, whose answer is known). With it every
    candidate has unit variance per direction it spans (total variance d_n),
    as with zero padding. It is a constant factor: it adds no weights and is
    not applied in the retrained model, whose linear map is trained anew.
    `rank_scaling=False` is the paper's Eq. 2 as written.

    Args:
        vocab_size: int, number of ids of the field; ids lie in `[0, vocab_size)`.
        candidates: sequence of int, the candidate dimensions d_1 < ... < d_N.
        storage: str, `"shared"` (one table of width d_N) or `"separate"`
            (one table per candidate).
        unify: str, `"linear"` (a dense map per candidate) or `"zero_pad"`.
        batch_norm: bool, whether each unified candidate is batch-normalised.
        rank_scaling: bool, multiply each batch-normalised linear candidate by
            sqrt(d_n / d_N) (see above). Ignored for zero padding and without
            BatchNorm.
        embeddings_initializer: initializer of the embedding table(s), by name,
            config or instance.
        embeddings_regularizer: regularizer of the embedding table(s), or None.
        **kwargs: base `tf.keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Input shape:
        Integer ids of shape `[batch]` or `[batch, 1]`.

    Output shape:
        Float tensor of shape `[batch, num_candidates, output_dim]`: slice
        `[:, n, :]` is the unified candidate n.

    Examples:

        >>> layer = CandidateEmbedding(vocab_size=10, candidates=(2, 4))
        >>> layer(tf.constant([1, 5, 7])).shape
        TensorShape([3, 2, 4])
        >>> layer.embedding_params
        40

    References:
        Xiangyu Zhao et al., "AutoDim: Field-aware Embedding Space Searching in
        Recommender Systems", WWW 2021 (also "Memory-efficient Embedding for
        Recommendations", arXiv:2006.14827).
    """

    def __init__(
        self,
        vocab_size: int,
        candidates: Sequence[int] = DEFAULT_CANDIDATES,
        storage: str = "shared",
        unify: str = "linear",
        batch_norm: bool = True,
        rank_scaling: bool = True,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not is_int(vocab_size) or vocab_size <= 0:
            raise ValueError(
                f"`vocab_size` must be a positive integer. Received: vocab_size={vocab_size!r}"
            )
        try:
            candidates = tuple(candidates)
        except TypeError:
            raise ValueError(
                "`candidates` must be a non-empty sequence of positive integers. "
                f"Received: candidates={candidates!r}"
            ) from None
        if not candidates:
            raise ValueError(f"`candidates` must not be empty. Received: candidates={candidates!r}")
        if not all(is_int(d) and d > 0 for d in candidates):
            raise ValueError(
                "`candidates` must contain only positive integers. "
                f"Received: candidates={candidates!r}"
            )
        if any(a >= b for a, b in zip(candidates, candidates[1:])):
            raise ValueError(
                "`candidates` must be strictly increasing (sorted, no duplicates). "
                f"Received: candidates={candidates!r}"
            )
        if storage not in SUPPORTED_STORAGE:
            raise ValueError(
                f"`storage` must be one of {SUPPORTED_STORAGE}. Received: storage={storage!r}"
            )
        if unify not in SUPPORTED_UNIFY:
            raise ValueError(f"`unify` must be one of {SUPPORTED_UNIFY}. Received: unify={unify!r}")
        if not isinstance(batch_norm, bool):
            raise ValueError(f"`batch_norm` must be a bool. Received: batch_norm={batch_norm!r}")
        if not isinstance(rank_scaling, bool):
            raise ValueError(
                f"`rank_scaling` must be a bool. Received: rank_scaling={rank_scaling!r}"
            )

        self.vocab_size = int(vocab_size)
        self.candidates = tuple(int(d) for d in candidates)
        self.storage = storage
        self.unify = unify
        self.batch_norm = batch_norm
        self.rank_scaling = rank_scaling
        self.embeddings_initializer = tf.keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = tf.keras.regularizers.get(embeddings_regularizer)
        # The unify maps are fixed to the usual dense-layer defaults.
        self._kernel_initializer = tf.keras.initializers.get("glorot_uniform")
        self._bias_initializer = tf.keras.initializers.get("zeros")

    @property
    def num_candidates(self) -> int:
        """The number N of candidate dimensions."""
        return len(self.candidates)

    @property
    def output_dim(self) -> int:
        """The common dimension d_N every candidate is unified to."""
        return self.candidates[-1]

    @property
    def embedding_params(self) -> int:
        """How many numbers the embedding table(s) hold (unify maps not counted)."""
        if self.storage == "shared":
            return self.vocab_size * self.output_dim
        return self.vocab_size * sum(self.candidates)

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank not in (1, 2) or (input_shape.rank == 2 and input_shape[-1] != 1):
            raise ValueError(
                "CandidateEmbedding expects ids of shape [batch] or [batch, 1]. "
                f"Received: input_shape={input_shape}"
            )
        d_max = self.output_dim
        if self.storage == "shared":
            self.tables = [
                self.add_weight(
                    name="candidate_table",
                    shape=(self.vocab_size, d_max),
                    initializer=clone_initializer(self.embeddings_initializer),
                    regularizer=self.embeddings_regularizer,
                    trainable=True,
                )
            ]
        else:
            self.tables = [
                self.add_weight(
                    name=f"candidate_table_{d}",
                    shape=(self.vocab_size, d),
                    initializer=clone_initializer(self.embeddings_initializer),
                    regularizer=self.embeddings_regularizer,
                    trainable=True,
                )
                for d in self.candidates
            ]

        self._unify_mask = None  # numpy; a constant of whichever graph calls the layer
        if self.unify == "linear":
            # All N maps in one kernel and one bias (see `_block_kernel`): one optimizer
            # update per field instead of 2N.
            mask = self._block_kernel([np.ones((d, d_max), np.float32) for d in self.candidates])
            self._unify_mask = mask
            self.unify_kernel = self.add_weight(
                name="unify_kernel",
                shape=mask.shape,
                initializer=self._initial_unify_kernel,
                trainable=True,
            )
            self.unify_bias = self.add_weight(
                name="unify_bias",
                shape=(self.num_candidates * d_max,),
                initializer=clone_initializer(self._bias_initializer),
                trainable=True,
            )

        # One BatchNorm over all candidates' columns at once: its statistics are per
        # column, so it is N BatchNorms, one per candidate (Eq. 2-3), in one op.
        self.batch_norm_layer = None
        if self.batch_norm:
            # Built for [batch, 1, 1, columns], so TensorFlow's fused kernel does it.
            self.batch_norm_layer = tf.keras.layers.BatchNormalization(
                center=False, scale=False, fused=True, dtype=self.dtype_policy, name="batch_norm"
            )
            with tf.name_scope(self.batch_norm_layer.name):
                self.batch_norm_layer.build((None, 1, 1, self._normalized_width()))
        super().build(input_shape)

    def call(self, ids: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
        return unify_candidates([self], [ids], training=training)[0]

    def _rows(self, ids: tf.Tensor) -> tf.Tensor:
        """The numbers the candidates of `ids` are read from, `[batch, d_in]`.

        Shared: candidate n is the prefix X[v, :d_n] of the row, and the unify
        reads the row; separate: the concatenation [X^1[v], ..., X^N[v]].
        """
        ids = tf.convert_to_tensor(ids)
        if not ids.dtype.is_integer:
            raise ValueError(f"CandidateEmbedding expects integer ids. Received: dtype={ids.dtype}")
        if ids.shape.rank == 2:
            ids = tf.squeeze(ids, axis=-1)
        rows = [tf.cast(tf.gather(table, ids), self.compute_dtype) for table in self.tables]
        return rows[0] if self.storage == "shared" else tf.concat(rows, axis=-1)

    def _computation(self) -> tuple:
        """What decides the function the layer computes, apart from its weights."""
        batch_norm = self.batch_norm_layer
        return (
            self.candidates, self.storage, self.unify, self.rank_scaling, self.compute_dtype,
            None if batch_norm is None else (batch_norm.momentum, batch_norm.epsilon),
        )  # fmt: skip

    def _normalized_width(self) -> int:
        """The number of columns BatchNorm normalises."""
        if self.unify == "linear":
            return self.num_candidates * self.output_dim
        if self.storage == "shared":
            return self.output_dim  # the candidates are prefixes of the same columns
        return sum(self.candidates)

    def _normalize(self, x: tf.Tensor, training) -> tf.Tensor:
        if self.batch_norm_layer is None:
            return x
        width = x.shape[-1]
        normalized = self.batch_norm_layer(tf.reshape(x, [-1, 1, 1, width]), training=training)
        return tf.reshape(normalized, [-1, width])

    def _block_kernel(self, kernels: Sequence[np.ndarray]) -> np.ndarray:
        """The one kernel that holds the N maps W_n ([d_n, d_N] each), as an array.

        Column block n (d_N columns) maps candidate n: with shared storage the
        input is the row X[v] of width d_N and x^n = X[v, :d_n] is its prefix, so
        W_n fills the first d_n rows of the block; with separate storage the
        input is the concatenation of the candidates and the kernel is block
        diagonal. Every other entry is zero.
        """
        d_max = self.output_dim
        rows = d_max if self.storage == "shared" else sum(self.candidates)
        kernel = np.zeros((rows, self.num_candidates * d_max), np.float32)
        offset = 0
        for n, (d, block) in enumerate(zip(self.candidates, kernels)):
            kernel[offset : offset + d, n * d_max : (n + 1) * d_max] = block
            if self.storage == "separate":
                offset += d
        return kernel

    def _initial_unify_kernel(self, shape, dtype=None) -> tf.Tensor:
        # Each W_n drawn as a [d_n, d_N] dense kernel of its own (glorot: fan-in d_n).
        blocks = [
            clone_initializer(self._kernel_initializer)((d, self.output_dim)).numpy()
            for d in self.candidates
        ]
        return tf.constant(self._block_kernel(blocks), dtype=dtype or tf.float32)

    def candidate_unify_weights(self) -> List[Tuple[tf.Tensor, tf.Tensor]]:
        """The unify map (W_n [d_n, d_N], b_n [d_N]) of each candidate (linear unify).

        Returns:
            A list of N `(kernel, bias)` pairs, cut out of the one kernel and
            bias the layer stores.
        """
        if self.unify != "linear":
            raise ValueError("Only the linear unify has weights. Received: unify='zero_pad'")
        d_max, offset, pairs = self.output_dim, 0, []
        for n, d in enumerate(self.candidates):
            columns = slice(n * d_max, (n + 1) * d_max)
            pairs.append(
                (self.unify_kernel[offset : offset + d, columns], self.unify_bias[columns])
            )
            if self.storage == "separate":
                offset += d
        return pairs

    def _zero_pad(self, inputs: tf.Tensor, training) -> tf.Tensor:
        """BatchNorm of each raw candidate, then zeros up to d_N."""
        d_max, dtype = self.output_dim, inputs.dtype
        normalized = self._normalize(inputs, training)
        if self.storage == "shared":
            # Candidate n is the first d_n normalised columns of the same row.
            mask = [[1.0] * d + [0.0] * (d_max - d) for d in self.candidates]
            return normalized[:, None, :] * tf.constant(mask, dtype=dtype)
        pieces = tf.split(normalized, list(self.candidates), axis=-1)
        padded = [tf.pad(x, [[0, 0], [0, d_max - d]]) for d, x in zip(self.candidates, pieces)]
        return tf.stack(padded, axis=1)

    def compute_output_shape(self, input_shape) -> tf.TensorShape:
        input_shape = tf.TensorShape(input_shape)
        return tf.TensorShape([input_shape[0], self.num_candidates, self.output_dim])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "candidates": list(self.candidates),
                "storage": self.storage,
                "unify": self.unify,
                "batch_norm": self.batch_norm,
                "rank_scaling": self.rank_scaling,
                "embeddings_initializer": tf.keras.initializers.serialize(
                    self.embeddings_initializer
                ),
                "embeddings_regularizer": tf.keras.regularizers.serialize(
                    self.embeddings_regularizer
                )
                if self.embeddings_regularizer is not None
                else None,
            }
        )
        return config


def unify_candidates(
    layers: Sequence[CandidateEmbedding], ids: Sequence[tf.Tensor], training=None
) -> tf.Tensor:
    """The unified candidates of several fields at once: each layer's output, stacked.

    A search model has a `CandidateEmbedding` per field, and called one by one
    they trace the same few dozen operations per field into every training
    step, forward and backward: on Criteo's 39 fields, 40% of the step's graph,
    which TensorFlow builds and optimises op by op before the first step runs.
    Here the fields share each op over a leading field axis (the unify
    products, the BatchNorm statistics, their moving averages); only the table
    lookups stay per field. `CandidateEmbedding.call` is this function for one
    field.

    The function of each field is that of its layer alone. The numbers can
    differ in the last bits of float32: a product or a sum batched over
    fields may run on another kernel and add in another order than the one
    of a single field, depending on the shapes.

    Args:
        layers: the built `CandidateEmbedding`s of the fields, which must agree
            on candidates, storage, unify, BatchNorm, rank scaling and dtype
            (their vocabularies may differ).
        ids: one id tensor per layer, each `[batch]` or `[batch, 1]`.
        training: bool or bool tensor, batch statistics (and their moving
            averages updated) or the moving ones.

    Returns:
        A tensor `[fields, batch, num_candidates, output_dim]`.

    Raises:
        ValueError: when the layers compute different functions.

    Examples:

        >>> layers = [CandidateEmbedding(10, (2, 4)), CandidateEmbedding(3, (2, 4))]
        >>> ids = [tf.constant([1, 5]), tf.constant([0, 2])]
        >>> alone = [layer(i, training=True) for layer, i in zip(layers, ids)]
        >>> together = unify_candidates(layers, ids, training=True)
        >>> together.shape.as_list()
        [2, 2, 2, 4]
        >>> float(tf.reduce_max(tf.abs(together - tf.stack(alone)))) < 1e-6
        True
    """
    first = layers[0]
    for layer in layers[1:]:
        if layer._computation() != first._computation():
            raise ValueError(
                "Fields unified together must have the same candidates, storage, unify, "
                f"BatchNorm, rank scaling and dtype. Received: {first.name!r} with "
                f"{first._computation()} and {layer.name!r} with {layer._computation()}"
            )
    rows = [layer._rows(field_ids) for layer, field_ids in zip(layers, ids)]
    if first.unify == "zero_pad":
        # No weights to share: BatchNorm's own (fused) kernel per field.
        return tf.stack([layer._zero_pad(row, training) for layer, row in zip(layers, rows)])
    inputs = tf.stack(rows)  # [fields, batch, d_in]
    # The mask keeps the entries outside the blocks at zero: their gradient is zero.
    kernel = tf.stack([tf.convert_to_tensor(layer.unify_kernel) for layer in layers])
    kernel = kernel * tf.constant(first._unify_mask, kernel.dtype)
    bias = tf.stack([tf.convert_to_tensor(layer.unify_bias) for layer in layers])
    if first.batch_norm_layer is None:
        dtype = inputs.dtype
        mapped = tf.matmul(inputs, tf.cast(kernel, dtype)) + tf.cast(bias, dtype)[:, None, :]
    else:
        mapped = _normalized_map(layers, inputs, kernel, bias, training)
    return tf.reshape(mapped, [len(layers), -1, first.num_candidates, first.output_dim])


def _normalized_map(layers, inputs, kernel, bias, training) -> tf.Tensor:
    """BatchNorm(x K + b), times the rank scaling, computed through K, for every field.

    Every column of y = x K + b is a linear function of the row x, so its
    batch statistics follow from those of x: mean(y) = mean(x) K + b and
    var(y) = diag(K^T C K), with C the [d_in, d_in] batch covariance of x.
    The normalised output is then one matmul with the kernel scaled per
    column, s = rsqrt(var + eps) (times sqrt(d_n / d_N) with rank scaling):

        BN(y) * r = x (K * s) + (b - mean(y)) * s

    This is the same function of x, K and b as a BatchNorm layer after the
    map (the gradient of b is exactly zero in training, as there), without
    a separate pass of normalisation over the [batch, N * d_N] outputs,
    which cost as much as everything else in the layer. Outside training
    the moving statistics take the place of the batch's, as in BatchNorm.
    The statistics are computed in float32. `inputs` is `[fields, batch,
    d_in]`, `kernel` `[fields, d_in, N * d_N]` and `bias` `[fields, N * d_N]`.
    """
    first = layers[0]
    batch_norms = [layer.batch_norm_layer for layer in layers]
    x = tf.cast(inputs, tf.float32)
    kernel = tf.cast(kernel, tf.float32)
    bias = tf.cast(bias, tf.float32)

    def batch_statistics():
        count = tf.cast(tf.shape(x)[1], tf.float32)
        mean_x = tf.reduce_mean(x, axis=1)
        centered = x - mean_x[:, None, :]
        covariance = tf.matmul(centered, centered, transpose_a=True) / count
        variance = tf.maximum(tf.reduce_sum(tf.matmul(covariance, kernel) * kernel, 1), 0.0)
        mean = tf.linalg.matvec(kernel, mean_x, transpose_a=True) + bias
        decay = 1.0 - first.batch_norm_layer.momentum
        # The moving variance is unbiased, as in the fused BatchNorm kernel.
        unbiased = variance * count / tf.maximum(count - 1.0, 1.0)
        for attribute, value in (("moving_mean", mean), ("moving_variance", unbiased)):
            moving = [getattr(batch_norm, attribute) for batch_norm in batch_norms]
            updates = (tf.stack(moving) - tf.stop_gradient(value)) * decay
            for variable, update in zip(moving, tf.unstack(updates)):
                variable.assign_sub(update)
        return mean, variance

    def moving_statistics():
        return (
            tf.stack([tf.convert_to_tensor(b.moving_mean) for b in batch_norms]),
            tf.stack([tf.convert_to_tensor(b.moving_variance) for b in batch_norms]),
        )

    if training is None:
        training = False
    mean, variance = static_cond(training, batch_statistics, moving_statistics)
    scale = tf.math.rsqrt(variance + first.batch_norm_layer.epsilon)
    if first.rank_scaling:
        factors = np.float32([(d / first.output_dim) ** 0.5 for d in first.candidates])
        scale *= tf.constant(np.repeat(factors, first.output_dim))  # one op, not tf.repeat's 28
    mapped = tf.matmul(x, kernel * scale[:, None, :]) + ((bias - mean) * scale)[:, None, :]
    return tf.cast(mapped, first.compute_dtype)
