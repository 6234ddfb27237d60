"""`DimensionPlan`: the embedding dimension chosen for each field, and its JSON file.

The plan is what the search stage hands to the retrain stage (`RUN/plan.json`).
It is plain Python, so reading or writing a plan does not load TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from keras_dimsel import _io
from keras_dimsel.autodim._plan_checks import (
    is_int,
    per_candidate,
    validate_candidates,
    validate_vocab_sizes,
    validate_weights,
    vocab_of,
)
from keras_dimsel.autodim.knapsack import choose_within

PLAN_FILE = "plan.json"
#: How a search derives its plan: argmax of alpha, or probing the searched model.
DERIVE_METHODS = ("alpha", "probe")

# The keys of plan.json, in the order they are written.
PLAN_KEYS = (
    "fields",
    "candidates",
    "embedding_params",
    "full_embedding_params",
    "alpha",
    "probe_loss",
    "vocab_sizes",
)
# The validation-loss tolerance of `from_losses`: a larger candidate must lower the
# field's probe loss by more than this to be chosen.
DEFAULT_TOLERANCE = 0.002


@dataclasses.dataclass(frozen=True)
class DimensionPlan:
    """The embedding dimension of each feature field, chosen among candidates.

    AutoDim derives the dimension of field m from its architecture weights
    alpha_m (Eq. 13 of the paper):

        d(m) = d_k,   k = argmax_n alpha_m^n

    The retrain stage then builds a physically smaller table [V_m, d(m)] per
    field. The plan also counts the embedding parameters this saves against the
    full-dimension model, where every field uses the largest candidate d_N:

        embedding_params      = sum_m V_m * d(m)
        full_embedding_params = sum_m V_m * d_N
        saving                = 1 - embedding_params / full_embedding_params

    Args:
        fields: dict of str to int, the chosen dimension of each field, in
            field order. Every dimension must be one of `candidates`.
        candidates: tuple of int, the candidate dimensions d_1 < ... < d_N.
        vocab_sizes: dict of str to int, the number of ids (rows) of each
            field; exactly the fields of `fields`.
        alpha: dict of str to list of float, the selection probabilities of
            each field over the candidates, for reporting. Either empty (a plan
            written by hand) or one entry per field of length N.
        probe_loss: dict of str to list of float, the validation loss of each
            field at each candidate when the plan was derived by probing
            (`from_losses`); empty otherwise.

    Raises:
        ValueError: on invalid candidates, dimensions, vocabulary sizes or
            alpha lengths, with a message naming the field at fault.

    Examples:

        >>> import tempfile
        >>> plan = DimensionPlan.from_alpha(
        ...     {"user": [0.1, 0.7, 0.2], "genre": [0.6, 0.3, 0.1]},
        ...     candidates=(2, 4, 8),
        ...     vocab_sizes={"user": 1000, "genre": 20},
        ... )
        >>> plan.fields
        {'user': 4, 'genre': 2}
        >>> plan.embedding_params, plan.full_embedding_params  # 1000 * 4 + 20 * 2, 1020 * 8
        (4040, 8160)
        >>> path = plan.save(tempfile.mkdtemp())  # a directory: writes plan.json inside
        >>> DimensionPlan.load(path) == plan
        True

    References:
        Zhao et al., "AutoDim: Field-aware Embedding Space Searching in
        Recommender Systems", WWW 2021, §2.4 (Algorithm 2, Eq. 13).
    """

    fields: Dict[str, int]
    candidates: Tuple[int, ...]
    vocab_sizes: Dict[str, int]
    alpha: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
    probe_loss: Dict[str, List[float]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        candidates = validate_candidates(self.candidates)
        if not isinstance(self.fields, Mapping) or not self.fields:
            raise ValueError(
                f"`fields` must be a non-empty dict of field name to dimension. "
                f"Received: fields={self.fields!r}"
            )
        fields = {}
        for name, dim in self.fields.items():
            if not is_int(dim) or int(dim) not in candidates:
                raise ValueError(
                    f"The dimension of field {name!r} must be one of the candidates "
                    f"{candidates}. Received: {dim!r}"
                )
            fields[name] = int(dim)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "candidates", candidates)
        object.__setattr__(self, "vocab_sizes", validate_vocab_sizes(self.vocab_sizes, fields))
        object.__setattr__(self, "alpha", validate_weights(self.alpha, fields, candidates))
        object.__setattr__(
            self,
            "probe_loss",
            validate_weights(self.probe_loss, fields, candidates, "probe_loss"),
        )

    @classmethod
    def from_alpha(
        cls,
        alpha: Mapping[str, Sequence[float]],
        candidates: Sequence[int],
        vocab_sizes: Mapping[str, int],
        budget: Optional[float] = None,
    ) -> DimensionPlan:
        """Derives the plan from the architecture weights (Eq. 13).

        The dimension of field m is `candidates[argmax alpha[m]]`. When two
        candidates tie for the largest weight, the smaller dimension wins: it
        is the cheaper choice and the search gave no reason to pay for more.

        Args:
            alpha: dict of str to sequence of float, the selection weights of
                each field (softmax of its logits), in field order. Array-likes
                such as NumPy arrays or eager tensors are accepted.
            candidates: sequence of int, d_1 < ... < d_N.
            vocab_sizes: dict of str to int, the number of ids of each field.
                Fields absent from `alpha` are ignored (they were not searched).
            budget: float in (0, 1] or None; when given, the plan is fitted to
                that fraction of the full model's embedding parameters (see
                `within_budget`).

        Returns:
            The DimensionPlan, with `alpha` kept for reporting.

        Raises:
            ValueError: on invalid candidates or alpha, or a field of `alpha`
                without a vocabulary size.

        Examples:

            >>> plan = DimensionPlan.from_alpha(
            ...     {"user": [0.1, 0.7, 0.2], "genre": [0.4, 0.4, 0.2]},  # genre: a tie
            ...     candidates=(2, 4, 8),
            ...     vocab_sizes={"user": 1000, "genre": 20, "unsearched": 5},
            ... )
            >>> plan.fields
            {'user': 4, 'genre': 2}
        """
        candidates = validate_candidates(candidates)
        weights = {name: per_candidate(v, name, candidates, "alpha") for name, v in alpha.items()}
        fields = {}
        for name, values in weights.items():
            # The first maximum is the smallest dimension, candidates being increasing.
            fields[name] = candidates[values.index(max(values))]
        vocab = vocab_of(fields, vocab_sizes)
        plan = cls(fields=fields, candidates=candidates, vocab_sizes=vocab, alpha=weights)
        return plan if budget is None else plan.within_budget(budget)

    @classmethod
    def from_losses(
        cls,
        losses: Mapping[str, Sequence[float]],
        candidates: Sequence[int],
        vocab_sizes: Mapping[str, int],
        tolerance: float = DEFAULT_TOLERANCE,
        budget: Optional[float] = None,
        alpha: Optional[Mapping[str, Sequence[float]]] = None,
    ) -> DimensionPlan:
        """Derives the plan from probe losses: the smallest dimension that is good enough.

        `losses[m][n]` is the validation loss of the searched model with field
        m forced to candidate d_n (`keras_dimsel.autodim.probe.probe_losses`).
        The dimension of field m is the smallest candidate within `tolerance`
        of the field's lowest loss:

            d(m) = min { d_n : L_m(d_n) <= min_k L_m(d_k) + tolerance }

        so a field whose loss barely moves with its dimension (a field that
        carries little signal) gets the smallest candidate, and a field whose
        loss keeps falling gets as much as it uses.

        Args:
            losses: dict of str to sequence of float, per field the loss at
                each candidate, in candidate order.
            candidates: sequence of int, d_1 < ... < d_N.
            vocab_sizes: dict of str to int, ids per field (extra fields ignored).
            tolerance: float >= 0, in the units of the loss (logloss for the
                ready models); 0 takes each field's best candidate.
            budget: float in (0, 1] or None; when the tolerance plan does not
                fit that fraction of the full model's embedding parameters,
                the plan with the lowest summed loss that fits is taken
                (`within_budget`).
            alpha: optional selection probabilities, kept for reporting.

        Returns:
            The DimensionPlan, with `probe_loss` (and `alpha`) kept.

        Raises:
            ValueError: on an invalid tolerance, candidates or losses.

        Examples:

            >>> plan = DimensionPlan.from_losses(
            ...     {"user": [0.62, 0.61, 0.605], "noise": [0.610, 0.6095, 0.611]},
            ...     candidates=(2, 4, 8),
            ...     vocab_sizes={"user": 1000, "noise": 50},
            ...     tolerance=0.002,
            ... )
            >>> plan.fields  # noise: every candidate is within 0.002 of its best loss
            {'user': 8, 'noise': 2}
        """
        candidates = validate_candidates(candidates)
        if (
            not isinstance(tolerance, (int, float))
            or isinstance(tolerance, bool)
            or not math.isfinite(tolerance)
            or tolerance < 0
        ):
            raise ValueError(
                f"`tolerance` must be a finite number >= 0. Received: tolerance={tolerance!r}"
            )
        table = {
            name: per_candidate(v, name, candidates, "probe_loss") for name, v in losses.items()
        }
        fields = {}
        for name, values in table.items():
            limit = min(values) + tolerance
            fields[name] = next(d for d, v in zip(candidates, values) if v <= limit)
        plan = cls(
            fields=fields,
            candidates=candidates,
            vocab_sizes=vocab_of(fields, vocab_sizes),
            alpha=alpha or {},
            probe_loss=table,
        )
        return plan if budget is None else plan.within_budget(budget)

    def within_budget(self, budget: float) -> DimensionPlan:
        """The best plan whose tables hold at most `budget` of the full model's numbers.

        AutoDim's argmax has no notion of memory: it keeps whatever the
        validation loss preferred. With a budget b (a fraction of
        `full_embedding_params`), the plan maximises the joint selection
        probability of the chosen dimensions under the memory constraint:

            max_d  sum_m log alpha_m(d_m)   s.t.  sum_m V_m * d_m <= b * sum_m V_m * d_N

        A plan derived by probing (`from_losses`) minimises the summed probe
        loss instead, sum_m L_m(d_m), under the same constraint.

        This is a multiple-choice knapsack over fields, solved by dynamic
        programming over the budget: exactly when the budget is at most
        100,000 parameters, otherwise in 100,000 units with every field's cost
        rounded up (the plan always fits and gives up at most M units, M the
        number of fields). When the argmax plan already fits, it is returned
        unchanged.

        Args:
            budget: float in (0, 1], the largest allowed fraction of the
                full-dimension embedding parameters.

        Returns:
            A new DimensionPlan with the same alpha.

        Raises:
            ValueError: if `budget` is not in (0, 1], the plan has neither
                alpha nor probe losses, or even the smallest candidate
                everywhere exceeds the budget.

        Examples:

            >>> plan = DimensionPlan.from_alpha(
            ...     {"user": [0.2, 0.3, 0.5], "genre": [0.1, 0.2, 0.7]},
            ...     candidates=(2, 4, 8),
            ...     vocab_sizes={"user": 1000, "genre": 20},
            ... )
            >>> plan.fields
            {'user': 8, 'genre': 8}
            >>> # 4,080 numbers allowed of 8,160: user 4 + genre 4 would fit, but
            >>> # 0.2 * 0.7 (user 2, genre 8) is more probable than 0.3 * 0.2.
            >>> plan.within_budget(0.5).fields
            {'user': 2, 'genre': 8}
        """
        if not isinstance(budget, (int, float)) or isinstance(budget, bool):
            raise ValueError(f"`budget` must be a number in (0, 1]. Received: budget={budget!r}")
        if not 0.0 < budget <= 1.0:
            raise ValueError(f"`budget` must be in (0, 1]. Received: budget={budget!r}")
        if not self.alpha and not self.probe_loss:
            raise ValueError(
                "A plan without alpha or probe losses (written by hand) cannot be fitted "
                "to a budget."
            )
        limit = budget * self.full_embedding_params
        if self.embedding_params <= limit:
            return self
        names = self.field_names
        dims = self.candidates
        smallest = sum(self.vocab_sizes[name] * dims[0] for name in names)
        if smallest > limit:
            raise ValueError(
                f"No plan fits a budget of {budget:g}: the smallest candidate {dims[0]} in every "
                f"field already takes {smallest / self.full_embedding_params:.1%} of the full "
                "model's embedding parameters."
            )
        if self.probe_loss:
            scores = -np.array([self.probe_loss[name] for name in names], dtype=np.float64)
            # A loss that is not finite (a diverged probe) makes its candidate a last resort.
            scores[~np.isfinite(scores)] = -1e300
        else:
            # Probabilities of exactly 0 would make log -inf; such candidates are last resorts.
            scores = np.log(np.maximum(np.array([self.alpha[name] for name in names]), 1e-300))
        sizes = [self.vocab_sizes[name] for name in names]
        picks = choose_within(scores, sizes, dims, limit)
        return self._with_dims({name: dims[n] for name, n in zip(names, picks)})

    def _with_dims(self, fields: Dict[str, int]) -> DimensionPlan:
        return DimensionPlan(
            fields=fields,
            candidates=self.candidates,
            vocab_sizes=self.vocab_sizes,
            alpha=self.alpha,
            probe_loss=self.probe_loss,
        )

    @property
    def field_names(self) -> List[str]:
        """The fields of the plan, in order."""
        return list(self.fields)

    @property
    def max_dim(self) -> int:
        """The largest candidate d_N, the dimension of the full model."""
        return self.candidates[-1]

    def params_by_field(self) -> Dict[str, int]:
        """Embedding parameters V_m * d(m) of each field.

        Returns:
            dict of str to int, in field order.
        """
        return {name: self.vocab_sizes[name] * dim for name, dim in self.fields.items()}

    @property
    def embedding_params(self) -> int:
        """Embedding parameters of the planned model, sum_m V_m * d(m)."""
        return sum(self.params_by_field().values())

    @property
    def full_embedding_params(self) -> int:
        """Embedding parameters of the full-dimension model, sum_m V_m * d_N."""
        return sum(self.vocab_sizes[name] * self.max_dim for name in self.fields)

    @property
    def saving(self) -> float:
        """Share of the full model's embedding parameters the plan saves, in [0, 1)."""
        return 1.0 - self.embedding_params / self.full_embedding_params

    def check_fields(self, names: Sequence[str]) -> None:
        """Checks the plan covers exactly the given fields (e.g. a model's features).

        Args:
            names: sequence of str, the fields the model or data has.

        Raises:
            ValueError: naming the plan fields the model lacks and the model
                fields the plan lacks.
        """
        names = list(names)
        unknown = [name for name in self.fields if name not in names]
        missing = [name for name in names if name not in self.fields]
        problems = []
        if unknown:
            problems.append(f"plan field(s) {unknown} are not among the fields {names}")
        if missing:
            problems.append(f"field(s) {missing} have no dimension in the plan")
        if problems:
            raise ValueError("The plan does not match the fields: " + "; ".join(problems) + ".")

    def to_json(self) -> Dict[str, Any]:
        """The plan.json record (keys in `PLAN_KEYS` order)."""
        return {
            "fields": dict(self.fields),
            "candidates": list(self.candidates),
            "embedding_params": self.embedding_params,
            "full_embedding_params": self.full_embedding_params,
            "alpha": {name: list(values) for name, values in self.alpha.items()},
            "probe_loss": {name: list(values) for name, values in self.probe_loss.items()},
            "vocab_sizes": dict(self.vocab_sizes),
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> DimensionPlan:
        """Builds a plan from a plan.json record.

        The parameter counts in the record are derived values and are
        recomputed, so a plan whose dimensions were edited by hand stays
        consistent.

        Args:
            record: mapping, a plan.json record (`to_json`); needs `fields`,
                `candidates` and `vocab_sizes`.

        Returns:
            The DimensionPlan.

        Raises:
            ValueError: when the record is not a mapping, lacks a key or is
                not a valid plan.
        """
        if not isinstance(record, Mapping):
            raise ValueError(f"A plan must be a JSON object. Received: {type(record).__name__}")
        absent = [key for key in ("fields", "candidates", "vocab_sizes") if key not in record]
        if absent:
            raise ValueError(f"A plan needs the key(s) {absent}. Received keys: {sorted(record)}")
        return cls(
            fields=record["fields"],
            candidates=record["candidates"],
            vocab_sizes=record["vocab_sizes"],
            alpha=record.get("alpha") or {},
            probe_loss=record.get("probe_loss") or {},
        )

    def save(self, path: str) -> str:
        """Writes the plan as JSON atomically (temporary file, then rename).

        Args:
            path: str, the file to write, or an existing directory to write
                `plan.json` into.

        Returns:
            The path of the written file.
        """
        if _io.is_directory(path):
            path = os.path.join(path, PLAN_FILE)
        _io.write_text_atomically(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str) -> DimensionPlan:
        """Reads a plan written by `save`.

        Args:
            path: str, the plan file, or a directory holding `plan.json`.

        Returns:
            The DimensionPlan.

        Raises:
            FileNotFoundError: when the file does not exist.
            ValueError: when the file is not valid JSON or not a valid plan;
                the message names the file.
        """
        if _io.is_directory(path):
            path = os.path.join(path, PLAN_FILE)
        if not _io.exists(path):
            raise FileNotFoundError(f"{path} not found: run `dimsel search` to write a plan first")
        with _io.open_file(path) as f:
            text = f.read()
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        try:
            return cls.from_json(record)
        except ValueError as e:
            raise ValueError(f"{path} is not a valid plan: {e}") from None

    def build_embeddings(
        self, output_dim: Optional[int] = None, unify: str = "linear", **kwargs
    ) -> Dict[str, Any]:
        """The retrain-stage embedding layer of each field.

        Args:
            output_dim: int or None, the common dimension to unify to; None
                keeps each field at its own dimension (for models that
                concatenate mixed dimensions).
            unify: str, "linear" or "zero_pad" (used when `output_dim` is set).
            **kwargs: further `PlannedEmbedding` arguments, e.g.
                `embeddings_initializer`.

        Returns:
            dict of str to `PlannedEmbedding`, named `embedding_<field>`.

        Examples:

            >>> plan = DimensionPlan(
            ...     fields={"user": 4, "genre": 2}, candidates=(2, 4, 8),
            ...     vocab_sizes={"user": 1000, "genre": 20},
            ... )
            >>> layers = plan.build_embeddings(output_dim=8)
            >>> {name: (layer.dim, layer.output_dim) for name, layer in layers.items()}
            {'user': (4, 8), 'genre': (2, 8)}
        """
        # Imported here so that reading a plan does not load TensorFlow.
        from keras_dimsel.layers._utils import scope_name
        from keras_dimsel.layers.planned_embedding import PlannedEmbedding

        return {
            name: PlannedEmbedding(
                vocab_size=self.vocab_sizes[name],
                dim=dim,
                output_dim=output_dim,
                unify=unify,
                name=f"embedding_{scope_name(name)}",
                **kwargs,
            )
            for name, dim in self.fields.items()
        }

    def summary_table(self) -> str:
        """A text table: each field's cardinality, dimension and parameters, and totals.

        Returns:
            str, the table, then a line with the candidates and the saving.

        Examples:

            >>> plan = DimensionPlan(
            ...     fields={"user": 4, "genre": 2}, candidates=(2, 4, 8),
            ...     vocab_sizes={"user": 1000, "genre": 20},
            ... )
            >>> print(plan.summary_table())
            field  vocab_size  dim  params  full_params  of_full
            ----------------------------------------------------
            user        1,000    4   4,000        8,000    50.0%
            genre          20    2      40          160    25.0%
            ----------------------------------------------------
            total       1,020        4,040        8,160    49.5%
            candidates [2, 4, 8]; full model uses dim 8; saving 50.5% of embedding parameters
        """
        header = ("field", "vocab_size", "dim", "params", "full_params", "of_full")
        rows = [
            (
                name,
                f"{self.vocab_sizes[name]:,}",
                str(dim),
                f"{self.vocab_sizes[name] * dim:,}",
                f"{self.vocab_sizes[name] * self.max_dim:,}",
                f"{dim / self.max_dim:.1%}",
            )
            for name, dim in self.fields.items()
        ]
        total = (
            "total",
            f"{sum(self.vocab_sizes.values()):,}",
            "",
            f"{self.embedding_params:,}",
            f"{self.full_embedding_params:,}",
            f"{self.embedding_params / self.full_embedding_params:.1%}",
        )
        table = [header, *rows, total]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]

        def line(row):
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
            return "  ".join(cells).rstrip()

        rule = "-" * len(line(header))
        lines = [line(header), rule, *(line(row) for row in rows), rule, line(total)]
        lines.append(
            f"candidates {list(self.candidates)}; full model uses dim {self.max_dim}; "
            f"saving {self.saving:.1%} of embedding parameters"
        )
        return "\n".join(lines)
