"""`AlphaHistory`: softmax(alpha) of every field over a search, as CSV and TensorBoard scalars."""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from keras_dimsel import _io
from keras_dimsel._compat import skip_numpy_logs


class AlphaHistory(tf.keras.callbacks.Callback):
    """Records softmax(alpha) of every field every `every` steps (CSV + TensorBoard).

    Args:
        field_embeddings: the model's `SearchEmbeddings`.
        path: str, the CSV file (`step, field, candidate, probability` rows).
        log_dir: str or None, a TensorBoard log directory.
        every: int, steps between records.

    Examples:

        Given to `fit(..., callbacks=[history])`, it records at the start, every
        `every` steps and at the end of each `fit`; here the hooks are called by hand:

        >>> import pathlib, tempfile
        >>> from keras_dimsel.autodim.embeddings import SearchEmbeddings
        >>> embeddings = SearchEmbeddings({"user": 10}, candidates=(2, 4))
        >>> _ = embeddings({"user": tf.constant([1, 2])})
        >>> path = pathlib.Path(tempfile.mkdtemp(), "alpha_history.csv")
        >>> history = AlphaHistory(embeddings, str(path), every=10)
        >>> history.on_train_begin()
        >>> history.on_train_end()
        >>> print(path.read_text().strip())
        step,field,candidate,probability
        0,user,2,0.500000
        0,user,4,0.500000
    """

    def __init__(self, field_embeddings, path: str, log_dir: Optional[str] = None, every=10):
        super().__init__()
        skip_numpy_logs(self)  # the batch hook reads no logs
        self._fields = field_embeddings
        self._path = path
        self._every = every
        self._step = 0
        self._writer = tf.summary.create_file_writer(log_dir) if log_dir else None
        self.rows: list[tuple[int, str, int, float]] = []

    def _record(self) -> None:
        if self.rows and self.rows[-1][0] == self._step:
            return  # already recorded at this step (e.g. the end of an epoch)
        candidates = self._fields.candidates
        for name, probabilities in self._fields.selection_probabilities().items():
            for dim, p in zip(candidates, probabilities):
                self.rows.append((self._step, name, dim, float(p)))
                if self._writer is not None:
                    with self._writer.as_default(step=self._step):
                        tf.summary.scalar(f"alpha/{name}/{dim}", p)

    def restore(self, step: int) -> None:
        """Continues a resumed run: keeps the rows of `path` up to `step`, counts from there."""
        self._step = step
        self.rows = []
        if step and _io.exists(self._path):
            with _io.open_file(self._path) as f:
                for line in f.read().splitlines()[1:]:
                    at, name, dim, p = line.split(",")
                    if int(at) <= step:
                        self.rows.append((int(at), name, int(dim), float(p)))

    def flush(self) -> None:
        """Writes the rows recorded so far to `path`."""
        lines = ["step,field,candidate,probability"]
        lines += [f"{s},{f},{d},{p:.6f}" for s, f, d, p in self.rows]
        _io.write_text_atomically(self._path, "\n".join(lines) + "\n")
        if self._writer is not None:
            self._writer.flush()

    def on_train_begin(self, logs=None):
        if self._step == 0:
            self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self._every == 0:
            self._record()

    def on_train_end(self, logs=None):
        self._record()
        self.flush()
