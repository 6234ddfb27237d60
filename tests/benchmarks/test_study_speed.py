"""The study's speed step (benchmarks/study_speed.py): training, serving, peak memory and
preprocessing against FDE, the records it keeps, and how the study reads them."""

import argparse
import doctest
import json

import pytest

from benchmarks import study_speed
from benchmarks.study import __main__ as study_main
from benchmarks.study import records as study_records
from benchmarks.study import report as study_report
from benchmarks.study.config import Speed, StudyConfig


def _args(tmp_path, *argv):
    return study_speed.parse_args([f"--out={tmp_path / 'out'}", *argv])


def _measured(median, values=None):
    values = values or [median]
    return {"values": values, "median": median, "mean": median, "std": 0.0}


def test_docstring_examples():
    assert doctest.testmod(study_speed).failed == 0


def test_the_study_s_speed_settings_are_the_script_s_options(tmp_path):
    speed = Speed(rows=3000, batch_size=256, calls=2, preprocess="run", memory_repeats=2)
    args = _args(tmp_path, *speed.argv())
    assert (args.rows, args.batch_size, args.calls, args.preprocess) == (3000, 256, 2, "run")
    assert (args.model, args.repeats, args.memory_repeats) == ("deepfm", 3, 2)


def test_the_records_compare_every_model_with_fde_in_report_order():
    rates = {"full": _measured(100.0, [90.0, 100.0, 110.0])}
    rates.update({name: _measured(50.0 + i) for i, name in enumerate(study_speed.TRAINED)})
    latency = {"fde": _measured(0.004), "autodim": _measured(0.003), "amtl": _measured(0.0045)}
    params = {"search": 900, "retrain": 300, "retrain_zero_pad": 300, "amtl": 1000}
    records = study_speed.throughput_records(rates, latency, params, {"rows": 9}, calls=3)
    job = {"increase_mib": 100.0, "peak_rss_mib": 600.0, "embedding_params": 1000}
    rounds = [{n: {**job, "increase_mib": 100.0 + r} for s in study_speed.STAGES for n in s}
              for r in (0, 10)]  # fmt: skip
    records += study_speed.memory_records(rounds, {"rows": 9})
    assert [r["name"] for r in records] == [
        "search_vs_fde",
        "retrain_vs_fde",
        "retrain_zero_pad_vs_fde",
        "amtl_vs_fde",
        "serving_latency_vs_fde",
        "amtl_serving_latency_vs_fde",
        *study_speed.COMPARISONS,
    ]
    study_records.validate(records)
    for r in records:
        assert r["ratio"] == pytest.approx(r["numerator"]["median"] / r["denominator"]["median"])
    assert records[1]["ratio"] == pytest.approx(0.51) and records[1]["embedding_params"] == 300
    assert records[1]["denominator"]["values"] == [90.0, 100.0, 110.0]
    assert records[4]["ratio"] == pytest.approx(0.75) and records[4]["settings"]["calls"] == 3
    assert records[6]["numerator"]["median"] == 105.0 and records[6]["ratio"] == 1.0
    report = "\n".join(study_report._memory_lines(records[6:]))
    assert "## Peak memory" in report and "amtl_serving_peak_memory_vs_fde" in report


@pytest.mark.parametrize("preprocess", ["committed", "run"])
def test_the_beam_record_says_where_its_numbers_come_from(tmp_path, preprocess):
    """With `--preprocess run` the script runs preprocess_speed.py as a script (Beam's
    workers cannot import it as a module) into the work dir, unless its results are there."""
    work = tmp_path / "work"
    work.mkdir()
    report = {
        "date": "today",
        "settings": {"rows": 3000},
        "measurements": {
            study_speed.BEAM_VARIANT: {"seconds": [2.0, 3.0]},
            study_speed.PANDAS_VARIANT: {"seconds": [1.0, 1.0]},
        },
    }
    (work / "preprocess_speed.json").write_text(json.dumps(report))
    args = _args(tmp_path, f"--preprocess={preprocess}", "--preprocess-rows=3000")
    args.work_dir = str(work)
    record = study_speed.preprocessing_record(args)
    study_records.validate([record])
    if preprocess == "run":
        assert record["source"] == "preprocess_speed.py run by the study on 3,000 rows"
        assert record["ratio"] == 2.5 and record["numerator"]["values"] == [2.0, 3.0]
        assert record["rows"] == 3000 and record["measured"] == "today"
    else:
        assert "committed results, not re-run" in record["source"]
        committed = json.loads(open(study_speed.COMMITTED_PREPROCESS).read())
        assert record["rows"] == committed["settings"]["rows"]


def test_the_study_reads_the_kept_records_and_does_not_measure_them_again(tmp_path, monkeypatch):
    monkeypatch.setattr(study_main.subprocess, "run", lambda *a, **k: pytest.fail("measured"))
    config = StudyConfig("tiny", (), (), (0,), 1, Speed(rows=100))
    home = study_main.RunDir(str(tmp_path / "runs"))
    args = argparse.Namespace(work_dir=str(tmp_path / "work"), report_only=True)
    assert study_main._measured(config, args, home) == []  # --report-only: not measured
    kept = {name: [{"kind": name, "name": name, "ratio": 1.0}] for name in ("throughput", "memory")}
    for name, records in kept.items():
        (tmp_path / "runs" / "speed").mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / "speed" / f"{name}.json").write_text(json.dumps(records))
    args.report_only = False
    assert study_main._measured(config, args, home) == kept["throughput"] + kept["memory"]
    assert not (tmp_path / "work").exists()


def test_a_memory_job_that_fails_names_itself_and_its_error(tmp_path):
    args = _args(tmp_path, "--rows=100", "--batch-size=8", "--calls=1")
    with pytest.raises(RuntimeError, match=r"memory job train_fde failed: \w+Error: .*missing"):
        study_speed.run_in_process("train_fde", str(tmp_path), str(tmp_path / "missing"), args)


@pytest.mark.e2e
def test_one_tiny_model_is_timed_served_and_measured_in_processes_of_its_own(tmp_path):
    """A real run of every measurement on one small FDE model: timed epochs, serving calls
    of its reloaded SavedModel, and its training and serving memory jobs, each in a fresh
    process (the serving job loads what the training job exported)."""
    args = _args(tmp_path, "--rows=1500", "--model=fm", "--batch-size=128", "--calls=2")
    args.work_dir = str(tmp_path / "work")
    spec = study_speed.prepare_data(args.rows, 0, args.work_dir)
    train, _ = study_speed.training_data(spec, args.batch_size, "memory")
    model = study_speed.compiled_model("full", spec, args.model)
    variant = study_speed.Variant("full", model, train)
    rates = study_speed.training_speed([variant], spec.splits["train"], repeats=2)
    assert len(rates["full"]["values"]) == 2 and rates["full"]["median"] > 0

    features, _ = next(iter(study_speed.make_dataset(spec, "test", args.batch_size)))
    latency = study_speed.serving_latency({"fde": model}, features, args.work_dir, 2, 2)
    assert len(latency["fde"]["values"]) == 2 and latency["fde"]["median"] > 0
    assert (tmp_path / "work" / "serving_fde" / "saved_model.pb").exists()

    directory = tmp_path / "memory"
    trained = study_speed.run_in_process("train_fde", str(directory), spec.directory, args)
    served = study_speed.run_in_process("serve_fde", str(directory), spec.directory, args)
    for job in (trained, served):
        assert 0 < job["increase_mib"] < job["peak_rss_mib"], job
    assert trained["embedding_params"] == model.embedding_params and served["calls"] == 2
    assert (directory / "exports" / "fde" / "saved_model.pb").exists()

    # The other models as the jobs build them: AMTL's masked model is full size, a plan's
    # retrained model smaller.
    dims = {field.name: 2 for field in spec.fields}
    amtl = study_speed.compiled_model("amtl", spec, args.model)
    retrain = study_speed.compiled_model("retrain", spec, args.model, plan_dims=dims)
    assert amtl.embedding_params == model.embedding_params > retrain.embedding_params

    # The records of these measurements, as every model had measured like FDE.
    rounds = [{job: trained if job.startswith("train") else served for s in study_speed.STAGES
               for job in s}]  # fmt: skip
    records = study_speed.memory_records(rounds, {}) + study_speed.throughput_records(
        {name: rates["full"] for name in ("full", *study_speed.TRAINED)},
        {name: latency["fde"] for name in ("fde", "autodim", "amtl")},
        dict.fromkeys(study_speed.TRAINED, model.embedding_params),
        {},
        calls=2,
    )
    study_records.validate(records)
    assert {r["ratio"] for r in records} == {1.0}
