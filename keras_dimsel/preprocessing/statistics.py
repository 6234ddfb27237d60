"""Feature statistics: quantile boundaries, value counts and vocabularies.

Counting is columnar: each record batch becomes, per field, one small Arrow
table of (token, count) from `pyarrow.compute.value_counts`; a `CombineFn`
merges those tables with Arrow's group-by. No Python runs per row, and the
combine is lifted, so partial counts are merged on the workers before the
per-field totals meet.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, Optional, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from keras_dimsel.data import tokens
from keras_dimsel.data.feature_spec import format_vocabulary_line
from keras_dimsel.data.reader import FieldDef

DEFAULT_NUM_BUCKETS = 16
VOCAB_DIR = "vocab"
#: Without `--hash-buckets`, a capped field gets one bucket per this many values left out.
VALUES_PER_HASH_BUCKET = 100
# Partial count tables are merged once this many are pending.
_COMPACT_EVERY = 16
# Distinct numbers a quantile summary keeps exactly (about 1 MiB per field).
QUANTILE_SUMMARY_SIZE = 1 << 16


def field_tokens(
    batch: pa.RecordBatch, field: FieldDef, boundaries: Sequence[float] = ()
) -> pa.Array:
    """The vocabulary tokens of one field of a parsed batch.

    Args:
        batch: pa.RecordBatch, a parsed batch (`Reader.parse`).
        field: FieldDef, the field.
        boundaries: sequence of float, the bucket boundaries of a `quantiles` field.

    Returns:
        pa.Array of strings (see `keras_dimsel.data.tokens`).

    Examples:

        >>> batch = pa.RecordBatch.from_pydict({
        ...     "site": ["news", ""],
        ...     "price": pa.array([3.0, float("nan")], pa.float32()),
        ... })
        >>> field_tokens(batch, FieldDef("site", "categorical")).to_pylist()
        ['news', '[MISSING]']
        >>> price = FieldDef("price", "numeric", "quantiles")
        >>> field_tokens(batch, price, boundaries=[2.0, 5.0]).to_pylist()
        ['1', '[MISSING]']
    """
    column = batch.column(batch.schema.get_field_index(field.name))
    if field.kind == "categorical":
        return tokens.categorical_tokens(column)
    return tokens.numeric_tokens(column.to_numpy(zero_copy_only=False), field.transform, boundaries)


def _value_counts(values: pa.Array) -> pa.Table:
    counted = pc.value_counts(values)
    return pa.table(
        {"value": counted.field("values"), "count": counted.field("counts").cast(pa.int64())}
    )


def _compact(tables: list[pa.Table]) -> list[pa.Table]:
    if len(tables) <= 1:
        return tables
    summed = pa.concat_tables(tables).group_by("value").aggregate([("count", "sum")])
    return [pa.table({"value": summed.column("value"), "count": summed.column("count_sum")})]


class MergeValueCounts(beam.CombineFn):
    """Sums (value, count) tables into one table sorted by count, then value.

    The accumulator is a list of Arrow tables, merged with a group-by once
    16 are pending, so no Python runs per value.

    Examples:

        >>> combine = MergeValueCounts()
        >>> accumulator = combine.create_accumulator()
        >>> for table in (
        ...     pa.table({"value": ["a", "b"], "count": [2, 1]}),
        ...     pa.table({"value": ["b", "c"], "count": [3, 1]}),
        ... ):
        ...     accumulator = combine.add_input(accumulator, table)
        >>> combine.extract_output(accumulator).to_pydict()
        {'value': ['b', 'a', 'c'], 'count': [4, 2, 1]}
    """

    def create_accumulator(self) -> list[pa.Table]:
        return []

    def add_input(self, accumulator: list[pa.Table], table: pa.Table) -> list[pa.Table]:
        accumulator.append(table)
        return _compact(accumulator) if len(accumulator) >= _COMPACT_EVERY else accumulator

    def merge_accumulators(self, accumulators: Iterable[list[pa.Table]]) -> list[pa.Table]:
        return _compact([table for accumulator in accumulators for table in accumulator])

    def compact(self, accumulator: list[pa.Table]) -> list[pa.Table]:
        return _compact(accumulator)

    def extract_output(self, accumulator: list[pa.Table]) -> pa.Table:
        merged = _compact(accumulator)
        if not merged:
            return pa.table({"value": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
        table = merged[0]
        order = pc.sort_indices(table, sort_keys=[("count", "descending"), ("value", "ascending")])
        return table.take(order)


def _numeric_values(element, fields: Sequence[FieldDef]) -> Iterator:
    _, _, batch = element
    for field in fields:
        values = batch.column(batch.schema.get_field_index(field.name)).to_numpy(
            zero_copy_only=False
        )
        values = values[~np.isnan(values)].astype(np.float64)
        if len(values):
            yield field.name, values


def _merge_weighted(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = np.unique(values, return_inverse=True)
    return unique, np.bincount(inverse, weights=weights)


def _compress(values: np.ndarray, weights: np.ndarray, size: int):
    """Merges adjacent values into at most `size` bins of near-equal weight.

    A bin keeps its smallest value and its total weight, so a quantile read
    from the summary is off by at most one bin, 1/size of the total weight.
    """
    if len(values) <= size:
        return values, weights
    before = np.cumsum(weights) - weights
    bins = np.floor(before / weights.sum() * size).astype(np.int64)
    starts = np.flatnonzero(np.diff(bins, prepend=-1))
    return values[starts], np.add.reduceat(weights, starts)


class QuantileBoundaries(beam.CombineFn):
    """Batches of numbers to the interior boundaries of equal-frequency buckets.

    The accumulator is a weighted summary: each distinct value with its count.
    With up to `summary_size` distinct values (prices, counts, ratings...) the
    boundaries are exact and the same on every runner; beyond that the summary
    is compressed to `summary_size` bins and a boundary is off by at most
    1/summary_size of the data. All work is NumPy on whole batches.

    Args:
        num_buckets: int, the number of buckets.
        summary_size: int, the most distinct values kept exactly.

    Examples:

        >>> combine = QuantileBoundaries(num_buckets=4)
        >>> accumulator = combine.add_input(combine.create_accumulator(), np.arange(1.0, 9.0))
        >>> combine.extract_output(accumulator)  # 1..8 in four buckets of two
        [2.0, 4.0, 6.0]
    """

    def __init__(self, num_buckets: int, summary_size: int = QUANTILE_SUMMARY_SIZE):
        self._num_buckets = num_buckets
        self._summary_size = summary_size

    def create_accumulator(self):
        return np.zeros(0), np.zeros(0)

    def add_input(self, accumulator, values: np.ndarray):
        unique, counts = np.unique(values, return_counts=True)
        return self.merge_accumulators([accumulator, (unique, counts.astype(np.float64))])

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        values = np.concatenate([a[0] for a in accumulators])
        weights = np.concatenate([a[1] for a in accumulators])
        return _compress(*_merge_weighted(values, weights), self._summary_size)

    def extract_output(self, accumulator) -> list[float]:
        values, weights = accumulator
        if not len(values):
            return []
        cumulative = np.cumsum(weights)
        targets = np.arange(1, self._num_buckets) / self._num_buckets * cumulative[-1]
        # The smallest value whose cumulative weight reaches each target.
        picked = values[np.searchsorted(cumulative, targets, side="left")]
        return sorted({float(v) for v in picked})


class ComputeBoundaries(beam.PTransform):
    """Train batches to `(field, boundaries)` for the `quantiles` fields.

    Combines per-batch weighted summaries (`QuantileBoundaries`), so memory is
    bounded whatever the data size and no Python runs per value.

    Args:
        fields: the reader's fields; only numeric `quantiles` fields are used.
        num_buckets: int, the number of buckets (boundaries = num_buckets - 1
            before duplicates are removed, as heavy ties collapse buckets).

    Examples:

        >>> import apache_beam as beam
        >>> batch = pa.RecordBatch.from_pydict({
        ...     "label": pa.array([0.0, 1.0, 0.0, 1.0], pa.float32()),
        ...     "site": ["news", "shop", "news", ""],
        ...     "price": pa.array([1.0, 2.0, 3.0, 4.0], pa.float32()),
        ... })
        >>> fields = [FieldDef("site", "categorical"), FieldDef("price", "numeric", "quantiles")]
        >>> with beam.Pipeline() as pipeline:
        ...     _ = (
        ...         pipeline
        ...         | beam.Create([("train", 0, batch)])
        ...         | ComputeBoundaries(fields, num_buckets=2)
        ...         | beam.Map(print)
        ...     )
        ('price', [2.0])
    """

    def __init__(self, fields: Sequence[FieldDef], num_buckets: int = DEFAULT_NUM_BUCKETS):
        super().__init__()
        self._fields = [f for f in fields if f.transform == "quantiles"]
        self._num_buckets = num_buckets

    def expand(self, train):
        return (
            train
            | "NumericValues" >> beam.FlatMap(_numeric_values, self._fields)
            | "Boundaries" >> beam.CombinePerKey(QuantileBoundaries(self._num_buckets))
        )


def _count_batch(element, fields: Sequence[FieldDef], boundaries: dict) -> Iterator:
    _, _, batch = element
    for field in fields:
        yield field.name, _value_counts(field_tokens(batch, field, boundaries.get(field.name, ())))


class CountValues(beam.PTransform):
    """Train batches to `(field, table of token counts)`, most frequent first.

    Args:
        fields: the reader's fields.
        boundaries: a side input (`beam.pvalue.AsDict`) of quantile boundaries.

    Examples:

        >>> import apache_beam as beam
        >>> batch = pa.RecordBatch.from_pydict({
        ...     "label": pa.array([0.0, 1.0, 0.0, 1.0], pa.float32()),
        ...     "site": ["news", "shop", "news", ""],
        ...     "price": pa.array([1.0, 2.0, 3.0, 4.0], pa.float32()),
        ... })
        >>> fields = [FieldDef("site", "categorical"), FieldDef("price", "numeric", "quantiles")]
        >>> with beam.Pipeline() as pipeline:
        ...     train = pipeline | beam.Create([("train", 0, batch)])
        ...     boundaries = train | ComputeBoundaries(fields, num_buckets=2)
        ...     _ = (
        ...         train
        ...         | CountValues(fields, beam.pvalue.AsDict(boundaries))
        ...         | beam.MapTuple(lambda name, counts: (name, counts.to_pydict()))
        ...         | beam.combiners.ToList()
        ...         | beam.Map(lambda counted: print(*sorted(counted), sep="\\n"))
        ...     )
        ('price', {'value': ['1', '0'], 'count': [3, 1]})
        ('site', {'value': ['news', '[MISSING]', 'shop'], 'count': [2, 1, 1]})
    """

    def __init__(self, fields: Sequence[FieldDef], boundaries):
        super().__init__()
        self._fields = tuple(fields)
        self._boundaries = boundaries

    def expand(self, train):
        return (
            train
            | "CountBatch" >> beam.FlatMap(_count_batch, self._fields, self._boundaries)
            | "MergeCounts" >> beam.CombinePerKey(MergeValueCounts())
        )


def field_hash_buckets(
    hash_buckets: Optional[int], max_vocab_size: Optional[int], left_out: int
) -> int:
    """The number of hash buckets one field gets.

    `hash_buckets` asks for at most that many per field; None asks for none
    without a cap and, with a cap, for one bucket per `VALUES_PER_HASH_BUCKET`
    (100) values left out, at most `max_vocab_size` (so the table at most
    doubles). A field never gets more buckets than it has distinct train values
    left out of its vocabulary (beyond the cap or below `min_count`): a field
    that keeps every value needs none. Fewer than 2 buckets become none, as a
    single bucket would be the OOV id again.

    Args:
        hash_buckets: int or None, the buckets asked for (`--hash-buckets`).
        max_vocab_size: int or None, the vocabulary cap (`--max-vocab-size`).
        left_out: int, distinct train values without an id of their own.

    Returns:
        int, the number of buckets of the field.

    Examples:

        >>> field_hash_buckets(None, None, 5_000_000)  # no cap: the OOV id, as always
        0
        >>> field_hash_buckets(None, 1_000_000, 5_000_000)  # 1% of the values left out
        50000
        >>> field_hash_buckets(None, 1000, 5_000_000)  # never more buckets than the cap
        1000
        >>> field_hash_buckets(4096, 1000, 5_000_000), field_hash_buckets(4096, 1000, 300)
        (4096, 300)
        >>> field_hash_buckets(None, 1000, 80)  # one bucket would just be the OOV id
        0
    """
    if hash_buckets is None:
        if max_vocab_size is None:
            return 0
        hash_buckets = min(max_vocab_size, -(-left_out // VALUES_PER_HASH_BUCKET))
    buckets = min(hash_buckets, left_out)
    return buckets if buckets >= 2 else 0


def write_vocabulary(
    name: str,
    counts: pa.Table,
    output_dir: str,
    min_count: int,
    max_vocab_size: Optional[int] = None,
    hash_buckets: Optional[int] = None,
) -> tuple[str, dict]:
    """Writes `vocab/<name>.txt` and, with hash buckets, `vocab/<name>.buckets.txt`.

    The vocabulary keeps the values seen at least `min_count` times, at most
    the `max_vocab_size` most frequent of them (ties by value, the order of
    `counts`). With hash buckets, every other train value (beyond the cap or
    below `min_count`) adds its count to bucket
    `tf.strings.to_hash_bucket_fast(value, buckets)`, the bucket the model
    will look it up in; without, they go to the OOV id and `oov_count`.

    Args:
        name: str, the field name.
        counts: pa.Table of `value` and `count`, most frequent first (`MergeValueCounts`).
        output_dir: str, the artifact directory.
        min_count: int, values seen fewer times get no id of their own.
        max_vocab_size: int or None, the most values kept (None: no cap).
        hash_buckets: int or None, the most buckets shared by the values left
            out; the field gets `field_hash_buckets(hash_buckets, ...)`.

    Returns:
        `(name, summary)`: the summary holds `vocab_size` (kept values + 1 +
        buckets), `oov_count` (train rows left on the OOV id) and
        `distinct_values`, plus `hash_buckets` when the field has buckets.

    Examples:

        >>> import pathlib, tempfile
        >>> directory = tempfile.mkdtemp()
        >>> counts = pa.table({"value": ["news", "shop", "blog"], "count": [5, 2, 1]})
        >>> write_vocabulary("site", counts, directory, min_count=2)
        ('site', {'vocab_size': 3, 'oov_count': 1, 'distinct_values': 3})
        >>> pathlib.Path(directory, "vocab", "site.txt").read_text().splitlines()
        ['5 news', '2 shop']

        Keep one value; `shop` and `blog` share 2 hash buckets:

        >>> write_vocabulary("site", counts, directory, 1, max_vocab_size=1, hash_buckets=2)
        ('site', {'vocab_size': 4, 'oov_count': 0, 'distinct_values': 3, 'hash_buckets': 2})
        >>> pathlib.Path(directory, "vocab", "site.buckets.txt").read_text().splitlines()
        ['3 0', '0 1']
    """
    counts_np = counts.column("count").to_numpy()
    kept = int(np.count_nonzero(counts_np >= min_count))
    if max_vocab_size is not None:
        kept = min(kept, max_vocab_size)
    values = counts.column("value").slice(0, kept).to_pylist()
    text = "".join(format_vocabulary_line(c, v) for c, v in zip(counts_np[:kept].tolist(), values))
    path = FileSystems.join(output_dir, VOCAB_DIR, f"{name}.txt")
    write_bytes_atomically(path, text.encode("utf-8"))
    left_out = counts_np[kept:]
    hash_buckets = field_hash_buckets(hash_buckets, max_vocab_size, len(left_out))
    summary = {
        "vocab_size": kept + 1 + hash_buckets,
        "oov_count": 0 if hash_buckets else int(left_out.sum()),
        "distinct_values": len(counts_np),
    }
    if hash_buckets:
        buckets = tokens.hash_buckets(counts.column("value").slice(kept), hash_buckets)
        bucket_counts = np.bincount(buckets, weights=left_out, minlength=hash_buckets)
        lines = (format_vocabulary_line(int(c), str(b)) for b, c in enumerate(bucket_counts))
        path = FileSystems.join(output_dir, VOCAB_DIR, bucket_file_name(name))
        write_bytes_atomically(path, "".join(lines).encode("utf-8"))
        summary["hash_buckets"] = hash_buckets
    return name, summary


def bucket_file_name(name: str) -> str:
    """The bucket counts file of a field, inside `vocab/`.

    Examples:

        >>> bucket_file_name("site")
        'site.buckets.txt'
    """
    return f"{name}.buckets.txt"


class ComputeVocabulary(beam.PTransform):
    """`(field, counts)` to vocabulary files, emitting `(field, summary dict)`.

    See `write_vocabulary` for what a field keeps and where the other values go.

    Args:
        output_dir: str, the artifact directory (`vocab/` is written inside).
        min_count: int, values seen fewer times in train get no id of their own.
        max_vocab_size: int or None, the most values kept per field (None: no cap).
        hash_buckets: int or None, the most hash buckets per field for the
            values left out (`field_hash_buckets`).

    Examples:

        >>> import tempfile
        >>> import apache_beam as beam
        >>> counts = pa.table({"value": ["news", "shop", "blog"], "count": [5, 2, 1]})
        >>> with beam.Pipeline() as pipeline:
        ...     _ = (
        ...         pipeline
        ...         | beam.Create([("site", counts)])
        ...         | ComputeVocabulary(tempfile.mkdtemp(), min_count=2)
        ...         | beam.Map(print)
        ...     )
        ('site', {'vocab_size': 3, 'oov_count': 1, 'distinct_values': 3})
    """

    def __init__(
        self,
        output_dir: str,
        min_count: int = 1,
        max_vocab_size: Optional[int] = None,
        hash_buckets: Optional[int] = None,
    ):
        super().__init__()
        self._output_dir = output_dir
        self._min_count = min_count
        self._max_vocab_size = max_vocab_size
        self._hash_buckets = hash_buckets

    def expand(self, counts):
        options = (self._output_dir, self._min_count, self._max_vocab_size, self._hash_buckets)
        return counts | "WriteVocabulary" >> beam.Map(
            lambda element: write_vocabulary(*element, *options)
        )


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Writes a file through Beam's FileSystems: temporary name, then rename.

    Missing parent directories are created; an existing file is replaced.

    Args:
        path: str, the file (local, `gs://`, ...).
        data: bytes, the content.

    Examples:

        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp(), "vocab", "site.txt")
        >>> write_bytes_atomically(str(path), b"5 news")
        >>> path.read_bytes()
        b'5 news'
    """
    directory = os.path.dirname(path)
    if directory and not FileSystems.exists(directory):
        FileSystems.mkdirs(directory)
    tmp = f"{path}.tmp-{os.getpid()}"
    with FileSystems.create(tmp) as f:
        f.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])
