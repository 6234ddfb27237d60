"""Cutting files into byte ranges: every line is read exactly once."""

import csv
import gzip
import io

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from keras_dimsel.data.csv import CsvReader
from keras_dimsel.data.reader import Chunk
from keras_dimsel.preprocessing.read import (
    REJECTED_TAG,
    ReadRows,
    plan_chunks,
    read_chunk,
    runs_past_end,
)

LINES = [b"alpha", b"b", b"", b"a much longer line than the others", b"x" * 40, b"end"]


def _write(tmp_path, data: bytes, name="rows.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _read_all(path: str, size: int, chunk_bytes: int, header: bool = False) -> bytes:
    parts = []
    for start in range(0, size, chunk_bytes):
        chunk = Chunk(path, start, min(start + chunk_bytes, size), header and start == 0)
        parts.append(read_chunk(chunk))
    return b"".join(parts)


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 11, 40, 41, 42, 1000])
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_chunks_partition_the_lines_for_any_chunk_size(tmp_path, chunk_bytes, trailing_newline):
    data = b"\n".join(LINES) + (b"\n" if trailing_newline else b"")
    path = _write(tmp_path, data)
    assert _read_all(path, len(data), chunk_bytes).rstrip(b"\n") == data.rstrip(b"\n")


@pytest.mark.parametrize("chunk_bytes", [1, 4, 9, 64])
def test_header_is_dropped_once_from_the_first_chunk(tmp_path, chunk_bytes):
    data = b"head,er\n1,a\n0,b\n"
    path = _write(tmp_path, data)
    assert _read_all(path, len(data), chunk_bytes, header=True) == b"1,a\n0,b\n"


def test_crlf_lines_keep_their_carriage_return_for_the_parser(tmp_path):
    data = b"1,a\r\n0,b\r\n"
    path = _write(tmp_path, data)
    assert _read_all(path, len(data), 3) == data


def test_gzip_file_is_one_chunk(tmp_path):
    path = _write(tmp_path, gzip.compress(b"label,a\n1,x\n0,y\n"), "rows.csv.gz")
    reader = CsvReader([path], label="label", categorical=["a"])
    (chunk,) = plan_chunks(reader, chunk_bytes=4)
    assert (chunk.start, chunk.end, chunk.skip_header) == (0, -1, True)
    assert read_chunk(chunk) == b"1,x\n0,y\n"


def test_read_rows_parses_every_row_once_across_small_chunks(tmp_path):
    rows = [f"{i % 2},v{i}" for i in range(50)]
    path = _write(tmp_path, ("label,a\n" + "\n".join(rows) + "\nbad\n").encode(), "rows.csv")
    reader = CsvReader([path], label="label", categorical=["a"])
    with TestPipeline() as pipeline:
        read = pipeline | ReadRows(reader, chunk_bytes=37)
        values = read["rows"] | beam.FlatMap(lambda e: e[1].batch.column(1).to_pylist())
        reasons = read[REJECTED_TAG] | beam.FlatMap(lambda e: [r.reason for r in e[1]])
        assert_that(values, equal_to([f"v{i}" for i in range(50)]), label="AllRowsOnce")
        assert_that(
            reasons,
            equal_to(["wrong number of columns: expected 2, got 1"]),
            label="BadRowRejected",
        )


def _values_with_line_breaks(count: int) -> list[str]:
    kinds = ["plain", "two\nlines", 'say "hi"\r\nand, bye', "a\n\nb", "", "x,y", 'end"']
    return [f"{kinds[i % len(kinds)]} {i}" for i in range(count)]


@pytest.mark.parametrize("chunk_bytes", [16, 61, 400, 1 << 20])
def test_records_spanning_lines_are_read_once_whatever_the_chunks(tmp_path, chunk_bytes):
    values = _values_with_line_breaks(120)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["clicked", "note"])
    writer.writerows([[i % 2, value] for i, value in enumerate(values)])
    path = _write(tmp_path, buffer.getvalue().encode(), name="notes.csv")
    reader = CsvReader([path], "clicked", ["note"])
    with TestPipeline() as pipeline:
        read = pipeline | ReadRows(reader, chunk_bytes=chunk_bytes)
        notes = read["rows"] | beam.FlatMap(lambda e: e[1].batch.column(1).to_pylist())
        reasons = read[REJECTED_TAG] | beam.FlatMap(lambda e: [r.reason for r in e[1]])
        assert_that(notes, equal_to(values), label="notes")
        assert_that(reasons, equal_to([]), label="reasons")


def test_a_chunk_knows_when_its_last_record_runs_on(tmp_path):
    data = b'1,one\n1,"two\ntwo",2\n1,"three\nstill three",3\n1,four\n'
    path = _write(tmp_path, data, name="a.csv")
    first = Chunk(path, 0, data.index(b"still"), last=False)
    assert read_chunk(first) == b'1,one\n1,"two\ntwo",2\n1,"three\n'
    assert runs_past_end(first, read_chunk(first), ",")
    before = Chunk(path, 0, data.index(b'1,"three'), last=False)
    assert not runs_past_end(before, read_chunk(before), ",")  # "two" ends inside it
    whole = Chunk(path, 0, len(data))
    assert not runs_past_end(whole, read_chunk(whole), ",")
