"""Running the study's cells through the library's own functions, with a cache on disk.

Layout of the work directory:

    <work>/data/<dataset>/                   the Beam job's artifact (DirectRunner), once
    <work>/<config>/cells/<dataset>/<model>/<method>/seed<k>/
        metrics.json                         the cell's result, written last
        run/ | search/ + retrain/ | ras/     the library's run directories

A cell whose `metrics.json` exists is read back instead of run, so an
interrupted study resumes; an interrupted training run continues from its
own checkpoints (the library's `ResumableFit`), since the run directory is the
same. A cached result made with other settings is an error, not a silent reuse.

Finished cells can also be kept in a `study_store.CellStore` (`--store`).
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Dict, Optional, Tuple

import tensorflow as tf
from machine import code_state
from study_config import (
    CANDIDATES,
    FULL_DIM,
    METHODS,
    Cell,
    Dataset,
    StudyConfig,
    dependencies,
)
from study_mde import mde_plan
from study_store import CELL_RESULT, CellStore, read_json, write_json

from keras_dimsel import amtl
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.autodim.runs import run_retrain, run_search
from keras_dimsel.data import make_reader
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.preprocessing.pipeline import PreprocessConfig
from keras_dimsel.preprocessing.pipeline import run as run_beam_job
from keras_dimsel.training import TrainSettings, run_baseline

#: keras-tuner's oracles treat seed 0 as "no seed" (`seed or random.randint(...)`), which
#: would make RaS's trials depend on what ran before in the process: the oracle gets seed + 1.
RAS_ORACLE_SEED_OFFSET = 1
_PREPROCESS_RECORD = "study_preprocess.json"


class StudyError(RuntimeError):
    """A cell that cannot be run or reused as asked."""


def directory_bytes(path: str) -> int:
    """The total size in bytes of the files under `path` (a SavedModel directory)."""
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


def prepare_dataset(dataset: Dataset, data_root: str, work_dir: str) -> FeatureSpec:
    """The dataset's artifact, made once by the Beam job (DirectRunner) and reused.

    Args:
        dataset: Dataset, what to read and the preprocessing settings.
        data_root: str, the folder holding the public samples.
        work_dir: str, the study's work directory (`<work>/data/<name>` is the artifact).

    Returns:
        The FeatureSpec.

    Raises:
        StudyError: when an input is missing.
    """
    output = os.path.join(work_dir, "data", dataset.name)
    record = {"reader": dataset.reader, "inputs": list(dataset.inputs)}
    record["min_count"] = dataset.min_count
    record_path = os.path.join(output, _PREPROCESS_RECORD)
    if os.path.exists(record_path) and read_json(record_path) == record:
        return FeatureSpec.load(output)
    inputs = [os.path.join(data_root, path) for path in dataset.inputs]
    missing = [path for path in inputs if not os.path.exists(path)]
    if missing:
        raise StudyError(f"{dataset.name}: input(s) not found: {missing} (see --data-root)")
    start = time.perf_counter()
    reader = make_reader(dataset.reader, inputs, output_dir=output)
    spec = run_beam_job(reader, PreprocessConfig(output_dir=output, min_count=dataset.min_count))
    write_json(record_path, record)
    print(
        f"preprocessed {dataset.name} with the Beam job in {time.perf_counter() - start:.1f}s: "
        f"{spec.splits}",
        flush=True,
    )
    return spec


class CellRunner:
    """Runs cells of one configuration, each through the library's functions.

    Args:
        config: StudyConfig.
        work_dir: str, the study's work directory.
        data_root: str, the folder holding the public samples.
        store: str or None, a `CellStore` root: finished cells are copied
            there, and a cell found there is not run again.
    """

    def __init__(
        self, config: StudyConfig, work_dir: str, data_root: str, store: Optional[str] = None
    ):
        self.config = config
        self.work_dir = work_dir
        self.data_root = data_root
        self.store_root = store
        self.store = CellStore(store, config.name) if store else None
        self._specs: Dict[str, FeatureSpec] = {}

    def cell_dir(self, cell: Cell) -> str:
        """The directory of a cell's results and run directories."""
        return os.path.join(self.work_dir, self.config.name, "cells", cell.key)

    def spec(self, dataset_name: str) -> FeatureSpec:
        """The artifact of a dataset, preprocessed on first use."""
        if dataset_name not in self._specs:
            dataset = self.config.dataset(dataset_name)
            self._specs[dataset_name] = prepare_dataset(dataset, self.data_root, self.work_dir)
        return self._specs[dataset_name]

    def cell_settings(self, cell: Cell) -> dict:
        """What a cached result of `cell` must have been run with."""
        method = METHODS[cell.method]
        settings = {
            **self.config.dataset(cell.dataset).settings(),
            "candidates": list(CANDIDATES),
            "full_dim": FULL_DIM,
            "method": {"kind": method.kind, **method.options},
        }
        if method.kind == "ras":
            settings["ras_trials"] = self.config.ras_trials
            settings["oracle_seed"] = cell.seed + RAS_ORACLE_SEED_OFFSET
        return settings

    def cached(self, cell: Cell) -> Optional[dict]:
        """The cell's result when it is in the work directory or the store, else None.

        A cell found only in the store is copied into the work directory; one
        found only in the work directory is copied into the store.

        Raises:
            StudyError: when the cached result was made with other settings.
        """
        directory = self.cell_dir(cell)
        path = os.path.join(directory, CELL_RESULT)
        if not os.path.exists(path) and not (self.store and self.store.restore(cell, directory)):
            return None
        result = read_json(path)
        if result.get("settings") != self.cell_settings(cell):
            raise StudyError(
                f"{path} was made with settings {result.get('settings')}, the configuration "
                f"now asks for {self.cell_settings(cell)}: delete the cell (here and in the "
                "store) or give another --work-dir and --store"
            )
        if self.store and not self.store.has(cell):
            self.store.save(cell, directory)
        return result

    def run(self, cell: Cell) -> dict:
        """The result of `cell`: read from the cache, or trained, exported and written.

        Returns:
            dict with the cell's identity, `auc`, `logloss`, `embedding_params`,
            `full_embedding_params`, `savedmodel_bytes`, `seconds`, the
            `settings` and the method's own details (plan dims, AMTL dims, ...).
        """
        result = self.cached(cell)
        if result is not None:
            return result
        for needed in dependencies(cell):
            self.run(needed)
        spec = self.spec(cell.dataset)
        directory = self.cell_dir(cell)
        os.makedirs(directory, exist_ok=True)
        method = METHODS[cell.method]
        start = time.perf_counter()
        details = _RUNNERS[method.kind](self, cell, spec, directory, dict(method.options))
        result = {
            "dataset": cell.dataset,
            "model": cell.model,
            "method": cell.method,
            "seed": cell.seed,
            "seconds": time.perf_counter() - start,
            "settings": self.cell_settings(cell),
            # A long study can span commits; the report counts the cells of each.
            "code": code_state(),
            **details,
        }
        write_json(os.path.join(directory, CELL_RESULT), result)
        if self.store:
            self.store.save(cell, directory)
        tf.keras.backend.clear_session()  # one process runs every cell
        return result

    def train_settings(self, cell: Cell) -> TrainSettings:
        """The library's training settings for a cell."""
        dataset = self.config.dataset(cell.dataset)
        return TrainSettings(
            epochs=dataset.epochs,
            batch_size=dataset.batch_size,
            seed=cell.seed,
            keep_best=dataset.keep_best,
        )


def attempt(runner: CellRunner, cell: Cell) -> Tuple[Optional[dict], Optional[dict]]:
    """Runs a cell; returns `(result, None)`, or `(None, failure record)` if it raised.

    One broken cell must not lose the others' results; a cached result made
    with other settings (`StudyError`) is a mistake of the caller and raises.
    """
    try:
        return runner.run(cell), None
    except StudyError:
        raise
    except Exception as error:
        traceback.print_exc()
        message = f"{type(error).__name__}: {error}"
        return None, {"kind": "failed_cell", "cell": cell.key, "error": message}


def attempt_in_worker(config, work_dir: str, data_root: str, store: Optional[str], cell: Cell):
    """`attempt` in a worker process, which builds its own `CellRunner`."""
    return attempt(CellRunner(config, work_dir, data_root, store), cell)


def _finished(run_dir: str) -> Optional[dict]:
    """The metrics of a library run directory that finished (it writes metrics.json last)."""
    path = os.path.join(run_dir, "metrics.json")
    return read_json(path) if os.path.exists(path) else None


def _quality(metrics: dict, run_dir: str) -> dict:
    """The common part of a cell's result, from a library run's metrics.json."""
    return {
        "auc": metrics["auc"],
        "logloss": metrics["logloss"],
        "embedding_params": int(metrics["embedding_params"]),
        "full_embedding_params": int(metrics["full_embedding_params"]),
        "savedmodel_bytes": directory_bytes(os.path.join(run_dir, "saved_model")),
        "train_examples_per_second": metrics.get("train_examples_per_second"),
    }


def _run_baseline(runner: CellRunner, cell: Cell, spec, directory: str, options: dict) -> dict:
    run_dir = os.path.join(directory, "run")
    metrics = _finished(run_dir) or run_baseline(
        spec, cell.model, run_dir, dim=FULL_DIM, settings=runner.train_settings(cell)
    )
    return {**_quality(metrics, run_dir), "run_dir": "run"}


def _retrain(runner, cell, spec, plan: DimensionPlan, run_dir: str, unify: str = "linear"):
    return _finished(run_dir) or run_retrain(
        spec, plan, cell.model, run_dir, unify=unify, settings=runner.train_settings(cell)
    )


def _vocab_sizes(spec) -> Dict[str, int]:
    return {field.name: field.vocab_size for field in spec.fields}


def _run_mde(runner: CellRunner, cell: Cell, spec, directory: str, options: dict) -> dict:
    plan = mde_plan(_vocab_sizes(spec), CANDIDATES, options["alpha"])
    run_dir = os.path.join(directory, "run")
    metrics = _retrain(runner, cell, spec, plan, run_dir)
    return {
        **_quality(metrics, run_dir),
        "fields": plan.fields,
        "vocab_sizes": plan.vocab_sizes,
        "run_dir": "run",
    }


def _run_ras(runner: CellRunner, cell: Cell, spec, directory: str, options: dict) -> dict:
    import keras_tuner

    from keras_dimsel.tuning import RandomDimensionTuner, best_plan

    tuner = RandomDimensionTuner(
        spec,
        cell.model,
        keras_tuner.oracles.RandomSearchOracle(
            max_trials=runner.config.ras_trials, seed=cell.seed + RAS_ORACLE_SEED_OFFSET
        ),
        directory=directory,
        project_name="ras",
        candidates=CANDIDATES,
        settings=runner.train_settings(cell),
    )
    tuner.search(verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    run_dir = os.path.join(tuner.get_trial_dir(best.trial_id), "retrain")
    plan = best_plan(tuner)
    return {
        **_quality(read_json(os.path.join(run_dir, "metrics.json")), run_dir),
        "fields": plan.fields,
        "vocab_sizes": plan.vocab_sizes,
        "trials": len(tuner.oracle.trials),
        "best_val_auc": best.metrics.get_best_value("val_auc"),
        "run_dir": os.path.relpath(run_dir, directory),
    }


def _run_autodim(runner: CellRunner, cell: Cell, spec, directory: str, options: dict) -> dict:
    search_dir = os.path.join(directory, "search")
    settings = runner.train_settings(cell)
    if os.path.exists(os.path.join(search_dir, "plan.json")):
        plan = DimensionPlan.load(search_dir)  # finished before an interruption
    else:
        plan = run_search(
            spec, cell.model, search_dir, candidates=CANDIDATES, settings=settings, **options
        )
    run_dir = os.path.join(directory, "retrain")
    metrics = _retrain(runner, cell, spec, plan, run_dir, unify=options.get("unify", "linear"))
    search = read_json(os.path.join(search_dir, "search_metrics.json"))
    steps = -(-spec.splits["train"] // search["batch_size"]) * search["epochs"]
    live = max(0, steps - search["pretrain_steps"])
    return {
        **_quality(metrics, run_dir),
        "fields": plan.fields,
        "vocab_sizes": plan.vocab_sizes,
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


def _run_amtl(runner: CellRunner, cell: Cell, spec, directory: str, options: dict) -> dict:
    warm_start, source_auc = None, None
    if options.pop("warm_start", False):
        source = Cell(cell.dataset, cell.model, "fde", cell.seed)
        warm_start = os.path.join(runner.cell_dir(source), "run")
        # A source read from the store has its result but not its model: train it
        # again (op determinism makes it the same model on the same machine).
        source_auc = _run_baseline(runner, source, spec, runner.cell_dir(source), {})["auc"]
    run_dir = os.path.join(directory, "run")
    metrics = _finished(run_dir) or amtl.run_amtl(
        spec,
        cell.model,
        run_dir,
        max_dim=FULL_DIM,
        warm_start=warm_start,
        settings=runner.train_settings(cell),
        **options,
    )
    sizes = _vocab_sizes(spec)
    masked = metrics["fields"]
    # Over all values of the masked fields: each field weighs by its number of ids.
    average_dim = sum(metrics["average_dim"][f] * sizes[f] for f in masked) / sum(
        sizes[f] for f in masked
    )
    return {
        **_quality(metrics, run_dir),
        "max_dim": metrics["max_dim"],
        "masked_fields": masked,
        "average_dim": average_dim,
        "average_dim_by_field": metrics["average_dim"],
        "dim_by_frequency_group": metrics["dim_by_frequency_group"],
        "warm_start": warm_start is not None,
        **({"warm_start_source_auc": source_auc} if warm_start else {}),
        "run_dir": "run",
    }


def _run_transfer(runner: CellRunner, cell: Cell, spec, directory: str, options: dict) -> dict:
    """Retrains this backbone with the plan another backbone's AutoDim cell searched."""
    source = Cell(cell.dataset, options["source_model"], options["source_method"], cell.seed)
    found = runner.run(source)  # cached: run_cells starts a transfer after its source
    plan = DimensionPlan.load(os.path.join(runner.cell_dir(source), found["search_dir"]))
    run_dir = os.path.join(directory, "run")
    metrics = _retrain(runner, cell, spec, plan, run_dir)
    return {
        **_quality(metrics, run_dir),
        "fields": plan.fields,
        "vocab_sizes": plan.vocab_sizes,
        "source": source.key,
        "run_dir": "run",
    }


_RUNNERS = {
    "baseline": _run_baseline,
    "mde": _run_mde,
    "ras": _run_ras,
    "autodim": _run_autodim,
    "amtl": _run_amtl,
    "transfer": _run_transfer,
}
