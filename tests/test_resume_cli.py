"""Killing `dimsel search` / `dimsel baseline` with SIGKILL and re-running the same command.

The re-run continues from the last checkpoint and ends with exactly the
results of an uninterrupted run of the same seed: the same plan and alpha,
the same search tables, the same test metrics.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_dimsel.cli import EXIT_BAD_INPUT
from keras_dimsel.data.datasets import make_reader
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run

pytestmark = pytest.mark.e2e

ROWS = 4000
BATCH = 64
EPOCHS = 2
STEPS_PER_EPOCH = 50  # about 3,200 train rows in batches of 64
EVERY = 4
_LATEST = re.compile(r'^model_checkpoint_path: "ckpt-(\d+)"', re.MULTILINE)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    output = str(tmp_path_factory.mktemp("artifact"))
    reader = make_reader("synthetic", [], output_dir=output, rows=ROWS, seed=0)
    spec = run(reader, PreprocessConfig(output_dir=output))
    assert -(-spec.splits["train"] // BATCH) == STEPS_PER_EPOCH
    return output


def _command(artifact, command, output, *options):
    return [
        sys.executable,
        "-m",
        "keras_dimsel.cli",
        command,
        "--data",
        artifact,
        "--model",
        "fm",
        "--output",
        str(output),
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        str(BATCH),
        "--checkpoint-every",
        str(EVERY),
        *options,
    ]


def _latest_checkpoint(output) -> int:
    try:
        with open(os.path.join(output, "checkpoints", "checkpoint")) as f:
            found = _LATEST.search(f.read())
    except FileNotFoundError:
        return -1
    return int(found.group(1)) if found else -1


def _kill_after_checkpoint(argv, output, step, timeout=300) -> int:
    """Starts the command, SIGKILLs it once a checkpoint at `step` or later exists."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if _latest_checkpoint(output) >= step:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    _, err = process.communicate()
    assert process.returncode == -signal.SIGKILL, (
        f"the run ended (code {process.returncode}) before its checkpoint at step {step}: "
        + err.decode()[-2000:]
    )
    return _latest_checkpoint(output)


def _run(argv):
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _start(argv):
    """Starts the uninterrupted reference run beside the killed one (the machine has 2 cores)."""
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process):
    _, err = process.communicate()
    assert process.returncode == 0, err[-3000:]


def test_a_search_killed_at_several_points_ends_with_the_plan_of_an_uninterrupted_one(
    artifact, tmp_path
):
    reference_run = _start(_command(artifact, "search", tmp_path / "reference"))
    resumed = tmp_path / "resumed"
    argv = _command(artifact, "search", resumed)
    killed_at = []
    # In the first epoch, in the second, and after the last step (deriving and writing).
    for step in (EVERY * 2, STEPS_PER_EPOCH + EVERY, EPOCHS * STEPS_PER_EPOCH):
        killed_at.append(_kill_after_checkpoint(argv, resumed, step))
        assert not (resumed / "plan.json").exists()
    last = EPOCHS * STEPS_PER_EPOCH
    assert killed_at[0] < STEPS_PER_EPOCH < killed_at[1] < last <= killed_at[2]
    result = _run(argv)
    assert f"resuming at step {killed_at[2]}" not in result.stdout  # nothing left to train
    _finish(reference_run)

    reference = json.loads((tmp_path / "reference" / "plan.json").read_text())
    assert json.loads((resumed / "plan.json").read_text()) == reference
    got = np.load(resumed / "search_tables.npz")
    want = np.load(tmp_path / "reference" / "search_tables.npz")
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert (resumed / "alpha_history.csv").read_text() == (
        tmp_path / "reference" / "alpha_history.csv"
    ).read_text()
    assert not (resumed / "checkpoints").exists()


def test_a_killed_baseline_resumes_to_the_same_metrics_and_refuses_other_options(
    artifact, tmp_path
):
    reference_run = _start(_command(artifact, "baseline", tmp_path / "reference", "--dim", "8"))
    resumed = tmp_path / "resumed"
    argv = _command(artifact, "baseline", resumed, "--dim", "8")
    step = _kill_after_checkpoint(argv, resumed, STEPS_PER_EPOCH + EVERY)

    other = _command(artifact, "baseline", resumed, "--dim", "8", "--seed", "1")
    refused = subprocess.run(other, capture_output=True, text=True)
    assert refused.returncode == EXIT_BAD_INPUT
    # The last line (TensorFlow may log its own start-up lines before it).
    reason = refused.stderr.strip().splitlines()[-1]
    assert reason.startswith("dimsel baseline: error: ") and "seed: 0 then, 1 now" in reason

    result = _run(argv)
    assert f"resuming at step {step} of {EPOCHS * STEPS_PER_EPOCH}" in result.stdout
    _finish(reference_run)
    got = json.loads((resumed / "metrics.json").read_text())
    want = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    for key in ("auc", "logloss", "embedding_params", "full_embedding_params"):
        assert got[key] == want[key], key


def test_a_killed_amtl_run_resumes_to_the_same_compact_model(artifact, tmp_path):
    masked = ("--fields", "user,item", "--max-dim", "8")
    reference_run = _start(_command(artifact, "amtl", tmp_path / "reference", *masked))
    resumed = tmp_path / "resumed"
    argv = _command(artifact, "amtl", resumed, *masked)
    step = _kill_after_checkpoint(argv, resumed, EVERY * 3)
    assert step < EPOCHS * STEPS_PER_EPOCH and not (resumed / "metrics.json").exists()
    result = _run(argv)
    assert f"resuming at step {step} of {EPOCHS * STEPS_PER_EPOCH}" in result.stdout
    _finish(reference_run)
    got = json.loads((resumed / "metrics.json").read_text())
    want = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    for key in ("auc", "logloss", "embedding_params", "average_dim", "dim_by_frequency_group"):
        assert got[key] == want[key], key
