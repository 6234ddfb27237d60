"""The study's peak-memory step: every model in a process of its own, against FDE."""

import doctest
import json
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import study_memory  # noqa: E402
import study_records  # noqa: E402
import study_report  # noqa: E402
from study_config import Speed  # noqa: E402


def test_a_job_that_fails_names_itself_and_its_error(tmp_path):
    speed = Speed(rows=100, batch_size=8, calls=1)
    with pytest.raises(RuntimeError, match=r"memory job train_fde failed \(exit 1\)"):
        study_memory._run_process("train_fde", str(tmp_path), str(tmp_path / "missing"), speed)


@pytest.mark.e2e
def test_every_model_trains_and_serves_in_its_own_process_against_fde(tmp_path):
    import autodim_speed

    data = autodim_speed.prepare_data(3000, 0, str(tmp_path / "data")).directory
    speed = Speed(rows=3000, batch_size=256, calls=2, memory_repeats=1)
    cache = tmp_path / "store" / "memory.json"
    records = study_memory.measure(speed, str(tmp_path / "work"), str(cache), data, jobs=2)

    assert [r["name"] for r in records] == list(study_memory.COMPARISONS)
    assert json.loads(cache.read_text()) == records
    study_records.validate(records)
    for r in records:
        for side in ("numerator", "denominator"):
            increase, peak = r[side]["median"], r[side]["peak_rss_mib"]["median"]
            assert 0 < increase < peak, (r["name"], side)
        assert r["ratio"] == pytest.approx(r["numerator"]["median"] / r["denominator"]["median"])
    by_name = {r["name"]: r for r in records}
    amtl, retrain = by_name["amtl_peak_memory_vs_fde"], by_name["retrain_peak_memory_vs_fde"]
    assert amtl["embedding_params"] == amtl["fde_embedding_params"]  # the masked model is full size
    assert retrain["embedding_params"] < retrain["fde_embedding_params"]

    # The jobs left what the next stage read: the search's plan and three SavedModels.
    exports = tmp_path / "work" / "round0" / "exports"
    plan = json.loads((exports / study_memory.PLAN).read_text())
    assert set(plan) and set(plan.values()) <= set(autodim_speed.CANDIDATES)
    for name in ("fde", "retrain", "amtl"):
        assert (exports / name / "saved_model.pb").exists()

    report = "\n".join(study_report._memory_lines(records))
    assert "## Peak memory" in report and "amtl_serving_peak_memory_vs_fde" in report


def test_docstring_examples():
    assert doctest.testmod(study_memory).failed == 0
