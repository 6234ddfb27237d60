"""`CsvReader`: header handling, label and number validation, rejections, DataErrors."""

from __future__ import annotations

import math

import pytest

from keras_dimsel.data.csv import CsvReader
from keras_dimsel.data.reader import UTF8_BOM, DataError, FieldDef
from tests.data.test_readers import parse_files, write

HEADER = "clicked,user,item,price\n"


def csv_reader(tmp_path, body: str | bytes, header: str | bytes = HEADER, **options) -> CsvReader:
    """A reader over one file `header + body` with label `clicked`, user/item and price."""
    if isinstance(body, str):
        body = body.encode()
    if isinstance(header, str):
        header = header.encode()
    path = write(tmp_path / "clicks.csv", header + body)
    options.setdefault("categorical", ["user", "item"])
    options.setdefault("numeric", ["price"])
    return CsvReader([path], "clicked", **options)


def reasons(rejected) -> list[str]:
    return [r.reason for r in rejected]


# ---------------------------------------------------------------------------
# Header and fields


def test_header_names_columns_label_and_fields(tmp_path):
    reader = csv_reader(tmp_path, "1,u1,i1,2.5\n", header="clicked,user,item,price,ignored\n")
    assert reader.columns == ["clicked", "user", "item", "price", "ignored"]
    assert reader.label == "clicked"
    assert reader.fields == (
        FieldDef("user", "categorical"),
        FieldDef("item", "categorical"),
        FieldDef("price", "numeric", "quantiles"),
    )
    assert reader.schema().names == ["clicked", "user", "item", "price"]


def test_quoted_header_names_are_unquoted(tmp_path):
    reader = csv_reader(tmp_path, "1,u1,i1,2.5\n", header='"clicked","user","item","price"\n')
    assert reader.columns == ["clicked", "user", "item", "price"]
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["u1"]
    assert rejected == []


def test_header_names_are_stripped_of_spaces(tmp_path):
    reader = csv_reader(tmp_path, "1,u1,i1,2.5\n", header="clicked , user,item,price \n")
    assert reader.columns == ["clicked", "user", "item", "price"]


def test_numeric_transform_is_recorded_on_numeric_fields(tmp_path):
    reader = csv_reader(tmp_path, "1,u1,i1,2.5\n", numeric_transform="log_square")
    assert reader.fields[-1] == FieldDef("price", "numeric", "log_square")


def test_columns_that_are_not_fields_are_not_in_the_batch(tmp_path):
    reader = csv_reader(tmp_path, "1,u1,i1,2.5\n", categorical=["item"], numeric=[])
    table, _, _ = parse_files(reader)
    assert table.to_pydict() == {"clicked": [1.0], "item": ["i1"]}


def test_tab_separator(tmp_path):
    path = write(tmp_path / "clicks.tsv", "clicked\tuser\tprice\n0\ta,b\t3\n")
    reader = CsvReader([path], "clicked", ["user"], ["price"], sep="\t")
    table, rejected, _ = parse_files(reader)
    assert table.to_pydict() == {"clicked": [0.0], "user": ["a,b"], "price": [3.0]}
    assert rejected == []


def test_quoted_field_may_contain_the_separator(tmp_path):
    reader = csv_reader(tmp_path, '1,"u1,x",i1,2\n')
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["u1,x"]
    assert rejected == []


# ---------------------------------------------------------------------------
# Labels


def test_labels_0_and_1_accepted_also_written_as_floats(tmp_path):
    reader = csv_reader(tmp_path, "0,a,i,1\n1,b,i,1\n0.0,c,i,1\n1.0,d,i,1\n")
    table, rejected, _ = parse_files(reader)
    assert table.column("clicked").to_pylist() == [0.0, 1.0, 0.0, 1.0]
    assert rejected == []


@pytest.mark.parametrize("label", ["2", "x", "", "-1", "0.5", "nan"])
def test_bad_label_rejected_with_reason(tmp_path, label):
    reader = csv_reader(tmp_path, f"1,a,i,1\n{label},b,i,1\n")
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["a"]
    assert reasons(rejected) == [f"bad label {label!r}: expected 0 or 1"]
    assert rejected[0].text == f"{label},b,i,1"
    assert rejected[0].source.endswith("clicks.csv@0")


# ---------------------------------------------------------------------------
# Columns and numbers


@pytest.mark.parametrize(("line", "got"), [("1,a,i", 3), ("1,a,i,1,extra", 5), ("1", 1)])
def test_wrong_column_count_rejected(tmp_path, line, got):
    reader = csv_reader(tmp_path, f"0,a,i,1\n{line}\n")
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 1
    assert reasons(rejected) == [f"wrong number of columns: expected 4, got {got}"]
    assert rejected[0].text == line


def test_unparsable_number_rejected_naming_column_and_value(tmp_path):
    reader = csv_reader(tmp_path, "1,a,i,abc\n0,b,i,2\n")
    table, rejected, _ = parse_files(reader)
    assert table.column("price").to_pylist() == [2.0]
    assert reasons(rejected) == ["unparsable number in column 'price': 'abc'"]


@pytest.mark.parametrize("value", ["inf", "-inf", "+inf", "Infinity"])
def test_infinite_number_rejected(tmp_path, value):
    reader = csv_reader(tmp_path, f"1,a,i,{value}\n0,b,i,2\n")
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 1
    assert reasons(rejected) == [f"unparsable number in column 'price': {value!r}"]


def test_number_beyond_float32_range_rejected(tmp_path):
    reader = csv_reader(tmp_path, "1,a,i,1e39\n0,b,i,-1e39\n1,c,i,3e38\n")
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["c"]
    assert reasons(rejected) == ["number out of float32 range in column 'price'"] * 2


def test_empty_numeric_cell_is_missing_nan_and_accepted(tmp_path):
    reader = csv_reader(tmp_path, "1,a,i,\n0,b,i,nan\n1,c,i,-4.5\n")
    table, rejected, _ = parse_files(reader)
    price = table.column("price").to_pylist()
    assert math.isnan(price[0]) and math.isnan(price[1])
    assert price[2] == -4.5
    assert rejected == []


def test_empty_categorical_cell_is_an_empty_string(tmp_path):
    reader = csv_reader(tmp_path, "1,,i,1\n")
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == [""]
    assert rejected == []


def test_accepted_plus_rejected_equals_non_blank_data_lines(tmp_path):
    body = (
        "1,a,i,1\n"
        "\n"
        "2,b,i,1\n"  # bad label
        "0,c,i\n"  # wrong column count
        "\n"
        "0,d,i,x\n"  # unparsable number
        "1,e,i,-inf\n"  # infinite
        "0,f,i,\n"
        "1,g,i,7\n"
    )
    reader = csv_reader(tmp_path, body)
    table, rejected, hashes = parse_files(reader)
    assert table.column("user").to_pylist() == ["a", "f", "g"]
    assert len(rejected) == 4
    non_blank = [line for line in body.split("\n") if line.strip()]
    assert table.num_rows + len(rejected) == len(non_blank) == 7
    assert len(hashes) == 3


# ---------------------------------------------------------------------------
# Encodings and line endings


def test_bom_at_file_start_is_not_part_of_the_first_column(tmp_path):
    reader = csv_reader(tmp_path, b"1,u1,i1,2\n", header=UTF8_BOM + HEADER.encode())
    assert reader.columns[0] == "clicked"
    assert reader.data_files() == [(reader.paths[0], True)]
    table, rejected, _ = parse_files(reader)
    assert table.column("clicked").to_pylist() == [1.0]
    assert rejected == []


def test_bom_at_start_of_a_headerless_second_file_is_ignored(tmp_path):
    first = write(tmp_path / "a.csv", HEADER + "0,u1,i1,1\n")
    second = write(tmp_path / "b.csv", UTF8_BOM + b"1,u2,i2,2\n")
    reader = CsvReader([first, second], "clicked", ["user"], ["price"])
    assert reader.data_files() == [(first, True), (second, False)]
    table, rejected, _ = parse_files(reader)
    assert table.to_pydict() == {"clicked": [0.0, 1.0], "user": ["u1", "u2"], "price": [1.0, 2.0]}
    assert rejected == []


def test_crlf_line_endings(tmp_path):
    path = write(tmp_path / "a.csv", b"clicked,price,user\r\n1,2.5,u1\r\n\r\n0,,u2\r\n")
    reader = CsvReader([path], "clicked", ["user"], ["price"])
    assert reader.columns == ["clicked", "price", "user"]
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["u1", "u2"]
    assert table.column("price").to_pylist()[0] == 2.5
    assert rejected == []


def test_latin1_bytes_in_utf8_file_rejected_as_undecodable_other_lines_kept(tmp_path):
    reader = csv_reader(tmp_path, b"1,u1,i1,1\n0,caf\xe9,i2,2\n1,u3,i3,3\n")
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["u1", "u3"]
    assert reasons(rejected) == ["undecodable bytes: not utf-8 at byte 5 of the line"]
    assert rejected[0].text == "0,caf\ufffd,i2,2"


def test_latin1_encoding_option_decodes_latin1_files(tmp_path):
    reader = csv_reader(tmp_path, b"1,caf\xe9,i1,1\n", encoding="latin-1")
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["café"]
    assert rejected == []


# ---------------------------------------------------------------------------
# Several files


def test_data_files_skips_a_repeated_header_only(tmp_path):
    first = write(tmp_path / "a.csv", HEADER + "1,u1,i1,1\n")
    repeated = write(tmp_path / "b.csv", HEADER + "0,u2,i2,2\n")
    headerless = write(tmp_path / "c.csv", "1,u3,i3,3\n")
    reader = CsvReader([first, repeated, headerless], "clicked", ["user"], ["price"])
    assert reader.data_files() == [(first, True), (repeated, True), (headerless, False)]
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["u1", "u2", "u3"]
    assert rejected == []


def test_glob_pattern_expands_to_sorted_files(tmp_path):
    write(tmp_path / "part-1.csv", HEADER + "1,u2,i,1\n")
    write(tmp_path / "part-0.csv", HEADER + "0,u1,i,1\n")
    reader = CsvReader([str(tmp_path / "part-*.csv")], "clicked", ["user"])
    assert reader.paths == [str(tmp_path / "part-0.csv"), str(tmp_path / "part-1.csv")]
    table, _, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["u1", "u2"]


def test_a_folder_is_its_data_files_by_name(tmp_path):
    folder = tmp_path / "clicks"
    write(folder / "day_1.csv", HEADER + "1,u2,i,1\n")
    write(folder / "day_0.csv", HEADER + "0,u1,i,1\n")
    write(folder / "_SUCCESS", "")
    write(folder / ".day_2.csv.swp", "not data\n")
    write(folder / "older" / "day_9.csv", HEADER + "1,u9,i,1\n")
    reader = CsvReader([str(folder)], "clicked", ["user"])
    assert reader.paths == [str(folder / "day_0.csv"), str(folder / "day_1.csv")]
    table, rejected, _ = parse_files(reader)
    assert table.column("user").to_pylist() == ["u1", "u2"]
    assert rejected == []


def test_a_folder_without_data_files_is_a_data_error(tmp_path):
    write(tmp_path / "empty" / "_SUCCESS", "")
    with pytest.raises(DataError) as error:
        CsvReader([str(tmp_path / "empty")], "clicked", ["user"])
    assert str(error.value) == f"input folder holds no data file: {tmp_path / 'empty'}"


# ---------------------------------------------------------------------------
# DataError


def test_missing_label_column_is_a_data_error_naming_file_and_header(tmp_path):
    path = write(tmp_path / "clicks.csv", "user,price\nu1,1\n")
    with pytest.raises(DataError) as error:
        CsvReader([path], "clicked", ["user"])
    assert str(error.value) == f"{path}: no label column 'clicked'; the header has: user, price"


def test_unknown_categorical_column_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"clicks\.csv: no categorical column 'site'; the header"):
        csv_reader(tmp_path, "1,u1,i1,1\n", categorical=["user", "site"])


def test_unknown_numeric_column_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"no numeric column 'age'"):
        csv_reader(tmp_path, "1,u1,i1,1\n", numeric=["age"])


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_empty_file_is_a_data_error(tmp_path, content):
    path = write(tmp_path / "empty.csv", content)
    with pytest.raises(DataError) as error:
        CsvReader([path], "clicked", ["user"])
    assert str(error.value) == f"{path}: the file is empty (no header line)"


def test_missing_input_path_is_a_data_error(tmp_path):
    missing = str(tmp_path / "nowhere.csv")
    with pytest.raises(DataError) as error:
        CsvReader([missing], "clicked", ["user"])
    assert str(error.value) == f"input path not found: {missing}"


def test_glob_matching_nothing_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"input path not found: .*\*\.csv"):
        CsvReader([str(tmp_path / "*.csv")], "clicked", ["user"])


@pytest.mark.parametrize("sep", ["::", ", ", ""])
def test_separator_must_be_one_character(tmp_path, sep):
    with pytest.raises(DataError) as error:
        csv_reader(tmp_path, "1,u1,i1,1\n", sep=sep)
    assert str(error.value) == f"--sep must be one character. Received: {sep!r}"


def test_at_least_one_field_is_required(tmp_path):
    with pytest.raises(DataError, match=r"csv needs at least one field"):
        csv_reader(tmp_path, "1,u1,i1,1\n", categorical=[], numeric=[])


def test_column_named_twice_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"column\(s\) named twice in the options: user"):
        csv_reader(tmp_path, "1,u1,i1,1\n", categorical=["user"], numeric=["user"])


def test_unknown_numeric_transform_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"numeric transform must be one of"):
        csv_reader(tmp_path, "1,u1,i1,1\n", numeric_transform="log")
