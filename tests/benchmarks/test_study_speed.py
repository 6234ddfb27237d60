"""The study's speed and memory steps: training, serving and preprocessing against FDE."""

import argparse
import json

import pytest

from benchmarks.study import records as study_records
from benchmarks.study import report as study_report
from benchmarks.study import speed as study_speed
from benchmarks.study.__main__ import _measured
from benchmarks.study.config import Speed, StudyConfig


def test_a_memory_job_that_fails_names_itself_and_its_error(tmp_path):
    speed = Speed(rows=100, batch_size=8, calls=1)
    with pytest.raises(RuntimeError, match=r"memory job train_fde failed: \w+Error: .*missing"):
        study_speed.run_in_process("train_fde", str(tmp_path), str(tmp_path / "missing"), speed)


@pytest.mark.e2e
def test_the_speed_step_times_every_model_runs_the_beam_benchmark_and_is_kept(tmp_path):
    """Beam's worker processes cannot import `preprocess_speed` as a module, so the
    study runs it as a script: with `preprocess="run"` the record comes from it. The
    records are kept beside the cells and read, not measured, the next time."""
    speed = Speed(
        rows=3000, batch_size=256, repeats=1, calls=2, preprocess="run", preprocess_rows=3000,
        preprocess_repeats=1, memory_repeats=1,
    )  # fmt: skip
    config = StudyConfig("tiny", (), (), (0,), 1, speed)
    args = argparse.Namespace(work_dir=str(tmp_path / "work"), report_only=False)
    records = _measured(config, args, str(tmp_path / "runs"))

    names = [r["name"] for r in records]
    assert names == [
        "search_vs_fde",
        "retrain_vs_fde",
        "retrain_zero_pad_vs_fde",
        "amtl_vs_fde",
        "serving_latency_vs_fde",
        "amtl_serving_latency_vs_fde",
        "beam_vs_pandas",
        *study_speed.COMPARISONS,
    ]
    study_records.validate(records)
    for r in records:
        assert r["ratio"] == pytest.approx(r["numerator"]["median"] / r["denominator"]["median"])
        assert r["ratio"] > 0
    beam = records[6]
    assert beam["rows"] == 3000 and "run by the study" in beam["source"]
    assert len(beam["numerator"]["values"]) == 1

    # Memory: each job's increase is part of its process's peak; the masked model is full
    # size, the retrained one smaller; the jobs left the plan and three SavedModels.
    memory = {r["name"]: r for r in records if r["kind"] == "memory"}
    for r in memory.values():
        for side in ("numerator", "denominator"):
            assert 0 < r[side]["median"] < r[side]["peak_rss_mib"]["median"], (r["name"], side)
    amtl, retrain = memory["amtl_peak_memory_vs_fde"], memory["retrain_peak_memory_vs_fde"]
    assert amtl["embedding_params"] == amtl["fde_embedding_params"]
    assert retrain["embedding_params"] < retrain["fde_embedding_params"]
    exports = tmp_path / "work" / "tiny" / "speed" / "memory" / "round0" / "exports"
    plan = json.loads((exports / "plan.json").read_text())
    assert set(plan) and set(plan.values()) <= {2, 8, 16, 24, 32}
    for name in ("fde", "retrain", "amtl"):
        assert (exports / name / "saved_model.pb").exists()
    report = "\n".join(study_report._memory_lines(list(memory.values())))
    assert "## Peak memory" in report and "amtl_serving_peak_memory_vs_fde" in report

    speed_dir = tmp_path / "runs" / "speed"
    kept = [*json.loads((speed_dir / "throughput.json").read_text())]
    assert kept + json.loads((speed_dir / "memory.json").read_text()) == records
    args.work_dir = str(tmp_path / "elsewhere")  # read again, not measured
    assert _measured(config, args, str(tmp_path / "runs")) == records
    assert not (tmp_path / "elsewhere").exists()
