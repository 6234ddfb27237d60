"""File access for local paths and every filesystem TensorFlow knows (gs://, ...).

TensorFlow is imported on first use, not at module import, so Beam workers that
never touch a file through these helpers do not pay for loading it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path)


def glob(pattern: str) -> list[str]:
    return sorted(_gfile().glob(pattern))


def makedirs(path: str) -> None:
    _gfile().makedirs(path)


def open_file(path: str, mode: str = "r"):
    return _gfile().GFile(path, mode)


def write_text_atomically(path: str, text: str) -> None:
    """Writes a text file so that readers never see it half-written."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Writes a file under a temporary name, then renames it into place.

    The parent directory is created when it does not exist yet.
    """
    with writing_atomically(path) as f:
        f.write(data)


@contextlib.contextmanager
def writing_atomically(path: str) -> Iterator:
    """A binary file to write `path` through, renamed into place when the block ends.

    Written under a temporary name, removed if the block raises: readers see
    the whole file or none. The parent directory is created when needed.
    """
    parent = os.path.dirname(path)
    if parent:
        makedirs(parent)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open_file(tmp, "wb") as f:
            yield f
    except BaseException:
        if exists(tmp):
            _gfile().remove(tmp)
        raise
    _gfile().rename(tmp, path, overwrite=True)


def is_directory(path: str) -> bool:
    return _gfile().isdir(path)
