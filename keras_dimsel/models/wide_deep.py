"""`WideDeep`: the Wide & Deep ranker."""

from __future__ import annotations

import tensorflow as tf

from keras_dimsel.models.base import CTRModel, LogitBias, mlp


class WideDeep(CTRModel):
    """Wide & Deep: first-order weights plus an MLP over the concatenated embeddings.

    logit = b + sum_i w[x_i] + MLP([v_1, ..., v_M])

    The MLP takes the concatenation, so after a search the fields keep their
    own dimensions (no unify step at retrain time).

    Args:
        spec: FeatureSpec, the artifact.
        **kwargs: the other `CTRModel` arguments (stage, dim, plan_dims,
            hidden_units, dropout, ...).

    Examples:

        A retrained model whose plan keeps 8 numbers for `user` and `item`, 2 for the others:

        >>> import tempfile
        >>> from keras_dimsel.data import make_dataset, make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> plan_dims = {name: 8 if name in ("user", "item") else 2 for name in spec.field_names}
        >>> model = WideDeep(spec, stage="plan", plan_dims=plan_dims, candidates=(2, 8))
        >>> features, labels = next(iter(make_dataset(spec, "test", batch_size=4)))
        >>> print(model(features).shape)
        (4,)
        >>> model.deep.layers[0].kernel.shape  # the MLP reads 8 + 8 + 6 * 2 numbers
        TensorShape([28, 128])

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
