"""The benchmark study: every method on real data, speed, peak memory, and the targets.

Usage (from the repository root):

    .venv/bin/python -m benchmarks.study --config quick --out benchmarks/results
    .venv/bin/python -m benchmarks.study --config full --runs benchmarks/results/study --dry-run

Writes `summary.json`, `summary.md` and the PNG plots into `--out`. The cells, the
speed and memory records and the run record go to `--runs/<config>/`; a study run
again reads what is there and trains only what is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import os
import subprocess
import sys
import time
from typing import List, Optional, Sequence

from benchmarks.study import cells as study_cells
from benchmarks.study import records as study_records
from benchmarks.study.config import CONFIGS, DEFAULT_DATA_ROOT, REPO_ROOT, describe, expand
from keras_dimsel.training import RunDir

PACKAGES = "tensorflow tf-keras tensorflow-recommenders apache-beam keras-tuner numpy".split()
PLOT_PATTERNS = ("auc_vs_params_*.png", "alpha_*.png", "amtl_dims_*.png")
WORK_DIR = os.path.join(REPO_ROOT, "benchmarks", "work", "study")
SPEED_SCRIPT = os.path.join(REPO_ROOT, "benchmarks", "study_speed.py")
#: The records of `SPEED_SCRIPT`, in `<runs>/<config>/speed/`.
SPEED_RECORDS = ("throughput", "memory")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.study", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", choices=tuple(CONFIGS), default="quick")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    parser.add_argument(
        "--work-dir", default=WORK_DIR, help="the preprocessed datasets and speed's working files"
    )
    parser.add_argument(
        "--runs",
        default=None,
        help="the cells' run directories and records, the speed and memory records and the "
        "run record, under RUNS/<config>/ (default: the work dir; `make bench` uses "
        "benchmarks/results/study, whose records are committed)",
    )
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="the public samples")
    parser.add_argument("--dry-run", action="store_true", help="list the cells and exit")
    parser.add_argument(
        "--report-only", action="store_true", help="write the report from the records only"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes training cells")
    parser.add_argument("--note", default="", help="a line for the report (e.g. machine load)")
    args = parser.parse_args(argv)
    args.runs = args.runs or args.work_dir
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    config = CONFIGS[args.config]
    runner = study_cells.CellRunner(config, args.runs, args.work_dir, args.data_root)
    if args.dry_run:
        done = {cell: runner.record(cell) for cell in expand(config)}
        print(describe(config, {c: r["seconds"] for c, r in done.items() if r is not None}))
        return 0

    from benchmarks.machine import code_state, machine_description
    from benchmarks.study import report

    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_before, start = os.getloadavg(), time.perf_counter()
    cells, failures = study_cells.run_cells(runner, args.report_only, args.jobs)
    home = RunDir(os.path.join(args.runs, config.name))
    measured = _measured(config, args, home) if config.speed else []
    run = {
        "kind": "run",
        "config": config.name,
        "settings": dataclasses.asdict(config),
        "command": " ".join(["python -m benchmarks.study", *(argv or sys.argv[1:])]),
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
    records = [_run_record(run, home, args)]
    records += study_records.aggregate(cells) + study_records.stability(cells)
    records += _field_power(runner, cells, home)
    records += measured + failures
    records += study_records.evaluate_targets(records)
    study_records.validate([r for r in records if r["kind"] != "failed_cell"])

    os.makedirs(args.out, exist_ok=True)
    for pattern in PLOT_PATTERNS:  # plots of an earlier study must not linger
        for path in glob.glob(os.path.join(args.out, pattern)):
            os.remove(path)
    plots = report.write_plots(records, cells, config, runner.cell_dir, args.out)
    RunDir(args.out).write_json("summary.json", records)
    text = report.markdown(records, config, plots)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


def _measured(config, args, home: RunDir) -> List[dict]:
    """The speed and memory records of `home/speed/`; those missing are measured first by
    `benchmarks/study_speed.py` (not with `--report-only`), in a process of its own that
    holds none of the cells' traced graphs."""
    from benchmarks.machine import script_environment

    speed = RunDir(home.join("speed"))
    missing = [name for name in SPEED_RECORDS if speed.read_json(f"{name}.json") is None]
    if missing and not args.report_only:
        command = [sys.executable, SPEED_SCRIPT, *config.speed.argv(), f"--out={speed.path}"]
        command += [f"--work-dir={os.path.join(args.work_dir, config.name, 'speed')}"]
        command += [f"--measure={name}" for name in missing]
        completed = subprocess.run(command, env=script_environment())
        if completed.returncode != 0:
            raise RuntimeError(f"study_speed.py failed (exit {completed.returncode})")
    return [r for name in SPEED_RECORDS for r in speed.read_json(f"{name}.json") or []]


def _field_power(runner, cells: List[dict], home: RunDir) -> List[dict]:
    """The `field_power` records; the single-field AUCs are measured from the data once
    and kept in `home/field_power.json`, so a report is written again without the data."""
    power = home.read_json("field_power.json") or {}
    records = []
    for name in study_records.FIELD_POWER_DATASETS:
        if any(c["dataset"] == name for c in cells):
            if name not in power:
                power[name] = study_records.field_power(runner.spec(name))
                home.write_json("field_power.json", power)
            records += study_records.field_power_records(name, power[name], cells)
    return records


def _run_record(run: dict, home: RunDir, args) -> dict:
    """The record of the study's training run, kept in `home` beside the cells.

    A run that trains lists the runs before it under `earlier_runs` (a long study
    resumed on other machines says so). `--report-only` reports the run that made the
    results, with the date the report was rewritten.
    """
    earlier = home.read_json("run.json")
    if args.report_only:
        if earlier is None:
            return {**run, "note": args.note or "report written from the records"}
        earlier["report_written"] = run["started"]
        if args.note:
            earlier["note"] = args.note
        return earlier
    if earlier is not None:
        run["earlier_runs"] = earlier.pop("earlier_runs", []) + [
            {
                "started": earlier["started"],
                "seconds": earlier["seconds"],
                "commit": earlier["code"]["commit"],
                "cpu_model": earlier["machine"].get("cpu_model"),
            }
        ]
    home.write_json("run.json", run)
    return run


if __name__ == "__main__":
    sys.exit(main())
