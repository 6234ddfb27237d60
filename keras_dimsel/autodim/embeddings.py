"""`SearchEmbeddings`: AutoDim's supernet, candidate embeddings and a selector per field."""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

from keras_dimsel.autodim import DEFAULT_CANDIDATES
from keras_dimsel.layers._utils import scope_name
from keras_dimsel.layers.candidate_embedding import CandidateEmbedding, unify_candidates
from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector, select_candidates
from keras_dimsel.models.embeddings import FieldEmbeddings


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class SearchEmbeddings(FieldEmbeddings):
    """A `CandidateEmbedding` and a `DimensionGumbelSelector` per field.

    Every field comes out at the largest candidate dimension d_N: the
    Gumbel-softmax weighted sum of its unified candidates. The selectors'
    `alpha_logits` are the architecture weights `AlternatingSearch` trains on
    validation batches.

    Args:
        vocab_sizes: dict of str to int, ids per field, in model input order.
        candidates: tuple of int, the candidate dimensions d_1 < ... < d_N.
        storage: str, `"shared"` or `"separate"` candidate tables.
        unify: str, `"linear"` or `"zero_pad"`.
        rank_scaling: bool, scale each linear candidate by sqrt(d_n / d_N)
            after BatchNorm (see `CandidateEmbedding`).
        hard: bool, straight-through one-hot selection during search.
        seed: int or None, the Gumbel noise seed (field i draws with seed + i).
        **kwargs: base `Layer` arguments.

    Examples:

        >>> embeddings = SearchEmbeddings({"user": 10, "genre": 3}, candidates=(2, 4))
        >>> ids = {"user": tf.constant([1, 5]), "genre": tf.constant([0, 2])}
        >>> [v.shape.as_list() for v in embeddings(ids)]
        [[2, 4], [2, 4]]
        >>> embeddings.selection_probabilities()  # alpha before the search: equal weights
        {'user': [0.5, 0.5], 'genre': [0.5, 0.5]}
    """

    def __init__(
        self,
        vocab_sizes: dict,
        candidates: Sequence[int] = DEFAULT_CANDIDATES,
        storage: str = "shared",
        unify: str = "linear",
        rank_scaling: bool = True,
        hard: bool = False,
        seed: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(vocab_sizes, **kwargs)
        self.candidates = tuple(int(c) for c in candidates)
        self.storage = storage
        self.unify = unify
        self.rank_scaling = rank_scaling
        self.hard = hard
        self.seed = seed
        self.selectors = {}
        for index, (name, vocab_size) in enumerate(self.vocab_sizes.items()):
            self.embeddings[name] = CandidateEmbedding(
                vocab_size, self.candidates, storage=storage, unify=unify,
                rank_scaling=rank_scaling, name=f"candidates_{scope_name(name)}",
            )  # fmt: skip
            self.selectors[name] = DimensionGumbelSelector(
                len(self.candidates),
                hard=hard,
                seed=None if seed is None else seed + index,
                name=f"selector_{scope_name(name)}",
            )

    @property
    def output_dims(self) -> dict:
        return {name: max(self.candidates) for name in self.vocab_sizes}

    def selection_probabilities(self) -> dict:
        """Per field, softmax(alpha) over the candidates."""
        return {name: s.probabilities().numpy().tolist() for name, s in self.selectors.items()}

    def build(self, input_shape):
        # Built here, not by calls of their own: `call` computes all fields at once
        # from the layers' variables (`unify_candidates`, `select_candidates`).
        candidates_shape = (None, len(self.candidates), max(self.candidates))
        ids_shapes = input_shape if isinstance(input_shape, dict) else {}
        for name in self.vocab_sizes:
            for layer, shape in (
                (self.embeddings[name], ids_shapes.get(name, (None,))),
                (self.selectors[name], candidates_shape),
            ):
                with tf.name_scope(layer.name):
                    layer.build(shape)
        super().build(input_shape)

    def call(self, ids: dict, training=None, return_rows: bool = False):
        names = list(self.vocab_sizes)
        candidates = unify_candidates(
            [self.embeddings[name] for name in names], [ids[name] for name in names], training
        )
        selected = select_candidates([self.selectors[name] for name in names], candidates, training)
        outputs = tf.unstack(selected)
        return (outputs, outputs) if return_rows else outputs

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "candidates": list(self.candidates),
                "storage": self.storage,
                "unify": self.unify,
                "rank_scaling": self.rank_scaling,
                "hard": self.hard,
                "seed": self.seed,
            }
        )
        return config
