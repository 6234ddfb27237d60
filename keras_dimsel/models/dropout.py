"""`CheckpointedDropout`: dropout whose random state is a variable of the layer."""

from __future__ import annotations

import random
from typing import Optional

import numpy as np
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class CheckpointedDropout(tf.keras.layers.Layer):
    """Dropout drawn by stateless ops keyed by a `[seed, counter]` weight.

    Keras's `Dropout` keeps its random state inside TensorFlow ops (or a
    generator that a `Sequential` model does not checkpoint), so a training
    run restored from a checkpoint would draw other masks than the run it
    continues. Here the counter is a non-trainable weight that moves once per
    training call: the model's checkpoint holds it, and a restored run draws
    exactly the masks the uninterrupted run would have drawn. Outside
    training the layer passes its inputs through.

    Args:
        rate: float in [0, 1), the fraction of units dropped during training.
        seed: int or None, the seed of the masks; None draws one from Python's
            `random` (seeded by `tf.keras.utils.set_random_seed`).
        **kwargs: base `Layer` arguments.

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Examples:

        >>> layer = CheckpointedDropout(0.5, seed=1)
        >>> x = tf.ones([2, 4])
        >>> bool(tf.reduce_all(layer(x) == x))  # not training: the identity
        True
        >>> y = layer(x, training=True)  # kept units are scaled by 1 / (1 - rate)
        >>> sorted(set(y.numpy().ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
        >>> layer.noise_seed.numpy().tolist()  # one training call so far
        [1, 1]
    """

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float, np.floating))
            or not 0 <= rate < 1
        ):
            raise ValueError(f"`rate` must be a number in [0, 1). Received: rate={rate!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
        self.rate = float(rate)
        self.seed = seed
        self.supports_masking = True

    def build(self, input_shape):
        seed = self.seed if self.seed is not None else random.randrange(2**31)
        self.noise_seed = self.add_weight(
            name="noise_seed",
            shape=(2,),
            dtype="int64",
            initializer=tf.keras.initializers.Constant([seed, 0]),
            trainable=False,
            # Replicas share the counter; the replica id is folded into the seed.
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        super().build(input_shape)

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        seed = self.noise_seed.assign_add(tf.constant([0, 1], tf.int64))
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
