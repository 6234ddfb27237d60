"""`FieldEmbeddings`: one embedding per feature field, for one stage of the method.

The same models serve three stages; only the embedding of each field changes:

- `"search"`: AutoDim's supernet, a `CandidateEmbedding` and a
  `DimensionGumbelSelector` per field; every field comes out at the largest
  candidate dimension d_N.
- `"plan"`: the retrain stage, a `PlannedEmbedding` per field with the
  dimension a `DimensionPlan` chose (a physically smaller table), unified to
  d_N only when the model needs equal dimensions (FM and DeepFM interactions).
- `"full"`: the full-dimension baseline, every field at one dimension.
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

from keras_dimsel.layers.candidate_embedding import CandidateEmbedding
from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector
from keras_dimsel.layers.planned_embedding import PlannedEmbedding

SUPPORTED_STAGES = ("search", "plan", "full")


class FieldEmbeddings(tf.keras.layers.Layer):
    """Embeds a dict of field ids into a list of per-field vectors.

    Args:
        vocab_sizes: dict of str to int, ids per field (OOV included), in
            model input order.
        stage: str, `"search"`, `"plan"` or `"full"`.
        candidates: tuple of int, the candidate dimensions (search; also the
            common dimension d_N = max(candidates) of plan models).
        storage: str, `"shared"` or `"separate"` candidate tables (search).
        unify: str, `"linear"` or `"zero_pad"` (search and plan).
        plan_dims: dict of str to int, the chosen dimension per field (plan).
        dim: int, the dimension of every field (full).
        equal_dims: bool, whether the model needs every field at the same
            dimension (interaction models).
        rank_scaling: bool, scale each linear candidate by sqrt(d_n / d_N)
            after BatchNorm (search; see `CandidateEmbedding`).
        hard: bool, straight-through one-hot selection during search.
        seed: int or None, the Gumbel noise seed.

    Input shape:
        A dict `{field: int ids of shape [batch]}`.

    Output shape:
        A list of `[batch, d_field]` tensors in field order.
    """

    def __init__(
        self,
        vocab_sizes: dict,
        stage: str = "full",
        candidates: Sequence[int] = (2, 8, 16, 24, 32),
        storage: str = "shared",
        unify: str = "linear",
        plan_dims: Optional[dict] = None,
        dim: int = 32,
        equal_dims: bool = True,
        rank_scaling: bool = True,
        hard: bool = False,
        seed: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if stage not in SUPPORTED_STAGES:
            raise ValueError(
                f"`stage` must be one of {SUPPORTED_STAGES}. Received: stage={stage!r}"
            )
        if stage == "plan" and not plan_dims:
            raise ValueError("`plan_dims` is required when stage='plan'.")
        self.vocab_sizes = dict(vocab_sizes)
        self.stage = stage
        self.candidates = tuple(int(c) for c in candidates)
        self.storage = storage
        self.unify = unify
        self.plan_dims = dict(plan_dims or {})
        self.dim = int(dim)
        self.equal_dims = equal_dims
        self.rank_scaling = rank_scaling
        self.hard = hard
        self.seed = seed
        self.embeddings = {}
        self.selectors = {}
        for index, (name, vocab_size) in enumerate(self.vocab_sizes.items()):
            if stage == "search":
                self.embeddings[name] = CandidateEmbedding(
                    vocab_size, self.candidates, storage=storage, unify=unify,
                    rank_scaling=rank_scaling, name=f"candidates_{name}",
                )  # fmt: skip
                self.selectors[name] = DimensionGumbelSelector(
                    len(self.candidates),
                    hard=hard,
                    seed=None if seed is None else seed + index,
                    name=f"selector_{name}",
                )
            elif stage == "plan":
                if name not in self.plan_dims:
                    raise ValueError(f"The plan has no dimension for field {name!r}.")
                self.embeddings[name] = PlannedEmbedding(
                    vocab_size,
                    self.plan_dims[name],
                    output_dim=max(self.candidates) if equal_dims else None,
                    unify=unify,
                    name=f"embedding_{name}",
                )
            else:
                self.embeddings[name] = PlannedEmbedding(
                    vocab_size, self.dim, name=f"embedding_{name}"
                )

    @property
    def output_dims(self) -> dict:
        """The dimension each field comes out at."""
        if self.stage == "search" or (self.stage == "plan" and self.equal_dims):
            return {name: max(self.candidates) for name in self.vocab_sizes}
        if self.stage == "plan":
            return dict(self.plan_dims)
        return {name: self.dim for name in self.vocab_sizes}

    @property
    def embedding_params(self) -> int:
        """Numbers held by the embedding tables (not the unify maps)."""
        return sum(int(layer.embedding_params) for layer in self.embeddings.values())

    def selection_probabilities(self) -> dict:
        """Per field, softmax(alpha) over the candidates (search stage only)."""
        return {name: s.probabilities().numpy().tolist() for name, s in self.selectors.items()}

    def call(self, ids: dict, training=None) -> list:
        outputs = []
        for name in self.vocab_sizes:
            embedded = self.embeddings[name](ids[name], training=training)
            if self.stage == "search":
                embedded = self.selectors[name](embedded, training=training)
            outputs.append(embedded)
        return outputs

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocab_sizes": self.vocab_sizes,
                "stage": self.stage,
                "candidates": list(self.candidates),
                "storage": self.storage,
                "unify": self.unify,
                "plan_dims": self.plan_dims,
                "dim": self.dim,
                "equal_dims": self.equal_dims,
                "rank_scaling": self.rank_scaling,
                "hard": self.hard,
                "seed": self.seed,
            }
        )
        return config
