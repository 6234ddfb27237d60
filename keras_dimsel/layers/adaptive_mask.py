"""`AdaptiveMaskTwinsLayer` (AMTL): a learnt embedding length for every feature value."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_dimsel.layers._utils import is_int
from keras_dimsel.layers.frequency_features import FEATURE_NAMES, LOG_COUNT_INDEX

#: The logit margin of `initial_length` over the other lengths. With D = 32 the
#: relaxed selection softmax(h / T) at T = 1 gives the start length e^3 / (e^3 + 31),
#: about 0.39 of its weight, so the gradient still reaches every other length.
INITIAL_LENGTH_MARGIN = 3.0


def prefix_mask(selection: tf.Tensor) -> tf.Tensor:
    """The mask m = t M of a selection t over the D lengths (M lower-triangular).

    `M[i][j] = 1` when `j <= i`, so `m[j] = sum_{i >= j} t[i]`: a one-hot t on
    index k keeps the first k + 1 entries. A soft t gives a soft, decreasing mask.
    """
    return tf.math.cumsum(selection, axis=-1, reverse=True)


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class AdaptiveMaskTwinsLayer(tf.keras.layers.Layer):
    """Masks each embedding to a learnt length from the frequency of its value.

    For a value f with embedding e_f in R^D and frequency attributes s_f in
    R^z, two MLPs of the same shape and no shared weights, h-AML and l-AML,
    map s_f to D logits each; they are mixed by a weight that grows with the
    value's frequency,

        a_f = sigmoid(norm(q_f)),    h_f = a_f * h_high(s_f) + (1 - a_f) * h_low(s_f)

    with norm(q_f) the log count standardised over the field's whole table
    (column `mixing_index` of s_f, as `FrequencyFeatures` provides it: the
    statistics are the table's, never the batch's). The length index is
    k_f = argmax h_f, the selection t_f = one_hot(k_f) and the mask
    m_f = t_f M keeps the first k_f + 1 entries: ehat_f = m_f * e_f.

    In training the selection is relaxed to softmax(h_f / T); with
    `straight_through=True` (AMTL) the forward pass uses the hard t_f and the
    gradient the soft one, stop_gradient(t_f - that_f) + that_f; with
    `straight_through=False` (AMTL-nSTE) training uses the soft mask. Outside
    training the mask is always the hard one. `twins=False` keeps h-AML only
    (the paper's single-branch AML ablation).

    With `initial_length=k` every value starts at length k: the branches'
    last kernels start at zero and their biases give length k a margin of
    `INITIAL_LENGTH_MARGIN` over the others, so h_f is the same for every
    value until the first update. A warm start with k = D (`run_amtl`'s
    `initial_length="full"`) computes, before training, exactly what the
    trained model did.

    Args:
        max_dim: int, D, the embedding dimension (the longest length).
        hidden_units: sequence of int, the hidden layers of each branch.
        activation: the hidden layers' activation.
        temperature: float > 0, T of the relaxed selection.
        straight_through: bool, the straight-through estimator (AMTL) or the
            soft mask in training (AMTL-nSTE).
        twins: bool, two branches mixed by frequency (AMTL) or one (AML).
        mixing_index: int, the column of the frequency features holding the
            standardised log count.
        kernel_initializer: initializer of the branches' kernels.
        initial_length: int in [1, D] or None, the length every value starts
            with; None starts from the random lengths of randomly initialised
            branches.

    Input shape:
        `[embeddings, frequency_features]`: `[batch, D]` and `[batch, z]`.

    Output shape:
        `[batch, D]`, the masked embeddings.

    Examples:

        >>> from keras_dimsel.layers import FrequencyFeatures
        >>> counts = [0, 50, 20, 5, 1]  # the train count of ids 0..4
        >>> features = FrequencyFeatures(counts)(tf.constant([1, 4]))  # [batch, 3]
        >>> amtl = AdaptiveMaskTwinsLayer(max_dim=8)
        >>> embeddings = tf.ones([2, 8])
        >>> print(amtl([embeddings, features], training=True).shape)  # straight-through mask
        (2, 8)
        >>> lengths = amtl.lengths(features)  # k + 1 per value, in [1, 8]
        >>> lengths.dtype.name
        'int32'
        >>> # Outside training the mask keeps exactly the first `lengths` entries.
        >>> masked = amtl([embeddings, features])
        >>> tf.reduce_sum(masked, axis=-1).numpy().tolist() == lengths.numpy().tolist()
        True

    References:
        Yan et al., "Learning Effective and Efficient Embedding via an
        Adaptively-Masked Twins-based Layer", CIKM 2021, §2.
    """

    def __init__(
        self,
        max_dim: int,
        hidden_units: Sequence[int] = (64,),
        activation: Any = "relu",
        temperature: float = 1.0,
        straight_through: bool = True,
        twins: bool = True,
        mixing_index: int = LOG_COUNT_INDEX,
        kernel_initializer: Any = "glorot_uniform",
        initial_length: Optional[int] = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not is_int(max_dim) or max_dim < 1:
            raise ValueError(f"`max_dim` must be a positive integer. Received: max_dim={max_dim!r}")
        hidden_units = tuple(hidden_units)
        if not all(is_int(u) and u > 0 for u in hidden_units):
            raise ValueError(
                f"`hidden_units` must be positive integers. Received: hidden_units={hidden_units!r}"
            )
        if (
            not isinstance(temperature, (int, float, np.floating, np.integer))
            or isinstance(temperature, bool)
            or not np.isfinite(temperature)
            or temperature <= 0
        ):
            raise ValueError(
                f"`temperature` must be a finite number > 0. Received: temperature={temperature!r}"
            )
        for name, value in (("straight_through", straight_through), ("twins", twins)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"`{name}` must be a boolean. Received: {name}={value!r}")
        if not is_int(mixing_index) or mixing_index < 0:
            raise ValueError(
                f"`mixing_index` must be an integer >= 0. Received: mixing_index={mixing_index!r}"
            )
        if initial_length is not None and (
            not is_int(initial_length) or not 1 <= initial_length <= max_dim
        ):
            raise ValueError(
                f"`initial_length` must be None or an integer in [1, max_dim={max_dim}]. "
                f"Received: initial_length={initial_length!r}"
            )
        self.initial_length = None if initial_length is None else int(initial_length)
        self.max_dim = int(max_dim)
        self.hidden_units = hidden_units
        self.activation = tf.keras.activations.get(activation)
        self.temperature = float(temperature)
        self.straight_through = bool(straight_through)
        self.twins = bool(twins)
        self.mixing_index = int(mixing_index)
        self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)
        self.high = self._branch("high")
        self.low = self._branch("low") if self.twins else None

    def _initializer(self):
        # A fresh instance per kernel: one unseeded instance gives every kernel the
        # same values, and the twins would start as copies of each other.
        return tf.keras.initializers.get(tf.keras.initializers.serialize(self.kernel_initializer))

    def _branch(self, name: str) -> tf.keras.Sequential:
        layers = [
            tf.keras.layers.Dense(
                units,
                activation=self.activation,
                kernel_initializer=self._initializer(),
                name=f"{name}_hidden_{i}",
            )
            for i, units in enumerate(self.hidden_units)
        ]
        kernel, bias = self._initializer(), "zeros"
        if self.initial_length is not None:
            kernel = "zeros"
            start = np.zeros(self.max_dim, np.float32)
            start[self.initial_length - 1] = INITIAL_LENGTH_MARGIN
            bias = tf.keras.initializers.Constant(start.tolist())
        layers.append(
            tf.keras.layers.Dense(
                self.max_dim,
                kernel_initializer=kernel,
                bias_initializer=bias,
                name=f"{name}_logits",
            )
        )
        return tf.keras.Sequential(layers, name=f"{name}_aml")

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(
                "AdaptiveMaskTwinsLayer expects [embeddings, frequency_features]. "
                f"Received input shape: {input_shape}"
            )
        embedding_shape, feature_shape = (tf.TensorShape(s) for s in input_shape)
        if embedding_shape[-1] != self.max_dim:
            raise ValueError(
                f"The embeddings have dimension {embedding_shape[-1]}, but the layer was built "
                f"for max_dim={self.max_dim}."
            )
        width = feature_shape[-1]
        if width is None or (self.twins and width <= self.mixing_index):
            raise ValueError(
                f"The frequency features have {width} column(s); the twins mix by column "
                f"{self.mixing_index} (the standardised log count, see FEATURE_NAMES "
                f"{FEATURE_NAMES})."
            )
        self.high.build(feature_shape)
        if self.low is not None:
            self.low.build(feature_shape)
        super().build(input_shape)

    def mixing_weight(self, frequency_features: tf.Tensor) -> tf.Tensor:
        """a_f = sigmoid(norm(q_f)), the weight of the high-frequency branch.

        Args:
            frequency_features: `[batch, z]` float tensor (`FrequencyFeatures`).

        Returns:
            A `[batch, 1]` tensor in (0, 1).
        """
        return tf.sigmoid(frequency_features[:, self.mixing_index : self.mixing_index + 1])

    def length_logits(self, frequency_features: tf.Tensor) -> tf.Tensor:
        """h_f, the logits of the D lengths.

        Args:
            frequency_features: `[batch, z]` float tensor (`FrequencyFeatures`).

        Returns:
            A `[batch, D]` tensor.
        """
        frequency_features = tf.cast(frequency_features, self.compute_dtype)
        high = self.high(frequency_features)
        if self.low is None:
            return high
        weight = self.mixing_weight(frequency_features)
        return weight * high + (1.0 - weight) * self.low(frequency_features)

    def selection(self, frequency_features: tf.Tensor, training=None) -> tf.Tensor:
        """The selection vector over the D lengths: hard t_f, or its relaxation in training.

        Args:
            frequency_features: `[batch, z]` float tensor (`FrequencyFeatures`).
            training: bool, bool tensor or None; None is inference (the hard selection).

        Returns:
            A `[batch, D]` tensor: one-hot t_f; in training with
            `straight_through` the same values with the gradient of
            softmax(h_f / T), without it softmax(h_f / T) itself.
        """
        logits = self.length_logits(frequency_features)
        hard = tf.one_hot(tf.argmax(logits, axis=-1), self.max_dim, dtype=logits.dtype)

        def relaxed():
            soft = tf.nn.softmax(logits / self.temperature, axis=-1)
            if not self.straight_through:
                return soft
            return tf.stop_gradient(hard - soft) + soft

        if training is None or isinstance(training, (bool, np.bool_)):
            return relaxed() if training else hard
        return tf.cond(tf.cast(training, tf.bool), relaxed, lambda: hard)

    def soft_lengths(self, frequency_features: tf.Tensor) -> tf.Tensor:
        """The training-time length sum_j m_f[j] of each value, `[batch]` float.

        With the straight-through estimator its value is the hard length
        k_f + 1 and its gradient that of the relaxed mask, so a penalty on it
        shortens the masks (see `FieldEmbeddings`' `length_penalty`).

        Args:
            frequency_features: `[batch, z]` float tensor (`FrequencyFeatures`).

        Returns:
            A `[batch]` float tensor.
        """
        return tf.reduce_sum(prefix_mask(self.selection(frequency_features, training=True)), -1)

    def lengths(self, frequency_features: tf.Tensor) -> tf.Tensor:
        """k_f + 1, the number of entries kept for each value.

        Args:
            frequency_features: `[batch, z]` float tensor (`FrequencyFeatures`)
                of the values.

        Returns:
            An int32 tensor of shape `[batch]`, each length in [1, D].
        """
        logits = self.length_logits(frequency_features)
        return tf.cast(tf.argmax(logits, axis=-1), tf.int32) + 1

    def call(self, inputs, training=None) -> tf.Tensor:
        embeddings, frequency_features = inputs
        mask = prefix_mask(self.selection(frequency_features, training=training))
        return embeddings * tf.cast(mask, embeddings.dtype)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "max_dim": self.max_dim,
                "hidden_units": list(self.hidden_units),
                "activation": tf.keras.activations.serialize(self.activation),
                "temperature": self.temperature,
                "straight_through": self.straight_through,
                "twins": self.twins,
                "mixing_index": self.mixing_index,
                "kernel_initializer": tf.keras.initializers.serialize(self.kernel_initializer),
                "initial_length": self.initial_length,
            }
        )
        return config
