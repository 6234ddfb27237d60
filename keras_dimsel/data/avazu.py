"""`AvazuReader`: the Avazu click-through layout.

Comma-separated, 24 columns: `id, click, hour, C1, banner_pos, site_id, ...,
C21`. `id` (a row identifier) is dropped; `click` is the label; `hour`
(`YYMMDDHH`) becomes two fields, `hour_of_day` (00-23) and `weekday` (0 = Monday);
the other 21 columns are categorical. Files may start with the header line or
not (Kaggle's test files and later shards do not).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from keras_dimsel.data import reader as reader_lib
from keras_dimsel.data.csv import expand_inputs, read_first_line
from keras_dimsel.data.reader import FieldDef, ParsedChunk, Reader, RowChecks

COLUMNS = (
    "id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain",
    "site_category", "app_id", "app_domain", "app_category", "device_id",
    "device_ip", "device_model", "device_type", "device_conn_type",
    "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
)  # fmt: skip
CATEGORICAL_FEATURES = COLUMNS[3:]
HEADER = ",".join(COLUMNS)


class AvazuReader(Reader):
    """Reads Avazu CSV files, with or without the header line.

    Args:
        paths: list of str, files or glob patterns.

    Examples:

        ```python
        reader = AvazuReader(["train.csv"])
        [f.name for f in reader.fields][:2]  # ['hour_of_day', 'weekday']
        ```
    """

    name = "avazu"
    label = "click"
    fields = tuple(
        [FieldDef("hour_of_day", "categorical"), FieldDef("weekday", "categorical")]
        + [FieldDef(n, "categorical") for n in CATEGORICAL_FEATURES]
    )

    def __init__(self, paths: Sequence[str]):
        self.paths = expand_inputs(paths)

    def data_files(self) -> list[tuple[str, bool]]:
        return [(p, read_first_line(p).strip() == HEADER) for p in self.paths]

    def quoted_delimiter(self, path: str) -> str:
        return ","

    def parse(self, data: bytes, source: str) -> ParsedChunk:
        data, rejected = reader_lib.decode_lines(data, "utf-8", source)
        raw, bad_columns = reader_lib.read_delimited(data, COLUMNS, ",", source)
        rejected += bad_columns
        labels, _ = reader_lib.parse_numbers(raw.column("click"))
        checks = RowChecks(raw.num_rows)
        hour = pc.utf8_trim_whitespace(raw.column("hour"))
        stamps = pd.to_datetime(
            pd.Series(hour.to_numpy(zero_copy_only=False), dtype=object),
            format="%y%m%d%H",
            errors="coerce",
        )
        # `%y%m%d%H` alone also accepts shorter strings such as "141021".
        eight_digits = pc.match_substring_regex(hour, r"^\d{8}$").to_numpy(zero_copy_only=False)
        bad_hour = stamps.isna().to_numpy() | ~eight_digits
        checks.fail(
            bad_hour,
            lambda rows: [f"bad hour {hour[int(r)].as_py()!r}: expected YYMMDDHH" for r in rows],
        )
        good = stamps.fillna(pd.Timestamp(2000, 1, 1))
        columns = {
            "hour_of_day": pa.array(
                good.dt.hour.map("{:02d}".format).to_numpy(object), pa.string()
            ),
            "weekday": pa.array(good.dt.weekday.astype(str).to_numpy(object), pa.string()),
        }
        return reader_lib.build_batch(
            self, raw, np.asarray(labels), checks, source, rejected, ",", columns
        )
