"""The reader interface: from raw text files to columnar batches of rows.

A `Reader` knows one dataset's layout. The Beam job cuts every input file into
byte ranges (`Chunk`), reads the whole lines that start in each range and asks
the reader to `parse` them. Parsing is vectorised with Apache Arrow, so a chunk
of a hundred thousand lines costs a few Arrow calls, not a Python loop per row.

A parsed chunk is a `pa.RecordBatch` with the label (float32, 0.0 or 1.0), then
one column per field: categorical fields as strings (`""` = missing), numeric
fields as float32 (NaN = missing). Rows that cannot be parsed are returned as
`Rejection`s with a one-line reason; the row count always adds up:
accepted + rejected = non-blank input records (header lines excluded). A
record is a line, ending at LF, except where a quoted value holds line breaks
(files with quoting: csv, avazu, Criteo's CSV variant), as RFC 4180 allows:
the record then runs on to the line where that value closes. A blank line
holds nothing but its line ending (LF or CRLF) and perhaps a byte order mark
(a line of spaces is a row, of one column). The outcome of a record never
depends on the records around it or on where a chunk starts.

What happens to each kind of input (`tests/reliability` generates every case
below inside otherwise valid rows and checks its outcome):

- CRLF line endings, and a UTF-8 byte order mark at the start of any line:
  dropped.
- Bytes not valid in the file's encoding (latin-1 text in a UTF-8 file, random
  bytes): rejected, `undecodable bytes: not utf-8 at byte K of the line`. The
  check is line by line, before records are put together: such a line inside a
  quoted value of several lines is rejected on its own.
- A carriage return anywhere but in a CRLF ending, outside quotes: rejected,
  `carriage return inside the line (...)`.
- A quoted value that holds line breaks (files with quoting): its record is
  one row, the value keeps its line breaks (`\n`, or `\r\n` as written).
  A quoted value that does not close within `MAX_RECORD_LINES` (100) lines
  of its record's first line, or before the end of the file: that first line
  is rejected, `unclosed quote: a quoted value does not end within 100
  lines`, and the next line is read as usual. A quote that does not start a
  value, and any quote in a tab-separated file, is part of the value.
- Too many or too few columns (a tab inside a value of a tab-separated file is
  a column break): rejected, `wrong number of columns: expected N, got M`.
- Label: a number equal to 0 or 1 (`1`, `1.0`, ` 0 `, `+1`, `-0`, and `"1"`
  in a CSV) is accepted; empty, any other number, NaN, inf or text is rejected,
  `bad label '<raw>': expected 0 or 1`.
- Categorical value: empty is the missing value (token `[MISSING]`); anything
  else (`nan`, `inf`, ` 7 `, `a"b`, a tab in a CSV) is kept as written: never
  trimmed, never read as a number.
- Numeric value: empty, spaces, or `nan` in any case with an optional sign is
  the missing value (NaN, token `[MISSING]`); `inf`, `infinity`, a number
  beyond float64 (`1e400`) or text (`0x10`, `1,5`) is rejected,
  `unparsable number in column 'C': '<raw>'`; a finite number beyond float32
  (absolute value above 3.4028235e38) is rejected, `number out of float32
  range in column 'C'`; any other number is accepted (spaces around it
  allowed) and rounded to float32 (`1e-50` becomes 0).
- Numeric value under `log_square` with v <= 2, negative counts included:
  accepted, token `floor(v)` (-2.5 gives -3), clipped to [-2^53, 2^53].
- A column that is not a field (a csv column the options do not name, Avazu's
  `id`, MovieLens' timestamp): never checked.
- Avazu `hour` that is not eight digits of a real date and hour: rejected,
  `bad hour '<raw>': expected YYMMDDHH`.
- MovieLens rating that is not a number equal to 1, 2, 3, 4 or 5: rejected,
  `bad rating '<raw>': expected 1-5`; a user or item id missing from the
  users or items table (ids compare as text: `01` is not `1`): rejected,
  `unknown user id '<raw>'` or `unknown item id '<raw>'`.

A row with several faults is rejected for the first one found: the encoding,
then the line, the number of columns, and last the values.
"""

from __future__ import annotations

import abc
import dataclasses
import io
import re
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

UTF8_BOM = b"\xef\xbb\xbf"
# Parsed text is re-joined with this byte to hash a row; it never occurs in
# line-based text data (it is the ASCII "unit separator").
_JOIN = "\x1f"
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class DataError(ValueError):
    """Bad input that stops a job: a missing file, column or label, an empty file.

    The message is one line that says what was wrong and where. It is a
    `ValueError`, so callers that catch bad arguments catch it too.

    Examples:

        >>> from keras_dimsel.data import make_reader
        >>> try:
        ...     make_reader("parquet", ["clicks.parquet"])
        ... except DataError as error:
        ...     print(error)
        unknown dataset 'parquet': choose one of criteo, avazu, movielens-100k, ...
    """


@dataclasses.dataclass(frozen=True)
class FieldDef:
    """A feature field as a reader produces it.

    Args:
        name: str, the field name.
        kind: str, `"categorical"` or `"numeric"`.
        transform: str or None, default bucketing of a numeric field:
            `"log_square"` or `"quantiles"`.

    Examples:

        >>> FieldDef("price", "numeric", "quantiles")
        FieldDef(name='price', kind='numeric', transform='quantiles')
    """

    name: str
    kind: str
    transform: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Chunk:
    """The lines of `path` that start in the byte range [start, end)."""

    path: str
    start: int
    end: int
    skip_header: bool = False
    last: bool = True  # whether the chunk ends its file

    @property
    def source(self) -> str:
        return f"{self.path}@{self.start}"


class Rejection(NamedTuple):
    """One malformed input row: where it came from, why, and its text."""

    source: str
    reason: str
    text: str


_KIND = re.compile(r"[a-z][a-z0-9 ]*?(?=\s*(?:['\"(:]|$))")


def rejection_kind(reason: str) -> str:
    """The kind of a rejection: its reason without the value or numbers that vary.

    Rejections are counted by kind in `feature_spec.json` and the summary.

    Examples:

        >>> rejection_kind("bad label '2': expected 0 or 1")
        'bad label'
        >>> rejection_kind("unparsable number in column 'price': 'abc'")
        'unparsable number in column'
        >>> rejection_kind("wrong number of columns: expected 4, got 3")
        'wrong number of columns'
    """
    match = _KIND.match(reason)
    return match.group(0) if match else reason


class ParsedChunk(NamedTuple):
    """Accepted rows as a record batch, a 64-bit content hash per row, rejections.

    What `Reader.parse` returns. Identical rows get identical hashes, which
    is what keeps copies of a row in the same split.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> path = os.path.join(tempfile.mkdtemp(), "clicks.csv")
        >>> with open(path, "w") as f:
        ...     _ = f.write("clicked,site\\n")
        >>> reader = make_reader("csv", [path], label="clicked", categorical=["site"])
        >>> parsed = reader.parse(b"1,news\\n1,news\\n1\\n", source="clicks.csv@0")
        >>> parsed.batch.num_rows, len(parsed.rejected)
        (2, 1)
        >>> parsed.row_hash.dtype.name, bool(parsed.row_hash[0] == parsed.row_hash[1])
        ('uint64', True)
    """

    batch: pa.RecordBatch
    row_hash: np.ndarray
    rejected: list[Rejection]


class Reader(abc.ABC):
    """One dataset layout. Subclasses set `name`, `label` and `fields`.

    A reader lists its input files (`data_files`) and parses the bytes of
    whole lines into a columnar batch (`parse`): the label as float32, then
    one column per field, strings for categorical fields and float32 for
    numeric ones (`schema`). Rows that cannot be parsed come back as
    `Rejection`s with a one-line reason. `make_reader` builds the reader of a
    dataset name.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> path = os.path.join(tempfile.mkdtemp(), "clicks.csv")
        >>> with open(path, "w") as f:
        ...     _ = f.write("clicked,site,price\\n1,news,2.5\\n")
        >>> reader = make_reader("csv", [path], label="clicked", categorical=["site"],
        ...                      numeric=["price"])
        >>> [(field.name, field.kind) for field in reader.fields]
        [('site', 'categorical'), ('price', 'numeric')]
        >>> parsed = reader.parse(b"1,news,2.5\\n0,shop,\\n2,news,1\\n", source="clicks.csv@0")
        >>> parsed.batch.to_pydict()
        {'clicked': [1.0, 0.0], 'site': ['news', 'shop'], 'price': [2.5, nan]}
        >>> parsed.rejected[0].reason
        "bad label '2': expected 0 or 1"
    """

    name: str = ""
    label: str = "label"
    fields: tuple[FieldDef, ...] = ()

    @abc.abstractmethod
    def data_files(self) -> list[tuple[str, bool]]:
        """The files to cut into chunks, each with whether its first line is a header.

        Returns:
            list of `(path, has_header)` pairs.
        """

    @abc.abstractmethod
    def parse(self, data: bytes, source: str) -> ParsedChunk:
        """Parses whole lines (the bytes of one chunk) into accepted and rejected rows.

        Args:
            data: bytes, whole lines of one input file, without a header line.
            source: str, where the lines come from, for the rejection records.

        Returns:
            A `ParsedChunk`: the accepted rows as a batch of `schema()`, a
            64-bit content hash per accepted row, and the rejected rows.
        """

    def quoted_delimiter(self, path: str) -> Optional[str]:
        """The delimiter of `path` if its quoted values may hold line breaks, else None.

        A file with quoting can have records of several lines (`record_ends`),
        which the Beam job must not cut between two chunks; a file without
        has one record per line.
        """
        return None

    def schema(self) -> pa.Schema:
        """The Arrow schema of parsed batches: the label, then the fields in order."""
        columns = [pa.field(self.label, pa.float32())]
        for field in self.fields:
            dtype = pa.string() if field.kind == "categorical" else pa.float32()
            columns.append(pa.field(field.name, dtype))
        return pa.schema(columns)


# ---------------------------------------------------------------------------
# Vectorised parsing helpers shared by the readers.


def decode_lines(data: bytes, encoding: str, source: str) -> tuple[bytes, list[Rejection]]:
    """Returns `data` as UTF-8 with undecodable lines removed (and rejected).

    A UTF-8 byte order mark at the start of any line is dropped, not only at
    the start of the file: files joined with `cat` keep their marks, and a
    row's outcome must not depend on whether its line starts a chunk.

    The fast path decodes the whole chunk once; only a chunk that fails is
    decoded line by line to find the bad lines.
    """
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    if UTF8_BOM in data:
        data = data.replace(b"\n" + UTF8_BOM, b"\n")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        pass
    else:
        return (data if encoding in ("utf-8", "ascii") else text.encode("utf-8")), []
    kept, rejected = [], []
    for line in data.split(b"\n"):
        try:
            kept.append(line.decode(encoding))
        except UnicodeDecodeError as error:
            rejected.append(
                Rejection(
                    source,
                    f"undecodable bytes: not {encoding} at byte {error.start} of the line",
                    line.decode(encoding, errors="replace").rstrip("\r"),
                )
            )
    return "\n".join(kept).encode("utf-8"), rejected


def read_delimited(
    data: bytes,
    column_names: Sequence[str],
    delimiter: str,
    source: str,
    quoting: bool = True,
) -> tuple[pa.RecordBatch, list[Rejection]]:
    """Parses UTF-8 delimited text into a record batch of string columns.

    Lines with the wrong number of columns are rejected with their text. Blank
    lines are skipped (they are not rows). All columns stay strings here; the
    readers convert and validate them.

    One record is one row, whatever it holds (`_split_records`): a record
    with a carriage return other than the one of a CRLF line ending outside
    quotes, or (with `quoting`) a quoted value that does not end within
    `MAX_RECORD_LINES` lines, is rejected here, before the CSV parser, which
    would otherwise cut the record in two at the carriage return or join it
    with the following lines.
    """
    data, rejected, spans_lines = _split_records(data, delimiter, quoting, source)
    expected = len(column_names)

    def on_invalid_row(row) -> str:
        rejected.append(
            Rejection(
                source,
                f"wrong number of columns: expected {expected}, got {row.actual_columns}",
                row.text,
            )
        )
        return "skip"

    # Only line endings left: no row. A line of spaces is a row (with one column).
    if not data.strip(b"\r\n"):
        empty = [pa.array([], pa.string()) for _ in column_names]
        return pa.RecordBatch.from_arrays(empty, list(column_names)), rejected
    # The streaming reader, not `read_csv`: on Python 3.10 pyarrow's `read_csv`
    # scans the whole Python heap (`gc.get_referrers`) on every call, which
    # costs more than parsing a small chunk once TensorFlow is loaded.
    table = pcsv.open_csv(
        io.BytesIO(data),
        read_options=pcsv.ReadOptions(
            column_names=list(column_names), use_threads=False, block_size=1 << 26
        ),
        parse_options=pcsv.ParseOptions(
            delimiter=delimiter,
            quote_char='"' if quoting else False,
            newlines_in_values=spans_lines,
            invalid_row_handler=on_invalid_row,
        ),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in column_names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    ).read_all()
    columns = [column.combine_chunks() for column in table.columns]
    return pa.RecordBatch.from_arrays(columns, list(column_names)), rejected


#: A quoted value may hold line breaks, within this many lines of its record.
MAX_RECORD_LINES = 100
UNCLOSED_QUOTE = f"unclosed quote: a quoted value does not end within {MAX_RECORD_LINES} lines"
BARE_CARRIAGE_RETURN = "carriage return inside the line (only a \\r\\n line ending is allowed)"


def _value_pattern(delimiter: str, quoting: bool, carriage_return_is_data: bool) -> tuple:
    """RE2 pieces: the escaped delimiter, and one value that ends where it starts.

    The CSV parser's rules: a quote opens a quoted value only as the first
    character of a value, `""` inside it is a quote, inside it anything else
    (line breaks too) is data, and after the closing quote the value
    continues unquoted up to the delimiter. Outside quotes a value holds no
    line feed and, with `carriage_return_is_data` false, no carriage return.
    """
    separator = "\\x{" + f"{ord(delimiter):x}" + "}"  # the delimiter, escaped for RE2
    other = separator + "\\n" + ("" if carriage_return_is_data else "\\r")
    rest = f"[^{other}]*"
    if not quoting:
        return separator, rest, rest
    rest = f'(?:[^"{other}][^{other}]*)?'
    return separator, f'(?:"(?:[^"]|"")*"{rest}|{rest})', rest


def _line_pattern(delimiter: str, quoting: bool, carriage_return_is_data: bool) -> str:
    """An RE2 pattern matching a record whose values all end in it.

    With `carriage_return_is_data` false, a carriage return may only appear
    inside quotes or as the last character (the CR of a CRLF line ending).
    """
    separator, value, _ = _value_pattern(delimiter, quoting, carriage_return_is_data)
    ending = "" if carriage_return_is_data else "\\r?"
    return f"^{value}(?:{separator}{value})*{ending}$"


def _closing_pattern(delimiter: str) -> str:
    """An RE2 pattern matching a line, read from inside a quoted value, after which
    the record ends: the value closes and every later value of the line ends on it."""
    separator, value, rest = _value_pattern(delimiter, True, carriage_return_is_data=True)
    return f'^(?:[^"]|"")*"{rest}(?:{separator}{value})*$'


def opening_lines(lines: pa.Array, delimiter: str) -> np.ndarray:
    """Which lines, read from the start of a record, leave a quoted value open.

    Examples:

        >>> opening_lines(pa.array(['1,"a,b",2', '1,"a', 'b"c,2']), ",").tolist()
        [False, True, False]
    """
    pattern = _line_pattern(delimiter, True, carriage_return_is_data=True)
    return ~pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False)


def record_ends(lines: pa.Array, delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """Where each record of a quoted, delimited text ends, line by line.

    A line whose quoted value does not close on it starts a record that runs
    on to the first later line that closes it, if that line is fewer than
    `MAX_RECORD_LINES` lines further; otherwise (and when no line closes it
    before the end of `lines`, taken as the end of the file) the line alone
    is a broken record, an unclosed quote, and the next line starts a record
    of its own.

    Args:
        lines: pa.Array of strings, the lines (without their line feeds).
        delimiter: str, the one-character delimiter.

    Returns:
        `(end, unclosed)`: `end[i]` is the last line of the record that starts
        at line `i` (`-1` for a line inside a longer record), `unclosed[i]`
        whether line `i` is an unclosed quote, a broken record of its own.

    Examples:

        >>> lines = pa.array(['1,"first', "line, still", 'first",2', '1,a,2', '1,"x', "0,b,3"])
        >>> end, unclosed = record_ends(lines, ",")
        >>> end.tolist(), np.flatnonzero(unclosed).tolist()
        ([2, -1, -1, 3, 4, 5], [4])
    """
    count = len(lines)
    end = np.arange(count)
    unclosed = np.zeros(count, dtype=bool)
    opens = opening_lines(lines, delimiter)
    if not opens.any():
        return end, unclosed
    closes = pc.match_substring_regex(lines, _closing_pattern(delimiter)).to_numpy(
        zero_copy_only=False
    )
    closing = np.flatnonzero(closes)
    position = 0
    for line in np.flatnonzero(opens).tolist():
        if line < position:
            continue  # inside the record of an earlier line
        after = np.searchsorted(closing, line, side="right")
        last = int(closing[after]) if after < len(closing) else count
        if last == count or last - line >= MAX_RECORD_LINES:
            unclosed[line] = True
            position = line + 1
            continue
        end[line] = last
        end[line + 1 : last + 1] = -1
        position = last + 1
    return end, unclosed


def _split_records(
    data: bytes, delimiter: str, quoting: bool, source: str
) -> tuple[bytes, list[Rejection], bool]:
    """Rejects the records the CSV parser would not read as exactly one row.

    Returns the data left, the rejections, and whether a kept record spans
    lines (the parser must then read line breaks inside quotes as data). Only
    a chunk holding a quote (with `quoting`) or a carriage return that does
    not end a line is looked at line by line, with vectorised regular
    expressions; clean chunks pass through untouched. The end of `data` is
    read as the end of the file (`record_ends`).
    """
    quoted = quoting and b'"' in data
    bare_cr_possible = data.count(b"\r") != data.count(b"\r\n")
    if not (quoted or bare_cr_possible):
        return data, [], False
    raw_lines = data.split(b"\n")
    lines = pa.array(raw_lines, pa.binary()).cast(pa.string())
    count = len(raw_lines)
    end, unclosed = np.arange(count), np.zeros(count, dtype=bool)
    if quoted:
        end, unclosed = record_ends(lines, delimiter)
    starts = np.flatnonzero(end >= 0)
    spanning = starts[end[starts] > starts]
    texts, records = raw_lines, lines  # the text of the record that starts at each line
    if len(spanning):
        texts = list(raw_lines)
        for i in spanning.tolist():
            texts[i] = b"\n".join(raw_lines[i : end[i] + 1])
        records = pa.array(texts, pa.binary()).cast(pa.string())
    bare_cr = np.zeros(count, dtype=bool)
    if bare_cr_possible:
        pattern = _line_pattern(delimiter, quoting, carriage_return_is_data=False)
        bare_cr = ~pc.match_substring_regex(records, pattern).to_numpy(zero_copy_only=False)
        bare_cr &= (end >= 0) & ~unclosed
    broken = unclosed | bare_cr
    if not broken.any() and not len(spanning):
        return data, [], False
    rejected = []
    for row in np.flatnonzero(broken).tolist():
        reason = UNCLOSED_QUOTE if unclosed[row] else BARE_CARRIAGE_RETURN
        text = records[row].as_py()
        rejected.append(Rejection(source, reason, text[:-1] if text.endswith("\r") else text))
    keep = (end >= 0) & ~broken
    kept = [texts[i] for i in np.flatnonzero(keep).tolist()]
    return b"\n".join(kept), rejected, bool(keep[spanning].any())


def row_text(table: pa.RecordBatch, rows: np.ndarray, delimiter: str) -> list[str]:
    """The text of some rows of a string table, fields re-joined by `delimiter`."""
    picked = table.take(pa.array(rows, pa.int64()))
    joined = pc.binary_join_element_wise(*picked.columns, delimiter)
    return joined.to_pylist()


def hash_rows(columns: Sequence[pa.Array]) -> np.ndarray:
    """A 64-bit hash of each row's raw fields (SipHash via pandas, fixed key).

    Identical rows get identical hashes on every machine and every run, which
    is what makes the train / validation / test split deterministic.
    """
    if not columns or len(columns[0]) == 0:
        return np.zeros(0, dtype=np.uint64)
    joined = pc.binary_join_element_wise(*columns, _JOIN)
    return pd.util.hash_array(joined.to_numpy(zero_copy_only=False), categorize=False)


class RowChecks:
    """Collects per-row failures of vectorised checks, first failure wins."""

    def __init__(self, num_rows: int):
        self.reason = np.full(num_rows, None, dtype=object)

    def fail(self, mask: np.ndarray, reason: Callable[[np.ndarray], list[str]] | str):
        """Marks rows in `mask` that have no failure yet with `reason`."""
        fresh = np.asarray(mask, dtype=bool) & (self.reason == None)  # noqa: E711
        if not fresh.any():
            return
        rows = np.flatnonzero(fresh)
        self.reason[rows] = reason if isinstance(reason, str) else reason(rows)

    @property
    def ok(self) -> np.ndarray:
        return self.reason == None  # noqa: E711


def parse_numbers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Strings to float64. Returns (numbers with NaN for empty, mask of unparsable).

    Empty strings and the text "nan" (any case, optional sign) are missing
    values; infinite values and any other text that is not a number are
    unparsable. The verdict for a value never depends on the other values.
    """
    values = values.cast(pa.string())
    stripped = pc.utf8_trim_whitespace(values)
    empty = pc.equal(stripped, "").to_numpy(zero_copy_only=False)
    try:
        numbers = pc.cast(pc.if_else(empty, None, stripped), pa.float64())
        numbers = numbers.to_numpy(zero_copy_only=False).astype(np.float64)
    except pa.ArrowInvalid:
        series = pd.Series(stripped.to_numpy(zero_copy_only=False), dtype=object)
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
    # Arrow and pandas disagree on spellings such as "nan(1)": only plain "nan" is missing.
    suspicious = np.isnan(numbers) & ~empty
    if suspicious.any():
        plain_nan = pc.match_substring_regex(pc.utf8_lower(stripped), r"^[+-]?nan$")
        suspicious &= ~plain_nan.to_numpy(zero_copy_only=False)
    bad = suspicious | np.isinf(numbers)
    numbers[empty] = np.nan
    return numbers, bad


def build_batch(
    reader: Reader,
    raw: pa.RecordBatch,
    labels: np.ndarray,
    checks: RowChecks,
    source: str,
    rejected: list[Rejection],
    delimiter: str,
    columns: Optional[dict[str, pa.Array]] = None,
) -> ParsedChunk:
    """Validates the fields of a parsed table and assembles the accepted batch.

    Args:
        reader: Reader, supplies the label name and the fields.
        raw: pa.RecordBatch, the string columns as parsed (used for hashing and
            for the text of rejected rows).
        labels: np.ndarray, float labels; NaN or values other than 0/1 reject.
        checks: RowChecks, failures found by the reader so far.
        source: str, the chunk's location, for rejection records.
        rejected: list of Rejection, rows rejected earlier (columns, bytes).
        delimiter: str, to rebuild the text of rejected rows.
        columns: dict, field columns the reader derived itself; the other
            fields are taken from `raw` by name.
    """
    columns = dict(columns or {})
    checks.fail(~np.isin(labels, (0.0, 1.0)), lambda rows: _bad_label(raw, reader, rows))
    numeric_values = {}
    for field in reader.fields:
        column = columns.get(field.name)
        if column is None:
            column = raw.column(field.name)
        if field.kind == "numeric":
            numbers, bad = parse_numbers(column)
            checks.fail(
                bad,
                lambda rows, name=field.name, col=column: [
                    f"unparsable number in column {name!r}: {col[int(r)].as_py()!r}" for r in rows
                ],
            )
            checks.fail(
                np.abs(np.nan_to_num(numbers)) > _FLOAT32_MAX,
                f"number out of float32 range in column {field.name!r}",
            )
            numeric_values[field.name] = numbers
        columns[field.name] = column
    ok = checks.ok
    bad_rows = np.flatnonzero(~ok)
    if len(bad_rows):
        texts = row_text(raw, bad_rows, delimiter)
        rejected.extend(
            Rejection(source, str(checks.reason[r]), text) for r, text in zip(bad_rows, texts)
        )
    keep = pa.array(ok)
    arrays = [pa.array(labels[ok].astype(np.float32))]
    for field in reader.fields:
        if field.kind == "numeric":
            arrays.append(pa.array(numeric_values[field.name][ok].astype(np.float32)))
        else:
            column = columns[field.name]
            arrays.append(pc.filter(column, keep).cast(pa.string()))
    batch = pa.RecordBatch.from_arrays(arrays, schema=reader.schema())
    kept_raw = raw.filter(keep) if len(bad_rows) else raw
    return ParsedChunk(batch, hash_rows(kept_raw.columns), rejected)


def _bad_label(raw: pa.RecordBatch, reader: Reader, rows: np.ndarray) -> list[str]:
    if reader.label in raw.schema.names:
        column = raw.column(reader.label)
        return [f"bad label {column[int(r)].as_py()!r}: expected 0 or 1" for r in rows]
    return ["bad label: expected 0 or 1"] * len(rows)
