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
    """Parses `"8:1:1"` (any positive scale) into three fractions summing to 1.

    Args:
        text: str, `train:validation:test`, non-negative numbers with a positive train part.

    Returns:
        A tuple of three floats summing to 1.

    Raises:
        DataError: when the text is not three such numbers.

    Examples:

        >>> parse_ratios("8:1:1")
        (0.8, 0.1, 0.1)
        >>> parse_ratios("3:1:0")
        (0.75, 0.25, 0.0)
        >>> parse_ratios("8:1")
        Traceback (most recent call last):
        ...
        keras_dimsel.data.reader.DataError: --split must be three non-negative numbers ...
    """
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
    """Maps 64-bit row hashes to split indices 0, 1, 2 with the given fractions.

    The top 53 bits of a hash make a uniform number u in [0, 1); the split is
    the first whose cumulative fraction exceeds u.

    Args:
        row_hash: array of uint64, one hash per row (`reader.hash_rows`).
        ratios: three floats summing to 1, the train, validation and test fractions.

    Returns:
        An int array of split indices (0 train, 1 validation, 2 test).

    Examples:

        >>> hashes = np.array([0, int(0.85 * 2**64), 2**64 - 1], dtype=np.uint64)  # u = 0, .85, ~1
        >>> split_indices(hashes, (0.8, 0.1, 0.1)).tolist()
        [0, 1, 2]
    """
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
        ratios: three floats, the train, validation and test fractions
            (any positive scale: `(8, 1, 1)` is 80%, 10%, 10%).

    Examples:

        >>> import tempfile
        >>> import apache_beam as beam
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.read import plan_chunks, read_chunk
        >>> reader = make_reader("synthetic", output_dir=tempfile.mkdtemp(), rows=100)
        >>> chunk = plan_chunks(reader)[0]
        >>> parsed = reader.parse(read_chunk(chunk), chunk.source)
        >>> with beam.Pipeline() as pipeline:
        ...     _ = (
        ...         pipeline
        ...         | beam.Create([(0, parsed)])
        ...         | AssignSplits((8, 1, 1))
        ...         | "Rows" >> beam.MapTuple(lambda split, index, batch: (split, batch.num_rows))
        ...         | beam.combiners.ToList()
        ...         | "Print" >> beam.Map(lambda sizes: print(sorted(sizes)))
        ...     )
        [('test', 9), ('train', 80), ('validation', 11)]
    """

    def __init__(self, ratios: Sequence[float] = DEFAULT_RATIOS):
        super().__init__()
        total = float(sum(ratios))
        self._ratios = tuple(float(r) / total for r in ratios)

    def expand(self, parsed):
        return parsed | "SplitByRowHash" >> beam.FlatMap(_assign, self._ratios)
