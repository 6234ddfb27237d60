"""The search on the synthetic data, whose answer is planted: informative fields
need larger dimensions than noise fields."""

import json

import pytest

from keras_dimsel.autodim.runs import run_search
from keras_dimsel.training import TrainSettings

ROWS = 60_000


@pytest.mark.e2e
@pytest.mark.parametrize(
    "seed",
    [
        0,
        1,  # every noise field at 2, the interaction fields at 16 and 24, 27% kept
    ],
)
def test_probing_gives_the_planted_interaction_larger_dims_than_noise(
    synthetic_artifact, tmp_path, seed
):
    spec = synthetic_artifact(ROWS)
    with open(f"{spec.directory}/raw/ground_truth.json") as f:
        roles = {name: field["role"] for name, field in json.load(f)["fields"].items()}
    plan = run_search(
        spec, "deepfm", str(tmp_path / "search"), derive="probe",
        settings=TrainSettings(seed=seed),
    )  # fmt: skip
    noise = sorted(plan.fields[name] for name, role in roles.items() if role == "noise")
    interaction = [plan.fields[name] for name, role in roles.items() if role == "interaction"]
    assert min(interaction) > max(noise), plan.fields
    assert plan.embedding_params < 0.5 * plan.full_embedding_params, plan.fields
