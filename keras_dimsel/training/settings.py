"""Training settings: epochs, batch size and seed fitted to the data, and seeding."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.training.checkpointing import DEFAULT_CHECKPOINT_EVERY, epoch_seed
from keras_dimsel.training.optimizers import (
    DEFAULT_EMBEDDING_OPTIMIZER,
    EMBEDDING_OPTIMIZERS,
    network_optimizer,
)

#: The Adam learning rate of the network (the papers' 0.001).
DEFAULT_LEARNING_RATE = 1e-3
#: At least this many steps per epoch: small data sets get smaller batches.
_MIN_STEPS_PER_EPOCH = 100


def check_two_classes(spec: FeatureSpec, split: str) -> None:
    """Refuses a split whose labels are all 0 or all 1 (when the artifact counted them).

    A model learns nothing from one class, and its AUC is undefined: training on
    it would end in a meaningless "AUC 0.0000" and a plan of nonsense.

    Raises:
        ValueError: naming the split, its label and its rows.

    Examples:

        >>> spec = FeatureSpec(label="clicked", fields=(), splits={"train": 40},
        ...                    label_positives={"train": 0}, directory="data")
        >>> check_two_classes(spec, "train")
        Traceback (most recent call last):
        ...
        ValueError: every one of the 40 rows of the train split of data has label clicked = 0: ...
    """
    rows = spec.splits.get(split, 0)
    if split not in spec.label_positives or rows == 0:
        return
    ones = spec.label_positives[split]
    if ones in (0, rows):
        raise ValueError(
            f"every one of the {rows:,} rows of the {split} split of {spec.directory} has label "
            f"{spec.label} = {int(ones == rows)}: a model learns nothing from one class and its "
            "AUC is undefined; check the label column, or give more rows"
        )


@dataclasses.dataclass
class TrainSettings:
    """Epochs, batch size and seed, with defaults fitted to the data at hand.

    `batch_size=None` picks 2000 (the papers' setting) or less, so that an
    epoch has at least 100 steps; `epochs=None` picks 3. `serve_examples`
    exports in the TFX convention (see `export_saved_model`). Training writes
    a checkpoint every `checkpoint_every` steps and at each epoch end, and a
    run restarted with the same output directory continues from the last one
    (`keras_dimsel.checkpointing`).

    `keep_best=True` ends a run that trains a final model (baseline, retrain,
    AMTL) with the weights of its epoch of best validation AUC, instead of
    the last epoch's: on small data a model can overfit within the epochs
    asked for. The search always keeps its last state.

    `embedding_optimizer` chooses how the embedding tables learn (see
    `keras_dimsel.training.optimizers`): `"lazy_adam"` updates only the rows
    of a batch, so a step costs the same at 10k ids as at 10M; `"adam"` is
    tf_keras's dense Adam. The network above the tables always learns with
    Adam at `DEFAULT_LEARNING_RATE`.

    Args:
        epochs: int or None, passes over the train split.
        batch_size: int or None, examples per batch.
        seed: int, the seed of the weights, the shuffling, dropout and the Gumbel noise.
        serve_examples: bool, export with a serialized-example signature.
        checkpoint_every: int >= 0, steps between checkpoints; 0 = epoch ends only.
        keep_best: bool, end with the epoch of best validation AUC.
        embedding_optimizer: str, one of `EMBEDDING_OPTIMIZERS`.

    Examples:

        >>> spec = FeatureSpec(
        ...     label="label", fields=(), splits={"train": 50_000, "validation": 5000, "test": 5000}
        ... )
        >>> settings = TrainSettings().resolve(spec)  # 50,000 / 100 steps per epoch
        >>> settings.epochs, settings.batch_size, settings.keep_best
        (3, 500, False)
        >>> TrainSettings(epochs=1, batch_size=2000).resolve(spec).batch_size
        2000
    """

    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    seed: int = 0
    serve_examples: bool = False
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    keep_best: bool = False
    embedding_optimizer: str = DEFAULT_EMBEDDING_OPTIMIZER

    def resolve(self, spec: FeatureSpec) -> TrainSettings:
        """The settings with every default filled in for the data of `spec`.

        Args:
            spec: FeatureSpec, the artifact (its split sizes).

        Returns:
            A new TrainSettings with `epochs` and `batch_size` set.

        Raises:
            ValueError: when the train, validation or test split is empty, or a
                setting is not positive.
        """
        train_rows = spec.splits.get("train", 0)
        if train_rows <= 0:
            raise ValueError(f"the train split of {spec.directory} is empty")
        if spec.splits.get("test", 0) <= 0:
            raise ValueError(f"the test split of {spec.directory} is empty")
        if spec.splits.get("validation") == 0:  # absent: a spec that does not say
            raise ValueError(
                f"the validation split of {spec.directory} is empty: every command reports "
                "on it and the search trains alpha on it; give more rows, or a larger "
                "validation share with --split"
            )
        for split in ("train", "test"):
            check_two_classes(spec, split)
        batch = self.batch_size or int(np.clip(train_rows // _MIN_STEPS_PER_EPOCH, 64, 2000))
        for name, value in (("epochs", self.epochs), ("batch_size", batch)):
            if value is not None and value <= 0:
                raise ValueError(f"`{name}` must be a positive integer. Received: {value}")
        if self.embedding_optimizer not in EMBEDDING_OPTIMIZERS:
            raise ValueError(
                f"unknown embedding optimizer {self.embedding_optimizer!r}; "
                f"choose one of {', '.join(EMBEDDING_OPTIMIZERS)}"
            )
        if self.checkpoint_every < 0:
            raise ValueError(
                f"`checkpoint_every` must be an integer >= 0. Received: {self.checkpoint_every}"
            )
        return dataclasses.replace(self, epochs=self.epochs or 3, batch_size=batch)

    def optimizer(self) -> tf.keras.optimizers.Optimizer:
        """A new optimizer for the network weights, tables included (`network_optimizer`)."""
        return network_optimizer(self.embedding_optimizer, DEFAULT_LEARNING_RATE)

    def steps_per_epoch(self, spec: FeatureSpec) -> int:
        """Training steps in one epoch over the train split of `spec` (resolved settings)."""
        return -(-spec.splits["train"] // self.batch_size)

    def train_epochs(self, spec: FeatureSpec):
        """The train split of each epoch, in an order fixed by the seed and the epoch.

        Returns:
            A callable from the epoch index to its shuffled dataset of batches.
        """

        def epoch_data(epoch: int) -> tf.data.Dataset:
            seed = epoch_seed(self.seed, epoch)
            return make_dataset(spec, "train", self.batch_size, shuffle=True, seed=seed)

        return epoch_data

    def record(self) -> dict:
        """What defines a run's training (the options a resumed run must share)."""
        record = {"epochs": self.epochs, "batch_size": self.batch_size, "seed": self.seed}
        if self.keep_best:  # absent when off: runs made before the option still resume
            record["keep_best"] = True
        if self.embedding_optimizer != "adam":  # absent: dense Adam, as runs made before it
            record["embedding_optimizer"] = self.embedding_optimizer
        return record


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow, and makes TensorFlow's ops deterministic.

    With op determinism on, the same seed gives the same weights, plan and
    metrics on the same machine and software.

    Examples:

        >>> seed_everything(3)
        >>> first = tf.random.uniform([2]).numpy()
        >>> seed_everything(3)
        >>> bool((tf.random.uniform([2]).numpy() == first).all())
        True
    """
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def data_record(spec: FeatureSpec) -> dict:
    """What identifies the data of a run: split sizes and each field's vocabulary size.

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 200, "validation": 20, "test": 20},
        ... )
        >>> data_record(spec)
        {'splits': {'train': 200, 'validation': 20, 'test': 20}, 'vocab_sizes': {'user': 79}}
    """
    return {
        "splits": dict(spec.splits),
        "vocab_sizes": {field.name: field.vocab_size for field in spec.fields},
    }
