"""`Progress`: what a person watching a training run sees inside an epoch.

An epoch over millions of rows takes minutes; without a word in between, a
run cannot be told from a hung one. On a terminal the callback draws Keras's
progress bar; in a log (output that is not a terminal: a file, a CI job, a
notebook's captured stream) it prints a line at most every `every` seconds:

    epoch 1/3 - step 1200/4000 (30%) - 41,200 examples/s - ETA 1m08s

It reads no batch logs (no device-to-host copy per step), only the clock.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

import tensorflow as tf

from keras_dimsel._compat import skip_numpy_logs

#: Seconds between two progress lines when the output is not a terminal.
DEFAULT_EVERY = 10.0


def format_seconds(seconds: float) -> str:
    """`1h02m`, `3m05s` or `42s`.

    Examples:

        >>> format_seconds(42.4), format_seconds(185), format_seconds(3720)
        ('42s', '3m05s', '1h02m')
    """
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress(tf.keras.callbacks.Callback):
    """Progress inside each epoch: a progress bar on a terminal, else a line every `every` s.

    Args:
        steps_per_epoch: int, training steps in one epoch.
        epochs: int, the run's epochs.
        batch_size: int or None, examples per step (for examples/s; steps/s without it).
        first_step: int, the steps done before this `fit` (a resumed run): the
            first epoch's count starts there.
        every: float, seconds between two lines when not on a terminal.
        stream: the text stream to write to (default: standard output).

    Examples:

        >>> import io
        >>> stream = io.StringIO()
        >>> progress = Progress(steps_per_epoch=4, epochs=1, batch_size=10, every=0.0,
        ...                     stream=stream)
        >>> progress.on_epoch_begin(0)
        >>> progress.on_train_batch_end(0)  # the first step starts the clock
        >>> progress.on_train_batch_end(1)
        >>> stream.getvalue().startswith("epoch 1/1 - step 2/4 (50%) - ")
        True
    """

    def __init__(
        self,
        steps_per_epoch: int,
        epochs: int,
        batch_size: Optional[int] = None,
        first_step: int = 0,
        every: float = DEFAULT_EVERY,
        stream: Optional[TextIO] = None,
    ):
        super().__init__()
        skip_numpy_logs(self)  # the batch hook reads only the clock
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.batch_size = batch_size
        self.every = every
        self.stream = stream or sys.stdout
        self._steps = first_step  # steps done in the whole run
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._step_in_epoch = self._steps - epoch * self.steps_per_epoch
        # The clock starts after the epoch's first step, which includes tracing the graph.
        self._start = self._last = None
        self._start_step = self._step_in_epoch
        if _is_terminal(self.stream):
            self._bar = tf.keras.utils.Progbar(
                self.steps_per_epoch, stateful_metrics=(), unit_name="step"
            )
            self._bar.update(self._step_in_epoch)

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self._step_in_epoch += 1
        if self._bar is not None:
            self._bar.update(self._step_in_epoch)  # draws at most every 0.05 s
            return
        now = time.perf_counter()
        if self._start is None:
            self._start, self._last, self._start_step = now, now, self._step_in_epoch
            return
        if now - self._last >= self.every:
            self._last = now
            print(self._line(now), file=self.stream, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar = None

    def _line(self, now: float) -> str:
        step, total = self._step_in_epoch, self.steps_per_epoch
        seconds = max(now - self._start, 1e-9)  # from the end of the epoch's first step
        rate = (step - self._start_step) / seconds
        parts = [
            f"epoch {self._epoch + 1}/{self.epochs}",
            f"step {step}/{total} ({step / total:.0%})",
        ]
        if self.batch_size:
            parts.append(f"{rate * self.batch_size:,.0f} examples/s")
        else:
            parts.append(f"{rate:,.1f} steps/s")
        if rate > 0:
            parts.append(f"ETA {format_seconds((total - step) / rate)}")
        return " - ".join(parts)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
