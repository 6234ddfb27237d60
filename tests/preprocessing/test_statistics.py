"""Counting, quantile boundaries and vocabulary files, on TestPipeline."""

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from keras_dimsel.data.feature_spec import read_vocabulary
from keras_dimsel.data.reader import FieldDef
from keras_dimsel.data.tokens import MISSING_TOKEN
from keras_dimsel.preprocessing.statistics import (
    ComputeBoundaries,
    ComputeVocabulary,
    CountValues,
    MergeValueCounts,
    QuantileBoundaries,
    write_vocabulary,
)

FIELDS = (FieldDef("color", "categorical"), FieldDef("size", "numeric", "log_square"))


def _batch(colors, sizes):
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.zeros(len(colors), np.float32)),
            pa.array(colors, pa.string()),
            pa.array(np.asarray(sizes, np.float32)),
        ],
        ["label", "color", "size"],
    )


def _as_pairs(table):
    return list(zip(table.column("value").to_pylist(), table.column("count").to_pylist()))


def test_count_values_sums_batches_and_sorts_by_count_then_value():
    batches = [
        ("train", 0, _batch(["red", "blue", "", "red"], [1, 3, float("nan"), 100])),
        ("train", 1, _batch(["blue", "green", "red"], [-1, 7.5, 3])),
    ]
    with TestPipeline() as pipeline:
        counts = (
            pipeline
            | beam.Create(batches)
            | CountValues(FIELDS, beam.pvalue.AsDict(pipeline | "NoBounds" >> beam.Create([])))
            | beam.MapTuple(lambda name, table: (name, _as_pairs(table)))
        )
        # log_square: 1 -> "1", 3 -> floor(ln(3)^2) = 1, 100 -> floor(21.2) = 21,
        # -1 -> "-1", 7.5 -> floor(4.06) = 4; NaN -> missing.
        expected = [
            ("color", [("red", 3), ("blue", 2), (MISSING_TOKEN, 1), ("green", 1)]),
            ("size", [("1", 3), ("-1", 1), ("21", 1), ("4", 1), (MISSING_TOKEN, 1)]),
        ]
        assert_that(counts, equal_to(expected))


def test_merge_value_counts_compacts_many_partial_tables():
    combine = MergeValueCounts()
    accumulator = combine.create_accumulator()
    for i in range(40):
        table = pa.table({"value": ["a", f"v{i % 3}"], "count": pa.array([1, 2], pa.int64())})
        accumulator = combine.add_input(accumulator, table)
    assert len(accumulator) < 16
    merged = combine.merge_accumulators([accumulator, combine.create_accumulator()])
    assert _as_pairs(combine.extract_output(merged)) == [
        ("a", 40),
        ("v0", 28),
        ("v1", 26),
        ("v2", 26),
    ]


def test_merge_value_counts_of_nothing_is_an_empty_table():
    combine = MergeValueCounts()
    assert combine.extract_output(combine.create_accumulator()).num_rows == 0


def test_compute_boundaries_gives_interior_quantiles_without_duplicates():
    fields = (FieldDef("price", "numeric", "quantiles"), FieldDef("color", "categorical"))
    values = np.arange(1, 101, dtype=np.float32)
    values[:10] = np.nan  # missing values are not counted
    batch = pa.RecordBatch.from_arrays(
        [pa.array(np.zeros(100, np.float32)), pa.array(values), pa.array(["x"] * 100)],
        ["label", "price", "color"],
    )
    with TestPipeline() as pipeline:
        bounds = pipeline | beam.Create([("train", 0, batch)]) | ComputeBoundaries(fields, 4)
        assert_that(bounds, equal_to([("price", [33.0, 55.0, 78.0])]))


def test_constant_column_collapses_to_one_boundary():
    fields = (FieldDef("price", "numeric", "quantiles"),)
    batch = pa.RecordBatch.from_arrays(
        [pa.array(np.zeros(50, np.float32)), pa.array(np.full(50, 2.0, np.float32))],
        ["label", "price"],
    )
    with TestPipeline() as pipeline:
        bounds = pipeline | beam.Create([("train", 0, batch)]) | ComputeBoundaries(fields, 8)
        assert_that(bounds, equal_to([("price", [2.0])]))


@pytest.mark.parametrize(
    "min_count, expected_values, expected_summary",
    [
        (1, ["a", "b", "c d"], {"vocab_size": 4, "oov_count": 0, "distinct_values": 3}),
        (2, ["a", "b"], {"vocab_size": 3, "oov_count": 1, "distinct_values": 3}),
        (9, [], {"vocab_size": 1, "oov_count": 8, "distinct_values": 3}),
    ],
)
def test_write_vocabulary_applies_min_count(tmp_path, min_count, expected_values, expected_summary):
    counts = pa.table({"value": ["a", "b", "c d"], "count": pa.array([5, 2, 1], pa.int64())})
    name, summary = write_vocabulary("f", counts, str(tmp_path), min_count)
    assert (name, summary) == ("f", expected_summary)
    values, counts_read = read_vocabulary(str(tmp_path / "vocab" / "f.txt"))
    assert values == expected_values
    assert counts_read == [5, 2, 1][: len(expected_values)]


def test_vocabulary_file_uses_count_space_value_lines(tmp_path):
    counts = pa.table({"value": ["x y", "[MISSING]"], "count": pa.array([3, 1], pa.int64())})
    with TestPipeline() as pipeline:
        _ = pipeline | beam.Create([("f", counts)]) | ComputeVocabulary(str(tmp_path), 1)
    assert (tmp_path / "vocab" / "f.txt").read_text() == "3 x y\n1 [MISSING]\n"


def _boundaries_of(batches, num_buckets, summary_size=1 << 16):
    combine = QuantileBoundaries(num_buckets, summary_size)
    partials = [combine.add_input(combine.create_accumulator(), b) for b in batches]
    return combine.extract_output(combine.merge_accumulators(partials))


def test_quantile_boundaries_are_exact_for_few_distinct_values():
    rng = np.random.default_rng(0)
    values = np.round(rng.lognormal(3.0, 1.0, 20_000), 1)
    got = _boundaries_of(np.array_split(values, 7), 8)
    ordered = np.sort(values)
    # Exact: the smallest value whose cumulative count reaches i/8 of the data.
    expected = sorted({float(ordered[int(np.ceil(i / 8 * len(values))) - 1]) for i in range(1, 8)})
    assert got == expected


def test_quantile_boundaries_do_not_depend_on_batching():
    values = np.round(np.random.default_rng(1).normal(0, 1, 5000), 2)
    assert _boundaries_of([values], 16) == _boundaries_of(np.array_split(values, 13), 16)


def test_compressed_summary_stays_within_one_bin_of_the_exact_quantile():
    values = np.random.default_rng(2).random(100_000)  # all distinct
    got = np.array(_boundaries_of(np.array_split(values, 10), 4, summary_size=1000))
    ranks = np.searchsorted(np.sort(values), got) / len(values)
    np.testing.assert_allclose(ranks, [0.25, 0.5, 0.75], atol=2 / 1000)
