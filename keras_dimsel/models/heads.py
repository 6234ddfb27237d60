"""The rankers' heads: FM, Wide & Deep and DeepFM, from field ids and vectors to a logit.

A head gets the ids of every field (for the first-order weights), the field
vectors at the common dimension the interactions need (`vectors`) and the
same fields at their own dimensions (`rows`, what an MLP over the
concatenation reads; they differ only after an AutoDim search).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from keras_dimsel.layers._utils import scope_name
from keras_dimsel.models.dropout import CheckpointedDropout

DEFAULT_HIDDEN_UNITS = (128, 128)
DEFAULT_DROPOUT = 0.2


def mlp(hidden_units: Sequence[int], dropout: float, name: str) -> tf.keras.Sequential:
    """The papers' tower: Dense, BatchNorm, ReLU, Dropout per layer, then one logit."""
    layers = []
    for units in hidden_units:
        layers += [
            tf.keras.layers.Dense(units, use_bias=False),
            tf.keras.layers.BatchNormalization(),
            tf.keras.layers.ReLU(),
            CheckpointedDropout(dropout),
        ]
    layers.append(tf.keras.layers.Dense(1))
    return tf.keras.Sequential(layers, name=name)


def pairwise_interaction(vectors: Sequence[tf.Tensor]) -> tf.Tensor:
    """FM's second-order term, sum_{i<j} <v_i, v_j>, in O(M * d): [batch].

    Examples:

        >>> v = [tf.constant([[1.0, 2.0]]), tf.constant([[3.0, 0.0]]), tf.constant([[1.0, 1.0]])]
        >>> pairwise_interaction(v).numpy().tolist()  # 3 + 3 + 3
        [9.0]
    """
    stacked = tf.stack(vectors, axis=1)
    square_of_sum = tf.square(tf.reduce_sum(stacked, axis=1))
    sum_of_squares = tf.reduce_sum(tf.square(stacked), axis=1)
    return 0.5 * tf.reduce_sum(square_of_sum - sum_of_squares, axis=1)


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class LogitBias(tf.keras.layers.Layer):
    """Adds one learned scalar to the logits (a layer, so it can be frozen like the rest)."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")
        super().build(input_shape)

    def call(self, logits: tf.Tensor) -> tf.Tensor:
        return logits + self.bias


class Head(tf.keras.layers.Layer):
    """Base of the heads: first-order weights per field value and a logit bias.

    Args:
        vocab_sizes: dict of str to int, ids per field, in model input order.
        **kwargs: base `Layer` arguments.

    Input shape:
        `(ids, vectors, rows)`: a dict of `[batch]` ids per field, and two
        lists of `[batch, d]` field vectors (see the module docstring).

    Output shape:
        `[batch]` logits.

    Examples:

        A head of one's own, logistic regression on the first-order weights:

        >>> class FirstOrderHead(Head):
        ...     def call(self, ids, vectors, rows, training=None):
        ...         return self.bias(self.linear_logit(ids))
        >>> head = FirstOrderHead({"user": 10})
        >>> head({"user": tf.constant([1, 2])}, [], []).numpy().tolist()
        [0.0, 0.0]
    """

    #: whether the interaction needs every field at the same dimension
    equal_dims = True

    def __init__(self, vocab_sizes: dict, **kwargs):
        super().__init__(**kwargs)
        self.vocab_sizes = {str(name): int(size) for name, size in vocab_sizes.items()}
        self.first_order = {
            name: tf.keras.layers.Embedding(
                size, 1, embeddings_initializer="zeros", name=f"linear_{scope_name(name)}"
            )
            for name, size in self.vocab_sizes.items()
        }
        self.bias = LogitBias(name="bias")

    def linear_logit(self, ids: dict) -> tf.Tensor:
        """The first-order (wide) term: one learned weight per field value, summed: [batch]."""
        terms = [tf.reshape(self.first_order[n](ids[n]), [-1]) for n in self.vocab_sizes]
        return tf.add_n(terms)

    def parts(self) -> dict:
        """The head's trained parts by name (the keys of `CTRModel.network_weights`)."""
        return {"first_order": self.first_order, "bias": self.bias}

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_sizes": dict(self.vocab_sizes)}


class _DeepHead(Head):
    """A head with an MLP (`deep`) over the concatenated field rows."""

    def __init__(
        self,
        vocab_sizes: dict,
        hidden_units: Sequence[int] = DEFAULT_HIDDEN_UNITS,
        dropout: float = DEFAULT_DROPOUT,
        **kwargs,
    ):
        super().__init__(vocab_sizes, **kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        self.deep = mlp(self.hidden_units, self.dropout, name="deep")

    def deep_logit(self, rows: list, training=None) -> tf.Tensor:
        return tf.reshape(self.deep(tf.concat(rows, axis=1), training=training), [-1])

    def parts(self) -> dict:
        return {**super().parts(), "deep": self.deep}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"hidden_units": list(self.hidden_units), "dropout": self.dropout})
        return config


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class FMHead(Head):
    """Factorization machine: bias + first-order weights + pairwise inner products.

    logit = b + sum_i w[x_i] + sum_{i<j} <v_i, v_j>

    Every field needs the same dimension.

    Examples:

        >>> head = FMHead({"user": 10, "genre": 3})
        >>> ids = {"user": tf.constant([1]), "genre": tf.constant([2])}
        >>> vectors = [tf.constant([[1.0, 2.0]]), tf.constant([[3.0, 1.0]])]
        >>> head(ids, vectors, vectors).numpy().tolist()  # zero weights and bias at the start
        [5.0]

    References:
        Rendle, "Factorization Machines", ICDM 2010.
    """

    def call(self, ids: dict, vectors: list, rows: list, training=None) -> tf.Tensor:
        return self.bias(self.linear_logit(ids) + pairwise_interaction(vectors))


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class WideDeepHead(_DeepHead):
    """Wide & Deep: first-order weights plus an MLP over the concatenated embeddings.

    logit = b + sum_i w[x_i] + MLP([v_1, ..., v_M])

    The MLP takes the concatenation, so after a search the fields keep their
    own dimensions (no unify step at retrain time).

    Args:
        vocab_sizes: dict of str to int, ids per field.
        hidden_units: tuple of int, the MLP's layers.
        dropout: float, the MLP's dropout rate.

    Examples:

        After a search the fields come at their own dimensions; the MLP reads them all:

        >>> head = WideDeepHead({"user": 10, "genre": 3}, hidden_units=(4,))
        >>> ids = {"user": tf.constant([1]), "genre": tf.constant([2])}
        >>> rows = [tf.ones([1, 8]), tf.ones([1, 2])]
        >>> head(ids, rows, rows).shape.as_list(), head.deep.layers[0].kernel.shape
        ([1], TensorShape([10, 4]))

    References:
        Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016.
    """

    equal_dims = False

    def call(self, ids: dict, vectors: list, rows: list, training=None) -> tf.Tensor:
        deep = self.deep_logit(rows, training=training)
        return self.bias(self.linear_logit(ids) + deep)


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class DeepFMHead(_DeepHead):
    """DeepFM: the FM terms plus an MLP, both reading the same field embeddings.

    logit = b + sum_i w[x_i] + sum_{i<j} <v_i, v_j> + MLP([e_1, ..., e_M])

    v_i is field i at the common dimension the inner products need and e_i
    the field's own row. They are the same vector except after a search: a
    retrained model unifies each planned row e_i to v_i only for the FM term,
    and its MLP reads the concatenation of the planned rows, so its first
    layer is as small as the plan.

    Args:
        vocab_sizes: dict of str to int, ids per field.
        hidden_units: tuple of int, the MLP's layers.
        dropout: float, the MLP's dropout rate.

    Examples:

        >>> head = DeepFMHead({"user": 10, "genre": 3}, hidden_units=(4,))
        >>> ids = {"user": tf.constant([1]), "genre": tf.constant([2])}
        >>> vectors = [tf.ones([1, 8]), tf.ones([1, 8])]
        >>> rows = [tf.ones([1, 8]), tf.ones([1, 2])]  # a planned row of 2 numbers
        >>> head(ids, vectors, rows).shape.as_list(), head.deep.layers[0].kernel.shape
        ([1], TensorShape([10, 4]))

    References:
        Guo et al., "DeepFM: A Factorization-Machine based Neural Network for
        CTR Prediction", IJCAI 2017.
    """

    def call(self, ids: dict, vectors: list, rows: list, training=None) -> tf.Tensor:
        deep = self.deep_logit(rows, training=training)
        return self.bias(self.linear_logit(ids) + pairwise_interaction(vectors) + deep)


#: The heads by model name.
HEADS = {"fm": FMHead, "wide_deep": WideDeepHead, "deepfm": DeepFMHead}
