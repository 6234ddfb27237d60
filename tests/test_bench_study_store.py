"""The benchmark study's cell store: results kept apart from the work directory, resumed."""

import dataclasses
import json
import pathlib
import sys

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import study  # noqa: E402
import study_config  # noqa: E402
from study_config import Cell, StudyConfig  # noqa: E402

CELL = Cell("movielens-100k", "fm", "autodim", 0)


def _tiny_config(methods=("fde", "amtl_warm")) -> StudyConfig:
    return StudyConfig(
        name="tiny",
        datasets=(dataclasses.replace(study_config.MOVIELENS, models=("fm",), epochs=1),),
        methods=methods,
        seeds=(0,),
        ras_trials=1,
        speed=None,
    )


def _write_cell(runner, cell, **result):
    directory = pathlib.Path(runner.cell_dir(cell))
    (directory / "search").mkdir(parents=True)
    (directory / "search" / "plan.json").write_text('{"fields": {"user": 8}}')
    (directory / "search" / "alpha_history.csv").write_text("step,user/2\n0,0.2\n")
    (directory / "search" / "checkpoint.data").write_bytes(b"\0" * 100)  # not kept
    result = {"auc": 0.7, "settings": runner.cell_settings(cell), **result}
    (directory / "metrics.json").write_text(json.dumps(result))
    return result


def test_a_cell_in_the_work_dir_is_kept_in_the_store_and_restored_elsewhere(tmp_path):
    from study_cells import CellRunner

    config = _tiny_config(methods=("autodim",))
    first = CellRunner(config, str(tmp_path / "work1"), "unused", store=str(tmp_path / "store"))
    result = _write_cell(first, CELL)
    assert first.cached(CELL) == result

    kept = tmp_path / "store" / "tiny" / "cells" / CELL.key
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()) == [
        "metrics.json",
        "search/alpha_history.csv",
        "search/plan.json",
    ]

    # Only the plotted method (autodim) keeps its alpha history.
    other = Cell("movielens-100k", "fm", "autodim_s", 0)
    runner = CellRunner(_tiny_config(("autodim_s",)), str(tmp_path / "w"), "", first.store_root)
    _write_cell(runner, other)
    runner.cached(other)
    search = tmp_path / "store" / "tiny" / "cells" / other.key / "search"
    assert sorted(p.name for p in search.iterdir()) == ["plan.json"]

    # A clean checkout on another machine: an empty work dir, the same store.
    second = CellRunner(config, str(tmp_path / "work2"), "unused", store=str(tmp_path / "store"))
    assert second.cached(CELL) == result
    restored = pathlib.Path(second.cell_dir(CELL))
    assert (restored / "search" / "plan.json").read_text() == '{"fields": {"user": 8}}'
    assert second.cached(Cell("movielens-100k", "fm", "autodim", 1)) is None


def test_a_stored_cell_made_with_other_settings_is_refused(tmp_path):
    from study_cells import CellRunner, StudyError

    runner = CellRunner(_tiny_config(("autodim",)), str(tmp_path / "w1"), "", str(tmp_path / "s"))
    _write_cell(runner, CELL)
    runner.cached(CELL)
    two_epochs = dataclasses.replace(
        _tiny_config(("autodim",)),
        datasets=(dataclasses.replace(study_config.MOVIELENS, models=("fm",), epochs=2),),
    )
    other = CellRunner(two_epochs, str(tmp_path / "w2"), "", str(tmp_path / "s"))
    with pytest.raises(StudyError, match=r"made with settings .*'epochs': 1.* delete the cell"):
        other.cached(CELL)


def test_ready_cells_wait_for_their_dependencies_and_keep_the_grid_order():
    grid = study_config.expand(_tiny_config(("fde", "mde", "amtl_warm")))
    assert [c.method for c in study.ready(grid, [], 2)] == ["fde", "mde"]
    fde, mde, warm = grid
    assert study.ready([warm], [fde], 1) == []
    assert study.ready([warm], [mde], 1) == [warm]
    assert study.ready([mde, warm], [], 0) == []


def test_workers_are_replaced_after_their_cells_and_when_they_die():
    import concurrent.futures
    import os

    workers = study._Workers(jobs=1, cells_per_process=2)
    try:
        pids = [workers.submit(os.getpid).result() for _ in range(3)]
        assert pids[0] == pids[1] != pids[2]  # a fresh process after two cells
        with pytest.raises(concurrent.futures.process.BrokenProcessPool):
            workers.submit(os._exit, 1).result()
        assert workers.submit(os.getpid).result() not in pids  # the dead one is replaced
    finally:
        workers.shutdown()


@pytest.mark.e2e
def test_a_warm_start_whose_source_comes_from_the_store_trains_that_source_again(
    tmp_path, shared_data
):
    """The store keeps results, not models: a warm start on a new machine retrains its
    source, and op determinism makes it the same model (the same test AUC)."""
    from study_cells import CellRunner

    config, store = _tiny_config(), str(tmp_path / "store")
    runner = CellRunner(config, str(tmp_path / "work1"), str(shared_data), store)
    results, failures = study.run_cells(config, runner, report_only=False)
    assert failures == []
    fde, warm = results
    assert warm["warm_start_source_auc"] == fde["auc"]

    # Another machine: the fde cell comes from the store, the warm start must run.
    cells = pathlib.Path(store) / "tiny" / "cells"
    for path in sorted((cells / "movielens-100k/fm/amtl_warm").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    again = CellRunner(config, str(tmp_path / "work2"), str(shared_data), store)
    assert again.cached(Cell("movielens-100k", "fm", "fde", 0)) == fde
    # in a process of its own, as `make bench` (--jobs 2) trains every cell
    results, failures = study.run_cells(config, again, report_only=False, jobs=2)
    assert failures == []
    assert results[0] == fde
    assert results[1]["warm_start_source_auc"] == pytest.approx(fde["auc"], abs=1e-6)
    assert results[1]["auc"] == pytest.approx(warm["auc"], abs=1e-6)


def test_docstring_examples():
    import doctest

    assert doctest.testmod(study, optionflags=doctest.ELLIPSIS).failed == 0
