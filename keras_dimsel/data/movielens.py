"""`MovieLensReader`: MovieLens-100K and MovieLens-1M folders as a CTR task.

Each rating becomes one example: label 1 if the rating is 4 or 5, else 0 (the
AutoDim paper's protocol: ratings of 3 are kept as negatives). The rating is
joined with the user and movie tables into eight categorical fields:
`user, item, genres, year, gender, age, occupation, zip`.

- `genres`: the movie's genres joined by `|` (one token per combination).
- `year`: the release year (ML-1M: from the title; ML-100K: from the release
  date); empty when unknown.
- `age`: the ML-1M age bucket code, or the ML-100K age in years.

`--input` takes the dataset folder (ML-100K: `u.data`, `u.user`, `u.item`;
ML-1M: `ratings.dat`, `users.dat`, `movies.dat`), optionally followed by the
ratings files to read instead of the folder's default one. Movie files are
latin-1, as GroupLens ships them.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from keras_dimsel import _io
from keras_dimsel.data import reader as reader_lib
from keras_dimsel.data.csv import expand_inputs
from keras_dimsel.data.reader import DataError, FieldDef, ParsedChunk, Reader, RowChecks

FIELDS = ("user", "item", "genres", "year", "gender", "age", "occupation", "zip")
RATING_COLUMNS = ("user", "item", "rating", "timestamp")
ML_100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_LAYOUTS = {
    # name: (ratings file, users file, items file, ratings separator)
    "movielens-100k": ("u.data", "u.user", "u.item", "\t"),
    "movielens-1m": ("ratings.dat", "users.dat", "movies.dat", "::"),
}
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


def _read_lines(path: str, encoding: str) -> list[str]:
    with _io.open_file(path, "rb") as f:
        return [line for line in f.read().decode(encoding).splitlines() if line.strip()]


class MovieLensReader(Reader):
    """Reads a MovieLens-100K or -1M folder and joins ratings with users and movies.

    Args:
        paths: list of str, the dataset folder, then optionally ratings files.
        variant: str, `"movielens-100k"` or `"movielens-1m"`.

    Examples:

        ```python
        reader = MovieLensReader(["ml-100k/"], "movielens-100k")
        [f.name for f in reader.fields]  # ['user', 'item', 'genres', ...]
        ```
    """

    label = "label"
    fields = tuple(FieldDef(n, "categorical") for n in FIELDS)

    def __init__(self, paths: Sequence[str], variant: str):
        if variant not in _LAYOUTS:
            raise DataError(f"unknown MovieLens variant {variant!r}: one of {sorted(_LAYOUTS)}")
        self.name = variant
        ratings_name, users_name, items_name, self.separator = _LAYOUTS[variant]
        if not paths:
            raise DataError("no --input given")
        folders = [p for p in paths if _io.is_directory(p)]
        files = (
            expand_inputs([p for p in paths if p not in folders])
            if len(folders) < len(paths)
            else []
        )
        folder = folders[0] if folders else os.path.dirname(files[0])
        if not _io.exists(folder):
            raise DataError(f"input path not found: {folder}")
        self.ratings_files = files or [os.path.join(folder, ratings_name)]
        for path in self.ratings_files + [
            os.path.join(folder, users_name),
            os.path.join(folder, items_name),
        ]:
            if not _io.exists(path):
                raise DataError(
                    f"{variant}: {path} not found (give the dataset folder with --input)"
                )
        if variant == "movielens-100k":
            self.users = _users_100k(os.path.join(folder, users_name))
            self.items = _items_100k(os.path.join(folder, items_name))
        else:
            self.users = _users_1m(os.path.join(folder, users_name))
            self.items = _items_1m(os.path.join(folder, items_name))

    def data_files(self) -> list[tuple[str, bool]]:
        return [(path, False) for path in self.ratings_files]

    def parse(self, data: bytes, source: str) -> ParsedChunk:
        data, rejected = reader_lib.decode_lines(data, "utf-8", source)
        if self.separator != "\t":
            data = data.replace(self.separator.encode(), b"\t")
        raw, bad_columns = reader_lib.read_delimited(
            data, RATING_COLUMNS, "\t", source, quoting=False
        )
        rejected += bad_columns
        checks = RowChecks(raw.num_rows)
        ratings, bad = reader_lib.parse_numbers(raw.column("rating"))
        rating_ok = np.isin(ratings, (1.0, 2.0, 3.0, 4.0, 5.0)) & ~bad
        rating_text = raw.column("rating")
        checks.fail(
            ~rating_ok,
            lambda rows: [
                f"bad rating {rating_text[int(r)].as_py()!r}: expected 1-5" for r in rows
            ],
        )
        user_ids = raw.column("user").to_numpy(zero_copy_only=False)
        item_ids = raw.column("item").to_numpy(zero_copy_only=False)
        user_rows = self.users.index.get_indexer(user_ids)
        item_rows = self.items.index.get_indexer(item_ids)
        checks.fail(user_rows < 0, lambda rows: [f"unknown user id {user_ids[r]!r}" for r in rows])
        checks.fail(item_rows < 0, lambda rows: [f"unknown item id {item_ids[r]!r}" for r in rows])
        users = self.users.iloc[np.maximum(user_rows, 0)]
        items = self.items.iloc[np.maximum(item_rows, 0)]
        columns = {"user": raw.column("user"), "item": raw.column("item")}
        for name in ("genres", "year"):
            columns[name] = pa.array(items[name].to_numpy(object), pa.string())
        for name in ("gender", "age", "occupation", "zip"):
            columns[name] = pa.array(users[name].to_numpy(object), pa.string())
        labels = np.where(rating_ok, (ratings >= 4).astype(np.float64), 0.0)
        return reader_lib.build_batch(
            self, raw, labels, checks, source, rejected, self.separator, columns
        )


def _frame(rows: list[list[str]], columns: Sequence[str], path: str) -> pd.DataFrame:
    bad = [i for i, row in enumerate(rows) if len(row) < len(columns)]
    if bad:
        raise DataError(f"{path}:{bad[0] + 1}: expected {len(columns)} fields")
    frame = pd.DataFrame([row[: len(columns)] for row in rows], columns=list(columns))
    frame = frame.set_index(frame.columns[0])
    if frame.index.has_duplicates:
        raise DataError(f"{path}: duplicated id {frame.index[frame.index.duplicated()][0]!r}")
    return frame


def _users_1m(path: str) -> pd.DataFrame:
    rows = [line.split("::") for line in _read_lines(path, "latin-1")]
    return _frame(rows, ("id", "gender", "age", "occupation", "zip"), path)


def _items_1m(path: str) -> pd.DataFrame:
    rows = []
    for line in _read_lines(path, "latin-1"):
        movie_id, title, genres = (line.split("::") + ["", ""])[:3]
        match = _YEAR_IN_TITLE.search(title)
        rows.append([movie_id, genres, match.group(1) if match else ""])
    return _frame(rows, ("id", "genres", "year"), path)


def _users_100k(path: str) -> pd.DataFrame:
    rows = [line.split("|") for line in _read_lines(path, "latin-1")]
    frame = _frame(rows, ("id", "age", "gender", "occupation", "zip"), path)
    return frame[["gender", "age", "occupation", "zip"]]


def _items_100k(path: str) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(_read_lines(path, "latin-1"), start=1):
        parts = line.split("|")
        if len(parts) != 5 + len(ML_100K_GENRES):
            raise DataError(f"{path}:{number}: expected {5 + len(ML_100K_GENRES)} fields")
        flags = parts[5:]
        genres = "|".join(g for g, flag in zip(ML_100K_GENRES, flags) if flag == "1")
        release = parts[2].strip()
        rows.append([parts[0], genres, release[-4:] if len(release) >= 4 else ""])
    return _frame(rows, ("id", "genres", "year"), path)
