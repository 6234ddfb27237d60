"""`FieldEmbeddings`: one embedding per feature field, for one stage of the method.

The same models serve three stages; only the embedding of each field changes:

- `"search"`: AutoDim's supernet, a `CandidateEmbedding` and a
  `DimensionGumbelSelector` per field; every field comes out at the largest
  candidate dimension d_N.
- `"plan"`: the retrain stage, a `PlannedEmbedding` per field with the
  dimension a `DimensionPlan` chose (a physically smaller table), unified to
  d_N only when the model needs equal dimensions (FM and DeepFM interactions).
- `"full"`: the full-dimension baseline, every field at one dimension.
- `"amtl"`: value-level dimensions, every field at one dimension D, and the
  chosen fields masked by an `AdaptiveMaskTwinsLayer` fed with the
  `FrequencyFeatures` of each id.
- `"compact"`: the serving form of an AMTL model: the masked fields keep only
  each row's chosen length (`CompactMaskedEmbedding`), with no mask network.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_dimsel.layers.adaptive_mask import AdaptiveMaskTwinsLayer
from keras_dimsel.layers.candidate_embedding import CandidateEmbedding
from keras_dimsel.layers.compact_embedding import CompactMaskedEmbedding
from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector
from keras_dimsel.layers.frequency_features import FrequencyFeatures
from keras_dimsel.layers.planned_embedding import PlannedEmbedding

SUPPORTED_STAGES = ("search", "plan", "full", "amtl", "compact")


class FieldEmbeddings(tf.keras.layers.Layer):
    """Embeds a dict of field ids into a list of per-field vectors.

    Args:
        vocab_sizes: dict of str to int, ids per field (OOV included), in
            model input order.
        stage: str, one of `SUPPORTED_STAGES`: `"search"`, `"plan"`, `"full"`,
            `"amtl"` or `"compact"`.
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
        value_counts: dict of str to list of int, the train count of every id
            of each masked field (amtl); its keys are the masked fields.
        amtl_options: dict, `AdaptiveMaskTwinsLayer` arguments (hidden_units,
            temperature, straight_through, twins) for every masked field (amtl).
        value_lengths: dict of str to list of int, the kept length of every
            id of each masked field (compact).
        length_penalty: float >= 0, lambda of the memory term (amtl). In
            training it adds, per masked field,

                lambda * mean_f (k_f + 1) / D,   f over the field's ids (see penalty_sample)

            to the loss: the average length over the field's values, each
            value counted once whatever its frequency, which is what the
            compact table stores. 0 is the paper's objective (no memory term).
        penalty_sample: int, the ids that average is taken over: evenly spaced
            over the vocabulary, which is sorted by frequency, so every
            frequency range is represented and no random state is involved.

    Input shape:
        A dict `{field: int ids of shape [batch]}`.

    Output shape:
        A list of `[batch, d_field]` tensors in field order; with
        `return_rows=True` a pair of such lists (see `call`).
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
        value_counts: Optional[dict] = None,
        amtl_options: Optional[dict] = None,
        value_lengths: Optional[dict] = None,
        length_penalty: float = 0.0,
        penalty_sample: int = 1024,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if stage not in SUPPORTED_STAGES:
            raise ValueError(
                f"`stage` must be one of {SUPPORTED_STAGES}. Received: stage={stage!r}"
            )
        if stage == "plan" and not plan_dims:
            raise ValueError("`plan_dims` is required when stage='plan'.")
        masked = {"amtl": value_counts, "compact": value_lengths}.get(stage)
        if stage in ("amtl", "compact"):
            argument = "value_counts" if stage == "amtl" else "value_lengths"
            if not masked:
                raise ValueError(f"`{argument}` is required when stage={stage!r}.")
            unknown = [name for name in masked if name not in vocab_sizes]
            if unknown:
                raise ValueError(
                    f"`{argument}` names field(s) {unknown} that are not among the fields "
                    f"{list(vocab_sizes)}."
                )
            for name, values in masked.items():
                if len(values) != vocab_sizes[name]:
                    raise ValueError(
                        f"`{argument}` of field {name!r} has {len(values)} entries for "
                        f"{vocab_sizes[name]} ids."
                    )
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
        self.value_counts = {k: [int(c) for c in v] for k, v in (value_counts or {}).items()}
        self.amtl_options = dict(amtl_options or {})
        self.value_lengths = {k: [int(n) for n in v] for k, v in (value_lengths or {}).items()}
        if not (isinstance(length_penalty, (int, float)) and 0 <= length_penalty < float("inf")):
            raise ValueError(
                "`length_penalty` must be a number >= 0. "
                f"Received: length_penalty={length_penalty!r}"
            )
        self.length_penalty = float(length_penalty)
        self.penalty_sample = int(penalty_sample)
        self.embeddings = {}
        self.selectors = {}
        self.frequencies = {}
        self.masks = {}
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
            elif stage == "compact" and name in self.value_lengths:
                self.embeddings[name] = CompactMaskedEmbedding(
                    self.value_lengths[name], self.dim, name=f"compact_{name}"
                )
            else:
                self.embeddings[name] = PlannedEmbedding(
                    vocab_size, self.dim, name=f"embedding_{name}"
                )
                if stage == "amtl" and name in self.value_counts:
                    self.frequencies[name] = FrequencyFeatures(
                        self.value_counts[name], name=f"frequency_{name}"
                    )
                    self.masks[name] = AdaptiveMaskTwinsLayer(
                        self.dim, name=f"amtl_{name}", **self.amtl_options
                    )

    @property
    def masked_fields(self) -> list:
        """The fields with value-level lengths (amtl and compact stages)."""
        return list(self.value_counts or self.value_lengths)

    def value_lengths_now(self) -> dict:
        """Per masked field, the length each id gets now: `[V]` int arrays (amtl stage)."""
        lengths = {}
        for name, mask in self.masks.items():
            frequencies = self.frequencies[name]
            ids = tf.range(frequencies.vocab_size)
            lengths[name] = mask.lengths(frequencies(ids)).numpy().astype(np.int64)
        return lengths

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

    def call(self, ids: dict, training=None, return_rows: bool = False):
        """Embeds every field.

        Returns the list of field vectors, at the common dimension where the
        model needs equal dimensions. With `return_rows=True` returns
        `(vectors, rows)`, where `rows` are the same fields before unifying: in
        the plan stage each at its planned dimension (what an MLP over the
        concatenation reads: the linear unify would add only a linear map
        before its first layer, and the zero padding only zeros), in the
        other stages the vectors themselves.
        """
        outputs = []
        rows = []
        for name in self.vocab_sizes:
            if self.stage == "plan":
                embedded, row = self.embeddings[name](ids[name], return_rows=True)
                outputs.append(embedded)
                rows.append(row)
                continue
            embedded = self.embeddings[name](ids[name], training=training)
            if self.stage == "search":
                embedded = self.selectors[name](embedded, training=training)
            elif name in self.masks:
                features = self.frequencies[name](ids[name])
                embedded = self.masks[name]([embedded, features], training=training)
                if self.length_penalty > 0 and isinstance(training, bool) and training:
                    self.add_loss(self._length_cost(name))
            outputs.append(embedded)
            rows.append(embedded)
        return (outputs, rows) if return_rows else outputs

    def _length_cost(self, name: str) -> tf.Tensor:
        """lambda * the average length / D over evenly spaced ids of a masked field."""
        frequencies = self.frequencies[name]
        size = min(self.penalty_sample, frequencies.vocab_size)
        # Deterministic, unlike a random draw a checkpoint could not restore.
        ids = np.round(np.linspace(0, frequencies.vocab_size - 1, size)).astype(np.int64)
        lengths = self.masks[name].soft_lengths(frequencies(ids))
        return self.length_penalty * tf.reduce_mean(lengths) / self.dim

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
                "value_counts": self.value_counts or None,
                "amtl_options": self.amtl_options or None,
                "value_lengths": self.value_lengths or None,
                "length_penalty": self.length_penalty,
                "penalty_sample": self.penalty_sample,
            }
        )
        return config
