"""Fault injection: chunks mixing valid rows with corrupt ones, through every reader.

Each reader gets a Hypothesis strategy that builds chunks of lines, one case
per line: a valid row, or a valid row with one corruption of a known class
(undecodable bytes, latin-1 text, a byte order mark, CRLF or a stray carriage
return, extra or missing columns, NaN / inf spellings, numbers beyond
float32, negative counts under `log_square`, empty fields and labels, bad
labels, quotes, tabs, Frappe's malformed, misplaced or weighted libFM
pairs...). Every case carries its documented outcome (the table in
`keras_dimsel.data.reader`, and `keras_dimsel.data.frappe` for its pairs): the
accepted row and its tokens, or the exact rejection reason. The properties checked on every chunk:

- `parse` never raises, and its batch has the reader's schema;
- accepted + rejected == the non-blank lines of the chunk;
- every rejection has a non-empty one-line reason and one-line text;
- each case gets its outcome: the accepted rows (values and tokens) and the
  multiset of rejection reasons are exactly the expected ones;
- cutting the chunk in two at a line boundary changes nothing.

The runs are derandomised (reproducible in CI) and each reader test counts
the corrupt rows it generated: at least `MIN_CORRUPT_ROWS_PER_READER` each,
several thousand in all. The last test writes one corrupt file of more than
1,000 rows and runs the whole Beam job over it on the DirectRunner.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import math
import pathlib
import random
import string
from typing import Callable, Optional

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_dimsel.data.avazu import COLUMNS as AVAZU_COLUMNS
from keras_dimsel.data.avazu import AvazuReader
from keras_dimsel.data.criteo import COLUMNS as CRITEO_COLUMNS
from keras_dimsel.data.criteo import CriteoReader
from keras_dimsel.data.csv import CsvReader
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.frappe import COLUMNS as FRAPPE_COLUMNS
from keras_dimsel.data.frappe import FIELD_RANGES as FRAPPE_RANGES
from keras_dimsel.data.frappe import FrappeReader
from keras_dimsel.data.movielens import ML_100K_GENRES, MovieLensReader
from keras_dimsel.data.reader import UTF8_BOM, Reader, parse_numbers
from keras_dimsel.data.tokens import MISSING_TOKEN
from keras_dimsel.preprocessing.outputs import REJECTED_DIR
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
from keras_dimsel.preprocessing.statistics import field_tokens

MAX_EXAMPLES = 60
MIN_CORRUPT_ROWS_PER_READER = 300
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Quantile boundaries used to check the tokens of `quantiles` fields.
BOUNDARIES = (0.0,)
CR_REASON = "carriage return inside the line (only a \\r\\n line ending is allowed)"
UNCLOSED_REASON = "unclosed quote: a quoted value does not end within 100 lines"
# Text for garbage lines and free-text cells; the layouts remove their delimiter.
TEXT_ALPHABET = (
    string.ascii_letters + string.digits + " !#$%&'()*+-./:;<=>?@[]^_`{|}~,\t\"\x00\x0b\x0c"
    + "éüß€中文😀\u2028\u00a0"
)  # fmt: skip
NAN_SPELLINGS = ("nan", "NaN", "NAN", "-nan", "+nan", " nan ", "  NaN")
INF_SPELLINGS = ("inf", "-inf", "+inf", "Infinity", "-INFINITY", "1e400", "-1e999")
HUGE_NUMBERS = ("1e39", "-1e39", "3.5e38", "-4.2e38", "1e300", "123456789e40")
BAD_LABELS = ("2", "-1", "0.5", "yes", "true", "nan", "inf", "1e39", " ", "1x", "O")
ODD_LABELS = ("1.0", " 1", "1 ", "+1", "1e0", "0.0", "-0", "00", "0e5")


# ---------------------------------------------------------------------------
# Drawing: the same case builders run under Hypothesis and under a seeded RNG.


class HypothesisPicker:
    """Draws through Hypothesis (shrinkable)."""

    def __init__(self, draw):
        self._draw = draw

    def choice(self, options):
        return self._draw(st.sampled_from(list(options)))

    def integer(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def text(self, alphabet: str, min_size: int, max_size: int) -> str:
        return self._draw(st.text(alphabet, min_size=min_size, max_size=max_size))

    def binary(self, min_size: int, max_size: int) -> bytes:
        return self._draw(st.binary(min_size=min_size, max_size=max_size))


class RandomPicker:
    """Draws from a seeded `random.Random` (for files too large for Hypothesis)."""

    def __init__(self, seed: int):
        self._rng = random.Random(seed)

    def choice(self, options):
        return self._rng.choice(list(options))

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def text(self, alphabet: str, min_size: int, max_size: int) -> str:
        size = self._rng.randint(min_size, max_size)
        return "".join(self._rng.choice(alphabet) for _ in range(size))

    def binary(self, min_size: int, max_size: int) -> bytes:
        return bytes(self._rng.randrange(256) for _ in range(self._rng.randint(min_size, max_size)))


@dataclasses.dataclass
class Case:
    """One input record and its documented outcome.

    `line` excludes the `\\n` line ending (a CRLF line keeps its `\\r`); it
    holds line feeds only inside a quoted value. A case is accepted (`row`
    set), rejected (`reason` set) or blank (neither).
    """

    kind: str
    line: bytes
    row: Optional[dict] = None
    reason: Optional[str] = None

    @property
    def blank(self) -> bool:
        return self.row is None and self.reason is None


# ---------------------------------------------------------------------------
# Layouts: how a valid row looks in each reader's files, and what it parses to.


def _float32(value: float) -> float:
    return float(np.float32(value))


class Layout:
    """A reader's file layout for generating rows.

    Attributes:
        columns: the raw columns, in file order.
        label: the raw label column.
        numeric: raw numeric columns (field name = column name).
        categorical: raw categorical columns whose value is the field value.
        ignored: raw columns that are not fields (any text is accepted).
    """

    name = ""
    delimiter = ","
    quoting = True
    columns: tuple[str, ...] = ()
    label = "label"
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    def reader(self, directory: pathlib.Path) -> Reader:
        raise NotImplementedError

    def valid(self, rng: random.Random) -> tuple[list[str], dict]:
        """A valid row: its cells and the parsed row it gives."""
        raise NotImplementedError

    def extra_kinds(self) -> dict[str, Callable]:
        return {}

    def index(self, column: str) -> int:
        return self.columns.index(column)

    def line(self, cells: list[str]) -> bytes:
        return self.delimiter.join(cells).encode("utf-8")

    def free_text(self, pick, min_size: int = 0, max_size: int = 12) -> str:
        """Text that never breaks a line: no delimiter, quote, CR, LF or BOM."""
        banned = {self.delimiter, '"', "\r", "\n", "\ufeff"}
        alphabet = "".join(c for c in TEXT_ALPHABET if c not in banned)
        return pick.text(alphabet, min_size, max_size)


class CsvLayout(Layout):
    name = "csv"
    columns = ("y", "c", "n", "note")
    label = "y"
    numeric = ("n",)
    categorical = ("c",)
    ignored = ("note",)
    WORDS = ("news", "shop", "a b", "café", "x-1", "日本", "0", "nan", "inf")

    def reader(self, directory):
        path = directory / "clicks.csv"
        path.write_bytes(UTF8_BOM + b"y,c,n,note\r\n")
        return CsvReader([str(path)], "y", ["c"], ["n"])

    def valid(self, rng):
        label = rng.choice("01")
        word = rng.choice(self.WORDS)
        number = rng.choice([str(rng.randint(-1000, 10**6)), f"{rng.uniform(-1e6, 1e6):.3f}"])
        note = rng.choice(["", "free text", "inf", "1e99"])
        row = {"y": float(label), "c": word, "n": _float32(float(number))}
        return [label, word, number, note], row


class CriteoLayout(Layout):
    name = "criteo"
    delimiter = "\t"
    quoting = False
    columns = CRITEO_COLUMNS
    numeric = CRITEO_COLUMNS[1:14]
    categorical = CRITEO_COLUMNS[14:]

    def reader(self, directory):
        path = directory / "day_0.txt"
        path.write_text("\t".join(["0"] * 14 + ["a"] * 26) + "\n")
        return CriteoReader([str(path)])

    def valid(self, rng):
        cells = [rng.choice("01")]
        cells += [str(rng.choice([rng.randint(0, 20), rng.randint(-3, 10**6)])) for _ in range(13)]
        cells += [f"{rng.getrandbits(32):08x}" for _ in range(26)]
        row = {"label": float(cells[0])}
        row.update({name: _float32(float(v)) for name, v in zip(self.numeric, cells[1:14])})
        row.update(dict(zip(self.categorical, cells[14:])))
        return cells, row


class AvazuLayout(Layout):
    name = "avazu"
    columns = AVAZU_COLUMNS
    label = "click"
    categorical = AVAZU_COLUMNS[3:]
    ignored = ("id",)

    def reader(self, directory):
        path = directory / "train.csv"
        path.write_text(",".join(AVAZU_COLUMNS) + "\n")
        return AvazuReader([str(path)])

    def valid(self, rng):
        stamp = datetime.datetime(2014, 10, 21) + datetime.timedelta(hours=rng.randint(0, 240))
        cells = [str(rng.getrandbits(60)), rng.choice("01"), stamp.strftime("%y%m%d%H")]
        cells += [
            rng.choice(["1005", "0", f"{rng.getrandbits(32):08x}", "50", "a b"]) for _ in range(21)
        ]
        return cells, self._row(cells, stamp)

    def _row(self, cells, stamp):
        row = {"click": float(cells[1]), "hour_of_day": f"{stamp.hour:02d}"}
        row["weekday"] = str(stamp.weekday())
        row.update(dict(zip(self.categorical, cells[3:])))
        return row

    def extra_kinds(self):
        return {"bad_hour": bad_hour}


class MovieLensLayout(Layout):
    """ML-100K `u.data`: the rating is the label column, user and item are looked up."""

    name = "movielens-100k"
    delimiter = "\t"
    quoting = False
    columns = ("user", "item", "rating", "timestamp")
    label = "rating"
    ignored = ("timestamp",)
    USERS = {"1": ("24", "M", "technician", "85711"), "2": ("53", "F", "other", "94043"),
             "7": ("57", "M", "administrator", "91344")}  # fmt: skip
    ITEMS = {"10": ("01-Jan-1995", ("Animation", "Comedy")), "20": ("", ("Western",)),
             "30": ("14-Mar-1997", ()), "40": ("1998", ("Drama", "War"))}  # fmt: skip

    def reader(self, directory):
        folder = directory / "ml-100k"
        folder.mkdir()
        (folder / "u.user").write_text(
            "".join(f"{u}|{a}|{g}|{o}|{z}\n" for u, (a, g, o, z) in self.USERS.items())
        )
        items = []
        for item, (release, genres) in self.ITEMS.items():
            flags = "|".join("1" if g in genres else "0" for g in ML_100K_GENRES)
            items.append(f"{item}|Title {item}|{release}||http://example.invalid/{item}|{flags}\n")
        (folder / "u.item").write_text("".join(items))
        (folder / "u.data").write_text("1\t10\t5\t881250949\n")
        return MovieLensReader([str(folder)], "movielens-100k")

    def valid(self, rng):
        user, item = rng.choice(sorted(self.USERS)), rng.choice(sorted(self.ITEMS))
        rating = rng.choice("12345")
        timestamp = str(rng.randint(8 * 10**8, 9 * 10**8))
        return [user, item, rating, timestamp], self.row_of(user, item, float(rating))

    def row_of(self, user: str, item: str, rating: float) -> dict:
        age, gender, occupation, zip_code = self.USERS[user]
        release, genres = self.ITEMS[item]
        return {
            "label": 1.0 if rating >= 4 else 0.0,
            "user": user,
            "item": item,
            "genres": "|".join(g for g in ML_100K_GENRES if g in genres),
            "year": release[-4:] if len(release) >= 4 else "",
            "gender": gender,
            "age": age,
            "occupation": occupation,
            "zip": zip_code,
        }

    def extra_kinds(self):
        return {"bad_rating": bad_rating, "odd_rating": odd_rating, "unknown_id": unknown_id}


class FrappeLayout(Layout):
    """libFM lines: a 1 / -1 / 0 label, then one `<id>:1` pair per field; tokens are the ids."""

    name = "frappe"
    delimiter = " "
    quoting = False
    columns = FRAPPE_COLUMNS
    categorical = FRAPPE_COLUMNS[1:]

    def reader(self, directory):
        path = directory / "frappe.libfm"
        path.write_text(" ".join(["1", *(f"{low}:1" for _, low, _ in FRAPPE_RANGES)]) + "\n")
        return FrappeReader([str(path)])

    def valid(self, rng):
        label = rng.choice(["1", "-1", "-1", "0"])
        ids = [str(rng.randint(low, high)) for _, low, high in FRAPPE_RANGES]
        row = {"label": 1.0 if label == "1" else 0.0, **dict(zip(self.categorical, ids))}
        return [label, *(f"{i}:1" for i in ids)], row

    def extra_kinds(self):
        return {
            "frappe_odd_label": frappe_odd_label,
            "frappe_bad_label": frappe_bad_label,
            "bad_pair": bad_pair,
            "id_out_of_range": id_out_of_range,
            "swapped_pairs": swapped_pairs,
            "zero_padded_id": zero_padded_id,
            "bad_weight": bad_weight,
            "odd_weight": odd_weight,
            "stray_space": stray_space,
        }


# ---------------------------------------------------------------------------
# Corruption classes shared by the layouts. Each takes a valid row (cells and
# parsed row) and returns the corrupt case with its documented outcome.


def _first_undecodable(line: bytes) -> int:
    line = line[len(UTF8_BOM) :] if line.startswith(UTF8_BOM) else line
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    raise AssertionError(f"{line!r} decodes as UTF-8")


def _undecodable(line: bytes) -> str:
    return f"undecodable bytes: not utf-8 at byte {_first_undecodable(line)} of the line"


def valid(layout, pick, rng, cells, row):
    return Case("valid", layout.line(cells), row=row)


def garbage_bytes(layout, pick, rng, cells, row):
    data = pick.binary(0, 24).replace(b"\n", b"")
    at = pick.integer(0, len(data))
    line = data[:at] + pick.choice([b"\xff", b"\xfe", b"\xc3("]) + data[at:]
    return Case("garbage_bytes", line, reason=_undecodable(line))


def garbage_text(layout, pick, rng, cells, row):
    """Text without a delimiter: one column. A line of spaces is not a blank line."""
    spaces = "".join(c for c in " \t\x0b\x0c\u00a0" if c != layout.delimiter)
    text = pick.choice([layout.free_text(pick, 1, 30), pick.text(spaces, 1, 4)])
    expected = len(layout.columns)
    reason = f"wrong number of columns: expected {expected}, got 1"
    return Case("garbage_text", text.encode("utf-8"), reason=reason)


def latin1(layout, pick, rng, cells, row):
    at = layout.index(pick.choice(layout.categorical or layout.ignored))
    text = "caf" + pick.choice("éèüßñÀÿ£°") + pick.choice(["", "s", " crème"]) + "x"
    before, after = layout.line(cells[:at] + [""]), layout.line([""] + cells[at + 1 :])
    line = before + text.encode("latin-1") + after
    return Case("latin1", line, reason=_undecodable(line))


def bom(layout, pick, rng, cells, row):
    return Case("bom", UTF8_BOM + layout.line(cells), row=row)


def crlf(layout, pick, rng, cells, row):
    return Case("crlf", layout.line(cells) + b"\r", row=row)


def bare_cr(layout, pick, rng, cells, row):
    at = pick.integer(0, len(cells) - 1)
    cells[at] = cells[at] + "\r" + pick.choice(["x", "", "\r"])
    line = layout.line(cells)
    if line.endswith(b"\r") and not line.endswith(b"\r\r"):
        line += b"x"  # a single final `\r` is a CRLF ending, not a stray one
    return Case("bare_cr", line, reason=CR_REASON)


def extra_columns(layout, pick, rng, cells, row):
    extra = pick.integer(1, 3)
    cells += ["x"] * extra
    expected = len(layout.columns)
    reason = f"wrong number of columns: expected {expected}, got {expected + extra}"
    return Case("extra_columns", layout.line(cells), reason=reason)


def missing_columns(layout, pick, rng, cells, row):
    kept = pick.integer(1, len(cells) - 1)
    reason = f"wrong number of columns: expected {len(layout.columns)}, got {kept}"
    return Case("missing_columns", layout.line(cells[:kept]), reason=reason)


def nan_number(layout, pick, rng, cells, row):
    column = pick.choice(layout.numeric)
    cells[layout.index(column)] = pick.choice(NAN_SPELLINGS)
    return Case("nan_number", layout.line(cells), row={**row, column: math.nan})


def empty_number(layout, pick, rng, cells, row):
    column = pick.choice(layout.numeric)
    cells[layout.index(column)] = pick.choice(["", " "])
    return Case("empty_number", layout.line(cells), row={**row, column: math.nan})


def infinite_number(layout, pick, rng, cells, row):
    column = pick.choice(layout.numeric)
    value = pick.choice(INF_SPELLINGS)
    cells[layout.index(column)] = value
    reason = f"unparsable number in column {column!r}: {value!r}"
    return Case("infinite_number", layout.line(cells), reason=reason)


def text_number(layout, pick, rng, cells, row):
    column = pick.choice(layout.numeric)
    value = pick.choice(
        ["abc", "1,5" if layout.delimiter != "," else "1;5", "0x10", "1e", "--1", "½"]
    )
    cells[layout.index(column)] = value
    reason = f"unparsable number in column {column!r}: {value!r}"
    return Case("text_number", layout.line(cells), reason=reason)


def huge_number(layout, pick, rng, cells, row):
    column = pick.choice(layout.numeric)
    cells[layout.index(column)] = pick.choice(HUGE_NUMBERS)
    reason = f"number out of float32 range in column {column!r}"
    return Case("huge_number", layout.line(cells), reason=reason)


def large_number(layout, pick, rng, cells, row):
    """Large but within float32: accepted, rounded to float32."""
    column = pick.choice(layout.numeric)
    value = pick.choice(["3.4e38", "-3.4e38", "1e30", "16777217", "1e-50", "-0"])
    cells[layout.index(column)] = value
    return Case("large_number", layout.line(cells), row={**row, column: _float32(float(value))})


def negative_number(layout, pick, rng, cells, row):
    column = pick.choice(layout.numeric)
    value = pick.choice(["-1", "-2", "-2.5", "-1000000", "-0.5", "-1e20"])
    cells[layout.index(column)] = value
    return Case("negative_number", layout.line(cells), row={**row, column: _float32(float(value))})


def empty_category(layout, pick, rng, cells, row):
    column = pick.choice(layout.categorical)
    cells[layout.index(column)] = ""
    return Case("empty_category", layout.line(cells), row={**row, column: ""})


def numberlike_category(layout, pick, rng, cells, row):
    """A categorical value is never parsed as a number: "nan" is just a value."""
    column = pick.choice(layout.categorical)
    value = pick.choice(["nan", "inf", "-1e39", "NaN", " 7 ", "-0"])
    cells[layout.index(column)] = value
    return Case("numberlike_category", layout.line(cells), row={**row, column: value})


def ignored_column(layout, pick, rng, cells, row):
    column = pick.choice(layout.ignored)
    cells[layout.index(column)] = layout.free_text(pick, 0, 12)
    return Case("ignored_column", layout.line(cells), row=row)


def empty_label(layout, pick, rng, cells, row):
    cells[layout.index(layout.label)] = ""
    return Case("empty_label", layout.line(cells), reason="bad label '': expected 0 or 1")


def bad_label(layout, pick, rng, cells, row):
    value = pick.choice(BAD_LABELS)
    cells[layout.index(layout.label)] = value
    reason = f"bad label {value!r}: expected 0 or 1"
    return Case("bad_label", layout.line(cells), reason=reason)


def odd_label(layout, pick, rng, cells, row):
    value = pick.choice(ODD_LABELS)
    cells[layout.index(layout.label)] = value
    return Case("odd_label", layout.line(cells), row={**row, layout.label: float(value) + 0.0})


def quoted_value(layout, pick, rng, cells, row):
    """CSV quoting: a quoted value may hold the delimiter and doubled quotes."""
    column = pick.choice(layout.categorical)
    value = pick.choice(["a,b", 'say "hi"', '"', ",", "", "x\ty"])
    cells[layout.index(column)] = '"' + value.replace('"', '""') + '"'
    return Case("quoted_value", layout.line(cells), row={**row, column: value})


def quoted_label(layout, pick, rng, cells, row):
    label = cells[layout.index(layout.label)]
    cells[layout.index(layout.label)] = f'"{label}"'
    return Case("quoted_label", layout.line(cells), row=row)


def unclosed_quote(layout, pick, rng, cells, row):
    at = pick.integer(0, len(cells) - 1)
    cells[at] = '"' + pick.choice(["", "abc", "a,b", 'x""y', "a\rb"])
    return Case("unclosed_quote", layout.line(cells), reason=UNCLOSED_REASON)


def line_break_in_quotes(layout, pick, rng, cells, row):
    """A quoted value may hold line breaks (LF, CRLF, blank lines): one record."""
    column = pick.choice(layout.categorical)
    value = pick.choice(["a\nb", "a\r\nb", "\n", "a,\n\nb", 'say\n"hi"', "a\rb\nc"])
    cells[layout.index(column)] = '"' + value.replace('"', '""') + '"'
    return Case("line_break_in_quotes", layout.line(cells), row={**row, column: value})


def stray_quote(layout, pick, rng, cells, row):
    """A quote that does not open a value is part of it (with or without CSV quoting)."""
    column = pick.choice(layout.categorical)
    value = pick.choice(['a"b', 'x"', 'a""b', 'a"b"c'])
    if not layout.quoting:
        value = pick.choice([value, '"' + value, '"', '""'])
    cells[layout.index(column)] = value
    return Case("stray_quote", layout.line(cells), row={**row, column: value})


def tab(layout, pick, rng, cells, row):
    """A tab: data inside a comma-separated value, a column break in a TSV."""
    if layout.delimiter == "\t":
        cells[pick.integer(0, len(cells) - 1)] += "\t" + pick.choice(["", "x"])
        expected = len(layout.columns)
        reason = f"wrong number of columns: expected {expected}, got {expected + 1}"
        return Case("tab", layout.line(cells), reason=reason)
    column = pick.choice(layout.categorical)
    value = pick.choice(["a\tb", "\t", "x\t"])
    cells[layout.index(column)] = value
    return Case("tab", layout.line(cells), row={**row, column: value})


def tab_around_number(layout, pick, rng, cells, row):
    """Whitespace around a number or label is trimmed (comma-separated files)."""
    at = layout.index(pick.choice((layout.label, *layout.numeric)))
    cells[at] = "\t" + cells[at] + pick.choice(["", "\t", " "])
    return Case("tab_around_number", layout.line(cells), row=row)


def blank(layout, pick, rng, cells, row):
    return Case("blank", pick.choice([b"", b"\r", UTF8_BOM, UTF8_BOM + b"\r"]))


def bad_hour(layout, pick, rng, cells, row):
    hour = pick.choice(["", "14102", "141021000", "14023000", "14102124", "abcdefgh", "1410210a"])
    cells[layout.index("hour")] = hour
    return Case("bad_hour", layout.line(cells), reason=f"bad hour {hour!r}: expected YYMMDDHH")


def bad_rating(layout, pick, rng, cells, row):
    rating = pick.choice(["0", "6", "3.5", "", "nan", "inf", "x", "1e39", "-4", '"4"'])
    cells[layout.index("rating")] = rating
    return Case("bad_rating", layout.line(cells), reason=f"bad rating {rating!r}: expected 1-5")


def odd_rating(layout, pick, rng, cells, row):
    rating = pick.choice(["4.0", " 5", "2 ", "+3", "1e0", "05"])
    cells[layout.index("rating")] = rating
    return Case("odd_rating", layout.line(cells), row=layout.row_of(*cells[:2], float(rating)))


def unknown_id(layout, pick, rng, cells, row):
    column = pick.choice(["user", "item"])
    value = pick.choice(["9999", "", "1a", " 1", "01", '"1"', "１"])
    cells[layout.index(column)] = value
    return Case("unknown_id", layout.line(cells), reason=f"unknown {column} id {value!r}")


def _pair_field(layout, pick) -> tuple[str, int, int, int]:
    """A Frappe field: its name, cell index and id range."""
    name, low, high = pick.choice(FRAPPE_RANGES)
    return name, layout.index(name), low, high


def frappe_odd_label(layout, pick, rng, cells, row):
    """Any number equal to 1, -1 or 0 (tabs around it allowed); -1 and 0 read as 0."""
    value = pick.choice(["1.0", "+1", "1e0", "-1.0", "-1e0", "-0", "0.0", "00", "\t1", "-1\t"])
    cells[0] = value
    label = 1.0 if float(value) == 1 else 0.0
    return Case("frappe_odd_label", layout.line(cells), row={**row, "label": label})


def frappe_bad_label(layout, pick, rng, cells, row):
    value = pick.choice(["", "2", "-2", "0.5", "yes", "nan", "inf", "1e39", "1x", "+-1", "O"])
    cells[0] = value
    return Case(
        "frappe_bad_label", layout.line(cells), reason=f"bad label {value!r}: expected 1 or -1"
    )


def bad_pair(layout, pick, rng, cells, row):
    name, at, low, _ = _pair_field(layout, pick)
    value = pick.choice(
        ["", "x", str(low), f"{low}:", ":1", f"-{low}:1", f"{low}.0:1", "0x10:1", f"\t{low}:1",
         "１:1", 'x"y', '"', "nan", f"{low};1", f"[{low}]:1"]
    )  # fmt: skip
    cells[at] = value
    reason = f"bad pair {value!r} in field {name!r}: expected <id>:1"
    return Case("bad_pair", layout.line(cells), reason=reason)


def id_out_of_range(layout, pick, rng, cells, row):
    name, at, low, high = _pair_field(layout, pick)
    other = [r for r in FRAPPE_RANGES if r[0] != name]
    _, other_low, other_high = pick.choice(other)
    ids = [high + 1, 5382, 10**6, 10**30, pick.integer(other_low, other_high)]
    if low > 0:
        ids.append(low - 1)
    feature_id = str(pick.choice(ids))
    cells[at] = f"{feature_id}:{pick.choice(['1', '0', 'x'])}"
    reason = f"feature id {feature_id} out of range for field {name!r} ({low}-{high})"
    return Case("id_out_of_range", layout.line(cells), reason=reason)


def swapped_pairs(layout, pick, rng, cells, row):
    """Two neighbouring pairs swapped: the first of them has an id out of its range."""
    at = pick.integer(1, len(cells) - 2)
    cells[at], cells[at + 1] = cells[at + 1], cells[at]
    name, low, high = FRAPPE_RANGES[at - 1]
    feature_id = cells[at].split(":")[0]
    reason = f"feature id {feature_id} out of range for field {name!r} ({low}-{high})"
    return Case("swapped_pairs", layout.line(cells), reason=reason)


def zero_padded_id(layout, pick, rng, cells, row):
    """Leading zeros keep the id in range, and the token keeps them (ids are text)."""
    name, at, _, _ = _pair_field(layout, pick)
    feature_id = "0" * pick.integer(1, 25) + row[name]
    cells[at] = f"{feature_id}:1"
    return Case("zero_padded_id", layout.line(cells), row={**row, name: feature_id})


def bad_weight(layout, pick, rng, cells, row):
    name, at, _, _ = _pair_field(layout, pick)
    value = pick.choice(["0", "2", "0.5", "-1", "nan", "inf", "x", "1:1", "1e39", "1,0", '"1"'])
    cells[at] = f"{row[name]}:{value}"
    reason = f"bad value {value!r} in field {name!r}: expected 1"
    return Case("bad_weight", layout.line(cells), reason=reason)


def odd_weight(layout, pick, rng, cells, row):
    """Any number equal to 1 is a weight of 1."""
    name, at, _, _ = _pair_field(layout, pick)
    value = pick.choice(["1.0", "1e0", "+1", "01", "1.000", "1\t"])
    cells[at] = f"{row[name]}:{value}"
    return Case("odd_weight", layout.line(cells), row=row)


def stray_space(layout, pick, rng, cells, row):
    """A space at either end of the line or a double space is one more (empty) column."""
    line = layout.line(cells)
    where = pick.choice(["start", "end", "double"])
    if where == "start":
        line = b" " + line
    elif where == "end":
        line += b" "
    else:
        at = pick.integer(1, len(cells) - 1)
        line = layout.line(cells[:at] + [""] + cells[at:])
    reason = (
        f"wrong number of columns: expected {len(layout.columns)}, got {len(layout.columns) + 1}"
    )
    return Case("stray_space", line, reason=reason)


COMMON = {
    "garbage_bytes": garbage_bytes,
    "garbage_text": garbage_text,
    "latin1": latin1,
    "bom": bom,
    "crlf": crlf,
    "bare_cr": bare_cr,
    "extra_columns": extra_columns,
    "missing_columns": missing_columns,
    "empty_label": empty_label,
    "bad_label": bad_label,
    "odd_label": odd_label,
    "tab": tab,
}
NUMERIC = {
    "nan_number": nan_number,
    "empty_number": empty_number,
    "infinite_number": infinite_number,
    "text_number": text_number,
    "huge_number": huge_number,
    "large_number": large_number,
    "negative_number": negative_number,
}
CATEGORICAL = {
    "empty_category": empty_category,
    "numberlike_category": numberlike_category,
    "stray_quote": stray_quote,
}
QUOTING = {
    "quoted_value": quoted_value,
    "quoted_label": quoted_label,
    "unclosed_quote": unclosed_quote,
    "line_break_in_quotes": line_break_in_quotes,
    "tab_around_number": tab_around_number,
}


def corruptions(layout: Layout) -> dict[str, Callable]:
    """The corruption classes that apply to a layout."""
    kinds = dict(COMMON)
    if layout.numeric:
        kinds.update(NUMERIC)
    if layout.categorical:
        kinds.update(CATEGORICAL)
    if layout.quoting:
        kinds.update(QUOTING)
    if layout.ignored:
        kinds["ignored_column"] = ignored_column
    if isinstance(layout, MovieLensLayout):
        del kinds["bad_label"], kinds["odd_label"], kinds["empty_label"]
    if isinstance(layout, FrappeLayout):
        # Its cells are `<id>:1` pairs and its labels 1 / -1: the layout's own kinds cover them.
        for kind in ("bad_label", "odd_label", "empty_label", "tab", *CATEGORICAL):
            del kinds[kind]
    kinds.update(layout.extra_kinds())
    return kinds


def make_case(layout: Layout, pick, kinds: dict[str, Callable]) -> Case:
    kind = pick.choice(["valid", "valid", "valid", "blank", *sorted(kinds)])
    rng = random.Random(pick.integer(0, 2**32 - 1))
    cells, row = layout.valid(rng)
    build = {"valid": valid, "blank": blank}.get(kind) or kinds[kind]
    return build(layout, pick, rng, cells, row)


def make_cases(layout: Layout, pick, kinds: dict[str, Callable], count: int) -> list[Case]:
    """`count` cases, each keeping its own outcome among the others.

    A quote on a line after an unclosed quote can close it (the lines between
    then make one record, `record_ends`), so once an unclosed quote is drawn
    the cases after it are drawn without quotes: the unclosed quote stays a
    record of its own line. Records of several lines are checked on their
    own (`line_break_in_quotes`, and tests/data/test_line_integrity.py).
    """
    cases, open_quote = [], False
    for _ in range(count):
        case = make_case(layout, pick, kinds)
        while open_quote and b'"' in case.line:
            case = make_case(layout, pick, kinds)
        open_quote |= layout.quoting and case.kind == "unclosed_quote"
        cases.append(case)
    return cases


@st.composite
def chunks(draw, layout: Layout, max_rows: int = 40) -> tuple[list[Case], bool, int]:
    """A chunk: 5 to `max_rows` cases, whether the last line ends with `\\n`, and
    a line to cut the chunk at (to check that chunking changes nothing)."""
    pick = HypothesisPicker(draw)
    kinds = corruptions(layout)
    cases = make_cases(layout, pick, kinds, draw(st.integers(5, max_rows)))
    return cases, draw(st.booleans()), draw(st.integers(0, len(cases)))


def chunk_bytes(cases: list[Case], final_newline: bool) -> bytes:
    data = b"\n".join(case.line for case in cases)
    return data + b"\n" if final_newline else data


# ---------------------------------------------------------------------------
# Expected tokens and the checks


def _log_square_token(value: float) -> str:
    if value > 2:
        bucket = math.floor(float(np.square(np.log(np.float64(value)))))
    else:
        bucket = math.floor(value)
    return str(int(min(max(bucket, -(2**53)), 2**53)))


def expected_token(field, value) -> str:
    if field.kind == "categorical":
        return value if value != "" else MISSING_TOKEN
    if math.isnan(value):
        return MISSING_TOKEN
    if field.transform == "log_square":
        return _log_square_token(value)
    return str(int(np.searchsorted(BOUNDARIES, value, side="right")))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def _rows(batch: pa.RecordBatch) -> list[dict]:
    return batch.to_pylist()


def assert_rows_equal(got: list[dict], expected: list[dict], cases: list[Case]):
    assert len(got) == len(expected)
    for number, (g, e) in enumerate(zip(got, expected)):
        bad = {k: (g[k], e[k]) for k in e if not _same(g[k], e[k])}
        assert not bad, f"row {number} ({cases[number].kind}: {cases[number].line!r}): {bad}"


class Tally:
    """Counts the generated cases per kind, for the coverage assertions."""

    def __init__(self):
        self.kinds = collections.Counter()

    def add(self, cases: list[Case]):
        self.kinds.update(case.kind for case in cases)

    @property
    def corrupt(self) -> int:
        return sum(n for kind, n in self.kinds.items() if kind not in ("valid", "blank"))

    def assert_complete(self, layout: Layout, minimum: int):
        missing = set(corruptions(layout)) - set(self.kinds)
        assert not missing, f"corruption classes never generated: {sorted(missing)}"
        assert self.corrupt >= minimum, f"only {self.corrupt} corrupt rows generated"


def check_chunk(reader: Reader, cases: list[Case], final_newline: bool, cut: int):
    """All the properties of one parsed chunk."""
    data = chunk_bytes(cases, final_newline)
    source = "chunk.txt@0"
    parsed = reader.parse(data, source)
    batch = parsed.batch
    assert batch.schema == reader.schema()
    assert len(parsed.row_hash) == batch.num_rows

    non_blank = [case for case in cases if not case.blank]
    assert batch.num_rows + len(parsed.rejected) == len(non_blank)
    for rejection in parsed.rejected:
        assert rejection.source == source
        assert rejection.reason and rejection.reason.strip() == rejection.reason
        assert "\n" not in rejection.reason and "\r" not in rejection.reason
        assert "\n" not in rejection.text  # no rejected case spans lines

    expected_reasons = collections.Counter(c.reason for c in non_blank if c.reason is not None)
    assert collections.Counter(r.reason for r in parsed.rejected) == expected_reasons
    accepted = [case for case in non_blank if case.row is not None]
    assert_rows_equal(_rows(batch), [case.row for case in accepted], accepted)
    for field in reader.fields:
        tokens = field_tokens(batch, field, BOUNDARIES).to_pylist()
        expected = [expected_token(field, case.row[field.name]) for case in accepted]
        assert tokens == expected, field.name

    # The outcome of a line does not depend on the chunk it is read in.
    head = b"".join(case.line + b"\n" for case in cases[:cut])
    tail = data[len(head) :]
    parts = [reader.parse(head, source), reader.parse(tail, source)]
    rows_of_parts = [row for part in parts for row in _rows(part.batch)]
    assert_rows_equal(rows_of_parts, _rows(batch), accepted)
    np.testing.assert_array_equal(
        parsed.row_hash, np.concatenate([part.row_hash for part in parts])
    )
    whole = collections.Counter((r.reason, r.text) for r in parsed.rejected)
    assert whole == collections.Counter((r.reason, r.text) for p in parts for r in p.rejected)
    if cut < len(cases):  # and a line alone is read as in the chunk
        case = cases[cut]
        alone = reader.parse(case.line, source)
        assert [r.reason for r in alone.rejected] == ([case.reason] if case.reason else [])
        assert alone.batch.num_rows == (case.row is not None)


LAYOUTS = [CsvLayout(), CriteoLayout(), AvazuLayout(), MovieLensLayout(), FrappeLayout()]


@pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.name for layout in LAYOUTS])
def test_corrupt_chunks_get_their_documented_outcome(layout, tmp_path):
    reader = layout.reader(tmp_path)
    tally = Tally()

    @SETTINGS
    @given(chunk=chunks(layout))
    def check(chunk):
        cases, final_newline, cut = chunk
        tally.add(cases)
        check_chunk(reader, cases, final_newline, cut)

    check()
    tally.assert_complete(layout, MIN_CORRUPT_ROWS_PER_READER)


@SETTINGS
@given(
    value=st.text(alphabet="0123456789.eE+-nNaAiIfF xX_,١½\t", max_size=8),
    others=st.lists(st.sampled_from(["1", "abc", "", "nan", "1e5", "0x1"]), max_size=3),
)
def test_number_verdict_does_not_depend_on_the_other_values(value, others):
    alone_numbers, alone_bad = parse_numbers(pa.array([value]))
    mixed_numbers, mixed_bad = parse_numbers(pa.array([*others, value]))
    assert mixed_bad[-1] == alone_bad[0]
    if not alone_bad[0]:
        np.testing.assert_equal(mixed_numbers[-1], alone_numbers[0])


# ---------------------------------------------------------------------------
# The Beam job over one corrupt file


def test_beam_job_accounts_for_every_line_of_a_corrupt_file(tmp_path):
    layout = CsvLayout()
    reader = layout.reader(tmp_path)
    pick = RandomPicker(seed=2024)
    kinds = corruptions(layout)
    cases = make_cases(layout, pick, kinds, 1200)
    path = pathlib.Path(reader.paths[0])
    path.write_bytes(path.read_bytes() + chunk_bytes(cases, final_newline=True))
    non_blank = [case for case in cases if not case.blank]
    corrupt = [case for case in non_blank if case.kind != "valid"]
    assert len(non_blank) >= 1000 and len(corrupt) >= 700

    output = tmp_path / "artifact"
    spec = run(reader, PreprocessConfig(output_dir=str(output), chunk_bytes=16 << 10))

    expected_reasons = collections.Counter(c.reason for c in non_blank if c.reason is not None)
    assert sum(spec.splits.values()) + spec.rejected_rows == len(non_blank)
    assert spec.rejected_rows == sum(expected_reasons.values())
    records = [
        json.loads(line)
        for part in sorted((output / REJECTED_DIR).glob("*.jsonl"))
        # JSON lines end with "\n" only: a value may hold U+2028, which splitlines() cuts at.
        for line in part.read_text(encoding="utf-8").split("\n")
        if line
    ]
    assert len(records) == spec.rejected_rows
    for record in records:
        assert set(record) == {"source", "reason", "text"}
        assert record["source"].startswith(str(path) + "@")
        assert record["reason"] and "\n" not in record["reason"]
    assert collections.Counter(record["reason"] for record in records) == expected_reasons
    loaded = FeatureSpec.load(str(output))
    for field in loaded.fields:
        _, counts = loaded.vocabulary(field.name)
        assert sum(counts) + field.oov_count == loaded.splits["train"], field.name
