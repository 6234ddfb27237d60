"""Deterministic hash splits."""

import numpy as np
import pyarrow as pa
import pytest

from keras_dimsel.data.reader import DataError, ParsedChunk, hash_rows
from keras_dimsel.preprocessing.splits import AssignSplits, _assign, parse_ratios, split_indices


def test_parse_ratios_normalises():
    assert parse_ratios("8:1:1") == pytest.approx((0.8, 0.1, 0.1))
    assert parse_ratios("2:0:2") == pytest.approx((0.5, 0.0, 0.5))


@pytest.mark.parametrize("text", ["8:1", "a:b:c", "0:1:1", "8:-1:1", ""])
def test_parse_ratios_rejects_bad_text(text):
    with pytest.raises(DataError, match="--split"):
        parse_ratios(text)


def test_split_fractions_follow_the_ratios():
    rows = pa.array([f"row {i}" for i in range(200_000)])
    which = split_indices(hash_rows([rows]), (0.8, 0.1, 0.1))
    fractions = np.bincount(which, minlength=3) / len(which)
    np.testing.assert_allclose(fractions, [0.8, 0.1, 0.1], atol=0.005)


def test_split_depends_on_row_content_only():
    rows = pa.array([f"row {i}" for i in range(1000)])
    first = split_indices(hash_rows([rows]), (0.8, 0.1, 0.1))
    reversed_rows = pa.array([f"row {i}" for i in reversed(range(1000))])
    second = split_indices(hash_rows([reversed_rows]), (0.8, 0.1, 0.1))
    np.testing.assert_array_equal(first, second[::-1])


def test_zero_ratio_split_gets_nothing():
    rows = pa.array([f"row {i}" for i in range(5000)])
    assert 1 not in split_indices(hash_rows([rows]), (0.5, 0.0, 0.5))


def test_assign_splits_partitions_a_batch():
    values = pa.array([f"v{i}" for i in range(300)])
    batch = pa.RecordBatch.from_arrays([values], ["a"])
    parsed = ParsedChunk(batch, hash_rows([values]), [])
    parts = list(_assign((7, parsed), AssignSplits((8, 1, 1))._ratios))
    assert [name for name, _, _ in parts] == ["train", "validation", "test"]
    assert all(index == 7 for _, index, _ in parts)
    seen = sorted(v for _, _, b in parts for v in b.column(0).to_pylist())
    assert seen == sorted(values.to_pylist())
