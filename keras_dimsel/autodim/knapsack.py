"""The budgeted plan: a multiple-choice knapsack over fields, by dynamic programming."""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np

#: The budget is split into at most this many units (exact below that many parameters).
BUDGET_UNITS = 100_000


def choose_within(
    scores: np.ndarray, sizes: Sequence[int], dims: Sequence[int], limit: float
) -> List[int]:
    """The candidate index per field maximising the summed score within `limit` numbers.

    Field m with candidate n costs `sizes[m] * dims[n]` numbers and scores
    `scores[m, n]`. The knapsack is solved by dynamic programming over the
    budget, in at most `BUDGET_UNITS` units with every cost rounded up, so the
    choice always fits; below that many numbers the answer is exact. Ties go
    to the smaller dimension.

    Args:
        scores: float array `[fields, candidates]`, higher is better.
        sizes: the number of ids of each field.
        dims: the candidate dimensions, increasing.
        limit: float, the most numbers the tables may hold; at least the
            smallest plan, `sum(sizes) * dims[0]`.

    Returns:
        list of int, the chosen candidate index of each field.

    Examples:

        Two fields of 1,000 and 20 ids, candidates 2, 4, 8, within 4,080 numbers:

        >>> scores = np.log([[0.2, 0.3, 0.5], [0.1, 0.2, 0.7]])
        >>> choose_within(scores, [1000, 20], [2, 4, 8], 4080)  # user 2, genre 8
        [0, 2]
    """
    names = range(len(sizes))
    # Multiple-choice knapsack by dynamic programming over the budget, in at most
    # `BUDGET_UNITS` units. Costs are rounded up, so the plan always fits; below
    # that many parameters the units are single parameters and the answer is exact.
    units = int(min(math.floor(limit), BUDGET_UNITS))
    unit = limit / units
    sizes = np.asarray(sizes, dtype=np.float64)
    costs = np.ceil(np.outer(sizes, dims) / unit - 1e-9).astype(np.int64)
    best = np.zeros(units + 1)  # best[c]: the top score of the fields so far within c
    picks = np.zeros((len(names), units + 1), dtype=np.int16)
    for m in range(len(names)):
        options = np.full((len(dims), units + 1), -np.inf)
        for n, cost in enumerate(costs[m]):
            if cost <= units:
                options[n, cost:] = best[: units + 1 - cost] + scores[m, n]
        picks[m] = np.argmax(options, axis=0)  # the first maximum: the smaller dim
        best = options[picks[m], np.arange(units + 1)]
    if not np.isfinite(best[units]):
        # Only the rounding can lose the smallest plan, which fits (checked by the caller).
        return [0] * len(names)
    chosen, capacity = [0] * len(names), units
    for m in reversed(range(len(names))):
        chosen[m] = int(picks[m, capacity])
        capacity -= int(costs[m, chosen[m]])
    return chosen
