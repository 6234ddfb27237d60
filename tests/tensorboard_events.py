"""Reading the TensorBoard event files a run wrote, for the tests."""

import glob
import os

import tensorflow as tf

#: What every training command logs (`keras_dimsel.training.TrainingLogs`), with the
#: default optimizer (one LazyAdam: `adagrad` logs learning_rate/tables and /network).
METRICS = {"loss", "logloss", "auc"}
TRAINING = METRICS | {"learning_rate"}


def tags(directory) -> set:
    """The summary tags of the event files directly in `directory`."""
    found = set()
    for path in glob.glob(os.path.join(str(directory), "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            found |= {value.tag for value in event.summary.value}
    return found
