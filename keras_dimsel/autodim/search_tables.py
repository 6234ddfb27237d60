"""The search's embedding tables, written by a search and read by a warm-started retrain."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from keras_dimsel import _io
from keras_dimsel.autodim.plan import DimensionPlan

#: The search tables a retrain can warm start from, in the search run directory.
SEARCH_TABLES = "search_tables.npz"


def save_search_tables(field_embeddings, path: str) -> None:
    """Writes the search-stage embedding tables, the source of a warm start.

    Keys: `<field>` for the shared table [vocab, d_N]; `<field>@<d>` for the
    separate table of candidate d.

    Args:
        field_embeddings: built `SearchEmbeddings`.
        path: str, the `.npz` file to write.

    Examples:

        >>> import os, tempfile
        >>> import tensorflow as tf
        >>> from keras_dimsel.autodim.embeddings import SearchEmbeddings
        >>> embeddings = SearchEmbeddings({"user": 10, "genre": 3}, candidates=(2, 4))
        >>> _ = embeddings({"user": tf.constant([1, 5]), "genre": tf.constant([0, 2])})
        >>> path = os.path.join(tempfile.mkdtemp(), SEARCH_TABLES)
        >>> save_search_tables(embeddings, path)
        >>> {name: table.shape for name, table in np.load(path).items()}
        {'user': (10, 4), 'genre': (3, 4)}
    """
    tables = {}
    for name, layer in field_embeddings.embeddings.items():
        if layer.storage == "shared":
            tables[name] = layer.tables[0]
        else:
            for dim, table in zip(layer.candidates, layer.tables):
                tables[f"{name}@{dim}"] = table
    # The `.npz` layout of `np.savez`, streamed: one table at a time is copied
    # out of TensorFlow, never the whole archive into memory.
    with _io.writing_atomically(path) as f, zipfile.ZipFile(_WriteOnly(f), "w") as archive:
        for key, table in tables.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, table.numpy(), allow_pickle=False)


class _WriteOnly:
    """A file's `write` and `flush` alone: `zipfile` then streams, without seeking back.

    (A `tf.io.gfile.GFile` opened for writing cannot seek.)
    """

    def __init__(self, file):
        self._file = file

    def write(self, data) -> int:
        self._file.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        self._file.flush()


def load_warm_start_tables(run_dir: str, plan: DimensionPlan) -> dict:
    """The table each field of `plan` starts from, read from a search run.

    Args:
        run_dir: str, a `run_search` output directory.
        plan: DimensionPlan, the dimensions to start from.

    Returns:
        dict of field to a `[vocab_size, n]` array, n >= the planned dim; give
        it to `PlannedEmbedding.warm_start_from`.

    Raises:
        FileNotFoundError: when `run_dir` holds no search tables.
        ValueError: when a field or its planned dimension has no table there.

    Examples:

        >>> import tempfile
        >>> import tensorflow as tf
        >>> from keras_dimsel.autodim.embeddings import SearchEmbeddings
        >>> embeddings = SearchEmbeddings(
        ...     {"user": 10, "genre": 3}, candidates=(2, 4), storage="separate"
        ... )
        >>> _ = embeddings({"user": tf.constant([1, 5]), "genre": tf.constant([0, 2])})
        >>> run_dir = tempfile.mkdtemp()
        >>> save_search_tables(embeddings, os.path.join(run_dir, SEARCH_TABLES))
        >>> plan = DimensionPlan(
        ...     fields={"user": 4, "genre": 2},
        ...     candidates=(2, 4),
        ...     vocab_sizes={"user": 10, "genre": 3},
        ... )
        >>> tables = load_warm_start_tables(run_dir, plan)
        >>> {name: table.shape for name, table in tables.items()}  # each chosen candidate's table
        {'user': (10, 4), 'genre': (3, 2)}
    """
    path = os.path.join(run_dir, SEARCH_TABLES)
    if not _io.exists(path):
        raise FileNotFoundError(f"{path} not found: --warm-start takes a `dimsel search` run")
    tables = {}
    # Read from the file as needed: only the plan's tables come into memory.
    with _io.open_file(path, "rb") as f, np.load(f) as arrays:
        for name, dim in plan.fields.items():
            key = name if name in arrays.files else f"{name}@{dim}"
            tables[name] = arrays[key] if key in arrays.files else None
    for name, dim in plan.fields.items():
        table = tables[name]
        if table is None:
            raise ValueError(
                f"the search run {run_dir} has no table for field {name!r} at dim {dim}"
            )
        if table.shape[1] < dim:
            raise ValueError(
                f"the search table of field {name!r} in {run_dir} has {table.shape[1]} "
                f"columns, fewer than the planned dim {dim}"
            )
    return tables
