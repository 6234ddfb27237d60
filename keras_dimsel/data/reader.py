"""The reader interface: from raw text files to columnar batches of rows.

A `Reader` knows one dataset's layout. The Beam job cuts every input file into
byte ranges (`Chunk`), reads the whole lines that start in each range and asks
the reader to `parse` them. Parsing is vectorised with Apache Arrow, so a chunk
of a hundred thousand lines costs a few Arrow calls, not a Python loop per row.

A parsed chunk is a `pa.RecordBatch` with the label (float32, 0.0 or 1.0), then
one column per field: categorical fields as strings (`""` = missing), numeric
fields as float32 (NaN = missing). Rows that cannot be parsed are returned as
`Rejection`s with a one-line reason; the row count always adds up:
accepted + rejected = non-blank input lines (header lines excluded). A line
ends at LF; a blank line holds nothing but its line ending (LF or CRLF) and
perhaps a byte order mark (a line of spaces is a row, of one column). The
outcome of a line never depends on the other lines or on where a chunk starts.

What happens to each kind of input (`tests/reliability` generates every case
below inside otherwise valid rows and checks its outcome):

- CRLF line endings, and a UTF-8 byte order mark at the start of any line:
  dropped.
- Bytes not valid in the file's encoding (latin-1 text in a UTF-8 file, random
  bytes): rejected, `undecodable bytes: not utf-8 at byte K of the line`.
- A carriage return anywhere but in a CRLF ending, outside quotes: rejected,
  `carriage return inside the line (...)`.
- A quoted value that does not close on its line (comma-separated files: csv,
  avazu, Criteo's CSV variant): rejected, `unclosed quote: a quoted value does
  not end on its line`; the next line is read as usual. A quote that does not
  start a value, and any quote in a tab-separated file, is part of the value.
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

    @property
    def source(self) -> str:
        return f"{self.path}@{self.start}"


class Rejection(NamedTuple):
    """One malformed input row: where it came from, why, and its text."""

    source: str
    reason: str
    text: str


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

    One line is one row, whatever it holds: a line with a carriage return
    other than the one of a CRLF line ending, or (with `quoting`) a quoted value
    that does not end on the line, is rejected here, before the CSV parser,
    which would otherwise cut the line in two at the carriage return or join
    it with the following lines.
    """
    data, rejected = _reject_broken_lines(data, delimiter, quoting, source)
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


def _line_pattern(delimiter: str, quoting: bool, carriage_return_is_data: bool) -> str:
    """An RE2 pattern matching a line whose values all end on the line.

    The CSV parser's rules: a quote opens a quoted value only as the first
    character of a value, `""` inside it is a quote, and after the closing
    quote the value continues unquoted up to the delimiter. With
    `carriage_return_is_data` false, a carriage return may only appear inside
    quotes or as the last character (the CR of a CRLF line ending).
    """
    separator = "\\x{" + f"{ord(delimiter):x}" + "}"  # the delimiter, escaped for RE2
    other = separator if carriage_return_is_data else separator + "\\r"
    value = f"[^{other}]*"
    if quoting:
        rest = f'(?:[^"{other}][^{other}]*)?'
        value = f'(?:"(?:[^"]|"")*"{rest}|{rest})'
    ending = "" if carriage_return_is_data else "\\r?"
    return f"^{value}(?:{separator}{value})*{ending}$"


def _reject_broken_lines(
    data: bytes, delimiter: str, quoting: bool, source: str
) -> tuple[bytes, list[Rejection]]:
    """Rejects the lines the CSV parser would not read as exactly one row.

    Only a chunk holding a quote (with `quoting`) or a carriage return that
    does not end a line is looked at line by line, with two vectorised regular
    expressions; clean chunks pass through untouched.
    """
    unclosed_possible = quoting and b'"' in data
    bare_cr_possible = data.count(b"\r") != data.count(b"\r\n")
    if not (unclosed_possible or bare_cr_possible):
        return data, []
    raw_lines = data.split(b"\n")
    lines = pa.array(raw_lines, pa.binary()).cast(pa.string())
    unclosed = np.zeros(len(raw_lines), dtype=bool)
    if unclosed_possible:
        pattern = _line_pattern(delimiter, quoting, carriage_return_is_data=True)
        unclosed = ~pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False)
    bare_cr = np.zeros(len(raw_lines), dtype=bool)
    if bare_cr_possible:
        pattern = _line_pattern(delimiter, quoting, carriage_return_is_data=False)
        bare_cr = ~pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False)
        bare_cr &= ~unclosed
    broken = unclosed | bare_cr
    if not broken.any():
        return data, []
    rejected = []
    for row in np.flatnonzero(broken):
        reason = (
            "unclosed quote: a quoted value does not end on its line"
            if unclosed[row]
            else "carriage return inside the line (only a \\r\\n line ending is allowed)"
        )
        text = raw_lines[row].decode("utf-8")
        rejected.append(Rejection(source, reason, text[:-1] if text.endswith("\r") else text))
    kept = [line for line, bad in zip(raw_lines, broken.tolist()) if not bad]
    return b"\n".join(kept), rejected


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
