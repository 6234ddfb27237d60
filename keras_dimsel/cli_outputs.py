"""Where a `dimsel` command may write: its own run directory, never what a user had.

A command writes only into a directory that

- does not exist yet (it is created), or is empty, or
- holds a run of the same command: the file `made_by_dimsel.json`, written
  when the command claimed the directory, names it. Such a run is resumed
  when interrupted and reused when finished, with the same options; other
  options are refused by the run itself (`training.RunMismatchError`).

Anything else (a directory with files of its own, a run of another command,
a file) is refused with one line that names the directory and the way out:
another `--output`, or `--overwrite`, which lets the command write into the
directory and start afresh there (it forgets the earlier run's progress and
options; files of other names stay). No input of the command may lie inside
its output directory, with or without `--overwrite`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from typing import Mapping, Optional, Sequence

from keras_dimsel import _io

#: The file that marks a directory as the run directory of one `dimsel` command.
MADE_BY = "made_by_dimsel.json"


class OutputError(ValueError):
    """The output directory is not one the command may write into (one line)."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """What `claim_output` found and did.

    Attributes:
        path: str, the run directory.
        resumes: bool, it held a run of the command already (resumed or reused).
        created: bool, the directory did not exist and was made by the claim.
    """

    path: str
    resumes: bool
    created: bool

    def discard_if_unused(self, records: Sequence[str] = ()) -> bool:
        """Removes the directory the claim made if it holds nothing but the marker and
        `records` (a command that failed before writing anything leaves no debris).

        Returns:
            bool, whether the directory was removed.
        """
        if not self.created or not _io.exists(self.path):
            return False
        names = set(_gfile().listdir(self.path))
        if not names <= {MADE_BY, *records}:
            return False
        _gfile().rmtree(self.path)  # made by the claim, and it holds only the claim's files
        return True


def claim_output(
    path: str,
    command: str,
    overwrite: bool = False,
    inputs: Optional[Mapping[str, Optional[str]]] = None,
    state: Sequence[str] = (),
) -> Claim:
    """Makes `path` the run directory of `dimsel COMMAND`, or refuses with the way out.

    Args:
        path: str, the `--output` directory.
        command: str, the command's name (`baseline`, `search`, ...).
        overwrite: bool, `--overwrite`: write into a directory that holds other
            files or another command's run, and start afresh.
        inputs: mapping from a flag (`--data`) to the path it gave (None when
            not given): none may lie inside `path`.
        state: names inside `path` that hold the progress and options of an
            earlier run of the command (its last file, its option records,
            `checkpoints/`): with `overwrite` they are removed, so the
            command starts afresh.

    Returns:
        The `Claim`: whether `path` held a run of `command` already (one that
        is resumed or reused) and whether the claim created it.

    Raises:
        OutputError: when `path` is a file, holds an input, or holds files
            of its own or another command's run and `overwrite` is False.

    Examples:

        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> run = os.path.join(root, "run")
        >>> claim_output(run, "baseline").resumes, claim_output(run, "baseline").resumes
        (False, True)
        >>> claim_output(run, "search")
        Traceback (most recent call last):
        ...
        keras_dimsel.cli_outputs.OutputError: --output ... holds a `dimsel baseline` run; ...
        >>> with open(os.path.join(root, "notes.txt"), "w") as f:
        ...     _ = f.write("mine")
        >>> claim_output(root, "baseline")
        Traceback (most recent call last):
        ...
        keras_dimsel.cli_outputs.OutputError: --output ... holds files dimsel did not write; ...
        >>> claim_output(root, "baseline", inputs={"--data": os.path.join(root, "data")})
        Traceback (most recent call last):
        ...
        keras_dimsel.cli_outputs.OutputError: --data ... is inside --output ...; ...
    """
    for flag, given in (inputs or {}).items():
        if given and _inside(given, path):
            raise OutputError(
                f"{flag} {given} is inside --output {path}; give an --output that holds no input"
            )
    if _io.exists(path) and not _io.is_directory(path):
        raise OutputError(f"--output {path} is a file; give a directory")
    made_by = _made_by(path)
    ours = made_by == command
    if not ours and not overwrite:
        if made_by:
            raise OutputError(
                f"--output {path} holds a `dimsel {made_by}` run; give another --output, "
                f"or --overwrite to write this {command} run into it"
            )
        if _io.exists(path) and _gfile().listdir(path):
            raise OutputError(
                f"--output {path} holds files dimsel did not write; give a new or empty "
                "--output, or --overwrite to write into it (files of other names stay)"
            )
    created = not _io.exists(path)
    if overwrite:
        for name in state:
            _remove(os.path.join(path, name))
    if not ours:
        _io.makedirs(path)
        record = {
            "command": command,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        _io.write_text_atomically(os.path.join(path, MADE_BY), json.dumps(record) + "\n")
    return Claim(path, resumes=ours and not overwrite, created=created)


def _made_by(path: str) -> Optional[str]:
    marker = os.path.join(path, MADE_BY)
    if not _io.exists(marker):
        return None
    try:
        with _io.open_file(marker) as f:
            return str(json.load(f)["command"])
    except (ValueError, KeyError, TypeError):
        return "unknown"


def _inside(given: str, path: str) -> bool:
    """Whether the local path `given` is `path` or lies under it (symbolic links resolved)."""
    if "://" in given or "://" in path:
        return given.rstrip("/") == path.rstrip("/") or given.startswith(path.rstrip("/") + "/")
    given, path = os.path.realpath(given), os.path.realpath(path)
    return given == path or given.startswith(path.rstrip(os.sep) + os.sep)


def _remove(path: str) -> None:
    if not _io.exists(path):
        return
    if _io.is_directory(path):
        _gfile().rmtree(path)
    else:
        _gfile().remove(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile
