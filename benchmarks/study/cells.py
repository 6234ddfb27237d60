"""The cells: each method as the `keras_dimsel.pipeline` steps it takes, and their scheduling.

`<runs>/<config>/cells/<dataset>/<model>/<method>/seed<k>/` holds the steps' run
directories (`run/`, or `search/` and `retrain/`, or `ras/`) and, written last, the
cell's record `metrics.json`. A cell with its record is finished; one without runs its
steps, each of which skips itself when its run directory is complete (or resumes from
its checkpoints). Git keeps the records of `make bench` (benchmarks/results/study).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import time
import traceback
from typing import Dict, List, Optional, Tuple

from benchmarks.study.config import (
    CANDIDATES,
    FULL_DIM,
    METHODS,
    RAS_ORACLE_SEED_OFFSET,
    Cell,
    StudyConfig,
    dependencies,
    expand,
    mde_dims,
)
from keras_dimsel.training import METRICS, RunDir

#: Cells a worker process trains before a fresh process replaces it (see `Workers`).
CELLS_PER_PROCESS = 6


class StudyError(RuntimeError):
    """A cell that cannot be run or reused as asked."""


def directory_bytes(path: str) -> int:
    """The total size of the files under `path` (a SavedModel directory)."""
    return sum(os.path.getsize(os.path.join(r, n)) for r, _, names in os.walk(path) for n in names)


class CellRunner:
    """Runs the cells of `config` in `runs/<config>/cells/`, on the datasets of `data_root`
    preprocessed into `work_dir/data/<name>`."""

    def __init__(self, config: StudyConfig, runs: str, work_dir: str, data_root: str):
        self.config, self.runs, self.work_dir, self.data_root = config, runs, work_dir, data_root
        self._specs: Dict[str, object] = {}

    def cell_dir(self, cell: Cell) -> str:
        return os.path.join(self.runs, self.config.name, "cells", cell.key)

    def spec(self, name: str):
        """The dataset's artifact, made by the Beam job on first use (`pipeline.preprocess`)."""
        from keras_dimsel.data.feature_spec import FeatureSpec

        output = os.path.join(self.work_dir, "data", name)
        if name in self._specs:
            return self._specs[name]
        if not os.path.exists(os.path.join(output, "feature_spec.json")):
            from keras_dimsel import pipeline
            from keras_dimsel.data import make_reader
            from keras_dimsel.preprocessing.pipeline import PreprocessConfig

            dataset = self.config.dataset(name)
            inputs = [os.path.join(self.data_root, path) for path in dataset.inputs]
            missing = [path for path in inputs if not os.path.exists(path)]
            if missing:
                raise StudyError(f"{name}: input(s) not found: {missing} (see --data-root)")
            config = PreprocessConfig(output_dir=output, min_count=dataset.min_count)
            pipeline.preprocess(make_reader(dataset.reader, inputs, output_dir=output), config)
        self._specs[name] = FeatureSpec.load(output)
        return self._specs[name]

    def record(self, cell: Cell) -> Optional[dict]:
        """The cell's record, None when it has not finished; `StudyError` when it was made
        with other settings."""
        record = RunDir(self.cell_dir(cell)).read_metrics()
        wanted = self.config.cell_settings(cell)
        if record is not None and record.get("settings") != wanted:
            raise StudyError(
                f"{self.cell_dir(cell)}/{METRICS} was made with settings "
                f"{record.get('settings')}, the configuration now asks for {wanted}: delete "
                "the cell or give other --runs"
            )
        return record

    def settings(self, cell: Cell):
        from keras_dimsel.training import TrainSettings

        data = self.config.dataset(cell.dataset)
        return TrainSettings(data.epochs, data.batch_size, cell.seed, keep_best=data.keep_best)

    def run(self, cell: Cell) -> dict:
        """The cell's record: read when it has finished, else its steps run and it is written."""
        record = self.record(cell)
        if record is not None:
            return record
        import tensorflow as tf

        from benchmarks.machine import code_state

        for needed in dependencies(cell):
            self.run(needed)
        method = METHODS[cell.method]
        start = time.perf_counter()
        details = STEPS[method.kind](self, cell, dict(method.options))
        record = {
            **dataclasses.asdict(cell),
            "seconds": time.perf_counter() - start,
            "settings": self.config.cell_settings(cell),
            "code": code_state(),  # a long study spans commits; the report counts them
            **details,
        }
        RunDir(self.cell_dir(cell)).write_metrics(record)
        tf.keras.backend.clear_session()  # one process runs several cells
        return record


def _quality(metrics: dict, run_dir: str) -> dict:
    """The part of a record every method has, from its final run's metrics."""
    return {
        "auc": metrics["auc"],
        "logloss": metrics["logloss"],
        "embedding_params": int(metrics["embedding_params"]),
        "full_embedding_params": int(metrics["full_embedding_params"]),
        "savedmodel_bytes": directory_bytes(RunDir(run_dir).saved_model),
        "train_examples_per_second": metrics.get("train_examples_per_second"),
    }


def _plan_details(plan) -> dict:
    return {"fields": plan.fields, "vocab_sizes": plan.vocab_sizes}


def _baseline(runner: CellRunner, cell: Cell, options: dict) -> dict:
    from keras_dimsel import pipeline

    spec, run_dir = runner.spec(cell.dataset), os.path.join(runner.cell_dir(cell), "run")
    metrics = pipeline.baseline(
        spec, cell.model, run_dir, dim=FULL_DIM, settings=runner.settings(cell)
    )
    return {**_quality(metrics, run_dir), "run_dir": "run"}


def _retrain(runner: CellRunner, cell: Cell, plan, **details) -> dict:
    from keras_dimsel import pipeline

    spec, run_dir = runner.spec(cell.dataset), os.path.join(runner.cell_dir(cell), "run")
    metrics = pipeline.retrain(spec, plan, cell.model, run_dir, settings=runner.settings(cell))
    return {**_quality(metrics, run_dir), **_plan_details(plan), **details, "run_dir": "run"}


def _mde(runner: CellRunner, cell: Cell, options: dict) -> dict:
    from keras_dimsel.autodim import DimensionPlan

    sizes = {field.name: field.vocab_size for field in runner.spec(cell.dataset).fields}
    dims = mde_dims(sizes, CANDIDATES, options["alpha"])
    return _retrain(
        runner, cell, DimensionPlan(fields=dims, candidates=tuple(CANDIDATES), vocab_sizes=sizes)
    )


def _transfer(runner: CellRunner, cell: Cell, options: dict) -> dict:
    """The plan another backbone's AutoDim cell searched, retrained in this backbone."""
    from keras_dimsel.autodim import DimensionPlan

    source = Cell(cell.dataset, options["source_model"], options["source_method"], cell.seed)
    plan = DimensionPlan.load(os.path.join(runner.cell_dir(source), "search"))
    return _retrain(runner, cell, plan, source=source.key)


def _ras(runner: CellRunner, cell: Cell, options: dict) -> dict:
    import keras_tuner

    from keras_dimsel.tuning import RandomDimensionTuner, best_plan

    directory = runner.cell_dir(cell)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        max_trials=runner.config.ras_trials, seed=cell.seed + RAS_ORACLE_SEED_OFFSET
    )
    tuner = RandomDimensionTuner(
        runner.spec(cell.dataset),
        cell.model,
        oracle,
        directory=directory,
        project_name="ras",
        candidates=CANDIDATES,
        settings=runner.settings(cell),
    )
    tuner.search(verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    run_dir = os.path.join(tuner.get_trial_dir(best.trial_id), "retrain")
    return {
        **_quality(RunDir(run_dir).read_metrics(), run_dir),
        **_plan_details(best_plan(tuner)),
        "trials": len(tuner.oracle.trials),
        "best_val_auc": best.metrics.get_best_value("val_auc"),
        "run_dir": os.path.relpath(run_dir, directory),
    }


def _autodim(runner: CellRunner, cell: Cell, options: dict) -> dict:
    from keras_dimsel import pipeline

    spec, settings, directory = (
        runner.spec(cell.dataset),
        runner.settings(cell),
        runner.cell_dir(cell),
    )
    search_dir, run_dir = os.path.join(directory, "search"), os.path.join(directory, "retrain")
    plan = pipeline.search(
        spec, cell.model, search_dir, settings=settings, candidates=CANDIDATES, **options
    )
    unify = options.get("unify", "linear")
    metrics = pipeline.retrain(spec, plan, cell.model, run_dir, unify=unify, settings=settings)
    search = RunDir(search_dir).read_json("search_metrics.json")
    steps = -(-spec.splits["train"] // search["batch_size"]) * search["epochs"]
    live = max(0, steps - search["pretrain_steps"])
    return {
        **_quality(metrics, run_dir),
        **_plan_details(plan),
        "search": {
            "steps": steps,
            "pretrain_steps": search["pretrain_steps"],
            "alpha_updates": live if search["mode"] == "joint" else live // search["arch_every"],
            "arch_learning_rate": search["arch_learning_rate"],
            "examples_per_second": search.get("train_examples_per_second"),
        },
        "run_dir": "retrain",
        "search_dir": "search",
    }


def _amtl(runner: CellRunner, cell: Cell, options: dict) -> dict:
    from keras_dimsel import pipeline

    warm_start = source_auc = None
    if options.pop("warm_start", False):
        source = Cell(cell.dataset, cell.model, "fde", cell.seed)
        warm_start = os.path.join(runner.cell_dir(source), "run")
        # A source whose record is all this checkout has (a committed cell) has no model
        # yet: its step trains it now; op determinism makes it the same on the same machine.
        source_auc = _baseline(runner, source, {})["auc"]
    spec, run_dir = runner.spec(cell.dataset), os.path.join(runner.cell_dir(cell), "run")
    settings = runner.settings(cell)
    metrics = pipeline.amtl(
        spec,
        cell.model,
        run_dir,
        settings=settings,
        max_dim=FULL_DIM,
        warm_start=warm_start,
        **options,
    )
    sizes = {field.name: field.vocab_size for field in spec.fields}
    masked = metrics["fields"]
    # Over all values of the masked fields: each field weighs by its number of ids.
    average = sum(metrics["average_dim"][f] * sizes[f] for f in masked)
    return {
        **_quality(metrics, run_dir),
        "max_dim": metrics["max_dim"],
        "masked_fields": masked,
        "average_dim": average / sum(sizes[f] for f in masked),
        "average_dim_by_field": metrics["average_dim"],
        "dim_by_frequency_group": metrics["dim_by_frequency_group"],
        "warm_start": warm_start is not None,
        **({"warm_start_source_auc": source_auc} if warm_start else {}),
        "run_dir": "run",
    }


STEPS = {
    "baseline": _baseline,
    "mde": _mde,
    "ras": _ras,
    "autodim": _autodim,
    "amtl": _amtl,
    "transfer": _transfer,
}


def attempt(runner: CellRunner, cell: Cell) -> Tuple[Optional[dict], Optional[dict]]:
    """`(record, None)`, or `(None, failure record)` when the cell raised: one broken cell
    must not lose the others. A record made with other settings (`StudyError`) raises."""
    try:
        return runner.run(cell), None
    except StudyError:
        raise
    except Exception as error:
        traceback.print_exc()
        message = f"{type(error).__name__}: {error}"
        return None, {"kind": "failed_cell", "cell": cell.key, "error": message}


def run_cells(runner: CellRunner, report_only: bool = False, jobs: int = 1):
    """Every finished cell's record (read or trained) and the failure records.

    Cells start in the grid's order (dataset, backbone, seed, method), so a study
    that stops early leaves whole tables behind; with `jobs > 1` in that many worker
    processes (a cell's time goes mostly to tracing graphs, single-threaded Python).
    A cell starts once the cells it reads have finished. The datasets are
    preprocessed here first, so no two workers run the Beam job on one.
    """
    grid = expand(runner.config)
    records = {cell: runner.record(cell) for cell in grid}
    waiting = [] if report_only else [cell for cell in grid if records[cell] is None]
    for dataset in dict.fromkeys(cell.dataset for cell in waiting):
        runner.spec(dataset)
    failures, done = [], len(grid) - len(waiting)

    def finished(cell, record, failure):
        nonlocal done
        done += 1
        records[cell] = record
        if failure:
            failures.append(failure)
            print(f"[{done}/{len(grid)}] {cell.key}: FAILED {failure['error']}", flush=True)
        else:
            print(
                f"[{done}/{len(grid)}] {cell.key}: AUC {record['auc']:.4f}, "
                f"{record['embedding_params']:,} params, {record['seconds']:.0f}s",
                flush=True,
            )

    if jobs <= 1:  # the grid's order puts every dependency first
        for cell in waiting:
            finished(cell, *attempt(runner, cell))
    else:
        workers, running = Workers(jobs), {}  # future: cell
        try:
            while waiting or running:
                for cell in ready(waiting, list(running.values()), jobs - len(running)):
                    waiting.remove(cell)
                    running[workers.submit(attempt, runner, cell)] = cell
                ended, _ = concurrent.futures.wait(running, return_when="FIRST_COMPLETED")
                for future in ended:
                    cell = running.pop(future)
                    try:
                        outcome = future.result()
                    except concurrent.futures.process.BrokenProcessPool as error:
                        message = f"its process died ({error}): killed, or out of memory?"
                        outcome = (
                            None,
                            {"kind": "failed_cell", "cell": cell.key, "error": message},
                        )
                    finished(cell, *outcome)
        finally:
            workers.shutdown()
    return [records[cell] for cell in grid if records[cell] is not None], failures


def ready(waiting: List[Cell], running: List[Cell], slots: int) -> List[Cell]:
    """The first `slots` waiting cells whose dependencies are neither waiting nor running.

    >>> fde, warm = Cell("d", "fm", "fde", 0), Cell("d", "fm", "amtl_warm", 0)
    >>> [c.method for c in ready([fde, warm, Cell("d", "fm", "mde", 0)], [], 2)]
    ['fde', 'mde']
    >>> ready([warm], [fde], 1)
    []
    """
    busy = set(waiting) | set(running)
    startable = [c for c in waiting if not any(d in busy for d in dependencies(c))]
    if not startable and not running and waiting:
        raise RuntimeError(f"cells wait for each other: {[c.key for c in waiting]}")
    return startable[: max(slots, 0)]


@dataclasses.dataclass
class _Worker:
    pool: concurrent.futures.ProcessPoolExecutor
    cells: int = 0
    task: Optional[concurrent.futures.Future] = None


class Workers:
    """`jobs` worker processes, each replaced by a fresh one after `cells_per_process` cells
    or when it dies. TensorFlow keeps every graph a process traced: two workers that had
    trained some 25 Criteo cells each held 11 and 10 GiB. Python 3.10's pools have no
    `max_tasks_per_child`, so each worker is a one-process pool of its own."""

    def __init__(self, jobs: int, cells_per_process: int = CELLS_PER_PROCESS):
        self.cells_per_process = cells_per_process
        self.context = multiprocessing.get_context("spawn")
        self.workers: List[Optional[_Worker]] = [None] * jobs

    def submit(self, fn, *args) -> concurrent.futures.Future:
        """Runs `fn(*args)` on an idle worker (`jobs` tasks at most at once)."""
        index = next(
            i for i, w in enumerate(self.workers) if w is None or w.task is None or w.task.done()
        )
        worker = self.workers[index]
        if worker is not None and (
            worker.cells >= self.cells_per_process
            or isinstance(worker.task.exception(), concurrent.futures.process.BrokenProcessPool)
        ):
            worker.pool.shutdown(wait=True)  # its process exits and frees the memory
            worker = None
        if worker is None:
            worker = _Worker(concurrent.futures.ProcessPoolExecutor(1, mp_context=self.context))
            self.workers[index] = worker
        worker.cells += 1
        worker.task = worker.pool.submit(fn, *args)
        return worker.task

    def shutdown(self) -> None:
        for worker in self.workers:
            if worker is not None:
                worker.pool.shutdown(wait=False, cancel_futures=True)
