"""Training runs: settings and seeding, the resumable runner, checkpoints, run directories.

- `TrainSettings`: epochs, batch size and seed fitted to the data; `seed_everything`.
- `fit_resumably`, `evaluate`, `train_and_export`: the runner every method trains with.
- `ResumableFit`, `BestEpoch`: checkpoints during `fit` and an exact resume.
- `RunDir`: a run's files and when it is complete.
- `Progress`, `TrainingLogs`: progress inside an epoch; TensorBoard logs in `RUN/logs`.
- `LazyAdam`, `SplitOptimizer`, `network_optimizer`: optimizers whose step
  costs the same whatever the size of the embedding tables.
- `memory`: the estimate of a training's memory, sizes and budgets.
- `run_baseline`: the full-dimension model.
"""

from keras_dimsel._compat import exempt_keras_from_autograph
from keras_dimsel.training.baseline import run_baseline
from keras_dimsel.training.checkpointing import (
    CHECKPOINTS,
    DEFAULT_CHECKPOINT_EVERY,
    BestEpoch,
    CheckpointMismatchError,
    ResumableFit,
    TrainingInterrupted,
    epoch_seed,
)
from keras_dimsel.training.optimizers import (
    DEFAULT_EMBEDDING_OPTIMIZER,
    EMBEDDING_OPTIMIZERS,
    LazyAdam,
    SplitOptimizer,
    network_optimizer,
)
from keras_dimsel.training.progress import Progress
from keras_dimsel.training.run_dir import (
    METRICS,
    RUN_RECORD,
    SAVED_MODEL,
    WEIGHTS,
    RunDir,
    RunMismatchError,
)
from keras_dimsel.training.runner import evaluate, fit_resumably, train_and_export
from keras_dimsel.training.settings import (
    DEFAULT_LEARNING_RATE,
    TrainSettings,
    data_record,
    seed_everything,
)
from keras_dimsel.training.tensorboard import LOGS, TrainingLogs

__all__ = [
    "CHECKPOINTS",
    "DEFAULT_CHECKPOINT_EVERY",
    "DEFAULT_EMBEDDING_OPTIMIZER",
    "DEFAULT_LEARNING_RATE",
    "EMBEDDING_OPTIMIZERS",
    "LOGS",
    "METRICS",
    "RUN_RECORD",
    "SAVED_MODEL",
    "WEIGHTS",
    "BestEpoch",
    "CheckpointMismatchError",
    "LazyAdam",
    "Progress",
    "ResumableFit",
    "RunDir",
    "RunMismatchError",
    "SplitOptimizer",
    "TrainSettings",
    "TrainingInterrupted",
    "TrainingLogs",
    "data_record",
    "epoch_seed",
    "evaluate",
    "exempt_keras_from_autograph",
    "fit_resumably",
    "network_optimizer",
    "run_baseline",
    "seed_everything",
    "train_and_export",
]
