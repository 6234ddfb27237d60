"""`FrappeReader` on made-up libFM lines, and on the shared Frappe files."""

from __future__ import annotations

import gzip

import pytest

from keras_dimsel.data.datasets import make_reader
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.frappe import COLUMNS, FIELD_RANGES, FIELDS, NUM_FEATURES, FrappeReader
from keras_dimsel.data.reader import DataError, FieldDef
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
from keras_dimsel.preprocessing.read import plan_chunks, read_chunk
from tests.data.test_readers import parse_files, write

#: One valid id per field, in field order (the first id of each range).
IDS = tuple(str(low) for _, low, _ in FIELD_RANGES)


def frappe_row(label, ids=IDS, values=None, end="\n") -> str:
    """One made-up line: the label, then `id:value` for each field (values default to 1)."""
    values = ["1"] * len(ids) if values is None else values
    return " ".join([str(label), *(f"{i}:{v}" for i, v in zip(ids, values))]) + end


def with_pair(position: int, pair: str, label="1") -> str:
    """A valid line whose pair at `position` (0 = user) is replaced by `pair`."""
    pairs = [f"{i}:1" for i in IDS]
    pairs[position] = pair
    return " ".join([label, *pairs]) + "\n"


def parse_text(tmp_path, text: str):
    return parse_files(FrappeReader([write(tmp_path / "frappe.libfm", text)]))


def test_ten_categorical_fields_in_file_order(tmp_path):
    reader = FrappeReader([write(tmp_path / "f.libfm", frappe_row(1))])
    assert reader.name == "frappe" and reader.label == "label"
    assert reader.fields == tuple(
        FieldDef(name, "categorical")
        for name in (
            "user", "item", "daytime", "weekday", "isweekend",
            "homework", "cost", "weather", "country", "city",
        )
    )  # fmt: skip
    assert COLUMNS == ("label", *FIELDS)
    assert reader.schema().names == list(COLUMNS)
    # The ranges tile 0..5381 without gaps or overlaps.
    assert FIELD_RANGES[0][1] == 0 and NUM_FEATURES == 5382
    for (_, _, high), (_, low, _) in zip(FIELD_RANGES, FIELD_RANGES[1:]):
        assert low == high + 1


def test_good_rows_give_the_ids_as_tokens_and_labels_0_or_1(tmp_path):
    real = "1 266:1 1244:1 5042:1 5049:1 5054:1 5055:1 5058:1 5062:1 5074:1 5149:1\r\n"
    highs = tuple(str(high) for _, _, high in FIELD_RANGES)
    text = real + frappe_row(-1) + frappe_row(0, highs) + frappe_row("1.0", values=["1.0"] * 10)
    text += frappe_row("-1e0", values=["1e0"] * 10, end="")
    path = write(tmp_path / "frappe.libfm", text)
    reader = FrappeReader([path])
    assert reader.data_files() == [(path, False)]
    table, rejected, hashes = parse_files(reader)
    assert rejected == []
    assert table.column("label").to_pylist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert table.column("user").to_pylist() == ["266", "0", "956", "0", "0"]
    assert table.column("item").to_pylist() == ["1244", "957", "5038", "957", "957"]
    assert table.column("city").to_pylist() == ["5149", "5149", "5381", "5149", "5149"]
    assert table.slice(0, 1).to_pylist() == [
        {
            "label": 1.0, "user": "266", "item": "1244", "daytime": "5042", "weekday": "5049",
            "isweekend": "5054", "homework": "5055", "cost": "5058", "weather": "5062",
            "country": "5074", "city": "5149",
        }
    ]  # fmt: skip
    assert len(set(hashes.tolist())) == 5


def test_ids_are_kept_as_written(tmp_path):
    table, rejected, _ = parse_text(tmp_path, with_pair(0, "0266:1") + with_pair(0, "266:1"))
    assert rejected == []
    assert table.column("user").to_pylist() == ["0266", "266"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (frappe_row(2), "bad label '2': expected 1 or -1"),
        (frappe_row(""), "bad label '': expected 1 or -1"),
        (frappe_row("yes"), "bad label 'yes': expected 1 or -1"),
        (frappe_row("nan"), "bad label 'nan': expected 1 or -1"),
        (frappe_row("-2"), "bad label '-2': expected 1 or -1"),
        (with_pair(1, "x"), "bad pair 'x' in field 'item': expected <id>:1"),
        (with_pair(1, "957"), "bad pair '957' in field 'item': expected <id>:1"),
        (with_pair(1, "957:"), "bad pair '957:' in field 'item': expected <id>:1"),
        (with_pair(1, ":1"), "bad pair ':1' in field 'item': expected <id>:1"),
        (with_pair(2, "-5039:1"), "bad pair '-5039:1' in field 'daytime': expected <id>:1"),
        (with_pair(2, "5o39:1"), "bad pair '5o39:1' in field 'daytime': expected <id>:1"),
        (with_pair(9, "\t5149:1"), "bad pair '\\t5149:1' in field 'city': expected <id>:1"),
        (with_pair(1, "12:1"), "feature id 12 out of range for field 'item' (957-5038)"),
        (with_pair(9, "5382:1"), "feature id 5382 out of range for field 'city' (5149-5381)"),
        (with_pair(0, "957:1"), "feature id 957 out of range for field 'user' (0-956)"),
        (
            with_pair(0, "123456789012345678901234567890:1"),
            "feature id 123456789012345678901234567890 out of range for field 'user' (0-956)",
        ),
        (with_pair(3, "5046:0"), "bad value '0' in field 'weekday': expected 1"),
        (with_pair(3, "5046:0.5"), "bad value '0.5' in field 'weekday': expected 1"),
        (with_pair(3, "5046:2"), "bad value '2' in field 'weekday': expected 1"),
        (with_pair(3, "5046:nan"), "bad value 'nan' in field 'weekday': expected 1"),
        (with_pair(3, "5046:1:1"), "bad value '1:1' in field 'weekday': expected 1"),
        (frappe_row(1, IDS[:9]), "wrong number of columns: expected 11, got 10"),
        (frappe_row(1, (*IDS, "5149")), "wrong number of columns: expected 11, got 12"),
        (frappe_row(1, end=" \n"), "wrong number of columns: expected 11, got 12"),
        (frappe_row(1).replace(" ", "  ", 1), "wrong number of columns: expected 11, got 12"),
        (frappe_row(1).replace(" ", "\t"), "wrong number of columns: expected 11, got 1"),
    ],
)
def test_bad_rows_are_rejected_with_their_reason(tmp_path, line, reason):
    table, rejected, _ = parse_text(tmp_path, frappe_row(1) + line + frappe_row(-1))
    assert table.column("label").to_pylist() == [1.0, 0.0]
    assert [r.reason for r in rejected] == [reason]
    assert rejected[0].text == line.rstrip("\n")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        # The label before the pairs, the pairs from left to right.
        (frappe_row(5, (*IDS[:1], "12", *IDS[2:])), "bad label '5': expected 1 or -1"),
        (
            with_pair(1, "12:1").replace("5039:1", "x"),
            "feature id 12 out of range for field 'item' (957-5038)",
        ),
        # Within a pair: its form, then its id, then its value.
        (with_pair(1, "12:7"), "feature id 12 out of range for field 'item' (957-5038)"),
        # Swapped fields show as an id out of range in the first of them.
        (
            with_pair(0, "957:1").replace("957:1 957:1", "957:1 0:1"),
            "feature id 957 out of range for field 'user' (0-956)",
        ),
    ],
)
def test_a_row_is_rejected_for_its_first_fault(tmp_path, line, reason):
    _, rejected, _ = parse_text(tmp_path, line)
    assert [r.reason for r in rejected] == [reason]


def test_accepted_and_rejected_add_up_to_the_non_blank_lines(tmp_path):
    lines = [
        frappe_row(1),
        "\n",
        with_pair(1, "12:1"),
        "\r\n",
        frappe_row(-1, end="\r\n"),
        "caf\xe9 957:1\n",
        frappe_row(0),
        "1 2 3\n",
        with_pair(4, "5053:0"),
        frappe_row(7),
    ]
    data = "".join(lines).encode("utf-8") + b"\xff\xfe 1:1\n" + b"1 0:1\r957:1\n"
    table, rejected, _ = parse_text(tmp_path, data)
    assert table.num_rows == 3
    assert len(rejected) == 7
    non_blank = [line for line in data.split(b"\n") if line.strip(b"\r")]
    assert table.num_rows + len(rejected) == len(non_blank) == 10
    assert {r.reason.split(":")[0] for r in rejected} == {
        "feature id 12 out of range for field 'item' (957-5038)",
        "wrong number of columns",
        "bad value '0' in field 'isweekend'",
        "bad label '7'",
        "undecodable bytes",
        "carriage return inside the line (only a \\r\\n line ending is allowed)",
    }


def test_empty_chunk_parses_to_no_rows(tmp_path):
    reader = FrappeReader([write(tmp_path / "f.libfm", frappe_row(1))])
    parsed = reader.parse(b"", "f.libfm@0")
    assert parsed.batch.num_rows == 0
    assert parsed.batch.schema == reader.schema()
    assert parsed.rejected == []


def test_gzip_file_is_read_as_one_chunk(tmp_path):
    rows = [frappe_row(1 if i % 3 == 0 else -1, (str(i % 957), *IDS[1:])) for i in range(200)]
    path = tmp_path / "frappe.test.libfm.gz"
    path.write_bytes(gzip.compress("".join(rows + [with_pair(1, "x")]).encode()))
    reader = FrappeReader([str(path)])
    (chunk,) = plan_chunks(reader, chunk_bytes=100)
    parsed = reader.parse(read_chunk(chunk), chunk.source)
    assert parsed.batch.num_rows == 200
    assert [r.reason for r in parsed.rejected] == ["bad pair 'x' in field 'item': expected <id>:1"]
    assert parsed.batch.column("user").to_pylist()[:3] == ["0", "1", "2"]
    assert sum(parsed.batch.column("label").to_pylist()) == 67


def test_make_reader_builds_the_frappe_reader(tmp_path):
    path = write(tmp_path / "a.libfm", frappe_row(1))
    write(tmp_path / "b.libfm", frappe_row(-1))
    reader = make_reader("frappe", [str(tmp_path / "*.libfm")])
    assert isinstance(reader, FrappeReader)
    assert [p for p, _ in reader.data_files()] == [path, str(tmp_path / "b.libfm")]
    with pytest.raises(DataError, match=r"frappe has no numeric fields"):
        make_reader("frappe", [path], numeric_transform="quantiles")
    with pytest.raises(DataError, match=r"frappe needs --input"):
        make_reader("frappe", [])


def test_missing_input_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"input path not found"):
        FrappeReader([str(tmp_path / "frappe.train.libfm")])


# ---------------------------------------------------------------------------
# The shared files (never copied into the repository)


#: The shared files (the training file is not among them) and their lines.
SHARED = {"validation": 57_722, "test": 28_860}


def _parse_shared(path):
    reader = FrappeReader([str(path)])
    (chunk,) = plan_chunks(reader)
    return reader.parse(read_chunk(chunk), chunk.source)


@pytest.mark.parametrize(("split", "rows"), SHARED.items())
def test_shared_files_all_rows_accepted_within_the_ranges(shared_data, split, rows):
    path = shared_data / "frappe" / f"frappe.{split}.libfm.gz"
    parsed = _parse_shared(path)
    assert parsed.rejected == []
    assert parsed.batch.num_rows == rows
    with gzip.open(path) as f:
        positives = sum(line.startswith(b"1 ") for line in f)
    assert sum(parsed.batch.column("label").to_pylist()) == positives
    for name, low, high in FIELD_RANGES:
        values = {int(v) for v in parsed.batch.column(name).to_pylist()}
        assert len(values) <= high - low + 1, name
        assert low <= min(values) and max(values) <= high, name


def test_shared_test_file_has_the_documented_label_counts(shared_data):
    parsed = _parse_shared(shared_data / "frappe" / "frappe.test.libfm.gz")
    labels = parsed.batch.column("label").to_pylist()
    assert (labels.count(1.0), labels.count(0.0)) == (9_536, 19_324)


def test_shared_files_through_the_beam_job(shared_data, tmp_path):
    inputs = [str(shared_data / "frappe" / f"frappe.{split}.libfm.gz") for split in SHARED]
    spec = run(make_reader("frappe", inputs), PreprocessConfig(output_dir=str(tmp_path)))
    assert spec.rejected_rows == 0
    assert sum(spec.splits.values()) == sum(SHARED.values())
    assert spec.field_names == list(FIELDS)
    for name, low, high in FIELD_RANGES:
        field = spec.field(name)
        assert field.vocab_size <= high - low + 1 + 1, name  # the range, and the OOV id
        values, counts = spec.vocabulary(name)
        assert all(low <= int(value) <= high for value in values), name
        assert sum(counts) + field.oov_count == spec.splits["train"], name


# ---------------------------------------------------------------------------
# The command line


def test_dimsel_preprocess_reads_a_gzip_frappe_file(tmp_path, capsys):
    from keras_dimsel.cli import main

    rows = [frappe_row(1 if i % 3 == 0 else -1, (str(i % 50), *IDS[1:])) for i in range(300)]
    path = tmp_path / "frappe.libfm.gz"
    path.write_bytes(gzip.compress("".join(rows + [with_pair(1, "12:1")]).encode()))
    out = tmp_path / "out"
    argv = ["preprocess", "--dataset", "frappe", "--input", str(path), "--output", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "frappe: train" in printed and "; 1 rejected" in printed
    spec = FeatureSpec.load(str(out))
    assert spec.label == "label" and spec.field_names == list(FIELDS)
    assert sum(spec.splits.values()) == 300 and spec.rejected_rows == 1
    assert spec.field("user").vocab_size <= 50 + 1
    assert spec.field("item").vocab_size == 1 + 1  # one value, and the OOV id
