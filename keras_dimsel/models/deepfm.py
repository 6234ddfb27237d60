"""`DeepFM`: factorization machine and MLP over shared embeddings."""

from __future__ import annotations

import tensorflow as tf

from keras_dimsel.models.base import CTRModel, LogitBias, mlp, pairwise_interaction


class DeepFM(CTRModel):
    """DeepFM: the FM terms plus an MLP, both reading the same field embeddings.

    logit = b + sum_i w[x_i] + sum_{i<j} <v_i, v_j> + MLP([v_1, ..., v_M])

    Example:

    ```python
    model = DeepFM(FeatureSpec.load("artifacts/criteo"), stage="full", dim=32)
    ```

    References:
        Guo et al., "DeepFM: A Factorization-Machine based Neural Network for
        CTR Prediction", IJCAI 2017.
    """

    def __init__(self, spec, **kwargs):
        super().__init__(spec, **kwargs)
        self.bias = LogitBias(name="bias")
        self.deep = mlp(self.hidden_units, self.dropout, name="deep")

    def logit(self, ids, vectors, training=None):
        deep = tf.reshape(self.deep(tf.concat(vectors, axis=1), training=training), [-1])
        return self.bias(self.linear_logit(ids) + pairwise_interaction(vectors) + deep)
