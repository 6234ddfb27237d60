"""AMTL on the synthetic data, whose informative fields and frequencies are known:
frequent values get longer embeddings than rare ones, and the twins keep rare
values shorter than a single branch does (the paper's AML ablation)."""

import json

import numpy as np
import pytest

from keras_dimsel import amtl
from keras_dimsel.training import TrainSettings, run_baseline

ROWS = 60_000
FIELDS = ["user", "item", "category", "noise_high", "noise_mid"]


def spearman(values):
    """Spearman correlation of `values` with their position (ties share mean ranks)."""
    values = np.asarray(values, dtype=np.float64)
    ranks = np.array([np.mean(np.flatnonzero(np.sort(values) == v)) for v in values])
    if ranks.std() == 0:
        return 0.0
    return float(np.corrcoef(np.arange(len(values)), ranks)[0, 1])


def test_spearman_by_hand():
    assert spearman([1, 2, 3]) == pytest.approx(1.0)
    assert spearman([3, 2, 1]) == pytest.approx(-1.0)
    # Ranks of [4, 4, 32]: 0.5, 0.5, 2.
    assert spearman([4, 4, 32]) == pytest.approx(np.corrcoef([0, 1, 2], [0.5, 0.5, 2])[0, 1])


@pytest.mark.e2e
@pytest.mark.parametrize(
    "seed",
    [
        0,  # rarest group: AML 3.0 against AMTL 2.4 (seeds 2 and 3: 3.85 / 3.0, 3.4 / 2.35)
        pytest.param(
            1,
            marks=pytest.mark.xfail(
                strict=True,
                reason="training seed 1: AML keeps the rarest group shorter than the twins "
                "(1.2 against 2.66)",
            ),
        ),
    ],
)
def test_frequent_values_get_longer_embeddings_and_the_twins_keep_rare_ones_short(
    synthetic_artifact, tmp_path, seed
):
    spec = synthetic_artifact(ROWS)
    with open(f"{spec.directory}/raw/ground_truth.json") as f:
        roles = {name: field["role"] for name, field in json.load(f)["fields"].items()}
    settings = TrainSettings(seed=seed)
    base = str(tmp_path / "base")
    run_baseline(spec, "deepfm", base, dim=32, settings=settings)
    runs = {}
    for twins in (True, False):
        runs[twins] = amtl.run_amtl(
            spec, "deepfm", str(tmp_path / f"twins_{twins}"), fields=FIELDS, warm_start=base,
            twins=twins, length_penalty=0.02, settings=settings,
        )  # fmt: skip
    groups = runs[True]["dim_by_frequency_group"]
    for name in FIELDS:
        if roles[name] == "interaction":
            assert spearman(groups[name]) > 0.5, (name, groups[name])
    # The rarest group, averaged over the masked fields: the twins keep it shorter.
    rarest = {twins: np.mean([g[0] for g in r["dim_by_frequency_group"].values()])
              for twins, r in runs.items()}  # fmt: skip
    assert runs[True]["embedding_params"] < 0.4 * runs[True]["full_embedding_params"]
    assert rarest[False] > rarest[True], rarest
