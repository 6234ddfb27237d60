"""The argument checks of `DimensionPlan`: candidates, vocabulary sizes, per-candidate weights."""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, List, Mapping, Sequence, Tuple


def is_int(value: Any) -> bool:
    # bool is an int subclass, but `True` as a dimension is always a mistake.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate_candidates(candidates: Any) -> Tuple[int, ...]:
    try:
        values = tuple(candidates)
    except TypeError:
        values = None
    if (
        not values
        or not all(is_int(c) and c > 0 for c in values)
        or any(b <= a for a, b in zip(values, values[1:]))
    ):
        raise ValueError(
            "`candidates` must be a non-empty sequence of positive, strictly increasing "
            f"integers. Received: candidates={candidates!r}"
        )
    return tuple(int(c) for c in values)


def vocab_of(fields: Mapping[str, int], vocab_sizes: Mapping[str, int]) -> Dict[str, int]:
    """The vocabulary sizes of `fields`, from a mapping that may hold more fields."""
    for name in fields:
        if name not in vocab_sizes:
            raise ValueError(
                f"Field {name!r} has no vocabulary size. "
                f"Received vocab sizes for: {sorted(vocab_sizes)}"
            )
    return {name: vocab_sizes[name] for name in fields}


def validate_vocab_sizes(vocab_sizes: Any, fields: Mapping[str, int]) -> Dict[str, int]:
    if not isinstance(vocab_sizes, Mapping):
        raise ValueError(
            f"`vocab_sizes` must be a dict of field name to size. Received: {vocab_sizes!r}"
        )
    for name in fields:
        if name not in vocab_sizes:
            raise ValueError(
                f"Field {name!r} has no vocabulary size. "
                f"Received vocab sizes for: {sorted(vocab_sizes)}"
            )
    extra = [name for name in vocab_sizes if name not in fields]
    if extra:
        raise ValueError(f"`vocab_sizes` names field(s) {extra} that are not in the plan.")
    for name in fields:
        size = vocab_sizes[name]
        if not is_int(size) or size <= 0:
            raise ValueError(
                f"The vocabulary size of field {name!r} must be a positive integer. "
                f"Received: {size!r}"
            )
    return {name: int(vocab_sizes[name]) for name in fields}


def validate_weights(
    weights: Any, fields: Mapping[str, int], candidates: Tuple[int, ...], key: str = "alpha"
) -> Dict[str, List[float]]:
    """Checks a per-field, per-candidate record (`alpha` or `probe_loss`)."""
    if not weights:
        return {}
    if not isinstance(weights, Mapping):
        raise ValueError(f"`{key}` must be a dict of field name to values. Received: {weights!r}")
    unknown = [name for name in weights if name not in fields]
    missing = [name for name in fields if name not in weights]
    if unknown or missing:
        raise ValueError(
            f"`{key}` must be empty or cover exactly the plan fields. "
            f"Not in the plan: {unknown}; without {key}: {missing}"
        )
    return {
        name: per_candidate(weights[name], name, candidates, key, check_finite=False)
        for name in fields
    }


def per_candidate(
    values: Any, name: str, candidates: Tuple[int, ...], key: str, check_finite: bool = True
) -> List[float]:
    values = [float(v) for v in flatten(values, name, key)]
    if len(values) != len(candidates):
        raise ValueError(
            f"{key} of field {name!r} must have one value per candidate "
            f"({len(candidates)} for candidates {candidates}). "
            f"Received {len(values)}: {values}"
        )
    if check_finite and not all(math.isfinite(v) for v in values):
        raise ValueError(f"{key} of field {name!r} is not finite. Received: {values}")
    return values


def flatten(values: Any, name: str, key: str = "alpha") -> List[Any]:
    # Eager tensors and NumPy arrays both offer `tolist()`.
    if hasattr(values, "numpy"):
        values = values.numpy()
    if hasattr(values, "tolist"):
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{key} of field {name!r} must be a sequence of numbers. Got: {values!r}")
    if any(isinstance(v, (list, tuple)) for v in values):
        raise ValueError(f"{key} of field {name!r} must be one-dimensional. Got: {values!r}")
    return list(values)
