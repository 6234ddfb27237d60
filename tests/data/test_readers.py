"""The reader interface and the parsing helpers every reader shares.

`parse_files` is also used by the per-dataset reader tests: it parses each of a
reader's files as one chunk, dropping the header line where the reader says
there is one (what the Beam job does for a file smaller than a chunk).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pyarrow as pa
import pytest

from keras_dimsel.data import datasets
from keras_dimsel.data.csv import CsvReader
from keras_dimsel.data.reader import (
    UTF8_BOM,
    DataError,
    FieldDef,
    Rejection,
    decode_lines,
    hash_rows,
    parse_numbers,
    read_delimited,
)


def parse_files(reader) -> tuple[pa.Table, list[Rejection], np.ndarray]:
    """Parses every file of `reader` as one chunk: (accepted rows, rejections, row hashes)."""
    batches, rejected, hashes = [], [], []
    for path, has_header in reader.data_files():
        data = pathlib.Path(path).read_bytes()
        if has_header:
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        parsed = reader.parse(data, f"{path}@0")
        assert parsed.batch.schema == reader.schema()
        assert len(parsed.row_hash) == parsed.batch.num_rows
        batches.append(parsed.batch)
        rejected.extend(parsed.rejected)
        hashes.append(parsed.row_hash)
    table = pa.Table.from_batches(batches, schema=reader.schema())
    return table, rejected, np.concatenate(hashes)


def write(path: pathlib.Path, data: bytes | str) -> str:
    """Writes bytes (or UTF-8 text, line endings untouched) and returns the path as str."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


# ---------------------------------------------------------------------------
# decode_lines


def test_decode_lines_strips_bom_at_chunk_start():
    data, rejected = decode_lines(UTF8_BOM + b"1,a\n0,b\n", "utf-8", "f@0")
    assert data == b"1,a\n0,b\n"
    assert rejected == []


def test_decode_lines_rejects_only_the_undecodable_line():
    data, rejected = decode_lines(b"1,a\n0,caf\xe9\n1,c\n", "utf-8", "f@0")
    assert data == b"1,a\n1,c\n"
    assert rejected == [
        Rejection("f@0", "undecodable bytes: not utf-8 at byte 5 of the line", "0,caf\ufffd")
    ]


def test_decode_lines_reencodes_latin1_as_utf8():
    data, rejected = decode_lines(b"1,caf\xe9\n", "latin-1", "f@0")
    assert data == "1,café\n".encode()
    assert rejected == []


# ---------------------------------------------------------------------------
# read_delimited


def test_read_delimited_keeps_strings_and_skips_blank_lines():
    table, rejected = read_delimited(b"1,a,2.5\n\n0,,\n", ["y", "c", "n"], ",", "f@0")
    assert table.to_pydict() == {"y": ["1", "0"], "c": ["a", ""], "n": ["2.5", ""]}
    assert rejected == []


def test_read_delimited_rejects_rows_with_wrong_column_count():
    table, rejected = read_delimited(b"1,a,2\n1,a\n1,a,2,3\n0,b,4\n", ["y", "c", "n"], ",", "f@0")
    assert table.column("c").to_pylist() == ["a", "b"]
    assert rejected == [
        Rejection("f@0", "wrong number of columns: expected 3, got 2", "1,a"),
        Rejection("f@0", "wrong number of columns: expected 3, got 4", "1,a,2,3"),
    ]


def test_read_delimited_of_empty_data_is_an_empty_batch():
    table, rejected = read_delimited(b"\n\n", ["y", "c"], ",", "f@0")
    assert table.num_rows == 0
    assert table.schema.names == ["y", "c"]
    assert rejected == []


def test_read_delimited_without_quoting_keeps_quote_characters():
    table, _ = read_delimited(b'1\t"a\n', ["y", "c"], "\t", "f@0", quoting=False)
    assert table.column("c").to_pylist() == ['"a']


# ---------------------------------------------------------------------------
# parse_numbers


def test_parse_numbers_treats_empty_and_nan_as_missing():
    numbers, bad = parse_numbers(pa.array(["1.5", "", "  ", "nan", "-3"]))
    assert numbers[0] == 1.5 and numbers[4] == -3.0
    assert np.isnan(numbers[1:4]).all()
    assert bad.tolist() == [False] * 5


def test_parse_numbers_marks_text_and_infinity_unparsable():
    numbers, bad = parse_numbers(pa.array(["2", "abc", "inf", "-inf", "1e5"]))
    assert bad.tolist() == [False, True, True, True, False]
    assert numbers[0] == 2.0 and numbers[4] == 100000.0


@pytest.mark.parametrize(
    "value",
    [
        "1.5",
        " 7 ",
        "nan",
        "-nan",
        "inf",
        "abc",
        "nan(1)",
    ],
)
def test_parse_numbers_verdict_does_not_depend_on_other_values_in_the_chunk(value):
    alone_numbers, alone_bad = parse_numbers(pa.array([value]))
    mixed_numbers, mixed_bad = parse_numbers(pa.array([value, "not a number"]))
    assert mixed_bad[0] == alone_bad[0]
    if not alone_bad[0]:
        np.testing.assert_equal(mixed_numbers[0], alone_numbers[0])


# ---------------------------------------------------------------------------
# hash_rows


def test_hash_rows_identical_rows_get_identical_hashes():
    hashes = hash_rows([pa.array(["1", "0", "1"]), pa.array(["a", "b", "a"])])
    assert hashes.dtype == np.uint64
    assert hashes[0] == hashes[2]
    assert hashes[0] != hashes[1]


def test_hash_rows_is_deterministic_across_calls_and_batches():
    first = hash_rows([pa.array(["1", "0"]), pa.array(["a", "b"])])
    again = hash_rows([pa.array(["1", "0"]), pa.array(["a", "b"])])
    alone = hash_rows([pa.array(["0"]), pa.array(["b"])])
    np.testing.assert_array_equal(first, again)
    assert alone[0] == first[1]


def test_hash_rows_is_pinned_to_a_fixed_value():
    # The split of every artifact depends on these values: they must not change
    # between runs, machines or library versions.
    assert hash_rows([pa.array(["1"]), pa.array(["a"])]).tolist() == [3652648687259723308]


def test_hash_rows_keeps_field_boundaries():
    hashes = hash_rows([pa.array(["a", "ab"]), pa.array(["bc", "c"])])
    assert hashes[0] != hashes[1]


def test_hash_rows_of_no_rows_is_empty():
    hashes = hash_rows([pa.array([], pa.string())])
    assert hashes.dtype == np.uint64 and len(hashes) == 0
    assert len(hash_rows([])) == 0


def test_parsed_row_hash_does_not_depend_on_chunk(tmp_path):
    path = write(tmp_path / "a.csv", "y,c\n1,a\n0,b\n1,a\n")
    reader = CsvReader([path], "y", ["c"])
    whole = reader.parse(b"1,a\n0,b\n1,a\n", f"{path}@0").row_hash
    tail = reader.parse(b"0,b\n", f"{path}@4").row_hash
    assert whole[0] == whole[2]
    assert tail[0] == whole[1]


# ---------------------------------------------------------------------------
# Reader.schema and make_reader


def test_schema_is_float32_label_then_fields_in_order(tmp_path):
    path = write(tmp_path / "a.csv", "price,y,user\n1.5,1,u\n")
    reader = CsvReader([path], "y", ["user"], ["price"])
    assert reader.fields == (
        FieldDef("user", "categorical"),
        FieldDef("price", "numeric", "quantiles"),
    )
    assert reader.schema() == pa.schema(
        [("y", pa.float32()), ("user", pa.string()), ("price", pa.float32())]
    )


def test_make_reader_unknown_dataset_names_the_choices():
    with pytest.raises(DataError, match=r"unknown dataset 'kdd': choose one of criteo, avazu"):
        datasets.make_reader("kdd", ["x"])


def test_make_reader_needs_inputs():
    with pytest.raises(DataError, match=r"^criteo needs --input$"):
        datasets.make_reader("criteo")


def test_make_reader_csv_needs_label(tmp_path):
    path = write(tmp_path / "a.csv", "y,c\n1,a\n")
    with pytest.raises(DataError, match=r"csv needs --label"):
        datasets.make_reader("csv", [path], categorical=["c"])


def test_make_reader_rejects_numeric_transform_without_numeric_fields(tmp_path):
    path = write(tmp_path / "a.csv", "x\n")
    with pytest.raises(DataError, match=r"avazu has no numeric fields"):
        datasets.make_reader("avazu", [path], numeric_transform="quantiles")


def test_make_reader_synthetic_takes_at_most_one_input(tmp_path):
    with pytest.raises(DataError, match=r"at most one --input"):
        datasets.make_reader("synthetic", [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])


def test_make_reader_synthetic_needs_input_or_output():
    with pytest.raises(DataError, match=r"synthetic needs --input"):
        datasets.make_reader("synthetic")


def test_make_reader_csv_passes_options(tmp_path):
    path = write(tmp_path / "a.tsv", "y\tc\tn\n1\ta\t2\n")
    reader = datasets.make_reader(
        "csv", [path], label="y", categorical=["c"], numeric=["n"], sep="\t"
    )
    assert isinstance(reader, CsvReader)
    assert reader.sep == "\t"
    assert reader.fields == (FieldDef("c", "categorical"), FieldDef("n", "numeric", "quantiles"))
    table, rejected, _ = parse_files(reader)
    assert table.to_pydict() == {"y": [1.0], "c": ["a"], "n": [2.0]}
    assert rejected == []
