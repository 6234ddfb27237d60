"""`CriteoReader` on generated 40-column files, and on the shared public sample."""

from __future__ import annotations

import math
import shutil

import pytest

from keras_dimsel.data.criteo import CATEGORICAL_FEATURES, COLUMNS, INTEGER_FEATURES, CriteoReader
from keras_dimsel.data.reader import DataError, FieldDef
from tests.data.test_readers import parse_files, write


def criteo_row(label, integers=None, categories=None, sep="\t") -> str:
    """One made-up row: label, 13 integers (default "i"), 26 categories (default "c<i>")."""
    integers = [str(i) for i in range(13)] if integers is None else integers
    categories = [f"{i:08x}" for i in range(26)] if categories is None else categories
    assert len(integers) == 13 and len(categories) == 26
    return sep.join([str(label), *map(str, integers), *categories]) + "\n"


ROWS = criteo_row(1) + criteo_row(
    0,
    ["", "-2", "5", "", "1000", "-1", "0", "3", "", "7", "", "2", "-10"],
    ["", "a1b2c3d4"] + [""] * 23 + ["deadbeef"],
)


def test_fields_are_i1_to_i13_numeric_then_c1_to_c26_categorical(tmp_path):
    reader = CriteoReader([write(tmp_path / "day.txt", ROWS)])
    assert reader.label == "label"
    assert reader.fields == tuple(
        [FieldDef(f"I{i}", "numeric", "log_square") for i in range(1, 14)]
        + [FieldDef(f"C{i}", "categorical") for i in range(1, 27)]
    )
    assert COLUMNS == ("label", *INTEGER_FEATURES, *CATEGORICAL_FEATURES)
    assert len(COLUMNS) == 40


def test_quantiles_transform_option(tmp_path):
    reader = CriteoReader([write(tmp_path / "day.txt", ROWS)], numeric_transform="quantiles")
    assert {f.transform for f in reader.fields if f.kind == "numeric"} == {"quantiles"}


def test_unknown_numeric_transform_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"numeric transform must be one of"):
        CriteoReader([write(tmp_path / "day.txt", ROWS)], numeric_transform="log")


def test_tsv_without_header_parses_values_empty_cells_and_negatives(tmp_path):
    reader = CriteoReader([write(tmp_path / "day.txt", ROWS)])
    assert reader.data_files() == [(str(tmp_path / "day.txt"), False)]
    table, rejected, _ = parse_files(reader)
    assert rejected == []
    assert table.num_rows == 2
    assert table.column("label").to_pylist() == [1.0, 0.0]
    assert table.column("I1").to_pylist()[0] == 0.0
    assert math.isnan(table.column("I1").to_pylist()[1])
    assert table.column("I2").to_pylist() == [1.0, -2.0]
    assert table.column("I5").to_pylist() == [4.0, 1000.0]
    assert table.column("I13").to_pylist() == [12.0, -10.0]
    assert table.column("C1").to_pylist() == ["00000000", ""]
    assert table.column("C2").to_pylist() == ["00000001", "a1b2c3d4"]
    assert table.column("C3").to_pylist() == ["00000002", ""]
    assert table.column("C26").to_pylist() == ["00000019", "deadbeef"]


def test_csv_variant_with_header(tmp_path):
    header = ",".join(COLUMNS) + "\n"
    rows = criteo_row(0, ["260.0"] + [""] * 12, sep=",") + criteo_row(1, sep=",")
    path = write(tmp_path / "sample.csv", header + rows)
    reader = CriteoReader([path])
    assert reader.data_files() == [(path, True)]
    table, rejected, _ = parse_files(reader)
    assert rejected == []
    assert table.column("label").to_pylist() == [0.0, 1.0]
    assert table.column("I1").to_pylist() == [260.0, 0.0]
    assert math.isnan(table.column("I2").to_pylist()[0])
    assert table.column("C26").to_pylist() == ["00000019", "00000019"]


def test_tsv_and_csv_files_together(tmp_path):
    tsv = write(tmp_path / "a.txt", criteo_row(1))
    csv = write(tmp_path / "b.csv", ",".join(COLUMNS) + "\n" + criteo_row(0, sep=","))
    reader = CriteoReader([tsv, csv])
    assert reader.data_files() == [(tsv, False), (csv, True)]
    table, rejected, _ = parse_files(reader)
    assert table.column("label").to_pylist() == [1.0, 0.0]
    assert rejected == []


def test_malformed_lines_rejected_with_reasons(tmp_path):
    short = "1\t" + "\t".join(["1"] * 13) + "\t" + "\t".join(["c"] * 25) + "\n"  # 39 columns
    bad_integer = criteo_row(0, ["1", "2", "3", "4", "x5"] + [""] * 8)
    bad_label = criteo_row(3)
    path = write(tmp_path / "day.txt", criteo_row(1) + short + bad_integer + bad_label)
    table, rejected, _ = parse_files(CriteoReader([path]))
    assert table.num_rows == 1
    assert [r.reason for r in rejected] == [
        "wrong number of columns: expected 40, got 39",
        "unparsable number in column 'I5': 'x5'",
        "bad label '3': expected 0 or 1",
    ]
    assert rejected[0].text == short.rstrip("\n")
    assert rejected[1].text == bad_integer.rstrip("\n")


def test_quote_characters_in_tsv_are_plain_text(tmp_path):
    categories = ['"quoted'] + [""] * 25
    path = write(tmp_path / "day.txt", criteo_row(1, categories=categories))
    table, rejected, _ = parse_files(CriteoReader([path]))
    assert table.column("C1").to_pylist() == ['"quoted']
    assert rejected == []


def test_file_that_is_neither_tsv_nor_headed_csv_is_a_data_error(tmp_path):
    path = write(tmp_path / "other.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match=r"other\.csv: not a Criteo file"):
        CriteoReader([path])


def test_missing_input_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"input path not found"):
        CriteoReader([str(tmp_path / "day_0.txt")])


# ---------------------------------------------------------------------------
# The shared public sample (never copied into the repository)


def test_shared_train_head10k_all_rows_accepted(shared_data):
    path = shared_data / "criteo" / "train_head10k.txt"
    table, rejected, hashes = parse_files(CriteoReader([str(path)]))
    assert table.num_rows == 10_000
    assert rejected == []
    assert len(hashes) == 10_000
    positives = sum(line.startswith(b"1\t") for line in path.read_bytes().splitlines())
    assert sum(table.column("label").to_pylist()) == positives


def test_shared_train_head10k_with_a_malformed_line_appended(shared_data, tmp_path):
    copy = tmp_path / "train_head10k.txt"
    shutil.copyfile(shared_data / "criteo" / "train_head10k.txt", copy)
    with open(copy, "ab") as f:
        f.write(b"1\t2\t3\n")
    table, rejected, _ = parse_files(CriteoReader([str(copy)]))
    assert table.num_rows == 10_000
    assert [r.reason for r in rejected] == ["wrong number of columns: expected 40, got 3"]
    assert rejected[0].text == "1\t2\t3"


def test_shared_csv_sample_with_header(shared_data):
    reader = CriteoReader([str(shared_data / "criteo" / "criteo_sample.txt")])
    assert reader.data_files()[0][1] is True
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 200
    assert rejected == []
