"""`CriteoReader`: the Criteo Display Advertising Challenge layout.

Forty columns: `label`, thirteen integer features `I1..I13` and twenty-six
hashed categorical features `C1..C26`. The Kaggle files (`train.txt`,
`dac_sample.txt`) are tab-separated without a header; a comma-separated file
whose first line is the header `label,I1,...,C26` is read as well.

Empty cells are missing values (common in both kinds of columns). Integer
features may be negative. By default the integer features are bucketised with
the competition winners' rule `floor(ln(v)^2)` for v > 2 (`transform="log_square"`)
and then embedded like categorical fields; `transform="quantiles"` uses bucket
boundaries computed by the Beam job instead.
"""

from __future__ import annotations

from typing import Optional, Sequence

from keras_dimsel.data import reader as reader_lib
from keras_dimsel.data.csv import NUMERIC_TRANSFORMS, expand_inputs, read_first_line
from keras_dimsel.data.reader import DataError, FieldDef, ParsedChunk, Reader, RowChecks

INTEGER_FEATURES = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL_FEATURES = tuple(f"C{i}" for i in range(1, 27))
COLUMNS = ("label", *INTEGER_FEATURES, *CATEGORICAL_FEATURES)


class CriteoReader(Reader):
    """Reads Criteo TSV files (or the CSV-with-header variant).

    Args:
        paths: list of str, files or glob patterns.
        numeric_transform: str, `"log_square"` (default) or `"quantiles"`.

    Examples:

        ```python
        reader = CriteoReader(["day_0.txt"])
        [f.name for f in reader.fields][:3]  # ['I1', 'I2', 'I3']
        ```
    """

    name = "criteo"
    label = "label"

    def __init__(self, paths: Sequence[str], numeric_transform: str = "log_square"):
        if numeric_transform not in NUMERIC_TRANSFORMS:
            raise DataError(
                f"numeric transform must be one of {NUMERIC_TRANSFORMS}. "
                f"Received: {numeric_transform!r}"
            )
        self.paths = expand_inputs(paths)
        self.fields = tuple(
            [FieldDef(n, "numeric", numeric_transform) for n in INTEGER_FEATURES]
            + [FieldDef(n, "categorical") for n in CATEGORICAL_FEATURES]
        )
        self._delimiters = {path: self._detect(path) for path in self.paths}

    @staticmethod
    def _detect(path: str) -> tuple[str, bool]:
        """(delimiter, has header) of one file, from its first line."""
        first = read_first_line(path)
        if first.split(",")[:2] == ["label", "I1"]:
            return ",", True
        if "\t" in first:
            return "\t", False
        raise DataError(
            f"{path}: not a Criteo file: expected tab-separated "
            "'label I1..I13 C1..C26' or a CSV with that header"
        )

    def data_files(self) -> list[tuple[str, bool]]:
        return [(path, self._delimiters[path][1]) for path in self.paths]

    def quoted_delimiter(self, path: str) -> Optional[str]:
        delimiter, _ = self._delimiters.get(path, ("\t", False))
        return delimiter if delimiter == "," else None

    def parse(self, data: bytes, source: str) -> ParsedChunk:
        path = source.rsplit("@", 1)[0]
        delimiter, _ = self._delimiters.get(path, ("\t", False))
        data, rejected = reader_lib.decode_lines(data, "utf-8", source)
        raw, bad_columns = reader_lib.read_delimited(
            data, COLUMNS, delimiter, source, quoting=self.quoted_delimiter(path) is not None
        )
        rejected += bad_columns
        labels, _ = reader_lib.parse_numbers(raw.column("label"))
        checks = RowChecks(raw.num_rows)
        return reader_lib.build_batch(self, raw, labels, checks, source, rejected, delimiter)
