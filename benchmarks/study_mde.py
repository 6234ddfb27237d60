"""The MDE baseline: mixed embedding dimensions from a popularity rule.

Ginart et al. ("Mixed Dimension Embeddings with Application to
Memory-Efficient Recommendation Systems", ISIT 2021) give each block of an
embedding table a dimension proportional to a power of its popularity. With
one block per field and every field looked up once per example, the
popularity of a row of field f is p_f = 1 / V_f (V_f ids). METHODS.md names
MDE as a baseline without fixing its rule, so the study takes

    d_f = round_to_candidate(d_max * (p_f / p_max) ^ alpha),   alpha = 0.3

p_max being the popularity of the smallest field, which gets d_max; larger
fields get smaller dimensions. `round_to_candidate` takes the nearest
candidate (ties to the smaller), so the plan retrains with the same
physically smaller tables as an AutoDim plan.
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence

from keras_dimsel.autodim.plan import DimensionPlan


def round_to_candidate(value: float, candidates: Sequence[int]) -> int:
    """The candidate nearest to `value`; on a tie, the smaller one.

    Examples:

        >>> round_to_candidate(12.0, (2, 8, 16))  # 4 from 8 and from 16
        8
        >>> round_to_candidate(13.0, (2, 8, 16))
        16
    """
    return min(sorted(candidates), key=lambda c: abs(c - value))


def mde_dims(
    vocab_sizes: Mapping[str, int], candidates: Sequence[int], alpha: float
) -> Dict[str, int]:
    """The MDE dimension of every field (see the module docstring).

    Args:
        vocab_sizes: dict of field to its number of ids (> 0).
        candidates: sequence of int, the dimensions a field may take.
        alpha: float >= 0, the popularity exponent (0 gives every field d_max).

    Returns:
        dict of field to dimension, in the order of `vocab_sizes`.

    Raises:
        ValueError: on an empty vocabulary, a size below 1 or a negative alpha.

    Examples:

        >>> mde_dims({"gender": 2, "age": 7, "user": 1000}, (2, 8, 16, 24, 32), alpha=0.3)
        {'gender': 32, 'age': 24, 'user': 2}

        (32 * (2/7)^0.3 = 21.98, nearest 24; 32 * (2/1000)^0.3 = 4.96, nearest 2.)
    """
    if not vocab_sizes:
        raise ValueError("`vocab_sizes` must name at least one field")
    if alpha < 0:
        raise ValueError(f"`alpha` must be >= 0. Received: alpha={alpha!r}")
    bad = {name: size for name, size in vocab_sizes.items() if size < 1}
    if bad:
        raise ValueError(f"vocabulary sizes must be >= 1. Received: {bad}")
    d_max = max(candidates)
    p_max = 1.0 / min(vocab_sizes.values())
    return {
        name: round_to_candidate(d_max * ((1.0 / size) / p_max) ** alpha, candidates)
        for name, size in vocab_sizes.items()
    }


def mde_plan(
    vocab_sizes: Mapping[str, int], candidates: Sequence[int], alpha: float
) -> DimensionPlan:
    """The MDE dimensions as a `DimensionPlan`, ready for `run_retrain`."""
    return DimensionPlan(
        fields=mde_dims(vocab_sizes, candidates, alpha),
        candidates=tuple(candidates),
        vocab_sizes=dict(vocab_sizes),
    )
