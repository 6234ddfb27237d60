"""`TrainingLogs`: the TensorBoard logs of every training run, in `RUN/logs`.

- `logs/train`: the training metrics (`loss`, `logloss`, `auc`, and what a
  model's step adds: a search's `temperature` and `arch_loss`) every `every`
  steps and at each epoch end, and the learning rate of each optimizer;
- `logs/validation`: the same metrics on the validation split, at each epoch
  end (the two runs overlay in TensorBoard: same tags);
- what the method adds through `extra`: AlphaHistory writes a search's alpha
  per field, AMTL the mean length and the histogram of lengths per field.

The x axis is the training step of the run, continued across a resume.

    tensorboard --logdir RUN/logs
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import tensorflow as tf

from keras_dimsel._compat import skip_numpy_logs

#: The sub-directory of a run directory that holds its TensorBoard logs.
LOGS = "logs"
#: Training steps between two records of the training metrics.
DEFAULT_EVERY = 100


def learning_rates(model) -> dict:
    """The current learning rate of each of the model's optimizers, by name.

    A `SplitOptimizer` gives one per group (`tables`, `network`); a search
    model's architecture optimizer is `alpha`.

    Examples:

        >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
        >>> {k: round(float(v), 4) for k, v in learning_rates(model).items()}
        {'learning_rate': 0.01}
        >>> from keras_dimsel.training.optimizers import network_optimizer
        >>> model.compile(optimizer=network_optimizer("adagrad"), loss="mse")
        >>> sorted(learning_rates(model))
        ['learning_rate/network', 'learning_rate/tables']
    """
    found = {}
    optimizers = [("", model.optimizer)]
    if getattr(model, "arch_optimizer", None) is not None:
        optimizers.append(("alpha", model.arch_optimizer))
    for name, optimizer in optimizers:
        parts = [(name, optimizer)]
        if hasattr(optimizer, "tables") and hasattr(optimizer, "network"):
            parts = [("tables", optimizer.tables), ("network", optimizer.network)]
        for part, inner in parts:
            rate = getattr(inner, "learning_rate", None)
            if rate is None:
                continue
            if callable(rate) and not isinstance(rate, tf.Variable):
                rate = rate(inner.iterations)
            found["/".join(filter(None, ["learning_rate", part]))] = rate
    return found


class TrainingLogs(tf.keras.callbacks.Callback):
    """Writes a run's TensorBoard logs: training and validation metrics, learning rates.

    Args:
        log_dir: str, the run's `logs/` directory.
        every: int, training steps between two records of the training metrics.
        extra: callable or None, `extra(step)` called at each epoch end inside
            the `train` writer, for what a method adds (AMTL's lengths).

    Examples:

        >>> import tempfile
        >>> model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x = tf.random.stateless_normal([64, 2], seed=[0, 0])
        >>> log_dir = tempfile.mkdtemp()
        >>> _ = model.fit(x, x[:, :1], validation_data=(x, x[:, :1]), batch_size=16,
        ...               epochs=2, verbose=0, callbacks=[TrainingLogs(log_dir, every=2)])
        >>> sorted(os.listdir(log_dir))
        ['train', 'validation']
    """

    def __init__(
        self,
        log_dir: str,
        every: int = DEFAULT_EVERY,
        extra: Optional[Callable[[int], None]] = None,
    ):
        super().__init__()
        skip_numpy_logs(self)  # reads the logs' tensors only every `every` steps
        self.log_dir = log_dir
        self.every = every
        self.extra = extra
        self._step = 0
        self._train = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
        self._validation = tf.summary.create_file_writer(os.path.join(log_dir, "validation"))

    def restore(self, step: int) -> None:
        """A resumed run continues the x axis at the step it resumes from."""
        self._step = step

    def flush(self) -> None:
        self._train.flush()
        self._validation.flush()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.every and self._step % self.every == 0:
            self._write(self._train, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        training = {k: v for k, v in logs.items() if not k.startswith("val_")}
        validation = {k[len("val_") :]: v for k, v in logs.items() if k.startswith("val_")}
        self._write(self._train, {**training, **learning_rates(self.model)})
        if validation:
            self._write(self._validation, validation)
        if self.extra is not None:
            with self._train.as_default(step=self._step):
                self.extra(self._step)
        self.flush()

    def on_train_end(self, logs=None):
        self.flush()

    def _write(self, writer, values: dict) -> None:
        with writer.as_default(step=self._step):
            for name, value in values.items():
                try:
                    tf.summary.scalar(name, tf.cast(tf.reshape(value, []), tf.float32))
                except (TypeError, ValueError, tf.errors.InvalidArgumentError):
                    continue  # not a scalar (a metric of several values): not plotted
