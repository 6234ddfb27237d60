"""The study's cell store: finished cells' results, kept apart from the work directory.

The work directory holds models and checkpoints, too large to keep. A store
(`study.py --store`) keeps what the report and the dependent cells read,
small enough to commit, so that a study resumes on another machine or from a
clean checkout:

    <store>/<config>/cells/<dataset>/<model>/<method>/seed<k>/
        metrics.json                         the cell's result
        search/plan.json                     a search's plan (a transfer retrains it)
        search/alpha_history.csv             an `autodim` search's alpha trajectories (plots)
    <store>/<config>/speed/throughput.json   the speed comparisons
    <store>/<config>/run.json                the last training run's record

Nothing here imports TensorFlow, so `--dry-run` can read the store.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Dict, Iterable

from study_config import Cell

CELL_RESULT = "metrics.json"
#: The speed comparisons' records, in a `speed/` directory (of the store or the work dir).
THROUGHPUT = "throughput.json"
MEMORY = "memory.json"
#: What a store keeps of a cell besides its result, relative to the cell's directory:
#: every search's plan, and the alpha history of the methods the report plots.
STORED_FILES = ("search/plan.json",)
PLOTTED_FILES = {"autodim": ("search/alpha_history.csv",)}


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def write_json(path: str, record: dict) -> None:
    """Writes `record` under a temporary name, then renames it: no half-written results."""
    partial = path + ".partial"
    with open(partial, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(partial, path)


class CellStore:
    """Finished cells' results kept apart from the work directory (see the module doc).

    Args:
        root: str, the store's directory (`benchmarks/results/study` for `make bench`).
        config_name: str, the configuration whose cells it holds.
    """

    def __init__(self, root: str, config_name: str):
        self.root = os.path.join(root, config_name)

    def cell_dir(self, cell: Cell) -> str:
        return os.path.join(self.root, "cells", cell.key)

    @property
    def throughput_path(self) -> str:
        """Where the speed comparisons' records are kept."""
        return os.path.join(self.root, "speed", THROUGHPUT)

    @property
    def memory_path(self) -> str:
        """Where the peak-memory comparisons' records are kept."""
        return os.path.join(self.root, "speed", MEMORY)

    def has(self, cell: Cell) -> bool:
        return os.path.exists(os.path.join(self.cell_dir(cell), CELL_RESULT))

    def save(self, cell: Cell, directory: str) -> None:
        """Copies a finished cell's result and kept files from its work directory."""
        _copy_cell(directory, self.cell_dir(cell), _kept(cell))

    def restore(self, cell: Cell, directory: str) -> bool:
        """Copies a stored cell into its work directory; False when the store lacks it."""
        if not self.has(cell):
            return False
        _copy_cell(self.cell_dir(cell), directory, _kept(cell))
        return True

    def results(self, cells: Iterable[Cell]) -> Dict[Cell, dict]:
        """The stored results of those of `cells` the store has."""
        return {
            cell: read_json(os.path.join(self.cell_dir(cell), CELL_RESULT))
            for cell in cells
            if self.has(cell)
        }


def _kept(cell: Cell) -> tuple:
    return STORED_FILES + PLOTTED_FILES.get(cell.method, ())


def _copy_cell(source: str, destination: str, names: tuple) -> None:
    """Copies a cell's kept files; its result last, so a copy that stops halfway is not a cell."""
    for name in names:
        if os.path.exists(os.path.join(source, name)):
            os.makedirs(os.path.dirname(os.path.join(destination, name)), exist_ok=True)
            shutil.copyfile(os.path.join(source, name), os.path.join(destination, name))
    os.makedirs(destination, exist_ok=True)
    write_json(os.path.join(destination, CELL_RESULT), read_json(os.path.join(source, CELL_RESULT)))
