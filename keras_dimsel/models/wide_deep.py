"""`WideDeep`: the Wide & Deep ranker."""

from __future__ import annotations

import tensorflow as tf

from keras_dimsel.models.base import CTRModel, LogitBias, mlp


class WideDeep(CTRModel):
    """Wide & Deep: first-order weights plus an MLP over the concatenated embeddings.

    logit = b + sum_i w[x_i] + MLP([v_1, ..., v_M])

    The MLP takes the concatenation, so after a search the fields keep their
    own dimensions (no unify step at retrain time).

    Example:

    ```python
    model = WideDeep(FeatureSpec.load("artifacts/synthetic"), stage="full", dim=16)
    ```

    References:
        Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016.
    """

    equal_dims = False

    def __init__(self, spec, **kwargs):
        super().__init__(spec, **kwargs)
        self.bias = LogitBias(name="bias")
        self.deep = mlp(self.hidden_units, self.dropout, name="deep")

    def logit(self, ids, vectors, rows, training=None):
        deep = tf.reshape(self.deep(tf.concat(rows, axis=1), training=training), [-1])
        return self.bias(self.linear_logit(ids) + deep)
