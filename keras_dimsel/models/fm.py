"""`FM`: the factorization machine ranker."""

from __future__ import annotations

from keras_dimsel.models.base import CTRModel, LogitBias, pairwise_interaction


class FM(CTRModel):
    """Factorization machine: bias + first-order weights + pairwise inner products.

    logit = b + sum_i w[x_i] + sum_{i<j} <v_i, v_j>

    Takes the `CTRModel` arguments; every field needs the same dimension.

    Args:
        spec: FeatureSpec, the artifact.
        **kwargs: the other `CTRModel` arguments (stage, dim, plan_dims, ...).

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_dataset, make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = FM(spec, stage="full", dim=16)
        >>> features, labels = next(iter(make_dataset(spec, "test", batch_size=4)))
        >>> print(model(features).shape)  # click probabilities
        (4,)
        >>> model.embedding_params  # 376 ids over the 8 fields, 16 numbers each
        6016

    References:
        Rendle, "Factorization Machines", ICDM 2010.
    """

    def __init__(self, spec, **kwargs):
        super().__init__(spec, **kwargs)
        self.bias = LogitBias(name="bias")

    def logit(self, ids, vectors, rows, training=None):
        return self.bias(self.linear_logit(ids) + pairwise_interaction(vectors))
