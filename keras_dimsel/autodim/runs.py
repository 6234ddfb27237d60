"""AutoDim's runs: `run_search` writes a plan, `run_retrain` trains the plan's smaller model.

Each takes the artifact (`FeatureSpec`), trains on its train split and
writes into a run directory (`keras_dimsel.training.RunDir`):

- search: `plan.json` (written last), `alpha_history.csv`, TensorBoard
  scalars in `logs/`, `search.png`, `search_metrics.json` and the search
  tables a retrain can warm start from;
- retrain: `metrics.json` (written last), `weights/` and `saved_model/`.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import tensorflow as tf

from keras_dimsel import _io
from keras_dimsel.autodim import DEFAULT_CANDIDATES
from keras_dimsel.autodim.alpha_history import AlphaHistory
from keras_dimsel.autodim.alternating import zip_train_validation
from keras_dimsel.autodim.memory import check_search_memory
from keras_dimsel.autodim.model import planned_model, search_model
from keras_dimsel.autodim.plan import DEFAULT_TOLERANCE, DERIVE_METHODS, PLAN_FILE, DimensionPlan
from keras_dimsel.autodim.probe import probe_losses
from keras_dimsel.autodim.report import plot_search
from keras_dimsel.autodim.search_tables import (
    SEARCH_TABLES,
    load_warm_start_tables,
    save_search_tables,
)
from keras_dimsel.autodim.temperature import TemperatureSchedule
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.training import (
    DEFAULT_LEARNING_RATE,
    RunDir,
    TrainSettings,
    epoch_seed,
    fit_resumably,
    seed_everything,
    train_and_export,
)
from keras_dimsel.training.memory import default_budget
from keras_dimsel.training.optimizers import network_optimizer

#: How far (in logits) alpha can travel over a search by default; see run_search.
ARCH_TRAVEL = 3.0
#: The search's settings and throughput, beside its plan.
SEARCH_METRICS = "search_metrics.json"

__all__ = ["DEFAULT_CANDIDATES", "SEARCH_TABLES", "run_retrain", "run_search"]


def run_search(
    spec: FeatureSpec,
    model_name: str,
    output: str,
    candidates: Sequence[int] = DEFAULT_CANDIDATES,
    storage: str = "shared",
    unify: str = "linear",
    arch_every: int = 10,
    pretrain_steps: Optional[int] = None,
    mode: str = "alternating",
    arch_learning_rate: Optional[float] = None,
    hard: bool = False,
    rank_scaling: bool = True,
    temperature_schedule: Optional[TemperatureSchedule] = None,
    anneal_fraction: Optional[float] = None,
    budget: Optional[float] = None,
    derive: str = "alpha",
    tolerance: float = DEFAULT_TOLERANCE,
    settings: Optional[TrainSettings] = None,
    memory_budget: Optional[int] = None,
    learning_rate: float = DEFAULT_LEARNING_RATE,
) -> DimensionPlan:
    """Searches one dimension per field (AutoDim) and writes `plan.json`.

    `pretrain_steps=None` pre-trains the network with alpha frozen for the
    first half epoch. `arch_learning_rate=None` scales alpha's Adam step to
    the number of alpha updates the run will make: the paper's 0.001 assumes
    thousands of updates (20,000 steps per Criteo epoch); on a small data set
    the same rate would leave alpha where it started, so the rate is raised to
    `ARCH_TRAVEL / updates` (Adam moves a logit by at most about the rate per
    update), never below 0.001. `hard` samples one candidate per example with
    a straight-through gradient; `rank_scaling` is `CandidateEmbedding`'s
    correction of linear candidates; `temperature_schedule=None` is the
    paper's `TemperatureSchedule()`, unless `anneal_fraction` is given: then
    the temperature reaches its floor after that fraction of this run's
    training examples (`TemperatureSchedule.relative`). `budget` (a fraction of the full
    model's embedding parameters) derives the most probable plan that fits it
    instead of the plain argmax (`DimensionPlan.within_budget`).

    `derive="alpha"` takes the argmax of alpha (the paper's Eq. 13);
    `derive="probe"` evaluates the searched model on the validation split with
    each field forced to each candidate and keeps, per field, the smallest
    candidate within `tolerance` of its best loss (`DimensionPlan.from_losses`).
    A probe compares candidates the supernet has trained equally, so with
    `derive="probe"` and `pretrain_steps=None` alpha stays at equal weights
    for the whole run (a one-shot supernet); trained alpha starves the
    candidates it turns away from, and their probe losses then say little.

    Besides `plan.json`, the run directory gets `alpha_history.csv`, the
    TensorBoard scalars in `logs/`, `search.png`, `search_metrics.json` and
    the search tables a retrain can warm start from.

    Args:
        spec: FeatureSpec, the artifact (its validation split fits alpha).
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        output: str, the run directory.
        candidates: sequence of int, the candidate dimensions d_1 < ... < d_N.
        storage: str, `"shared"` or `"separate"` candidate tables.
        unify: str, `"linear"` or `"zero_pad"`.
        arch_every: int, network steps per alpha update.
        pretrain_steps: int or None, first steps with alpha frozen (see above).
        mode: str, `"alternating"` or `"joint"` (see `AlternatingSearch`).
        arch_learning_rate: float or None, alpha's Adam rate (see above).
        hard: bool, straight-through one-hot selection.
        rank_scaling: bool, see `CandidateEmbedding`.
        temperature_schedule: TemperatureSchedule or None.
        anneal_fraction: float in (0, 1] or None, see above; not with
            `temperature_schedule`.
        budget: float in (0, 1] or None, see above.
        derive: str, `"alpha"` or `"probe"`.
        tolerance: float, the probe loss tolerance (`derive="probe"`).
        settings: TrainSettings or None (the defaults).
        memory_budget: int or None, bytes the supernet may take in training
            (`keras_dimsel.autodim.memory`); None is 80% of the physical memory.
        learning_rate: float > 0, the network's Adam rate (the paper's 0.001).

    Returns:
        The DimensionPlan written to `plan.json`.

    Raises:
        ValueError: on an unknown `derive`, an empty validation split, or a
            budget no plan can fit.
        MemoryBudgetError: when the supernet's estimated memory exceeds
            `memory_budget` (checked before anything is built).

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))  # doctest: +SKIP
        >>> settings = TrainSettings(epochs=1, batch_size=64)
        >>> output = os.path.join(directory, "search")
        >>> plan = run_search(  # doctest: +SKIP
        ...     spec, "fm", output, candidates=(2, 8), settings=settings
        ... )
        >>> DimensionPlan.load(output) == plan  # doctest: +SKIP
        True
    """
    settings = (settings or TrainSettings()).resolve(spec)
    if derive not in DERIVE_METHODS:
        raise ValueError(f"`derive` must be one of {DERIVE_METHODS}. Received: derive={derive!r}")
    if spec.splits.get("validation", 0) <= 0:
        raise ValueError(
            f"the validation split of {spec.directory} is empty: the search fits alpha on "
            "validation batches (give the preprocessing a validation ratio, e.g. --split 8:1:1)"
        )
    if budget is not None and not min(candidates) / max(candidates) <= budget <= 1:
        # Checked before the search: the smallest plan is d_1 / d_N of the full model.
        raise ValueError(
            f"no plan fits a budget of {budget:g}: with candidates {tuple(candidates)} the "
            f"smallest plan takes {min(candidates) / max(candidates):.1%} of the full model"
        )
    steps_per_epoch = settings.steps_per_epoch(spec)
    total_steps = steps_per_epoch * settings.epochs
    if anneal_fraction is not None:
        if temperature_schedule is not None:
            raise ValueError("give `temperature_schedule` or `anneal_fraction`, not both")
        temperature_schedule = TemperatureSchedule.relative(
            total_steps * settings.batch_size,  # as `TemperatureAnnealing` counts them
            anneal_fraction,
        )
    vocab_sizes = {field.name: field.vocab_size for field in spec.fields}
    print(
        check_search_memory(
            vocab_sizes,
            candidates,
            storage,
            default_budget() if memory_budget is None else memory_budget,
            settings.embedding_optimizer,
        )
    )
    seed_everything(settings.seed)
    _io.makedirs(output)
    if pretrain_steps is None:
        # Probing needs every candidate trained: alpha stays at equal weights throughout.
        pretrain_steps = total_steps if derive == "probe" else steps_per_epoch // 2
    model = search_model(
        model_name,
        spec,
        candidates=candidates,
        storage=storage,
        unify=unify,
        rank_scaling=rank_scaling,
        hard=hard,
        seed=settings.seed,
    )
    if arch_learning_rate is None:
        updates = max(1, (total_steps - pretrain_steps) // (1 if mode == "joint" else arch_every))
        arch_learning_rate = max(DEFAULT_LEARNING_RATE, ARCH_TRAVEL / updates)
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be positive. Received: {learning_rate!r}")
    model.compile(
        optimizer=network_optimizer(settings.embedding_optimizer, learning_rate),
        arch_optimizer=tf.keras.optimizers.Adam(arch_learning_rate),
        arch_every=arch_every,
        pretrain_steps=pretrain_steps,
        mode=mode,
        temperature_schedule=temperature_schedule,
    )
    model.build_weights()
    history = AlphaHistory(
        model.field_embeddings,
        os.path.join(output, "alpha_history.csv"),
        log_dir=os.path.join(output, "logs"),
    )
    train_epochs = settings.train_epochs(spec)

    def epoch_data(epoch: int) -> tf.data.Dataset:
        # Alpha's validation batches, in an order of their own per epoch.
        validation = make_dataset(
            spec,
            "validation",
            settings.batch_size,
            shuffle=True,
            seed=epoch_seed(settings.seed + 1, epoch),
        )
        return zip_train_validation(train_epochs(epoch), validation, arch_every)

    options = {
        "command": "search",
        "model": model_name,
        "candidates": list(candidates),
        "storage": storage,
        "unify": unify,
        "arch_every": arch_every,
        "pretrain_steps": pretrain_steps,
        "mode": mode,
        "arch_learning_rate": arch_learning_rate,
        "learning_rate": learning_rate,
        "hard": hard,
        "rank_scaling": rank_scaling,
        "temperature_schedule": _describe_schedule(model.temperature_schedule),
    }
    run, examples_per_second, kept = fit_resumably(
        model, spec, settings, output, options, epoch_data=epoch_data, callbacks=[history]
    )
    vocab_sizes = {name: spec.field(name).vocab_size for name in model.field_names}
    alpha = model.field_embeddings.selection_probabilities()
    if derive == "probe":
        losses = probe_losses(model, make_dataset(spec, "validation", settings.batch_size))
        plan = DimensionPlan.from_losses(
            losses, tuple(candidates), vocab_sizes, tolerance, budget, alpha=alpha
        )
    else:
        plan = DimensionPlan.from_alpha(alpha, tuple(candidates), vocab_sizes, budget)
    save_search_tables(model.field_embeddings, os.path.join(output, SEARCH_TABLES))
    run_dir = RunDir(output, done=PLAN_FILE)
    run_dir.write_json(
        SEARCH_METRICS,
        {
            "model": model_name,
            "train_examples_per_second": examples_per_second,
            "epochs": settings.epochs,
            "batch_size": settings.batch_size,
            "pretrain_steps": pretrain_steps,
            "arch_every": arch_every,
            "arch_learning_rate": arch_learning_rate,
            "learning_rate": learning_rate,
            "storage": storage,
            "unify": unify,
            "mode": mode,
            "hard": hard,
            "rank_scaling": rank_scaling,
            "budget": budget,
            "derive": derive,
            "tolerance": tolerance if derive == "probe" else None,
            "temperature_schedule": _describe_schedule(model.temperature_schedule),
            **kept,
        },
    )
    plot_search(history.rows, plan, run_dir.join("search.png"))
    plan.save(run_dir.join(PLAN_FILE))  # last: a search directory with plan.json is complete
    run.remove()
    return plan


def _describe_schedule(schedule) -> object:
    return schedule.get_config() if hasattr(schedule, "get_config") else repr(schedule)


def run_retrain(
    spec: FeatureSpec,
    plan: DimensionPlan,
    model_name: str,
    output: str,
    unify: str = "linear",
    warm_start: Optional[str] = None,
    settings: Optional[TrainSettings] = None,
) -> dict:
    """Retrains a physically smaller model with the plan's dimensions and exports it.

    `warm_start` names a search run directory: each table then starts from the
    search table of its field (the first `dim` columns of the shared table, or
    the separate table of the chosen dim) instead of a random initialisation.

    Args:
        spec: FeatureSpec, the artifact the plan was searched on.
        plan: DimensionPlan, the dimension of every field.
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        output: str, the run directory.
        unify: str, `"linear"` or `"zero_pad"` (models that need equal dimensions).
        warm_start: str or None, a `run_search` output directory.
        settings: TrainSettings or None (the defaults).

    Returns:
        The metrics written to `metrics.json`, with the plan's `fields`.

    Raises:
        ValueError: when the plan does not match the fields or vocabulary sizes of `spec`.

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))  # doctest: +SKIP
        >>> settings = TrainSettings(epochs=1, batch_size=64)
        >>> search = os.path.join(directory, "search")
        >>> plan = run_search(  # doctest: +SKIP
        ...     spec, "fm", search, candidates=(2, 8), settings=settings
        ... )
        >>> output = os.path.join(directory, "autodim")
        >>> metrics = run_retrain(  # doctest: +SKIP
        ...     spec, plan, "fm", output, warm_start=search, settings=settings
        ... )
        >>> metrics["embedding_params"] == plan.embedding_params  # doctest: +SKIP
        True
    """
    settings = (settings or TrainSettings()).resolve(spec)
    plan.check_fields(spec.field_names)
    for name, vocab_size in plan.vocab_sizes.items():
        if spec.field(name).vocab_size != vocab_size:
            raise ValueError(
                f"the plan was searched on other data: field {name!r} has vocab_size "
                f"{vocab_size} in the plan and {spec.field(name).vocab_size} in {spec.directory}"
            )
    seed_everything(settings.seed)
    _io.makedirs(output)
    model = planned_model(model_name, spec, plan, unify)
    if warm_start:
        tables = load_warm_start_tables(warm_start, plan)
        for name, table in tables.items():
            model.field_embeddings.embeddings[name].warm_start_from(table)
    extra = {
        "model": model_name,
        "full_embedding_params": plan.full_embedding_params,
        "fields": plan.fields,
        "warm_start": warm_start,
    }
    options = {
        "command": "retrain",
        "model": model_name,
        "fields": dict(plan.fields),
        "candidates": list(plan.candidates),
        "unify": unify,
        "warm_start": warm_start,
    }
    return train_and_export(model, spec, settings, output, options, extra)
