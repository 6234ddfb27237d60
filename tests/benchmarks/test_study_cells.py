"""The study's cells: records read instead of training, settings checked, scheduling, resuming."""

import dataclasses
import json
import pathlib
import shutil
import subprocess

import pytest

from benchmarks.study import cells as study_cells
from benchmarks.study import config as study_config
from benchmarks.study.cells import CellRunner, StudyError, Workers, ready, run_cells
from benchmarks.study.config import Cell, StudyConfig
from keras_dimsel.training import RunDir

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "benchmarks" / "results" / "study"
CELL = Cell("movielens-100k", "fm", "autodim", 0)


def _config(methods=("fde", "amtl_warm"), dataset=study_config.MOVIELENS, epochs=1):
    dataset = dataclasses.replace(dataset, models=("fm",), epochs=epochs)
    return StudyConfig("tiny", (dataset,), methods, (0,), 1, None)


def _write_record(runner, cell, **record):
    record = {"auc": 0.7, "seconds": 1.0, "settings": runner.config.cell_settings(cell), **record}
    RunDir(runner.cell_dir(cell)).write_metrics(record)
    return record


def test_a_cell_with_its_record_is_read_and_not_trained(tmp_path, monkeypatch):
    runner = CellRunner(_config(("autodim",)), str(tmp_path / "runs"), str(tmp_path), "")
    assert runner.record(CELL) is None
    record = _write_record(runner, CELL)
    monkeypatch.setitem(study_cells.STEPS, "autodim", lambda *args: pytest.fail("trained"))
    assert runner.record(CELL) == record
    assert runner.run(CELL) == record
    assert run_cells(runner) == ([record], [])
    assert (tmp_path / "runs" / "tiny" / "cells" / CELL.key / "metrics.json").exists()


def test_a_record_made_with_other_settings_is_refused(tmp_path):
    runs = str(tmp_path / "runs")
    _write_record(CellRunner(_config(("autodim",)), runs, "", ""), CELL)
    two_epochs = CellRunner(_config(("autodim",), epochs=2), runs, "", "")
    with pytest.raises(StudyError, match=r"made with settings .*'epochs': 1.* delete the cell"):
        two_epochs.record(CELL)


def test_a_cell_that_raises_is_a_failure_record_and_the_others_go_on(tmp_path, monkeypatch):
    runner = CellRunner(_config(("fde", "mde")), str(tmp_path / "runs"), str(tmp_path), "")
    monkeypatch.setattr(runner, "spec", lambda name: None)

    def broken(runner, cell, options):
        raise OSError("disk full")

    monkeypatch.setitem(study_cells.STEPS, "baseline", broken)
    monkeypatch.setitem(study_cells.STEPS, "mde", lambda *args: {"auc": 0.6, "embedding_params": 9})
    records, failures = run_cells(runner)
    assert [r["method"] for r in records] == ["mde"] and records[0]["auc"] == 0.6
    assert failures == [
        {
            "kind": "failed_cell",
            "cell": "movielens-100k/fm/fde/seed0",
            "error": "OSError: disk full",
        }
    ]


def test_git_keeps_only_the_records_plans_and_plotted_alpha_of_the_cells():
    """`make bench` trains in benchmarks/results/study; its .gitignore keeps what the report
    and a resumed study read, and leaves the models and checkpoints out."""
    cell = "full/cells/criteo/fm/{}/seed0/"
    kept = [
        "full/run.json",
        "full/speed/throughput.json",
        "full/speed/memory.json",
        "full/field_power.json",
        cell.format("fde") + "metrics.json",
        cell.format("autodim_s") + "search/plan.json",
        cell.format("autodim") + "search/alpha_history.csv",
    ]
    left_out = [
        cell.format("fde") + "run/metrics.json",
        cell.format("fde") + "run/saved_model/saved_model.pb",
        cell.format("fde") + "run/weights/model.index",
        cell.format("autodim") + "search/search_metrics.json",
        cell.format("autodim") + "retrain/checkpoints/checkpoint",
        cell.format("autodim_s") + "search/alpha_history.csv",
        cell.format("ras") + "ras/trial_00/retrain/metrics.json",
    ]
    command = ["git", "check-ignore", "--no-index", *kept, *left_out]
    ignored = subprocess.run(command, cwd=COMMITTED, capture_output=True, text=True).stdout
    assert sorted(ignored.split()) == sorted(left_out)


def test_the_committed_records_are_every_cell_of_the_full_study():
    runner = CellRunner(study_config.CONFIGS["full"], str(COMMITTED), "", "")
    grid = study_config.expand(runner.config)
    records = [runner.record(cell) for cell in grid]  # settings that match, or StudyError
    assert len(records) == 420 and all(r is not None for r in records)
    commits = {r["code"]["commit"] for r in records}  # the report says which commits trained
    assert len(commits) == 7 and all(len(c) == 40 for c in commits)
    for cell, record in zip(grid, records):
        if study_config.METHODS[cell.method].kind == "autodim":
            plan = json.loads(
                (pathlib.Path(runner.cell_dir(cell)) / "search/plan.json").read_text()
            )
            assert plan["fields"] == record["fields"]


def test_ready_cells_wait_for_their_dependencies_and_keep_the_grid_order():
    grid = study_config.expand(_config(("fde", "mde", "amtl_warm")))
    assert [c.method for c in ready(grid, [], 2)] == ["fde", "mde"]
    fde, mde, warm = grid
    assert ready([warm], [fde], 1) == []
    assert ready([warm], [mde], 1) == [warm]
    assert ready([mde, warm], [], 0) == []


def test_workers_are_replaced_after_their_cells_and_when_they_die():
    import concurrent.futures
    import os

    workers = Workers(jobs=1, cells_per_process=2)
    try:
        pids = [workers.submit(os.getpid).result() for _ in range(3)]
        assert pids[0] == pids[1] != pids[2]  # a fresh process after two cells
        with pytest.raises(concurrent.futures.process.BrokenProcessPool):
            workers.submit(os._exit, 1).result()
        assert workers.submit(os.getpid).result() not in pids  # the dead one is replaced
    finally:
        workers.shutdown()


def _synthetic_runner(tmp_path, runs, methods):
    """A runner on 600 synthetic rows, preprocessed once into the work dir."""
    from keras_dimsel import pipeline
    from keras_dimsel.data import make_reader
    from keras_dimsel.preprocessing.pipeline import PreprocessConfig

    data = tmp_path / "work" / "data" / "synthetic"
    if not data.exists():
        reader = make_reader("synthetic", output_dir=str(data), rows=600)
        pipeline.preprocess(reader, PreprocessConfig(output_dir=str(data)))
    dataset = study_config.Dataset("synthetic", "synthetic", (), ("fm",), epochs=1, batch_size=64)
    config = StudyConfig("tiny", (dataset,), methods, (0,), 1, None)
    return CellRunner(config, str(runs), str(tmp_path / "work"), "")


@pytest.mark.e2e
def test_a_warm_start_whose_source_is_only_a_record_trains_that_source_again(tmp_path, monkeypatch):
    """Git keeps a cell's record, not its model: on a clean checkout a warm start trains its
    source's run again, and op determinism makes it the same model (the same test AUC)."""
    runs = tmp_path / "runs"
    runner = _synthetic_runner(tmp_path, runs, ("fde", "amtl_warm", "autodim"))
    records, failures = run_cells(runner)
    assert failures == []
    fde, warm, auto = records
    assert warm["warm_start_source_auc"] == fde["auc"]
    assert auto["fields"] and auto["search"]["steps"] == 8  # 480 train rows / 64, 1 epoch

    # A clean checkout: only what git keeps is left; the warm start must run again.
    shutil.copy(COMMITTED / ".gitignore", runs / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=runs, check=True)
    listing = ["git", "ls-files", "--others", "--exclude-standard"]
    kept = subprocess.run(listing, cwd=runs, capture_output=True, text=True, check=True).stdout
    clean = tmp_path / "clean"
    for path in kept.split():
        (clean / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(runs / path, clean / path)
    shutil.rmtree(clean / "tiny/cells/synthetic/fm/amtl_warm")
    assert not (clean / "tiny/cells/synthetic/fm/fde/seed0/run").exists()

    again = _synthetic_runner(tmp_path, clean, runner.config.methods)
    # in worker processes, as `make bench` (--jobs 2) trains every cell
    records, failures = run_cells(again, jobs=2)
    assert failures == []
    assert records[0] == fde and records[2] == auto
    assert records[1]["warm_start_source_auc"] == pytest.approx(fde["auc"], abs=1e-6)
    assert records[1]["auc"] == pytest.approx(warm["auc"], abs=1e-6)

    # The report of those cells, from their records alone.
    from benchmarks.study.__main__ import main

    monkeypatch.setitem(study_config.CONFIGS, "tiny", runner.config)
    argv = ["--config", "tiny", "--runs", str(clean), "--work-dir", str(tmp_path / "work")]
    assert main([*argv, "--out", str(tmp_path / "out"), "--report-only"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["method"] for r in summary if r["kind"] == "quality"] == list(runner.config.methods)
    assert {r["target"] for r in summary if r["kind"] == "target"} >= {"autodim_params_auc"}
    assert "### synthetic / fm" in (tmp_path / "out" / "summary.md").read_text()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "alpha_synthetic_fm.png",
        "amtl_dims_synthetic_fm_amtl_warm.png",
        "auc_vs_params_synthetic.png",
    ]


@pytest.mark.e2e
def test_the_committed_report_is_written_again_from_the_committed_records_alone(tmp_path):
    """`--report-only` on the committed records, without the data (their single-field
    AUCs are kept too): the same records, tables and plots, but the date the report was
    rewritten."""
    from benchmarks.study.__main__ import main

    out, work = tmp_path / "out", tmp_path / "work"
    argv = ["--config", "full", "--runs", str(COMMITTED), "--out", str(out)]
    argv += ["--work-dir", str(work), "--data-root", str(tmp_path / "no-data")]
    assert main([*argv, "--report-only"]) == 0
    assert not work.exists()  # no dataset was read, nothing trained or measured
    results = ROOT / "benchmarks" / "results"
    written, committed = (json.loads((d / "summary.json").read_text()) for d in (out, results))
    assert written[0].pop("report_written") != committed[0].pop("report_written")
    assert written == committed
    written, committed = ((d / "summary.md").read_text().splitlines() for d in (out, results))
    assert len(written) == len(committed)
    changed = [(a, b) for a, b in zip(written, committed) if a != b]
    assert [a.split(" on ")[0] for a, _ in changed] == [
        "- Report rewritten from the cached results"
    ]
    plots = sorted(p.name for p in out.glob("*.png"))
    assert len(plots) == 12
    for name in plots:
        assert (out / name).read_bytes() == (results / name).read_bytes(), name
