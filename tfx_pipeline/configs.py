"""Constants of the pipeline: names, splits, methods and the blessing rule."""

from __future__ import annotations

from keras_dimsel.amtl.defaults import DEFAULT_LENGTH_PENALTY, DEFAULT_MAX_DIM
from keras_dimsel.autodim import DEFAULT_CANDIDATES
from keras_dimsel.models import MODELS as MODELS  # the Trainer's choices
from keras_dimsel.training.optimizers import DEFAULT_EMBEDDING_OPTIMIZER

PIPELINE_NAME = "keras-dimsel"

#: ExampleGen's output splits and their hash buckets (8:1:1). `eval` holds the
#: validation batches of the search (alpha) and of early checks; the Evaluator
#: reads `test`, which no training step has seen.
SPLIT_BUCKETS = {"train": 8, "eval": 1, "test": 1}
#: ExampleGen's split names for the artifact's splits.
SPLIT_NAMES = {"train": "train", "validation": "eval", "test": "test"}

#: What the Trainer trains: the AutoDim search then a retrain of the plan,
#: AMTL value-level dims warm-started from the full-dimension model, or the
#: full-dimension model itself (fde).
METHODS = ("autodim", "amtl", "fde")
DEFAULT_METHOD = "autodim"
DEFAULT_MODEL = "deepfm"
#: The full dimension of the baseline (and AMTL's maximum).
DEFAULT_DIM = DEFAULT_MAX_DIM

#: The Evaluator blesses a model whose test AUC is at most this much below
#: the full-dimension baseline's.
AUC_TOLERANCE = 0.005
LABEL_KEY = "label"

#: The Trainer's `custom_config` defaults; `local_runner` flags override them.
DEFAULT_TRAIN_CONFIG = {
    "epochs": None,  # the library's default (3)
    "batch_size": None,  # the library's default (up to 2000, at least 100 steps)
    "seed": 0,
    "candidates": list(DEFAULT_CANDIDATES),
    "derive": "alpha",
    "budget": None,
    "length_penalty": DEFAULT_LENGTH_PENALTY,
    "keep_best": False,  # end each run with its epoch of best validation AUC
    "embedding_optimizer": DEFAULT_EMBEDDING_OPTIMIZER,  # lazy_adam | adagrad | adam
}

#: Preprocessing defaults of the feature-statistics component.
MIN_COUNT = 1
NUM_BUCKETS = 16
