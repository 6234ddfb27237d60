"""The baseline and a retrained model train under ParameterServerStrategy, tables sharded.

Both stages run in one child process (`parameter_server_job`): a localhost
cluster of two workers and two parameter servers, the model built under the
strategy with its tables split over both servers, `model.fit` with the
default (row-sparse) embedding optimizer, then the export.
"""

import json
import pathlib
import subprocess
import sys

import pytest

from keras_dimsel.data.datasets import make_reader
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    output = str(tmp_path_factory.mktemp("synthetic"))
    run(make_reader("synthetic", output_dir=output, rows=12000, seed=0), PreprocessConfig(output))
    return output


@pytest.fixture(scope="module")
def results(artifact, tmp_path_factory):
    """Both stages trained and exported on one localhost cluster, in one child process."""
    output = tmp_path_factory.mktemp("parameter_server")
    done = subprocess.run(
        [sys.executable, "-m", "tests.training.parameter_server_job", artifact, str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.e2e
@pytest.mark.parametrize("stage", ["baseline", "retrain"])
def test_stage_trains_and_exports_under_parameter_servers(stage, results):
    result = results[stage]
    # Every table of more than a few rows is split over both parameter servers.
    assert set(result["table_shards"].values()) <= {1, 2}
    assert sum(shards == 2 for shards in result["table_shards"].values()) >= 3
    # Workers update asynchronously, and an epoch's loss is that of its last steps: it
    # need not fall from one epoch to the next. The test AUC says the model learns.
    assert len(result["losses"]) == 2 and all(0 < loss < 1 for loss in result["losses"])
    assert result["test_auc"] > 0.57
    assert result["served"] == pytest.approx(result["model"], abs=1e-5)
