"""One input record is one row: the cases where the CSV parser used to disagree.

Most tests pin a case the fault-injection suite (tests/reliability) found:
a carriage return or an unclosed quote made the parser cut a line in two or
join it with the next ones, so accepted + rejected no longer matched the
input records (and a valid row could be swallowed); a byte order mark in the
middle of a file was kept or dropped depending on where a chunk started; a
line of spaces was rejected, unless its chunk held nothing else. A quoted
value may hold line breaks (RFC 4180): its record is read as one row.
"""

from __future__ import annotations

import pytest

from keras_dimsel.data.criteo import CriteoReader
from keras_dimsel.data.csv import CsvReader
from keras_dimsel.data.reader import (
    MAX_RECORD_LINES,
    UTF8_BOM,
    Rejection,
    read_delimited,
)
from tests.data.test_readers import write

CR_REASON = "carriage return inside the line (only a \\r\\n line ending is allowed)"
UNCLOSED_REASON = "unclosed quote: a quoted value does not end within 100 lines"


@pytest.fixture
def reader(tmp_path):
    return CsvReader([write(tmp_path / "a.csv", "y,c,n\n1,a,2\n")], "y", ["c"], ["n"])


def test_carriage_return_inside_a_line_rejects_that_line_once(reader):
    parsed = reader.parse(b"1,a\r2\n0,b,3\n", "a.csv@0")
    assert parsed.batch.to_pydict() == {"y": [0.0], "c": ["b"], "n": [3.0]}
    assert parsed.rejected == [Rejection("a.csv@0", CR_REASON, "1,a\r2")]


def test_unclosed_quote_does_not_swallow_the_next_line(reader):
    parsed = reader.parse(b'1,"a,2\n0,b,3\n1,c,4\n', "a.csv@0")
    assert parsed.batch.to_pydict() == {"y": [0.0, 1.0], "c": ["b", "c"], "n": [3.0, 4.0]}
    assert parsed.rejected == [Rejection("a.csv@0", UNCLOSED_REASON, '1,"a,2')]


def test_a_quoted_value_may_hold_line_breaks(reader):
    data = b'1,"first line\n0,u2,it2 plain",3\n0,"a\r\n\nb ""c""",4\r\n1,x,5\n'
    parsed = reader.parse(data, "a.csv@0")
    assert parsed.rejected == []
    assert parsed.batch.to_pydict() == {
        "y": [1.0, 0.0, 1.0],
        "c": ["first line\n0,u2,it2 plain", 'a\r\n\nb "c"', "x"],
        "n": [3.0, 4.0, 5.0],
    }


def test_a_record_of_several_lines_is_rejected_once_with_its_text(reader):
    parsed = reader.parse(b'1,"a\nb",2,extra\n0,c,3\n', "a.csv@0")
    assert parsed.batch.to_pydict() == {"y": [0.0], "c": ["c"], "n": [3.0]}
    assert parsed.rejected == [
        Rejection("a.csv@0", "wrong number of columns: expected 3, got 4", '1,"a\nb",2,extra')
    ]


def test_a_quote_that_closes_too_far_away_is_an_unclosed_quote(reader):
    plain = b"".join(b"0,v%d,1\n" % i for i in range(MAX_RECORD_LINES - 1))
    parsed = reader.parse(b'1,"a\n' + plain + b'1,x",2\n', "a.csv@0")
    assert [r.text for r in parsed.rejected] == ['1,"a']
    assert parsed.batch.num_rows == MAX_RECORD_LINES  # the plain lines, and the last one
    assert parsed.batch.column("c").to_pylist()[-1] == 'x"'


def test_doubled_quote_at_the_end_of_a_quoted_value_keeps_it_open(reader):
    parsed = reader.parse(b'1,"a"",2\n0,b,3\n', "a.csv@0")
    assert parsed.batch.num_rows == 1
    assert [r.reason for r in parsed.rejected] == [UNCLOSED_REASON]


@pytest.mark.parametrize(
    "line, value",
    [
        (b'1,"a,b",2', "a,b"),
        (b'1,"say ""hi""",2', 'say "hi"'),
        (b'1,"a\rb",2', "a\rb"),  # inside quotes a carriage return is data
        (b'1,a"b,2', 'a"b'),  # a quote that does not start a value is data
        (b'1,"a"b"c,2', 'ab"c'),  # after the closing quote the value goes on unquoted
        (b"1,a,2\r", "a"),  # CRLF ending
    ],
)
def test_lines_that_stay_one_row_are_accepted(reader, line, value):
    parsed = reader.parse(line + b"\n", "a.csv@0")
    assert parsed.rejected == []
    assert parsed.batch.column("c").to_pylist() == [value]


def test_byte_order_mark_is_dropped_at_any_line_start(reader):
    whole = reader.parse(b"1,a,2\n" + UTF8_BOM + b"0,b,3\n", "a.csv@0")
    alone = reader.parse(UTF8_BOM + b"0,b,3\n", "a.csv@6")
    assert whole.rejected == [] and alone.rejected == []
    assert whole.batch.column("y").to_pylist() == [1.0, 0.0]
    assert whole.row_hash[1] == alone.row_hash[0]


def test_lines_of_a_byte_order_mark_alone_are_blank(reader):
    parsed = reader.parse(UTF8_BOM + b"\n1,a,2\n" + UTF8_BOM + b"\r\n", "a.csv@0")
    assert parsed.batch.num_rows == 1 and parsed.rejected == []


def test_tab_separated_files_read_quotes_as_data(tmp_path):
    path = write(tmp_path / "day.txt", "\t".join(["0"] * 14 + ["a"] * 26) + "\n")
    row = "\t".join(["1"] + ["1"] * 13 + ['"abc'] + ["c"] * 25)
    parsed = CriteoReader([path]).parse(row.encode() + b"\n" + row.encode() + b"\n", "day@0")
    assert parsed.rejected == []
    assert parsed.batch.column("C1").to_pylist() == ['"abc', '"abc']


def test_carriage_return_in_a_tab_separated_line_is_rejected():
    table, rejected = read_delimited(b"1\ta\rb\n0\tc\n", ["y", "c"], "\t", "f@0", quoting=False)
    assert table.to_pydict() == {"y": ["0"], "c": ["c"]}
    assert rejected == [Rejection("f@0", CR_REASON, "1\ta\rb")]


@pytest.mark.parametrize("data", [b"   \n", b"\t", b" \n\n\r\n"])
def test_a_line_of_spaces_is_a_row_even_alone_in_its_chunk(reader, data):
    parsed = reader.parse(data, "a.csv@0")
    assert parsed.batch.num_rows == 0
    assert [r.reason for r in parsed.rejected] == ["wrong number of columns: expected 3, got 1"]
    assert reader.parse(b"\n\r\n\n", "a.csv@0").rejected == []  # line endings alone: no row
