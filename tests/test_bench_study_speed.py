"""The study's speed step: training, serving and preprocessing against their baselines."""

import json
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import study_records  # noqa: E402
from study_config import Speed  # noqa: E402


@pytest.mark.e2e
def test_the_speed_step_times_every_model_and_runs_the_beam_benchmark_as_a_script(tmp_path):
    """Beam's worker processes cannot import `preprocess_speed` as a module, so the
    study runs it as a script: with `preprocess="run"` the record comes from it."""
    import study_speed

    speed = Speed(
        rows=3000, batch_size=256, repeats=1, calls=2, preprocess="run", preprocess_rows=3000,
        preprocess_repeats=1,
    )  # fmt: skip
    cache = tmp_path / "throughput.json"
    records = study_speed.measure(speed, str(tmp_path / "speed"), str(cache))

    names = [r["name"] for r in records]
    assert names == [
        "search_vs_fde",
        "retrain_vs_fde",
        "retrain_zero_pad_vs_fde",
        "amtl_vs_fde",
        "serving_latency_vs_fde",
        "amtl_serving_latency_vs_fde",
        "beam_vs_pandas",
    ]
    study_records.validate(records)
    for r in records:
        assert r["ratio"] == pytest.approx(r["numerator"]["median"] / r["denominator"]["median"])
        assert r["ratio"] > 0
    beam = records[-1]
    assert beam["rows"] == 3000 and "run by the study" in beam["source"]
    assert len(beam["numerator"]["values"]) == 1
    assert json.loads(cache.read_text()) == records
    # a second call reads the cache instead of measuring
    assert study_speed.measure(speed, str(tmp_path / "elsewhere"), str(cache)) == records
    assert not (tmp_path / "elsewhere").exists()
