"""Deterministic train / validation / test assignment by a hash of each row.

A row's split depends on its content only (`reader.hash_rows`), never on the
order, the chunking or the runner, so re-runs and other runners agree, and two
identical rows always share a split (no copy of a test row leaks into train).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa

from keras_dimsel.data.feature_spec import SPLITS
from keras_dimsel.data.reader import DataError, ParsedChunk

DEFAULT_RATIOS = (8.0, 1.0, 1.0)


def parse_ratios(text: str) -> tuple[float, float, float]:
    """Parses `"8:1:1"` (any positive scale) into three fractions summing to 1."""
    try:
        ratios = tuple(float(part) for part in text.split(":"))
    except ValueError:
        ratios = ()
    if len(ratios) != 3 or min(ratios) < 0 or ratios[0] <= 0 or sum(ratios) <= 0:
        raise DataError(
            "--split must be three non-negative numbers train:validation:test with "
            f"a positive train part, e.g. 8:1:1. Received: {text!r}"
        )
    total = sum(ratios)
    return tuple(r / total for r in ratios)


def split_indices(row_hash: np.ndarray, ratios: Sequence[float]) -> np.ndarray:
    """Maps 64-bit row hashes to split indices 0, 1, 2 with the given fractions."""
    uniform = (np.asarray(row_hash, dtype=np.uint64) >> np.uint64(11)) * (1.0 / (1 << 53))
    return np.searchsorted(np.cumsum(ratios)[:-1], uniform, side="right")


def _assign(element: tuple[int, ParsedChunk], ratios) -> Iterator:
    index, parsed = element
    which = split_indices(parsed.row_hash, ratios)
    for number, name in enumerate(SPLITS):
        mask = which == number
        if mask.any():
            yield name, index, parsed.batch.filter(pa.array(mask))


class AssignSplits(beam.PTransform):
    """`(index, ParsedChunk)` to `(split, index, RecordBatch)`, one per non-empty split.

    Args:
        ratios: three floats, the train, validation and test fractions.
    """

    def __init__(self, ratios: Sequence[float] = DEFAULT_RATIOS):
        super().__init__()
        total = float(sum(ratios))
        self._ratios = tuple(float(r) / total for r in ratios)

    def expand(self, parsed):
        return parsed | "SplitByRowHash" >> beam.FlatMap(_assign, self._ratios)
