"""The whole method at production size: 10M rows of the `criteo` synthetic profile, end to end.

The steps `dimsel run` chains, and AMTL after them, each run as its command
in a process of its own:

1. `dimsel preprocess --dataset synthetic --profile criteo --rows R`: the
   rows, `ground_truth.json` and the Beam job;
2. `dimsel baseline` (DeepFM, every field at 32);
3. `dimsel search` (the default candidates and schedule);
4. `dimsel retrain` of the search's plan;
5. `dimsel amtl --warm-start` from the baseline;
6. the same rows preprocessed again with `--max-vocab-size CAP` (the most
   frequent CAP values of each field keep an id, the others share hash
   buckets), and the baseline trained on them: the AUC cost of the cap, the
   path for tables that outgrow one machine.

Each step's wall seconds, CPU seconds and peak RSS are written to the JSON as
the step ends, with the machine's load average; a step whose results are in
the JSON is not run again, and a killed training step resumes from its own
checkpoints when the script is run again. At the end: the plan found beside
each field's planted role (`interaction`, `scalar`, `noise`), the test AUC
of each model and the bytes of each export.

Usage (from the repository root; about 1.5 hours on 2 cores):

    TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/end_to_end.py \\
        --rows 10000000 --epochs 1 --work-dir benchmarks/work/end_to_end \\
        --out benchmarks/results/end_to_end.json
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import subprocess
import sys
import time
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import (  # noqa: E402
    REPO_ROOT,
    code_state,
    machine_description,
    script_environment,
    write_results,
)

STEPS = (
    "preprocess",
    "baseline",
    "search",
    "retrain",
    "amtl",
    "preprocess_capped",
    "baseline_capped",
)
#: The models whose test metrics and exports the report shows.
MODELS = ("baseline", "retrain", "amtl", "baseline_capped")


def commands(args) -> dict:
    """The command line of each step."""
    work = args.work_dir
    data = os.path.join(work, "data")
    capped = os.path.join(work, "data_capped")
    train = ["--model", "deepfm", "--epochs", str(args.epochs), "--seed", "0"]
    rows = [
        "--dataset",
        "synthetic",
        "--profile",
        "criteo",
        "--rows",
        str(args.rows),
        "--seed",
        "0",
    ]
    return {
        "preprocess": ["preprocess", *rows, "--output", data],
        "baseline": ["baseline", "--data", data, "--output", os.path.join(work, "baseline")]
        + train,
        "search": ["search", "--data", data, "--output", os.path.join(work, "search")] + train,
        "retrain": [
            "retrain", "--data", data, "--output", os.path.join(work, "retrain"),
            "--plan", os.path.join(work, "search", "plan.json"),
        ] + train,
        "amtl": [
            "amtl", "--data", data, "--output", os.path.join(work, "amtl"),
            "--warm-start", os.path.join(work, "baseline"),
        ] + train,
        "preprocess_capped": [
            "preprocess", *rows, "--max-vocab-size", str(args.cap), "--output", capped,
        ],
        "baseline_capped": [
            "baseline", "--data", capped, "--output", os.path.join(work, "baseline_capped"),
        ] + train,
    }  # fmt: skip


def run_step(command: Sequence[str], log: str) -> dict:
    """Runs `dimsel COMMAND` as a child; its wall and CPU seconds and peak RSS."""
    argv = [sys.executable, "-m", "keras_dimsel.cli", *command]
    load = os.getloadavg()[0]
    begin = time.perf_counter()
    with open(log, "a") as out:
        child = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=script_environment()
        )
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - begin
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"dimsel {' '.join(command)} exited with {code}; see {log}")
    return {
        "wall_seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def directory_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def read_json(path: str) -> Optional[dict]:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def outcomes(work: str) -> dict:
    """The plan beside the planted roles, the test metrics and the export sizes."""
    truth_files = glob.glob(os.path.join(work, "data", "**", "ground_truth.json"), recursive=True)
    truth = read_json(truth_files[0]) if truth_files else {}
    plan = read_json(os.path.join(work, "search", "plan.json")) or {}
    spec = read_json(os.path.join(work, "data", "feature_spec.json")) or {}
    roles = {name: field["role"] for name, field in truth.get("fields", {}).items()}
    roles.update({name: field["role"] for name, field in truth.get("numeric", {}).items()})
    sizes = {field["name"]: field["vocab_size"] for field in spec.get("fields", [])}
    capped = read_json(os.path.join(work, "data_capped", "feature_spec.json")) or {}
    fields = [
        {
            "field": name,
            "role": roles.get(name),
            "ids": sizes.get(name),
            "dim": dim,
        }
        for name, dim in plan.get("fields", {}).items()
    ]
    models = {}
    for step in MODELS:
        metrics = read_json(os.path.join(work, step, "metrics.json"))
        if metrics:
            models[step] = {
                "auc": metrics["auc"],
                "logloss": metrics["logloss"],
                "embedding_params": metrics["embedding_params"],
                "saved_model_bytes": directory_bytes(os.path.join(work, step, "saved_model")),
            }
    return {
        "plan": fields,
        "models": models,
        "ids": sum(sizes.values()),
        "capped_ids": sum(field["vocab_size"] for field in capped.get("fields", [])),
    }


def report(summary: dict) -> str:
    lines = [
        "# End to end at production size",
        "",
        f"Command: `{summary['command']}`. Machine: {summary['machine']['cpu_model']}, "
        f"{summary['machine']['cpu_count']} cores, {summary['machine']['memory_gib']} GiB. "
        f"Commit {summary['code']['commit'][:12]}, {summary['date']}.",
        "",
        f"{summary['settings']['rows']:,} rows of the `criteo` synthetic profile, "
        f"{summary['outcomes']['ids']:,} ids in the artifact; DeepFM, "
        f"{summary['settings']['epochs']} epoch(s) per training step. "
        f"`baseline_capped`: the same rows with `--max-vocab-size {summary['settings']['cap']:,}`, "
        f"{summary['outcomes']['capped_ids']:,} ids.",
        "",
        "| step | wall min | CPU min | peak RSS GiB | load before / after |",
        "|---|---:|---:|---:|---|",
    ]
    for step in STEPS:
        record = summary["steps"].get(step)
        if record:
            lines.append(
                f"| {step} | {record['wall_seconds'] / 60:.1f} | {record['cpu_seconds'] / 60:.1f} "
                f"| {record['peak_rss_mib'] / 1024:.2f} | {record['load_before']:.1f} / "
                f"{record['load_after']:.1f} |"
            )
    models = summary["outcomes"]["models"]
    if models:
        lines += [
            "",
            "| model | test AUC | logloss | embedding params | SavedModel MiB |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, m in models.items():
            lines.append(
                f"| {name} | {m['auc']:.4f} | {m['logloss']:.4f} | {m['embedding_params']:,} "
                f"| {m['saved_model_bytes'] / 2**20:,.1f} |"
            )
    plan = summary["outcomes"]["plan"]
    if plan:
        lines += ["", "The plan beside the planted roles:", ""]
        lines += ["| field | planted role | ids | dim |", "|---|---|---:|---:|"]
        for row in sorted(plan, key=lambda r: (str(r["role"]), -(r["dim"] or 0))):
            ids = f"{row['ids']:,}" if row["ids"] else ""
            lines.append(f"| {row['field']} | {row['role']} | {ids} | {row['dim']} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--cap", type=int, default=100_000, help="--max-vocab-size of the capped preprocess"
    )
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks", "work", "end_to_end")
    )
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks", "results", "end_to_end.json")
    )
    args = parser.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    previous = read_json(args.out) or {}
    settings = {"rows": args.rows, "epochs": args.epochs, "cap": args.cap}
    steps = previous.get("steps", {}) if previous.get("settings") == settings else {}
    summary = {
        "benchmark": "end_to_end",
        "command": " ".join(["python", "benchmarks/end_to_end.py", *(argv or sys.argv[1:])]),
        "settings": settings,
        "steps": steps,
    }
    log = os.path.join(args.work_dir, "commands.log")
    for step, command in commands(args).items():
        if step not in steps:
            print(f"{step}: dimsel {' '.join(command)}", flush=True)
            steps[step] = run_step(command, log)
        summary.update(
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            code=code_state(),
            machine=machine_description(),
            outcomes=outcomes(args.work_dir),
        )
        write_results(summary, report(summary), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
