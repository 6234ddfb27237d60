"""Every training command writes TensorBoard logs in RUN/logs and says where they are."""

import glob
import os

import pytest
import tensorflow as tf

from keras_dimsel.cli import main

pytestmark = pytest.mark.e2e

METRICS = {"loss", "logloss", "auc"}
RATES = {"learning_rate"}  # one LazyAdam; `adagrad` logs learning_rate/tables and /network


@pytest.fixture(scope="module")
def data(synthetic_artifact):
    return synthetic_artifact(2000).directory


def _tags(directory) -> set:
    """The summary tags in the event files directly in `directory`."""
    found = set()
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            found |= {value.tag for value in event.summary.value}
    return found


def _run(capsys, command, data, output, *more):
    argv = [command, "--data", data, "--model", "fm", "--output", str(output), "--epochs", "1"]
    assert main(argv + ["--batch-size", "128", *more]) == 0
    logs = output / "logs"
    assert f"TensorBoard logs: {logs} (tensorboard --logdir {logs})" in capsys.readouterr().out
    return logs


def test_each_training_command_logs_its_metrics_learning_rates_and_method(data, tmp_path, capsys):
    logs = _run(capsys, "baseline", data, tmp_path / "baseline", "--dim", "4")
    assert METRICS | RATES <= _tags(logs / "train")
    assert METRICS <= _tags(logs / "validation")

    logs = _run(capsys, "search", data, tmp_path / "search", "--candidates", "2,4")
    train = _tags(logs / "train")
    assert METRICS | RATES | {"temperature", "learning_rate/alpha"} <= train
    assert {"alpha/user/2", "alpha/user/4"} <= _tags(logs)

    logs = _run(capsys, "amtl", data, tmp_path / "amtl", "--fields", "user,item")
    train = _tags(logs / "train")
    assert METRICS | RATES <= train
    assert {"mean_length/user", "lengths/user", "mean_length/item", "lengths/item"} <= train
