"""`FrappeReader`: the Frappe app-usage data in libFM text, as a CTR task.

Frappe (Baltrunas et al., 2015) logs which app a user opened in which
context; the libFM version used by the NFM paper (He & Chua, 2017) samples two
negatives per positive and one-hot encodes ten categorical fields. Each line
is one instance, space-separated: the label, then exactly ten `<id>:1` pairs,
one per field and in field order. The ids are global (already offset), so
each field owns a range of them:

| field | ids |
|---|---|
| `user` | 0-956 |
| `item` | 957-5038 |
| `daytime` | 5039-5045 |
| `weekday` | 5046-5052 |
| `isweekend` | 5053-5054 |
| `homework` | 5055-5057 |
| `cost` | 5058-5059 |
| `weather` | 5060-5068 |
| `country` | 5069-5148 |
| `city` | 5149-5381 |

The label is 1 (the app was used) or -1 (a sampled negative), read as 1 and 0;
a label of 0 is read as 0 too. A field's token is its feature id as written in
the pair (`"266"`, kept as text: `0266` would be another value); a field is
never missing. Files may be gzip-compressed (`frappe.test.libfm.gz`); they
have no header line, and lines may end with LF or CRLF (the NFM files use
CRLF). Several files (the NFM authors' train, validation and
test files) are read as one data set, which the job splits by itself.

What happens to each kind of bad row, besides the cases every reader shares
(undecodable bytes, a stray carriage return; see `keras_dimsel.data.reader`):

- Not eleven space-separated columns (a pair more or less, two spaces in a
  row, a space at the end of the line): rejected, `wrong number of columns:
  expected 11, got M`.
- Label: a number equal to 1, -1 or 0 (`1`, `-1`, `1.0`, `+1`, `-1e0`) is
  accepted; anything else (empty, `2`, `nan`, text) is rejected, `bad label
  '<raw>': expected 1 or -1`.
- A pair that is not ASCII digits, a colon and a non-empty value (`x`,
  `266`, `266:`, `-3:1`): rejected, `bad pair '<raw>' in field 'F': expected
  <id>:1`.
- An id outside the field's range (which is also how a pair in the wrong
  place shows): rejected, `feature id N out of range for field 'F' (low-high)`.
- A value that is not a number equal to 1 (`1`, `1.0` and `1e0` are; libFM
  allows any weight, but Frappe is one-hot): rejected, `bad value '<raw>' in
  field 'F': expected 1`.

The label is checked first, then the fields from left to right, and within a
pair its form, then its id, then its value; a row is rejected for the first
fault found.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keras_dimsel.data import reader as reader_lib
from keras_dimsel.data.csv import expand_inputs
from keras_dimsel.data.reader import FieldDef, ParsedChunk, Reader, RowChecks

#: The ten fields in file order, each with its range of global feature ids (inclusive).
FIELD_RANGES = (
    ("user", 0, 956),
    ("item", 957, 5038),
    ("daytime", 5039, 5045),
    ("weekday", 5046, 5052),
    ("isweekend", 5053, 5054),
    ("homework", 5055, 5057),
    ("cost", 5058, 5059),
    ("weather", 5060, 5068),
    ("country", 5069, 5148),
    ("city", 5149, 5381),
)
FIELDS = tuple(name for name, _, _ in FIELD_RANGES)
COLUMNS = ("label", *FIELDS)
NUM_FEATURES = FIELD_RANGES[-1][2] + 1
_PAIR = r"^(?P<id>[0-9]+):(?P<value>.+)$"
# An id with more significant digits than this is out of every range (and of int64).
_MAX_ID_DIGITS = 18


class FrappeReader(Reader):
    """Reads Frappe libFM files (`label id:1 ... id:1`, plain or gzip).

    Each line holds a label (1 or -1; 0 is read like -1) and ten `<id>:1`
    pairs, one per field in the order of `FIELD_RANGES`, with global feature
    ids. The fields are categorical; a field's value is the id as written.
    Rows that break the layout are rejected with a one-line reason (the module
    docstring lists them).

    Args:
        paths: list of str, files or glob patterns (`.gz` files are read
            compressed).

    Examples:

        ```python
        reader = FrappeReader(["frappe/frappe.validation.libfm.gz"])
        [f.name for f in reader.fields][:3]  # ['user', 'item', 'daytime']
        line = b"-1 138:1 1296:1 5041:1 5052:1 5053:1 5055:1 5058:1 5061:1 5085:1 5201:1\\n"
        parsed = reader.parse(line, source="frappe@0")
        parsed.batch.to_pydict()["label"], parsed.batch.to_pydict()["item"]  # [0.0], ['1296']
        bad = line.replace(b"1296:1", b"12:1")
        reader.parse(bad, source="frappe@0").rejected[0].reason
        # "feature id 12 out of range for field 'item' (957-5038)"
        ```
    """

    name = "frappe"
    label = "label"
    fields = tuple(FieldDef(n, "categorical") for n in FIELDS)

    def __init__(self, paths: Sequence[str]):
        self.paths = expand_inputs(paths)

    def data_files(self) -> list[tuple[str, bool]]:
        return [(path, False) for path in self.paths]

    def parse(self, data: bytes, source: str) -> ParsedChunk:
        data, rejected = reader_lib.decode_lines(data, "utf-8", source)
        raw, bad_columns = reader_lib.read_delimited(data, COLUMNS, " ", source, quoting=False)
        rejected += bad_columns
        checks = RowChecks(raw.num_rows)
        label_text = raw.column("label")
        numbers, unparsable = reader_lib.parse_numbers(label_text)
        checks.fail(
            unparsable | ~np.isin(numbers, (1.0, -1.0, 0.0)),
            lambda rows: [
                f"bad label {label_text[int(r)].as_py()!r}: expected 1 or -1" for r in rows
            ],
        )
        labels = (numbers == 1.0).astype(np.float64)
        columns = {}
        for name, low, high in FIELD_RANGES:
            columns[name] = _check_pairs(raw.column(name), name, low, high, checks)
        return reader_lib.build_batch(self, raw, labels, checks, source, rejected, " ", columns)


def _check_pairs(pairs: pa.Array, name: str, low: int, high: int, checks: RowChecks) -> pa.Array:
    """Checks one field's `<id>:<value>` pairs; returns the ids as strings."""
    parts = pc.extract_regex(pairs, _PAIR)
    matched = parts.is_valid().to_numpy(zero_copy_only=False)
    checks.fail(
        ~matched,
        lambda rows: [
            f"bad pair {pairs[int(r)].as_py()!r} in field {name!r}: expected <id>:1" for r in rows
        ],
    )
    # The children of a null struct hold "" (not null): pick them only where the pair matched.
    ids = pc.if_else(matched, parts.field("id"), "0")
    values = pc.if_else(matched, parts.field("value"), "1")
    digits = pc.utf8_ltrim(ids, characters="0")  # "" for 0
    long = pc.greater(pc.utf8_length(digits), _MAX_ID_DIGITS).to_numpy(zero_copy_only=False)
    short = pc.if_else(pc.or_(pa.array(long), pc.equal(digits, "")), "0", digits)
    numbers = pc.cast(short, pa.int64()).to_numpy(zero_copy_only=False)
    checks.fail(
        long | (numbers < low) | (numbers > high),
        lambda rows: [
            f"feature id {ids[int(r)].as_py()} out of range for field {name!r} ({low}-{high})"
            for r in rows
        ],
    )
    weights, unparsable = reader_lib.parse_numbers(values)
    checks.fail(
        unparsable | (weights != 1.0),
        lambda rows: [
            f"bad value {values[int(r)].as_py()!r} in field {name!r}: expected 1" for r in rows
        ],
    )
    return ids
