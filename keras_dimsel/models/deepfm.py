"""`DeepFM`: factorization machine and MLP over shared embeddings."""

from __future__ import annotations

import tensorflow as tf

from keras_dimsel.models.base import CTRModel, LogitBias, mlp, pairwise_interaction


class DeepFM(CTRModel):
    """DeepFM: the FM terms plus an MLP, both reading the same field embeddings.

    logit = b + sum_i w[x_i] + sum_{i<j} <v_i, v_j> + MLP([e_1, ..., e_M])

    v_i is field i at the common dimension the inner products need and e_i
    the field's own row. They are the same vector except after a search: a
    retrained (plan stage) model unifies each planned row e_i to v_i only for
    the FM term, and its MLP reads the concatenation of the planned rows, so
    its first layer is as small as the plan (unifying first would only put a
    linear map, or zero columns, before that layer).

    Args:
        spec: FeatureSpec, the artifact.
        **kwargs: the other `CTRModel` arguments (stage, dim, plan_dims,
            hidden_units, dropout, ...).

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_dataset, make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = DeepFM(spec, stage="full", dim=8, hidden_units=(16,))
        >>> features, labels = next(iter(make_dataset(spec, "test", batch_size=4)))
        >>> print(model(features).shape)
        (4,)
        >>> model.deep.layers[0].kernel.shape  # 8 fields * dim 8 into 16 units
        TensorShape([64, 16])

    References:
        Guo et al., "DeepFM: A Factorization-Machine based Neural Network for
        CTR Prediction", IJCAI 2017.
    """

    def __init__(self, spec, **kwargs):
        super().__init__(spec, **kwargs)
        self.bias = LogitBias(name="bias")
        self.deep = mlp(self.hidden_units, self.dropout, name="deep")

    def logit(self, ids, vectors, rows, training=None):
        # The interactions need equal dimensions; the MLP reads each field at
        # its own (after a search, planned) dimension.
        deep = tf.reshape(self.deep(tf.concat(rows, axis=1), training=training), [-1])
        return self.bias(self.linear_logit(ids) + pairwise_interaction(vectors) + deep)
