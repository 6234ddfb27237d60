"""`CsvReader`: your own CSV or TSV file with a header line.

This is the path every user with their own data takes:

```
dimsel preprocess --dataset csv --input clicks.csv --output artifacts/clicks \
    --label clicked --categorical user,item,site --numeric price,age --sep ,
```

The first line of the first file names the columns. Other files may repeat
that header (it is skipped) or start with data in the same column order.
Columns that are neither the label nor a named field are ignored.
"""

from __future__ import annotations

import csv
import gzip
import os
from typing import Sequence

from keras_dimsel import _io
from keras_dimsel.data import reader as reader_lib
from keras_dimsel.data.reader import DataError, FieldDef, ParsedChunk, Reader, RowChecks

NUMERIC_TRANSFORMS = ("quantiles", "log_square")


def read_first_line(path: str, encoding: str = "utf-8") -> str:
    """The first line of a file, BOM and line ending removed; DataError if empty."""
    with _io.open_file(path, "rb") as f:
        line = (gzip.GzipFile(fileobj=f) if path.endswith(".gz") else f).readline()
    if line.startswith(reader_lib.UTF8_BOM):
        line = line[len(reader_lib.UTF8_BOM) :]
    line = line.rstrip(b"\r\n")
    if not line.strip():
        raise DataError(f"{path}: the file is empty (no header line)")
    return line.decode(encoding, errors="replace")


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Expands files, glob patterns and folders into the input files, in order.

    A folder stands for the files directly in it, by name, leaving out those
    whose name starts with `.` or `_` (`_SUCCESS`, `.DS_Store`, editors'
    files) and sub-folders. A pattern or folder that gives no file is a
    DataError naming it.

    Examples:

        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> for name in ("day_1.csv", "day_0.csv", "_SUCCESS", ".hidden"):
        ...     open(os.path.join(folder, name), "w").close()
        >>> [os.path.basename(path) for path in expand_inputs([folder])]
        ['day_0.csv', 'day_1.csv']
    """
    if not patterns:
        raise DataError("no --input given")
    paths = []
    for pattern in patterns:
        if _io.is_directory(pattern):
            matched = [
                path
                for path in _io.glob(os.path.join(pattern, "*"))
                if not os.path.basename(path).startswith((".", "_")) and not _io.is_directory(path)
            ]
            if not matched:
                raise DataError(f"input folder holds no data file: {pattern}")
        else:
            matched = [path for path in _io.glob(pattern) if not _io.is_directory(path)]
            if not matched:
                raise DataError(f"input path not found: {pattern}")
        paths.extend(matched)
    return paths


class CsvReader(Reader):
    """A delimited text file with a header: label column, categorical and numeric fields.

    Args:
        paths: list of str, files or glob patterns.
        label: str, the label column; values must be 0 or 1.
        categorical: list of str, categorical columns.
        numeric: list of str, numeric columns.
        sep: str, the one-character delimiter (`,` by default; `\\t` for TSV).
        numeric_transform: str, how numbers become tokens: `"quantiles"`
            (bucket boundaries computed by the Beam job, the default) or
            `"log_square"` (the Criteo rule).
        encoding: str, the text encoding of the files.

    Examples:

        ```python
        reader = CsvReader(["clicks.csv"], label="clicked", categorical=["user", "item"])
        ```
    """

    name = "csv"

    def __init__(
        self,
        paths: Sequence[str],
        label: str,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        sep: str = ",",
        numeric_transform: str = "quantiles",
        encoding: str = "utf-8",
    ):
        if len(sep) != 1:
            raise DataError(f"--sep must be one character. Received: {sep!r}")
        if numeric_transform not in NUMERIC_TRANSFORMS:
            raise DataError(
                f"numeric transform must be one of {NUMERIC_TRANSFORMS}. "
                f"Received: {numeric_transform!r}"
            )
        if not categorical and not numeric:
            raise DataError("csv needs at least one field: give --categorical and/or --numeric")
        self.paths = expand_inputs(paths)
        self.sep = sep
        self.encoding = encoding
        self.label = label
        header = read_first_line(self.paths[0], encoding)
        self.header = header
        self.columns = [c.strip() for c in next(csv.reader([header], delimiter=sep))]
        twice = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if twice:
            raise DataError(
                f"{self.paths[0]}: the header names column(s) more than once: "
                f"{', '.join(map(repr, twice))}; give every column its own name"
            )
        wanted = [label, *categorical, *numeric]
        duplicated = sorted({c for c in wanted if wanted.count(c) > 1})
        if duplicated:
            raise DataError(f"column(s) named twice in the options: {', '.join(duplicated)}")
        for role, names in (("label", [label]), ("categorical", categorical), ("numeric", numeric)):
            missing = [n for n in names if n not in self.columns]
            if missing:
                raise DataError(
                    f"{self.paths[0]}: no {role} column {', '.join(map(repr, missing))}; "
                    f"the header has: {', '.join(self.columns)}"
                )
        self.fields = tuple(
            [FieldDef(n, "categorical") for n in categorical]
            + [FieldDef(n, "numeric", numeric_transform) for n in numeric]
        )

    def data_files(self) -> list[tuple[str, bool]]:
        files = []
        for path in self.paths:
            first = read_first_line(path, self.encoding)
            files.append((path, first.strip() == self.header.strip()))
        return files

    def quoted_delimiter(self, path: str) -> str:
        return self.sep

    def parse(self, data: bytes, source: str) -> ParsedChunk:
        data, rejected = reader_lib.decode_lines(data, self.encoding, source)
        raw, bad_columns = reader_lib.read_delimited(data, self.columns, self.sep, source)
        rejected += bad_columns
        labels, _ = reader_lib.parse_numbers(raw.column(self.label))
        checks = RowChecks(raw.num_rows)
        return reader_lib.build_batch(self, raw, labels, checks, source, rejected, self.sep)
