"""The benchmark study: quality of every method on real data, speed, memory, and the targets.

Runs the grid of a declarative configuration (`study_config.py`: datasets x
models x methods x seeds), each cell through the library's own functions
(`study_cells.py`), the speed comparisons (`study_speed.py`) and the peak
memory of each model in a process of its own (`study_memory.py`), then writes
into `--out`:

- `summary.json`: a list of records (`study_records.py` documents the kinds);
- `summary.md`: the report, with every target marked MET / NOT MET;
- PNG plots (`study_report.py`).

Finished cells are cached in the work directory, so an interrupted study
resumes where it stopped.

Usage (from the repository root):

    .venv/bin/python benchmarks/study.py --config quick --out benchmarks/results
    .venv/bin/python benchmarks/study.py --config full --dry-run   # list the cells
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import List, Optional, Sequence  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import study_fields  # noqa: E402
import study_records  # noqa: E402
from machine import REPO_ROOT, code_state, machine_description  # noqa: E402
from study_config import (  # noqa: E402
    CONFIGS,
    DEFAULT_DATA_ROOT,
    Cell,
    dependencies,
    describe,
    expand,
    load_config,
)
from study_store import MEMORY, THROUGHPUT, CellStore  # noqa: E402

PACKAGES = (
    "tensorflow",
    "tf-keras",
    "tensorflow-recommenders",
    "apache-beam",
    "keras-tuner",
    "numpy",
)
#: Cells a worker process trains before a fresh process replaces it (see `_Workers`).
CELLS_PER_PROCESS = 6
PLOT_PATTERNS = ("auc_vs_params_*.png", "alpha_*.png", "amtl_dims_*.png")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=tuple(CONFIGS), default="quick")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks", "work", "study")
    )
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="the public samples")
    parser.add_argument(
        "--store",
        default=None,
        help="keep each finished cell's result (and the speed results) here too, and reuse "
        "what is there: a study resumes on another machine (`make bench` uses "
        "benchmarks/results/study)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the cells and exit")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the report from the cached cells and speed results, training nothing",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes training cells (speed runs alone)"
    )
    parser.add_argument("--note", default="", help="a line for the report (e.g. machine load)")
    return parser.parse_args(argv)


def run_cells(config, runner, report_only: bool, jobs: int = 1):
    """Every cell's result (from the cache or trained), and the cells that failed.

    Cells run in the grid's order (`expand`: dataset, backbone, seed, method),
    so a study that stops early leaves whole tables behind. With `jobs > 1`
    they train in that many worker processes: a cell's time here goes mostly
    to tracing TensorFlow graphs, single-threaded Python, so two processes use
    two cores. A cell that reads another cell's run (`dependencies`) starts
    once that cell has finished; the datasets are preprocessed here first, so
    no two workers run the Beam job on one. A worker process trains at most
    `CELLS_PER_PROCESS` cells, and a cell whose process dies (killed, out of
    memory) is a failure like a cell that raises.
    """
    from study_cells import attempt, attempt_in_worker

    grid = expand(config)
    results = {cell: runner.cached(cell) for cell in grid}
    waiting = [] if report_only else [cell for cell in grid if results[cell] is None]
    failures = []
    for dataset in dict.fromkeys(cell.dataset for cell in waiting):
        runner.spec(dataset)
    done = len(grid) - len(waiting)

    def finished(cell, result, failure):
        nonlocal done
        done += 1
        results[cell] = result
        if failure:
            failures.append(failure)
            print(f"[{done}/{len(grid)}] {cell.key}: FAILED {failure['error']}", flush=True)
        else:
            print(
                f"[{done}/{len(grid)}] {cell.key}: AUC {result['auc']:.4f}, "
                f"{result['embedding_params']:,} params, {result['seconds']:.0f}s",
                flush=True,
            )

    if jobs <= 1:  # the grid's order puts every dependency first
        for cell in waiting:
            finished(cell, *attempt(runner, cell))
        return [results[cell] for cell in grid if results[cell] is not None], failures

    workers = _Workers(jobs)
    running = {}  # future: cell
    try:
        while waiting or running:
            for cell in ready(waiting, list(running.values()), jobs - len(running)):
                waiting.remove(cell)
                args = (config, runner.work_dir, runner.data_root, runner.store_root, cell)
                running[workers.submit(attempt_in_worker, *args)] = cell
            ended, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in ended:
                cell = running.pop(future)
                try:
                    outcome = future.result()
                except concurrent.futures.process.BrokenProcessPool as error:
                    message = f"its process died ({error}): killed, or out of memory?"
                    outcome = (None, {"kind": "failed_cell", "cell": cell.key, "error": message})
                finished(cell, *outcome)
    finally:
        workers.shutdown()
    return [results[cell] for cell in grid if results[cell] is not None], failures


@dataclasses.dataclass
class _Worker:
    """One worker process (a one-process pool), the cells it was given and its last task."""

    pool: concurrent.futures.ProcessPoolExecutor
    cells: int = 0
    task: Optional[concurrent.futures.Future] = None

    def idle(self) -> bool:
        return self.task is None or self.task.done()

    def spent(self, cells_per_process: int) -> bool:
        """Done with: it has trained its cells, or its process died."""
        died = self.task is not None and isinstance(
            self.task.exception(), concurrent.futures.process.BrokenProcessPool
        )
        return self.cells >= cells_per_process or died


class _Workers:
    """`jobs` worker processes, each replaced by a fresh one after `cells_per_process` cells.

    TensorFlow keeps every graph a process has traced: two workers that each
    trained some 25 Criteo cells had grown to 11 and 10 GiB and filled the
    machine's memory. A process that dies (killed, out of memory) is replaced
    too. Python 3.10's `ProcessPoolExecutor` has no `max_tasks_per_child`, so
    each worker is a one-process pool of its own.
    """

    def __init__(self, jobs: int, cells_per_process: int = CELLS_PER_PROCESS):
        self.cells_per_process = cells_per_process
        self.context = multiprocessing.get_context("spawn")
        self.workers: List[Optional[_Worker]] = [None] * jobs

    def submit(self, fn, *args) -> concurrent.futures.Future:
        """Runs `fn(*args)` on an idle worker (`jobs` tasks at most at once)."""
        index = next(i for i, w in enumerate(self.workers) if w is None or w.idle())
        worker = self.workers[index]
        if worker is not None and worker.spent(self.cells_per_process):
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


def ready(waiting: List[Cell], running: List[Cell], slots: int) -> List[Cell]:
    """The next cells to start: the first `slots` waiting cells whose dependencies are done.

    Examples:

        >>> fde, warm = Cell("d", "fm", "fde", 0), Cell("d", "fm", "amtl_warm", 0)
        >>> other = Cell("d", "fm", "mde", 0)
        >>> [c.method for c in ready([fde, warm, other], [], 2)]
        ['fde', 'mde']
        >>> [c.method for c in ready([warm], [fde], 1)]
        []
        >>> [c.method for c in ready([warm], [], 1)]
        ['amtl_warm']
    """
    busy = set(waiting) | set(running)
    startable = [c for c in waiting if not any(d in busy for d in dependencies(c))]
    if not startable and not running and waiting:
        raise RuntimeError(f"cells wait for each other: {[c.key for c in waiting]}")
    return startable[: max(slots, 0)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    config = load_config(args.config)
    if args.dry_run:
        done = {}
        if args.store:
            stored = CellStore(args.store, config.name).results(expand(config))
            done = {cell: result["seconds"] for cell, result in stored.items()}
        print(describe(config, done))
        return 0

    import study_report
    from study_cells import CellRunner

    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_before, start = os.getloadavg(), time.perf_counter()
    runner = CellRunner(config, args.work_dir, args.data_root, args.store)
    cells, failures = run_cells(config, runner, args.report_only, args.jobs)
    throughput: List[dict] = []
    memory: List[dict] = []
    if config.speed:
        throughput = _speed(config, runner, args)
        memory = _memory(config, runner, args)

    run = {
        "kind": "run",
        "config": config.name,
        "settings": dataclasses.asdict(config),
        "command": " ".join(["benchmarks/study.py", *(argv or sys.argv[1:])]),
        "machine": machine_description(PACKAGES),
        "code": code_state(),
        "started": started,
        "seconds": time.perf_counter() - start,
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "cells": len(cells),
        "cell_seconds": sum(c["seconds"] for c in cells),
        "cell_commits": study_records.cell_commits(cells),
        "note": args.note,
    }
    run_home = runner.store.root if runner.store else os.path.join(args.work_dir, config.name)
    run = _training_run(run, os.path.join(run_home, "run.json"), args)
    records = [run]
    records += study_records.aggregate(cells)
    records += study_records.stability(cells)
    for name in study_fields.FIELD_POWER_DATASETS:
        if any(c["dataset"] == name for c in cells):
            spec = runner.spec(name)
            power = study_fields.field_power(spec)
            records += study_fields.field_power_records(name, spec, power, cells)
    records += throughput
    records += memory
    records += failures
    records += study_records.evaluate_targets(records)
    study_records.validate([r for r in records if r["kind"] != "failed_cell"])

    os.makedirs(args.out, exist_ok=True)
    for pattern in PLOT_PATTERNS:  # plots of an earlier study must not linger
        for path in glob.glob(os.path.join(args.out, pattern)):
            os.remove(path)
    keys = [(c["dataset"], c["model"], c["method"], c["seed"]) for c in cells]
    cell_dirs = {key: runner.cell_dir(Cell(*key)) for key in keys}
    plots = study_report.write_plots(records, cells, config, cell_dirs, args.out)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(records, f, indent=2)
        f.write("\n")
    report = study_report.markdown(records, config, plots)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(report)
    print(report)
    return 0


def _speed(config, runner, args) -> List[dict]:
    """The speed records: cached (in the store when there is one), else measured, except
    with `--report-only`."""
    import study_speed

    speed_dir = os.path.join(args.work_dir, config.name, "speed")
    cache = runner.store.throughput_path if runner.store else os.path.join(speed_dir, THROUGHPUT)
    if args.report_only and not os.path.exists(cache):
        return []
    return study_speed.measure(config.speed, speed_dir, cache)


def _memory(config, runner, args) -> List[dict]:
    """The peak-memory records: cached like the speed records, else measured (not with
    `--report-only`) on the speed comparisons' synthetic data."""
    speed_dir = os.path.join(args.work_dir, config.name, "speed")
    cache = runner.store.memory_path if runner.store else os.path.join(speed_dir, MEMORY)
    if not os.path.exists(cache):
        if args.report_only:
            return []
        import autodim_speed
        import study_memory

        data = autodim_speed.prepare_data(config.speed.rows, 0, speed_dir).directory
        memory_dir = os.path.join(speed_dir, "memory")
        study_memory.measure(config.speed, memory_dir, cache, data, args.jobs)
    with open(cache) as f:
        return json.load(f)


def _training_run(run: dict, path: str, args) -> dict:
    """The run record of the study's training run.

    A run that trains saves its record beside the cells (in the store when
    there is one), and lists the runs before it on the same cells under
    `earlier_runs`: a long study resumed on other machines says so.
    `--report-only` keeps that record's start, duration and load (the report
    is about the runs that made the results), with the date the report was
    rewritten.
    """
    if not args.report_only:
        if os.path.exists(path):
            with open(path) as f:
                earlier = json.load(f)
            run["earlier_runs"] = earlier.pop("earlier_runs", []) + [
                {
                    "started": earlier["started"],
                    "seconds": earlier["seconds"],
                    "commit": earlier["code"]["commit"],
                    "cpu_model": earlier["machine"].get("cpu_model"),
                }
            ]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(run, f, indent=2)
        return run
    if not os.path.exists(path):
        return {**run, "note": args.note or "report written from cached cells"}
    with open(path) as f:
        trained = json.load(f)
    trained["report_written"] = run["started"]
    if args.note:
        trained["note"] = args.note
    return trained


if __name__ == "__main__":
    sys.exit(main())
