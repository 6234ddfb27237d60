"""Does a row-sparse embedding optimizer lose AUC? Each choice beside dense Adam, same runs.

For each dataset sample in `../shared/data` (MovieLens-100K, Criteo, Avazu,
Frappe, as the benchmark study reads them), each backbone (`--models`) and
each seed, the full-dimension baseline (`dimsel baseline`: the library's
default epochs, keeping the epoch of best validation AUC as the study does)
is trained once per `--embedding-optimizer` (`--optimizers`). The table gives
test AUC and logloss as mean ± std over the seeds, and the difference of each
optimizer to dense Adam paired by seed (mean ± std of the per-seed
differences). Every run is a pipeline step in `--work-dir`, so an interrupted
benchmark resumes where it stopped.

Usage (from the repository root):

    .venv/bin/python benchmarks/optimizer_quality.py \
        --out benchmarks/results/optimizer_quality.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import REPO_ROOT, code_state, machine_description, write_results  # noqa: E402

DATA_ROOT = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
#: The samples, as the benchmark study reads them: (reader, inputs under the data root).
DATASETS = {
    "movielens-100k": ("movielens-100k", ("ml-100k",)),
    "criteo": ("criteo", ("criteo/train_head10k.txt",)),
    "avazu": ("avazu", ("avazu/train_first8999.csv", "avazu/extra_1000_noheader.csv")),
    "frappe": ("frappe", ("frappe/frappe.validation.libfm.gz", "frappe/frappe.test.libfm.gz")),
}


def artifact(dataset: str, data_root: str, work_dir: str):
    """The preprocessed sample (made once, then read back)."""
    from keras_dimsel import pipeline
    from keras_dimsel.data import make_reader
    from keras_dimsel.preprocessing.pipeline import PreprocessConfig

    reader_name, inputs = DATASETS[dataset]
    output = os.path.join(work_dir, dataset, "data")
    reader = make_reader(reader_name, [os.path.join(data_root, path) for path in inputs])
    return pipeline.preprocess(reader, PreprocessConfig(output_dir=output))


def run_cell(spec, dataset: str, model: str, seed: int, optimizer: str, work_dir: str) -> dict:
    from keras_dimsel import pipeline
    from keras_dimsel.training import TrainSettings

    settings = TrainSettings(seed=seed, keep_best=True, embedding_optimizer=optimizer)
    output = os.path.join(work_dir, dataset, model, optimizer, f"seed{seed}")
    started = time.perf_counter()
    metrics = pipeline.baseline(spec, model, output, settings=settings)
    return {
        "dataset": dataset,
        "model": model,
        "seed": seed,
        "embedding_optimizer": optimizer,
        "auc": metrics["auc"],
        "logloss": metrics["logloss"],
        "best_epoch": metrics.get("best_epoch"),
        "train_examples_per_second": metrics.get("train_examples_per_second"),
        "seconds": time.perf_counter() - started,
    }


def _mean_std(values: Sequence[float]) -> tuple:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(records: list, optimizers: Sequence[str]) -> list:
    """Per (dataset, model, optimizer): AUC and logloss over seeds, and the paired AUC
    difference to dense Adam."""
    rows = []
    groups = sorted({(r["dataset"], r["model"]) for r in records})
    for dataset, model in groups:
        cell = [r for r in records if (r["dataset"], r["model"]) == (dataset, model)]
        adam = {r["seed"]: r for r in cell if r["embedding_optimizer"] == "adam"}
        for optimizer in optimizers:
            runs = sorted(
                (r for r in cell if r["embedding_optimizer"] == optimizer), key=lambda r: r["seed"]
            )
            if not runs:
                continue
            row = {
                "dataset": dataset,
                "model": model,
                "embedding_optimizer": optimizer,
                "seeds": [r["seed"] for r in runs],
                "auc": _mean_std([r["auc"] for r in runs]),
                "logloss": _mean_std([r["logloss"] for r in runs]),
            }
            paired = [r["auc"] - adam[r["seed"]]["auc"] for r in runs if r["seed"] in adam]
            if paired and optimizer != "adam":
                row["auc_minus_adam"] = _mean_std(paired)
            rows.append(row)
    return rows


def markdown(summary: dict) -> str:
    machine = summary["machine"]
    lines = [
        "# Embedding optimizers: test AUC beside dense Adam",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores, "
        f"{machine['memory_gib']} GiB, TensorFlow {machine['tensorflow']}. Commit "
        f"{(summary['code']['commit'] or 'unknown')[:12]}, {summary['date']}.",
        "",
        f"Command: `{summary['command']}`",
        "",
        "Full-dimension baseline (dim 32), the library's default epochs and batch size, the "
        "epoch of best validation AUC kept; mean ± std over seeds "
        f"{summary['settings']['seeds']}. `Δ AUC` is the optimizer's AUC minus dense Adam's, "
        "paired by seed.",
        "",
        "| dataset | model | embedding optimizer | test AUC | Δ AUC vs adam | test logloss |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["table"]:
        auc, logloss = row["auc"], row["logloss"]
        delta = row.get("auc_minus_adam")
        shown = f"{delta[0]:+.4f} ± {delta[1]:.4f}" if delta else ""
        lines.append(
            f"| {row['dataset']} | {row['model']} | {row['embedding_optimizer']} | "
            f"{auc[0]:.4f} ± {auc[1]:.4f} | {shown} | {logloss[0]:.4f} ± {logloss[1]:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=["fm", "deepfm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--optimizers", nargs="+", default=["lazy_adam", "adam", "adagrad"])
    parser.add_argument("--data-root", default=DATA_ROOT)
    parser.add_argument(
        "--work-dir", default=os.path.join(tempfile.gettempdir(), "keras_dimsel_optimizer_quality")
    )
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks/results/optimizer_quality.json")
    )
    args = parser.parse_args(argv)

    from keras_dimsel.training import exempt_keras_from_autograph

    exempt_keras_from_autograph()
    records = []
    summary = {
        "benchmark": "optimizer_quality",
        "command": " ".join(["python", "benchmarks/optimizer_quality.py", *(argv or sys.argv[1:])]),
        "settings": {k: getattr(args, k) for k in ("datasets", "models", "seeds", "optimizers")},
    }
    for dataset in args.datasets:
        spec = artifact(dataset, args.data_root, args.work_dir)
        for model in args.models:
            for seed in args.seeds:
                for optimizer in args.optimizers:
                    record = run_cell(spec, dataset, model, seed, optimizer, args.work_dir)
                    records.append(record)
                    print(
                        f"{dataset}/{model}/seed{seed}/{optimizer}: AUC {record['auc']:.4f} "
                        f"({record['seconds']:.0f} s)",
                        flush=True,
                    )
                summary.update(
                    date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    code=code_state(),
                    machine=machine_description(),
                    records=records,
                    table=summarize(records, args.optimizers),
                )
                write_results(summary, markdown(summary), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
