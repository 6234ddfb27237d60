"""Synthetic data speed: `generate_csv` with the `criteo` profile, 10M rows, against 2 minutes.

Each repeat writes the whole CSV and `ground_truth.json` (`dimsel preprocess
--dataset synthetic --profile criteo` does the same before its Beam job), with
the planted parameters drawn afresh (the bias calibration included). The
variants are the number of threads that draw and format chunks at once
(`synthetic.WORKER_THREADS`), run round-robin so that a busy period of a shared
machine hits them alike. A measurement records wall seconds, the process's CPU
seconds (all threads), its peak RSS since the repeat started (and its RSS
before, mostly TensorFlow, imported for its file layer), and the load average
before and after, which tells how much of the two cores the run had.

After the timings, the last file is read once with pyarrow (not timed) to
record its shape: the click rate, and per categorical field the distinct ids
and those seen twice or more.

Usage (from the repository root):

    .venv/bin/python benchmarks/synthetic_speed.py --rows 10000000 --repeats 3 \
        --out benchmarks/results/synthetic_speed.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pcsv  # noqa: E402

from keras_dimsel import _io  # noqa: E402
from keras_dimsel.data import synthetic  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import (  # noqa: E402
    REPO_ROOT,
    code_state,
    machine_description,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    spread,
    write_results,
)

TARGET_SECONDS = 120.0


def time_generation(path: str, rows: int, seed: int, threads: int) -> dict:
    """Writes the CSV once with `threads` worker threads; its wall and CPU time, peak RSS."""
    synthetic._criteo_model.cache_clear()  # every repeat draws its parameters again
    synthetic.WORKER_THREADS = threads
    load_before, rss_before = os.getloadavg()[0], rss_mib()
    reset_worked = reset_peak_rss()
    wall, cpu = time.perf_counter(), time.process_time()
    synthetic.generate_csv(path, rows, seed, profile="criteo")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_mib": peak_rss_mib(reset_worked),
        "peak_rss_since": "repeat start" if reset_worked else "process start",
        "rss_before_mib": rss_before,
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


def file_shape(path: str) -> dict:
    """The click rate and the distinct ids per categorical field of a generated CSV."""
    names = synthetic.column_names("criteo")
    table = pcsv.read_csv(
        path, convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.int64()))
    )
    fields = {}
    for field in synthetic.CRITEO_FIELDS:
        counts = pc.value_counts(table.column(field.name).drop_null()).field("counts")
        fields[field.name] = {
            "role": field.role,
            "distinct": len(counts),
            "seen_twice_or_more": pc.sum(pc.greater_equal(counts, 2)).as_py() or 0,
            "missing_share": table.column(field.name).null_count / table.num_rows,
        }
    distinct = sum(f["distinct"] for f in fields.values())
    rare_fields = [f.name for f in synthetic.CRITEO_FIELDS if f.rare_share]
    return {
        "rows": table.num_rows,
        "click_rate": pc.mean(table.column("label")).as_py(),
        "distinct_ids": distinct,
        "seen_twice_or_more": sum(f["seen_twice_or_more"] for f in fields.values()),
        "distinct_ids_in_fields_with_rare_ids": sum(fields[n]["distinct"] for n in rare_fields)
        / distinct,
        "fields": fields,
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks", "work", "synthetic_speed")
    )
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks", "results", "synthetic_speed.json")
    )
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.repeats <= 0 or min(args.threads) <= 0:
        parser.error("--rows, --repeats and --threads must be positive")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    path = os.path.join(args.work_dir, "rows.csv")
    _io.exists(path)  # TensorFlow's file layer is imported here, not in the first repeat
    runs = {threads: [] for threads in args.threads}
    for repeat in range(args.repeats):
        for threads in args.threads:
            run = time_generation(path, args.rows, args.seed, threads)
            runs[threads].append(run)
            print(
                f"repeat {repeat + 1}, {threads} thread(s): {run['seconds']:.1f} s, "
                f"{run['cpu_seconds']:.1f} CPU s, peak RSS {run['peak_rss_mib']:.0f} MiB, "
                f"load {run['load_average_1min'][0]:.1f} -> {run['load_average_1min'][1]:.1f}",
                flush=True,
            )
    size = os.path.getsize(path)
    print("reading the file back for its shape ...", flush=True)
    shape = file_shape(path)
    variants = {}
    for threads, measured in runs.items():
        variants[f"threads_{threads}"] = {
            "threads": threads,
            "seconds": spread([run["seconds"] for run in measured]),
            "cpu_seconds": spread([run["cpu_seconds"] for run in measured]),
            "peak_rss_mib": max(run["peak_rss_mib"] for run in measured),
            "runs": measured,
        }
    summary = {
        "benchmark": "synthetic_speed",
        "command": " ".join([os.path.relpath(sys.executable, REPO_ROOT), *sys.argv]),
        "date": started.isoformat(timespec="seconds"),
        "code": code_state(),
        "machine": machine_description(("numpy", "pyarrow", "tensorflow")),
        "settings": {
            "profile": "criteo",
            "rows": args.rows,
            "seed": args.seed,
            "repeats": args.repeats,
            "chunk_rows": synthetic.CHUNK_ROWS,
            "csv_bytes": size,
            "bytes_per_row": size / args.rows,
            "target_seconds": TARGET_SECONDS,
        },
        "variants": variants,
        "target_met": {
            name: variant["seconds"]["median"] <= TARGET_SECONDS
            for name, variant in variants.items()
        },
        "shape": shape,
    }
    write_results(summary, markdown(summary), args.out)
    return 0


def markdown(summary: dict) -> str:
    machine, settings, shape = summary["machine"], summary["settings"], summary["shape"]
    lines = [
        "# Synthetic data speed: the `criteo` profile",
        "",
        f'`generate_csv(..., profile="criteo")`, {settings["rows"]:,} rows '
        f"({settings['csv_bytes'] / 2**30:.2f} GiB of CSV, {settings['bytes_per_row']:.0f} "
        f"bytes a row), seed {settings['seed']}, {settings['repeats']} repeats per variant, "
        f"run {summary['date']} on {machine['cpu_model']} ({machine['cpus_usable']} usable "
        f"cores, {machine['memory_gib']} GiB), commit {summary['code']['commit'][:7]}. "
        f"Target: {settings['target_seconds']:.0f} s.",
        "",
        "| threads | median s | mean ± std s | median CPU s | CPU s / s | peak RSS MiB "
        "(before) | load average (1 min) before each run | target met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, variant in summary["variants"].items():
        seconds, cpu = variant["seconds"], variant["cpu_seconds"]
        loads = ", ".join(f"{run['load_average_1min'][0]:.1f}" for run in variant["runs"])
        before = min(run["rss_before_mib"] or 0 for run in variant["runs"])
        lines.append(
            f"| {variant['threads']} | {seconds['median']:.1f} | {seconds['mean']:.1f} ± "
            f"{seconds['std']:.1f} | {cpu['median']:.1f} | {cpu['median'] / seconds['median']:.2f} "
            f"| {variant['peak_rss_mib']:.0f} ({before:.0f}) | {loads} | "
            f"{'yes' if summary['target_met'][name] else 'NO'} |"
        )
    lines += [
        "",
        "Wall seconds depend on what else the machine runs (the load average, out of "
        f"{machine['cpus_usable']} cores); CPU seconds much less. CPU s / s is the share of "
        "one core the run had. On a busy machine a second thread need not raise that share "
        "(Linux's autogroup scheduling shares the cores between sessions, not threads); "
        "on free cores the two threads draw and format two chunks at once.",
        "",
        f"The file: click rate {shape['click_rate']:.4f}; {shape['distinct_ids']:,} distinct "
        f"ids ({shape['seen_twice_or_more']:,} seen twice or more), "
        f"{shape['distinct_ids_in_fields_with_rare_ids']:.0%} of them in the fields with "
        "rare ids.",
        "",
        "| field | role | distinct ids | seen twice or more | missing |",
        "|---|---|---|---|---|",
    ]
    for name, field in shape["fields"].items():
        lines.append(
            f"| {name} | {field['role']} | {field['distinct']:,} | "
            f"{field['seen_twice_or_more']:,} | {field['missing_share']:.1%} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
