"""`FM`: the factorization machine ranker."""

from __future__ import annotations

from keras_dimsel.models.base import CTRModel, LogitBias, pairwise_interaction


class FM(CTRModel):
    """Factorization machine: bias + first-order weights + pairwise inner products.

    logit = b + sum_i w[x_i] + sum_{i<j} <v_i, v_j>

    Takes the `CTRModel` arguments; every field needs the same dimension.

    Example:

    ```python
    model = FM(FeatureSpec.load("artifacts/synthetic"), stage="full", dim=16)
    ```

    References:
        Rendle, "Factorization Machines", ICDM 2010.
    """

    def __init__(self, spec, **kwargs):
        super().__init__(spec, **kwargs)
        self.bias = LogitBias(name="bias")

    def logit(self, ids, vectors, rows, training=None):
        return self.bias(self.linear_logit(ids) + pairwise_interaction(vectors))
