"""The search finds the structure planted in the synthetic data (fixed seed)."""

import json

import pytest

from keras_dimsel import workflow
from keras_dimsel.data.datasets import make_reader
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run

ROWS = 100_000  # the size of `make demo`
SEED = 0


@pytest.mark.e2e
def test_interaction_fields_get_larger_dims_than_noise_fields(tmp_path):
    data = str(tmp_path / "data")
    spec = run(
        make_reader("synthetic", [], output_dir=data, rows=ROWS, seed=SEED),
        PreprocessConfig(output_dir=data),
    )
    truth = json.loads((tmp_path / "data" / "raw" / "ground_truth.json").read_text())
    roles = {name: field["role"] for name, field in truth["fields"].items()}
    plan = workflow.run_search(
        spec, "deepfm", str(tmp_path / "search"), settings=workflow.TrainSettings(seed=SEED)
    )
    noise = [name for name, role in roles.items() if role == "noise"]
    interaction = [name for name, role in roles.items() if role == "interaction"]
    assert sorted(noise) == ["noise_high", "noise_low", "noise_mid"]
    assert sorted(interaction) == ["item", "user"]
    smallest = min(plan.candidates)
    assert {name: plan.fields[name] for name in noise} == dict.fromkeys(noise, smallest), plan
    assert min(plan.fields[name] for name in interaction) > smallest, plan
    # The selection weights agree: every noise field puts more weight on the smallest
    # candidate than either interaction field does.
    assert min(plan.alpha[name][0] for name in noise) > max(
        plan.alpha[name][0] for name in interaction
    ), plan.alpha
