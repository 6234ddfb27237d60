"""`RunDir`: the directory of one run, its file names, and when it is complete.

Every training run writes into a run directory:

- `metrics.json`: the test metrics, written last, so a directory that holds
  it is complete (a search's last file is `plan.json`);
- `saved_model/`: the exported model (raw features in, probability out);
- `weights/model`: the trained weights (`CTRModel.network_weights`);
- `run.json`: the options, settings and data sizes the run was made with;
- `checkpoints/`: while it trains (`ResumableFit`), removed at the end;
- `logs/`: its TensorBoard logs (`TrainingLogs`);
- `made_by_dimsel.json`: when a `dimsel` command made it, which one.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from keras_dimsel import _io

METRICS = "metrics.json"
SAVED_MODEL = "saved_model"
#: The trained weights (`CTRModel.network_weights`), what a warm start reads.
WEIGHTS = os.path.join("weights", "model")
#: What made a finished run: its options, training settings and data (`train_and_export`).
RUN_RECORD = "run.json"


class RunMismatchError(ValueError):
    """A run directory holds a run made with other options (one line).

    The command line adds the way out: `--overwrite`, to start afresh.

    Examples:

        >>> issubclass(RunMismatchError, ValueError)
        True
    """


class RunDir:
    """One run's directory: paths, completeness, metrics, and the options it was made with.

    Args:
        path: str, the directory (local or any `tf.io.gfile` path).
        done: str, the file written last, whose presence means the run is complete.

    Examples:

        >>> import tempfile
        >>> run = RunDir(tempfile.mkdtemp())
        >>> run.is_complete(), run.read_metrics()
        (False, None)
        >>> run.write_metrics({"auc": 0.75})
        >>> run.is_complete(), run.read_metrics()
        (True, {'auc': 0.75})
        >>> os.path.relpath(run.saved_model, run.path), os.path.relpath(run.weights, run.path)
        ('saved_model', 'weights/model')
    """

    def __init__(self, path: str, done: str = METRICS):
        self.path = path
        self.done = done

    def join(self, *names: str) -> str:
        return os.path.join(self.path, *names)

    @property
    def saved_model(self) -> str:
        return self.join(SAVED_MODEL)

    @property
    def weights(self) -> str:
        return self.join(WEIGHTS)

    def is_complete(self) -> bool:
        """Whether the run's last file is written."""
        return _io.exists(self.join(self.done))

    def has_weights(self) -> bool:
        return _io.exists(self.weights + ".index")

    def read_json(self, name: str) -> Optional[dict]:
        """The JSON file `name` of the run, or None when it does not exist."""
        path = self.join(name)
        if not _io.exists(path):
            return None
        with _io.open_file(path) as f:
            return json.load(f)

    def write_json(self, name: str, record: dict) -> None:
        """Writes `name` atomically (readers never see half of it)."""
        _io.write_text_atomically(self.join(name), json.dumps(record, indent=2) + "\n")

    def read_metrics(self) -> Optional[dict]:
        return self.read_json(METRICS)

    def write_metrics(self, metrics: dict) -> None:
        self.write_json(METRICS, metrics)

    def changed_options(self, options: dict, name: str) -> list:
        """Compares `options` with those recorded in `name`; records them the first time.

        Args:
            options: dict, what defines the run (JSON-serialisable; tuples
                compare equal to the lists they are read back as).
            name: str, the file the options are recorded in.

        Returns:
            list of `(key, recorded, given)` for every key that differs, in
            key order; empty when they agree or nothing was recorded yet.

        Examples:

            >>> import tempfile
            >>> run = RunDir(tempfile.mkdtemp())
            >>> run.changed_options({"dim": 8, "candidates": (2, 8)}, "options.json")
            []
            >>> run.changed_options({"dim": 16, "candidates": [2, 8]}, "options.json")
            [('dim', 8, 16)]
        """
        record = json.loads(json.dumps(options))  # tuples become lists, as when read back
        previous = self.read_json(name)
        if previous is None:
            self.write_json(name, record)
            return []
        keys = sorted(set(previous) | set(record))
        changed = [k for k in keys if previous.get(k) != record.get(k)]
        return [(k, previous.get(k), record.get(k)) for k in changed]


def describe_changes(changed: list) -> str:
    """`key: recorded then, given now` for each option of `RunDir.changed_options`,
    options that are dicts (the training settings) down to the entries that differ.

    Examples:

        >>> describe_changes([("dim", 8, 16), ("settings", {"seed": 0, "epochs": 2},
        ...                                                {"seed": 1, "epochs": 2})])
        'dim: 8 then, 16 now, settings.seed: 0 then, 1 now'
    """
    parts = []
    for key, then, now in changed:
        if isinstance(then, dict) and isinstance(now, dict):
            inner = [
                (f"{key}.{name}", then.get(name), now.get(name))
                for name in sorted(set(then) | set(now))
                if then.get(name) != now.get(name)
            ]
            parts.append(describe_changes(inner))
        else:
            parts.append(f"{key}: {then!r} then, {now!r} now")
    return ", ".join(parts)
