"""`AvazuReader` on generated rows, and on the shared public sample."""

from __future__ import annotations

import pytest

from keras_dimsel.data.avazu import CATEGORICAL_FEATURES, COLUMNS, HEADER, AvazuReader
from keras_dimsel.data.reader import DataError
from tests.data.test_readers import parse_files, write


def avazu_row(row_id, click, hour, categories=None) -> str:
    """One made-up row: id, click, hour, then 21 categorical values (default "v<i>")."""
    categories = [f"v{i}" for i in range(21)] if categories is None else categories
    assert len(categories) == 21
    return ",".join([str(row_id), str(click), str(hour), *categories]) + "\n"


ROWS = avazu_row("10000000000000000001", 1, 14102100) + avazu_row(
    "18446744073709551615", 0, 14102523, ["1005", "0", "1fbe01fe"] + [""] * 17 + ["-1"]
)


def test_label_is_click_and_id_is_not_a_field(tmp_path):
    reader = AvazuReader([write(tmp_path / "train.csv", ROWS)])
    names = [f.name for f in reader.fields]
    assert reader.label == "click"
    assert names == ["hour_of_day", "weekday", *COLUMNS[3:]]
    assert "id" not in names and "hour" not in names and "click" not in names
    assert len(CATEGORICAL_FEATURES) == 21
    assert {f.kind for f in reader.fields} == {"categorical"}
    assert reader.schema().names[0] == "click"


def test_rows_without_header(tmp_path):
    path = write(tmp_path / "extra.csv", ROWS)
    reader = AvazuReader([path])
    assert reader.data_files() == [(path, False)]
    table, rejected, _ = parse_files(reader)
    assert rejected == []
    assert table.column("click").to_pylist() == [1.0, 0.0]
    assert "id" not in table.schema.names
    assert table.column("C1").to_pylist() == ["v0", "1005"]
    assert table.column("banner_pos").to_pylist() == ["v1", "0"]
    assert table.column("site_id").to_pylist() == ["v2", "1fbe01fe"]
    assert table.column("site_domain").to_pylist() == ["v3", ""]
    assert table.column("C21").to_pylist() == ["v20", "-1"]


def test_rows_with_header(tmp_path):
    path = write(tmp_path / "train.csv", HEADER + "\n" + ROWS)
    reader = AvazuReader([path])
    assert reader.data_files() == [(path, True)]
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 2
    assert rejected == []


@pytest.mark.parametrize(
    ("hour", "hour_of_day", "weekday"),
    [
        ("14102100", "00", "1"),  # 2014-10-21 was a Tuesday (Monday = 0)
        ("14102523", "23", "5"),  # Saturday
        ("14102613", "13", "6"),  # Sunday
        ("14102701", "01", "0"),  # Monday
        ("14103009", "09", "3"),  # Thursday
    ],
)
def test_hour_becomes_hour_of_day_and_weekday(tmp_path, hour, hour_of_day, weekday):
    path = write(tmp_path / "train.csv", avazu_row(1, 0, hour))
    table, rejected, _ = parse_files(AvazuReader([path]))
    assert rejected == []
    assert table.column("hour_of_day").to_pylist() == [hour_of_day]
    assert table.column("weekday").to_pylist() == [weekday]


@pytest.mark.parametrize("hour", ["14102124", "14103200", "14130100", "abcdefgh", ""])
def test_bad_hour_rejected_with_reason(tmp_path, hour):
    path = write(tmp_path / "train.csv", avazu_row(1, 1, 14102100) + avazu_row(2, 0, hour))
    table, rejected, _ = parse_files(AvazuReader([path]))
    assert table.column("click").to_pylist() == [1.0]
    assert [r.reason for r in rejected] == [f"bad hour {hour!r}: expected YYMMDDHH"]
    assert rejected[0].text == avazu_row(2, 0, hour).rstrip("\n")


@pytest.mark.parametrize("hour", ["141021", "1410211"])
def test_hour_that_is_not_eight_digits_is_rejected(tmp_path, hour):
    path = write(tmp_path / "train.csv", avazu_row(1, 0, hour))
    table, rejected, _ = parse_files(AvazuReader([path]))
    assert table.num_rows == 0
    assert [r.reason for r in rejected] == [f"bad hour {hour!r}: expected YYMMDDHH"]


@pytest.mark.parametrize("click", ["2", "yes", ""])
def test_bad_click_rejected(tmp_path, click):
    path = write(tmp_path / "train.csv", avazu_row(1, click, 14102100))
    table, rejected, _ = parse_files(AvazuReader([path]))
    assert table.num_rows == 0
    assert [r.reason for r in rejected] == [f"bad label {click!r}: expected 0 or 1"]


def test_wrong_column_count_rejected(tmp_path):
    path = write(tmp_path / "train.csv", ROWS + "1,0,14102100,a,b\n")
    table, rejected, _ = parse_files(AvazuReader([path]))
    assert table.num_rows == 2
    assert [r.reason for r in rejected] == ["wrong number of columns: expected 24, got 5"]


def test_empty_chunk_parses_to_no_rows(tmp_path):
    reader = AvazuReader([write(tmp_path / "train.csv", ROWS)])
    parsed = reader.parse(b"", "train.csv@0")
    assert parsed.batch.num_rows == 0
    assert parsed.batch.schema == reader.schema()
    assert parsed.rejected == []


def test_missing_input_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"input path not found"):
        AvazuReader([str(tmp_path / "train.csv")])


# ---------------------------------------------------------------------------
# The shared public sample (never copied into the repository)


def test_shared_train_first8999_with_header(shared_data):
    reader = AvazuReader([str(shared_data / "avazu" / "train_first8999.csv")])
    assert reader.data_files()[0][1] is True
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 8_999
    assert rejected == []
    assert set(table.column("hour_of_day").to_pylist()) == {"00"}
    assert set(table.column("weekday").to_pylist()) == {"1"}


def test_shared_extra_1000_without_header(shared_data):
    reader = AvazuReader([str(shared_data / "avazu" / "extra_1000_noheader.csv")])
    assert reader.data_files()[0][1] is False
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 1_000
    assert rejected == []


def test_shared_files_together(shared_data):
    reader = AvazuReader([str(shared_data / "avazu" / "*.csv")])
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 9_999
    assert rejected == []
