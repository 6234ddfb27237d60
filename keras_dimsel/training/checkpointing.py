"""Resumable training: checkpoints during `fit`, and a restart that continues from them.

`ResumableFit` trains a compiled model epoch by epoch and saves, into
`RUN/checkpoints/`, everything the rest of the run depends on: the model's
variables (tables, network, alpha, BatchNorm statistics, the Gumbel noise and
dropout counters, a search's step and examples-seen counters, from which the
temperature follows), both optimizers with their slots and step counts, and
the number of training steps done. The data position follows from that
number: epoch `e` reads the train split in the order of `epoch_seed(seed, e)`,
so a restarted run rebuilds the same epoch and skips the batches it has
already trained on.

A checkpoint is written every `every` steps and at the end of each epoch.
TensorFlow writes a checkpoint's files first and then, atomically, the
`checkpoint` file that names the latest one, so a run killed at any moment
finds either the new checkpoint or the one before it, never half of one.

The run's options are recorded beside the checkpoints (`options.json`); a
restart with other options stops with an error that names them, instead of
continuing a different run. The logged training metrics of an epoch cut by a
restart cover the steps after the restart only; the weights do not depend on
them.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_dimsel import _io
from keras_dimsel._compat import skip_numpy_logs
from keras_dimsel.training.progress import Progress
from keras_dimsel.training.run_dir import RunDir, RunMismatchError, describe_changes

#: The sub-directory of a run directory that holds its checkpoints.
CHECKPOINTS = "checkpoints"
#: The run's options, written beside the checkpoints.
OPTIONS = "options.json"
#: Training steps between two checkpoints (one is also written at each epoch end).
DEFAULT_CHECKPOINT_EVERY = 1000


class CheckpointMismatchError(RunMismatchError):
    """A run directory holds the checkpoints of a run with other options or another model.

    A `ValueError`, so the command line reports it in one line.

    Examples:

        >>> issubclass(CheckpointMismatchError, ValueError)
        True
    """


class TrainingInterrupted(KeyboardInterrupt):
    """`ResumableFit.fit` was interrupted (Ctrl-C); says where, and from where it resumes.

    Args:
        steps_done: int, the training steps done when it stopped.
        total_steps: int, the run's steps.
        saved_steps: int, the steps the latest checkpoint holds: where a
            restart resumes from.

    Examples:

        >>> str(TrainingInterrupted(1234, 5000, 1000))
        'interrupted at step 1234 of 5000; the latest checkpoint is at step 1000'
        >>> isinstance(TrainingInterrupted(0, 1, 0), KeyboardInterrupt)
        True
    """

    def __init__(self, steps_done: int, total_steps: int, saved_steps: int):
        super().__init__(
            f"interrupted at step {steps_done} of {total_steps}; "
            f"the latest checkpoint is at step {saved_steps}"
        )
        self.steps_done = steps_done
        self.total_steps = total_steps
        self.saved_steps = saved_steps


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: a new order every epoch, the same one after a restart.

    Args:
        seed: int, the run's seed.
        epoch: int, the epoch index (from 0).

    Returns:
        int, a seed in [0, 2**31).

    Examples:

        >>> epoch_seed(0, 1) == epoch_seed(0, 1), epoch_seed(0, 1) == epoch_seed(1, 0)
        (True, False)
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] >> 1)


class ResumableFit:
    """Runs `model.fit` over the epochs of a run, saving and resuming from checkpoints.

    Args:
        model: a compiled Keras model, built (called once on a batch) before `fit`.
        run_dir: str, the run directory; checkpoints go to `run_dir/checkpoints`.
        options: dict, what defines the run (JSON-serialisable); a restart
            with different options raises `CheckpointMismatchError`.
        steps_per_epoch: int, training steps in one epoch.
        epochs: int, the number of epochs.
        every: int >= 0, steps between checkpoints; 0 saves at epoch ends only.
        batch_size: int or None, examples per step, for the progress lines.

    Examples:

        >>> import tempfile
        >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> _ = model(tf.zeros([1, 2]))
        >>> def epoch_data(epoch):
        ...     x = tf.random.stateless_normal([40, 2], seed=[epoch, 0])
        ...     return tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(8)
        >>> run_dir = tempfile.mkdtemp()
        >>> fit = ResumableFit(model, run_dir, {"lr": 0.001}, steps_per_epoch=5, epochs=2, every=3)
        >>> _ = fit.fit(epoch_data, verbose=0)
        >>> fit.steps_done, int(model.optimizer.iterations)
        (10, 10)
        >>> sorted(os.listdir(os.path.join(run_dir, CHECKPOINTS)))[:3]
        ['checkpoint', 'ckpt-10.data-00000-of-00001', 'ckpt-10.index']

        Run again, the same object (or a new process with the same options)
        finds the run finished and trains no further:

        >>> _ = fit.fit(epoch_data, verbose=0)
        >>> int(model.optimizer.iterations)
        10
    """

    def __init__(
        self,
        model: tf.keras.Model,
        run_dir: str,
        options: dict,
        steps_per_epoch: int,
        epochs: int,
        every: int = DEFAULT_CHECKPOINT_EVERY,
        batch_size: Optional[int] = None,
    ):
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"`every` must be an integer >= 0. Received: every={every!r}")
        for name, value in (("steps_per_epoch", steps_per_epoch), ("epochs", epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer. Received: {value!r}")
        if model.optimizer is None:
            raise ValueError("compile the model before creating a ResumableFit")
        self.model = model
        self.directory = os.path.join(run_dir, CHECKPOINTS)
        self.options = json.loads(json.dumps(options))  # tuples become lists, as read back
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.every = every
        self.batch_size = batch_size
        self.steps_done = 0
        self._step = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps_done")
        parts = {"model": model, "optimizer": model.optimizer, "steps_done": self._step}
        arch_optimizer = getattr(model, "arch_optimizer", None)
        if arch_optimizer is not None:
            parts["arch_optimizer"] = arch_optimizer
        self._checkpoint = tf.train.Checkpoint(**parts)
        self._manager = tf.train.CheckpointManager(self._checkpoint, self.directory, max_to_keep=2)
        self._restored = False

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def restore(self) -> int:
        """Restores the latest checkpoint of the run, if any; returns the steps already done.

        Raises:
            CheckpointMismatchError: when the checkpoints belong to a run with
                other options, or do not fit the model.
        """
        self._check_options()
        latest = self._manager.latest_checkpoint
        if latest is None:
            self.steps_done = 0
        else:
            self._build_optimizers()
            try:
                self._checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError) as error:
                first_line = str(error).strip().splitlines()[0]
                raise CheckpointMismatchError(
                    f"the checkpoint {latest} does not fit this model ({first_line}); "
                    "give a new output directory"
                ) from None
            self.steps_done = int(self._step.numpy())
        self._restored = True
        return self.steps_done

    def fit(
        self,
        epoch_data: Callable[[int], tf.data.Dataset],
        validation_data: Optional[tf.data.Dataset] = None,
        callbacks: Sequence[tf.keras.callbacks.Callback] = (),
        verbose: int = 2,
    ) -> float:
        """Trains the remaining steps of the run; returns the seconds spent training.

        Args:
            epoch_data: callable from the epoch index to that epoch's dataset;
                it must give the same batches in the same order every time
                it is called with the same index.
            validation_data: dataset or None, evaluated at each epoch end.
            callbacks: Keras callbacks; a callback with a `restore(step)`
                method is told the step the run resumes from, and one with a
                `flush()` method is flushed before each checkpoint.
            verbose: int, 0 silent, else one line per epoch and progress
                inside it (`Progress`: a bar on a terminal, else a line every 10 s).

        Returns:
            float, the seconds `fit` ran in this call (0 when nothing was left).
        """
        if not self._restored:
            self.restore()
        for callback in callbacks:
            if hasattr(callback, "restore"):
                callback.restore(self.steps_done)
        if self.steps_done >= self.total_steps:
            return 0.0
        if verbose and self.steps_done:
            print(f"resuming at step {self.steps_done} of {self.total_steps} from {self.directory}")
        saver = _Saver(self, [c for c in callbacks if hasattr(c, "flush")], verbose)
        if verbose:
            progress = Progress(
                self.steps_per_epoch, self.epochs, self.batch_size, first_step=self.steps_done
            )
            callbacks = [*callbacks, progress]
        seconds = 0.0
        first_epoch, skip = divmod(self.steps_done, self.steps_per_epoch)
        try:
            for epoch in range(first_epoch, self.epochs):
                data = epoch_data(epoch)
                if skip:
                    data = data.skip(skip)
                start = time.perf_counter()
                self.model.fit(
                    data,
                    validation_data=validation_data,
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    verbose=0,
                    callbacks=[*callbacks, saver],
                )
                seconds += time.perf_counter() - start
                skip = 0
        except KeyboardInterrupt as interrupt:
            if isinstance(interrupt, TrainingInterrupted):
                raise
            raise TrainingInterrupted(
                self.steps_done, self.total_steps, self.steps_saved()
            ) from interrupt
        return seconds

    def save(self) -> None:
        """Writes a checkpoint of the current state (the steps done so far)."""
        RunDir(self.directory).changed_options(self.options, OPTIONS)  # recorded once
        self._step.assign(self.steps_done)
        self._manager.save(checkpoint_number=self.steps_done)

    def steps_saved(self) -> int:
        """The steps the latest checkpoint on disk holds: where a restart resumes from.

        Read from the directory, not from memory: a save cut short by Ctrl-C may
        have written its checkpoint or not.
        """
        latest = tf.train.latest_checkpoint(self.directory)
        return int(latest.rsplit("-", 1)[1]) if latest else 0

    def remove(self) -> None:
        """Deletes the checkpoints, once the run's results are written."""
        if _io.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)

    def _check_options(self) -> None:
        if not _io.exists(os.path.join(self.directory, OPTIONS)):
            return  # no checkpoint written yet
        changed = RunDir(self.directory).changed_options(self.options, OPTIONS)
        if changed:
            raise CheckpointMismatchError(
                f"{self.directory} holds the checkpoints of a run with other options "
                f"({describe_changes(changed)}); re-run with the same options to resume, "
                "or give a new output directory"
            )

    def _build_optimizers(self) -> None:
        """Creates the optimizer slots as training would, so the checkpoint restores into them."""
        model = self.model
        if not model.built:
            raise ValueError("build the model (call it on a batch) before restoring it")
        arch_optimizer = getattr(model, "arch_optimizer", None)
        if arch_optimizer is not None:
            model.optimizer.build(model.network_variables)
            arch_optimizer.build(model.architecture_variables)
        else:
            model.optimizer.build(model.trainable_variables)


class _Saver(tf.keras.callbacks.Callback):
    """Counts steps and writes a checkpoint every `every` steps and at each epoch end."""

    def __init__(self, run: ResumableFit, flushed: Sequence, verbose: int):
        super().__init__()
        skip_numpy_logs(self)  # the batch hook reads no logs
        self._run = run
        self._flushed = list(flushed)
        self._verbose = verbose
        self._saved_at = run.steps_done
        self._epoch_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._run.steps_done += 1
        every = self._run.every
        if every and self._run.steps_done % every == 0:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if self._saved_at != self._run.steps_done:
            self._save()
        if self._verbose:
            seconds = time.perf_counter() - self._epoch_start
            scores = " - ".join(f"{name}: {value:.4f}" for name, value in (logs or {}).items())
            print(f"epoch {epoch + 1}/{self._run.epochs} - {seconds:.0f}s - {scores}", flush=True)

    def _save(self) -> None:
        for callback in self._flushed:
            callback.flush()
        self._run.save()
        self._saved_at = self._run.steps_done


class BestEpoch(tf.keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best validation score, across restarts.

    At each epoch end where `monitor` improves on the best so far, the model's
    variables are written to `directory/epoch-<e>` and then `best.json` names
    that epoch, so a run killed at any moment finds the state of a finished
    epoch. `restore_best()` loads those weights into the model once training
    is over. Put this callback before the one that writes the run's
    checkpoint: an epoch whose checkpoint exists has then been considered.

    Args:
        model: the Keras model being trained.
        directory: str, where the best weights and `best.json` live (inside
            the run's checkpoints, so they go with them once the run is done).
        monitor: str, the logged validation metric, higher is better.

    Examples:

        >>> import tempfile
        >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        >>> _ = model(tf.zeros([1, 2]))
        >>> best = BestEpoch(model, tempfile.mkdtemp(), monitor="val_auc")
        >>> _ = model.layers[0].kernel.assign([[1.0], [1.0]])
        >>> best.on_epoch_end(0, {"val_auc": 0.7})
        >>> _ = model.layers[0].kernel.assign([[2.0], [2.0]])
        >>> best.on_epoch_end(1, {"val_auc": 0.6})
        >>> best.restore_best(), model.layers[0].kernel.numpy().ravel().tolist()
        ({'epoch': 1, 'val_auc': 0.7}, [1.0, 1.0])
    """

    STATE = "best.json"

    def __init__(self, model: tf.keras.Model, directory: str, monitor: str = "val_auc"):
        super().__init__()
        self._model = model
        self.directory = directory
        self.monitor = monitor
        self._checkpoint = tf.train.Checkpoint(variables=list(model.variables))
        self.best = self._read_state()

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(
                f"keeping the best epoch needs the validation metric {self.monitor!r}, and "
                f"the epoch logged only {sorted(logs or {})}"
            )
        value = float(value)
        if self.best is not None and not value > self.best[self.monitor]:
            return
        previous = self.best
        _io.makedirs(self.directory)
        prefix = os.path.join(self.directory, f"epoch-{epoch + 1}")
        self._checkpoint.write(prefix)
        self.best = {"epoch": epoch + 1, self.monitor: value}
        _io.write_text_atomically(
            os.path.join(self.directory, self.STATE), json.dumps(self.best) + "\n"
        )
        if previous is not None and previous["epoch"] != self.best["epoch"]:
            for path in _io.glob(os.path.join(self.directory, f"epoch-{previous['epoch']}.*")):
                tf.io.gfile.remove(path)

    def restore_best(self) -> Optional[dict]:
        """Loads the best epoch's weights into the model; returns its record (None: none yet)."""
        if self.best is None:
            return None
        prefix = os.path.join(self.directory, f"epoch-{self.best['epoch']}")
        self._checkpoint.read(prefix).assert_consumed()
        return dict(self.best)

    def _read_state(self) -> Optional[dict]:
        path = os.path.join(self.directory, self.STATE)
        if not _io.exists(path):
            return None
        with _io.open_file(path) as f:
            return json.load(f)
