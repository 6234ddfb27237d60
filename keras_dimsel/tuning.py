"""Tuning the search's own hyperparameters, and the RaS baseline, with keras-tuner oracles.

keras-tuner's `Tuner` builds and fits Keras 3 models, and the runs here train
tf_keras models through `keras_dimsel.pipeline`. Both tuners therefore derive
from keras-tuner's `BaseTuner`, which only asks an oracle for a trial, calls
`run_trial` and hands the metrics it returns back to the oracle; any oracle
works (`RandomSearchOracle`, `BayesianOptimizationOracle`, `HyperbandOracle`, ...).

- `SearchTuner` runs `run_search` with each trial's values (the update
  frequency f, the temperature rate, alpha's learning rate, ...), retrains the
  plan (`run_retrain`) and scores the retrained model.
- `RandomDimensionTuner` draws one candidate per field and retrains that plan:
  the RaS baseline of the AutoDim paper, best of N with
  `RandomSearchOracle(max_trials=N)`.

A trial reports `val_auc` and `val_logloss` of the retrained model on the
validation split, and the plan's `embedding_params`. The objective is
`OBJECTIVE`, the validation AUC: the oracle never sees the test split, so
the test metrics each retrain writes to its `metrics.json` stay an unbiased
report of the trial the oracle picks. Every trial uses the same seed,
so trials differ by their values, not by their luck.

Files, under `directory/project_name/`:

- `oracle.json`, `tuner0.json` and `trial_<id>/trial.json`: keras-tuner's state;
- `trial_<id>/search/`: the `run_search` directory (`SearchTuner` only);
- `trial_<id>/retrain/`: the `run_retrain` directory, with test metrics.

Tuning again with the same directory, project and settings (`overwrite=False`)
reloads the finished trials and runs only those the oracle still asks for (a
larger `max_trials` adds trials). A trial that was interrupted runs again: a
finished search or retrain is read back, an unfinished one continues from its
checkpoints.

With a `HyperbandOracle`, the budget of a trial (`tuner/epochs`) is the number
of epochs of its search and of its retrain; each trial trains from scratch.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Callable, Optional, Sequence, Union

try:
    import keras_tuner
    from keras_tuner.engine.base_tuner import BaseTuner
except ImportError as error:  # the optional `tune` extra
    raise ImportError(
        "keras_dimsel.tuning needs keras-tuner: pip install 'keras_dimsel[tune]'"
    ) from error

from keras_dimsel import pipeline
from keras_dimsel.autodim import DEFAULT_CANDIDATES
from keras_dimsel.autodim.model import planned_model
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.autodim.runs import run_search
from keras_dimsel.autodim.temperature import DEFAULT_RATE, TemperatureSchedule
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.models import MODELS
from keras_dimsel.training import DEFAULT_LEARNING_RATE, RunDir, TrainSettings

#: What the tuners maximise: the AUC of the retrained model on the validation split.
OBJECTIVE = keras_tuner.Objective("val_auc", "max")
#: The metrics every trial reports to the oracle.
TRIAL_METRICS = ("val_auc", "val_logloss", "embedding_params")
#: The update frequencies f of the default space; the paper compares 1, 5, 10 and 20 (§3.7).
ARCH_EVERY_CHOICES = (1, 5, 10, 20)
#: The range of alpha's Adam rate: the paper's 0.001 is the floor of `run_search`'s own
#: rule, which raises the rate on small data sets where alpha gets few updates.
ARCH_LEARNING_RATE_RANGE = (1e-3, 1.0)
#: The range of the network's learning rate, a decade either side of the paper's 0.001.
LEARNING_RATE_RANGE = (1e-4, 1e-2)
#: The range of the temperature rate, wider above the paper's rate than below: a search
#: on a small data set sees few reference steps and anneals only with a faster rate.
TEMPERATURE_RATE_RANGE = (DEFAULT_RATE / 10, DEFAULT_RATE * 100)

# The run_search arguments a tuner may fix or tune; the rest are the tuner's own.
_SEARCH_ARGUMENTS = tuple(
    name
    for name in inspect.signature(run_search).parameters
    if name not in ("spec", "model_name", "output", "settings")
)
_SEARCH = "search"
_RETRAIN = "retrain"


def search_space(hp: keras_tuner.HyperParameters) -> dict:
    """The default space of `SearchTuner`: update frequency, temperature rate, learning rates.

    Declares four hyperparameters on `hp` and returns the `run_search`
    keyword arguments they stand for:

    - `arch_every`: the update frequency f, one of `ARCH_EVERY_CHOICES`
      (default 10, the paper's best);
    - `temperature_rate`: the rate of `TemperatureSchedule`, log-uniform in
      `TEMPERATURE_RATE_RANGE` (default the paper's 0.00005);
    - `arch_learning_rate`: alpha's Adam rate, log-uniform in
      `ARCH_LEARNING_RATE_RANGE` (default the paper's 0.001);
    - `learning_rate`: the network's Adam rate, log-uniform in
      `LEARNING_RATE_RANGE` (default the paper's 0.001).

    A space of one's own is any function of this shape; it may tune every
    `run_search` argument (`pretrain_steps`, `storage`, `budget`, ...).

    Args:
        hp: keras_tuner.HyperParameters, the trial's values (or an empty set,
            which declares the space and takes the defaults).

    Returns:
        dict of `run_search` keyword arguments: `arch_every`,
        `arch_learning_rate`, `learning_rate` and `temperature_schedule`.

    Examples:

        >>> hp = keras_tuner.HyperParameters()
        >>> options = search_space(hp)
        >>> options["arch_every"], options["arch_learning_rate"]
        (10, 0.001)
        >>> options["temperature_schedule"]
        TemperatureSchedule(floor=0.01, rate=5e-05, reference_batch_size=2000)
        >>> [parameter.name for parameter in hp.space]
        ['arch_every', 'temperature_rate', 'arch_learning_rate', 'learning_rate']

        A space of one's own, here the number of pre-training steps as well:

        >>> def my_space(hp):
        ...     return {
        ...         **search_space(hp),
        ...         "pretrain_steps": hp.Int("pretrain_steps", 0, 1000, step=250),
        ...     }
        >>> my_space(keras_tuner.HyperParameters())["pretrain_steps"]
        0
    """
    arch_every = hp.Choice("arch_every", list(ARCH_EVERY_CHOICES), default=10)
    rate = hp.Float(
        "temperature_rate",
        min_value=TEMPERATURE_RATE_RANGE[0],
        max_value=TEMPERATURE_RATE_RANGE[1],
        sampling="log",
        default=DEFAULT_RATE,
    )
    arch_learning_rate = hp.Float(
        "arch_learning_rate",
        min_value=ARCH_LEARNING_RATE_RANGE[0],
        max_value=ARCH_LEARNING_RATE_RANGE[1],
        sampling="log",
        default=DEFAULT_LEARNING_RATE,
    )
    learning_rate = hp.Float(
        "learning_rate",
        min_value=LEARNING_RATE_RANGE[0],
        max_value=LEARNING_RATE_RANGE[1],
        sampling="log",
        default=DEFAULT_LEARNING_RATE,
    )
    return {
        "arch_every": arch_every,
        "arch_learning_rate": arch_learning_rate,
        "learning_rate": learning_rate,
        "temperature_schedule": TemperatureSchedule(rate=rate),
    }


def validation_metrics(
    spec: FeatureSpec,
    model_name: str,
    plan: DimensionPlan,
    run_dir: str,
    unify: str = "linear",
    batch_size: int = 2000,
) -> dict:
    """AUC and logloss on the validation split of a `run_retrain` run's model.

    Rebuilds the planned model and reads the weights the run wrote
    (`RUN/weights/model`); `run_retrain` itself reports the test split only.

    Args:
        spec: FeatureSpec, the artifact (its validation split is read).
        model_name: str, `fm`, `wide_deep` or `deepfm`, as retrained.
        plan: DimensionPlan, the plan the run retrained.
        run_dir: str, the `run_retrain` output directory.
        unify: str, `"linear"` or `"zero_pad"`, as retrained.
        batch_size: int, examples per batch.

    Returns:
        dict with `val_auc` and `val_logloss`.

    Raises:
        FileNotFoundError: when `run_dir` holds no trained weights.
        ValueError: when the validation split is empty.

    Examples:

        The weights of a model written as a retrain writes them, then read back:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> plan = DimensionPlan(
        ...     fields={name: 2 for name in spec.field_names},
        ...     candidates=(2, 8),
        ...     vocab_sizes={field.name: field.vocab_size for field in spec.fields},
        ... )
        >>> model = planned_model("fm", spec, plan)
        >>> model.build_weights()
        >>> run_dir = os.path.join(directory, "retrain")
        >>> _ = model.network_weights().write(RunDir(run_dir).weights)
        >>> metrics = validation_metrics(spec, "fm", plan, run_dir, batch_size=64)
        >>> sorted(metrics)
        ['val_auc', 'val_logloss']
        >>> 0.0 <= metrics["val_auc"] <= 1.0
        True
    """
    if spec.splits.get("validation", 0) <= 0:
        raise ValueError(f"the validation split of {spec.directory} is empty")
    run = RunDir(run_dir)
    if not run.has_weights():
        raise FileNotFoundError(
            f"{run_dir} holds no trained weights ({run.weights}.index not found)"
        )
    model = planned_model(model_name, spec, plan, unify)
    validation = make_dataset(spec, "validation", batch_size)
    model.build_weights()
    model.network_weights().read(run.weights).assert_existing_objects_matched()
    model.compile()
    results = model.evaluate(validation, return_dict=True, verbose=0)
    return {"val_auc": float(results["auc"]), "val_logloss": float(results["logloss"])}


def _check_oracle(oracle) -> None:
    """Gives an oracle without objective `OBJECTIVE`; refuses objectives no trial reports."""
    if not isinstance(oracle, keras_tuner.Oracle):
        raise ValueError(f"`oracle` must be a keras_tuner Oracle. Received: oracle={oracle!r}")
    if oracle.objective.name == "default_objective":
        oracle.objective = OBJECTIVE
    names = getattr(oracle.objective, "name_to_direction", {oracle.objective.name: None})
    unknown = [name for name in names if name not in TRIAL_METRICS]
    if unknown:
        raise ValueError(
            f"The oracle's objective must be among the trial metrics {TRIAL_METRICS}. "
            f"Received: objective={oracle.objective}"
        )


def _check_model_name(model_name: str) -> None:
    if model_name not in MODELS:
        raise ValueError(
            f"`model_name` must be one of {tuple(MODELS)}. Received: model_name={model_name!r}"
        )


def _trial_settings(settings: TrainSettings, hp: keras_tuner.HyperParameters) -> TrainSettings:
    """The settings of one trial: a Hyperband budget (`tuner/epochs`) sets the epochs."""
    epochs = hp.values.get("tuner/epochs")
    return settings if epochs is None else dataclasses.replace(settings, epochs=int(epochs))


def _retrain_and_validate(
    spec: FeatureSpec,
    model_name: str,
    plan: DimensionPlan,
    output: str,
    unify: str,
    settings: TrainSettings,
    warm_start: Optional[str] = None,
) -> dict:
    """Retrains the plan into `output` (unless it is done) and returns the trial metrics."""
    pipeline.retrain(
        spec, plan, model_name, output, unify=unify, warm_start=warm_start, settings=settings
    )
    metrics = validation_metrics(spec, model_name, plan, output, unify, settings.batch_size)
    metrics["embedding_params"] = plan.embedding_params
    return metrics


def _completed(trial) -> bool:
    return trial.status == keras_tuner.engine.trial.TrialStatus.COMPLETED


class SearchTuner(BaseTuner):
    """Tunes the AutoDim search's own hyperparameters on validation AUC.

    Each trial runs `run_search` with the fixed `search_options` and the
    values `space` gives for the trial, into `trial_<id>/search`, retrains the
    plan into `trial_<id>/retrain` and reports the retrained model's
    `val_auc`, `val_logloss` and `embedding_params` (see the module
    docstring for the files and for resuming).

    Args:
        spec: FeatureSpec, the artifact (its validation split fits alpha and
            scores the trials).
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        oracle: keras_tuner.Oracle, e.g. `keras_tuner.oracles.RandomSearchOracle(max_trials=20)`;
            one made without an objective gets `OBJECTIVE`.
        directory: str, where the project folder goes.
        project_name: str, the project folder.
        search_options: dict or None, `run_search` arguments every trial
            shares (e.g. `{"candidates": (2, 4, 8, 16)}`). The retrain unifies
            dimensions as the search did (`unify`, fixed or tuned).
        space: callable from `keras_tuner.HyperParameters` to a dict of
            `run_search` arguments (default `search_space`).
        settings: TrainSettings or None, the training of the search (the defaults).
        retrain_settings: TrainSettings or None, the training of the retrain
            (default: `settings`).
        warm_start: bool, start the retrain from the trial's search tables
            (`run_retrain(warm_start=...)`) instead of from scratch.
        overwrite: bool, delete the project folder first instead of resuming it.

    Raises:
        ValueError: on an unknown model, an oracle whose objective no trial
            reports, an unknown `run_search` argument, or an argument both
            fixed and tuned.

    Examples:

        >>> import tempfile
        >>> directory = tempfile.mkdtemp()
        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=tuple(
        ...         FieldSpec(name, "categorical", size, f"vocab/{name}.txt")
        ...         for name, size in {"user": 79, "item": 71, "device": 9}.items()
        ...     ),
        ...     splits={"train": 160, "validation": 20, "test": 20},
        ... )
        >>> tuner = SearchTuner(
        ...     spec,
        ...     "fm",
        ...     keras_tuner.oracles.BayesianOptimizationOracle(max_trials=10, seed=1),
        ...     directory=os.path.join(directory, "tuning"),
        ...     search_options={"candidates": (2, 8)},
        ...     settings=TrainSettings(epochs=1, batch_size=128),
        ... )
        >>> tuner.search(verbose=0)  # doctest: +SKIP
        >>> best = tuner.oracle.get_best_trials(1)[0]  # doctest: +SKIP
        >>> best.hyperparameters.values  # doctest: +SKIP
        {'arch_every': 10, 'temperature_rate': 0.0004..., 'arch_learning_rate': 0.21..., ...}
        >>> best_plan(tuner).fields  # doctest: +SKIP
        {'user': 8, 'item': 8, ...}
    """

    def __init__(
        self,
        spec: FeatureSpec,
        model_name: str,
        oracle: keras_tuner.Oracle,
        directory: str,
        project_name: str = "search_tuning",
        search_options: Optional[dict] = None,
        space: Callable[[keras_tuner.HyperParameters], dict] = search_space,
        settings: Optional[TrainSettings] = None,
        retrain_settings: Optional[TrainSettings] = None,
        warm_start: bool = False,
        overwrite: bool = False,
    ):
        _check_model_name(model_name)
        _check_oracle(oracle)
        search_options = dict(search_options or {})
        tuned = space(keras_tuner.HyperParameters())
        if not isinstance(tuned, dict):
            raise ValueError(
                f"`space` must return a dict of run_search arguments. Received: {tuned!r}"
            )
        for source, names in (("search_options", search_options), ("space", tuned)):
            unknown = sorted(name for name in names if name not in _SEARCH_ARGUMENTS)
            if unknown:
                raise ValueError(
                    f"`{source}` names {unknown}, which run_search does not take; "
                    f"it takes {_SEARCH_ARGUMENTS}"
                )
        both = sorted(set(search_options) & set(tuned))
        if both:
            raise ValueError(f"{both} are both fixed in `search_options` and tuned by `space`")
        self.spec = spec
        self.model_name = model_name
        self.search_options = search_options
        self.space = space
        self.settings = (settings or TrainSettings()).resolve(spec)
        self.retrain_settings = (retrain_settings or self.settings).resolve(spec)
        self.warm_start = warm_start
        super().__init__(
            oracle,
            hypermodel=space,
            directory=directory,
            project_name=project_name,
            overwrite=overwrite,
        )

    def run_trial(self, trial, verbose: int = 1) -> dict:
        """Searches with the trial's values, retrains the plan and scores it.

        Args:
            trial: keras_tuner Trial, from the oracle.
            verbose: int, as given to `search` (keras-tuner passes it on).

        Returns:
            dict with `val_auc`, `val_logloss` and `embedding_params`.
        """
        hp = trial.hyperparameters
        options = {**self.search_options, **self.space(hp)}
        trial_dir = self.get_trial_dir(trial.trial_id)
        search_dir = os.path.join(trial_dir, _SEARCH)
        plan = pipeline.search(  # a search finished before an interruption is read back
            self.spec,
            self.model_name,
            search_dir,
            settings=_trial_settings(self.settings, hp),
            **options,
        )
        return _retrain_and_validate(
            self.spec,
            self.model_name,
            plan,
            os.path.join(trial_dir, _RETRAIN),
            options.get("unify", "linear"),
            _trial_settings(self.retrain_settings, hp),
            warm_start=search_dir if self.warm_start else None,
        )

    def trial_plan(self, trial) -> DimensionPlan:
        """The plan a finished trial's search derived (`trial_<id>/search/plan.json`).

        Args:
            trial: keras_tuner Trial, a finished one.

        Returns:
            The DimensionPlan.
        """
        return DimensionPlan.load(os.path.join(self.get_trial_dir(trial.trial_id), _SEARCH))


class RandomDimensionTuner(BaseTuner):
    """The RaS baseline: random dimensions from the candidates, best of N on validation AUC.

    Each trial draws one candidate per field (`hp.Choice(field, candidates)`),
    retrains the model with that plan into `trial_<id>/retrain` and reports
    its `val_auc`, `val_logloss` and `embedding_params`. With
    `keras_tuner.oracles.RandomSearchOracle(max_trials=N)` the best trial is
    the RaS baseline of the AutoDim paper; other oracles search the same
    space more cleverly.

    Args:
        spec: FeatureSpec, the artifact (its validation split scores the trials).
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        oracle: keras_tuner.Oracle, one made without an objective gets `OBJECTIVE`.
        directory: str, where the project folder goes.
        project_name: str, the project folder.
        candidates: sequence of int, the candidate dimensions d_1 < ... < d_N.
        unify: str, `"linear"` or `"zero_pad"` (models that need equal dimensions).
        settings: TrainSettings or None, the training of each retrain (the defaults).
        overwrite: bool, delete the project folder first instead of resuming it.

    Raises:
        ValueError: on an unknown model, invalid candidates, an empty
            validation split or an oracle whose objective no trial reports.

    Examples:

        >>> import tempfile
        >>> directory = tempfile.mkdtemp()
        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=tuple(
        ...         FieldSpec(name, "categorical", size, f"vocab/{name}.txt")
        ...         for name, size in {"user": 79, "item": 71, "device": 9}.items()
        ...     ),
        ...     splits={"train": 160, "validation": 20, "test": 20},
        ... )
        >>> tuner = RandomDimensionTuner(
        ...     spec,
        ...     "fm",
        ...     keras_tuner.oracles.RandomSearchOracle(max_trials=10, seed=1),
        ...     directory=os.path.join(directory, "ras"),
        ...     candidates=(2, 8, 16),
        ...     settings=TrainSettings(epochs=1, batch_size=128),
        ... )
        >>> [parameter.name for parameter in tuner.oracle.get_space().space] == spec.field_names
        True
        >>> tuner.search(verbose=0)  # doctest: +SKIP
        >>> best_plan(tuner).fields  # doctest: +SKIP
        {'user': 16, 'item': 8, ...}
    """

    def __init__(
        self,
        spec: FeatureSpec,
        model_name: str,
        oracle: keras_tuner.Oracle,
        directory: str,
        project_name: str = "random_dimensions",
        candidates: Sequence[int] = DEFAULT_CANDIDATES,
        unify: str = "linear",
        settings: Optional[TrainSettings] = None,
        overwrite: bool = False,
    ):
        _check_model_name(model_name)
        _check_oracle(oracle)
        if spec.splits.get("validation", 0) <= 0:
            raise ValueError(
                f"the validation split of {spec.directory} is empty: the trials are "
                "scored on it (give the preprocessing a validation ratio, e.g. --split 8:1:1)"
            )
        self.spec = spec
        self.model_name = model_name
        self.candidates = tuple(candidates)
        self.unify = unify
        self.settings = (settings or TrainSettings()).resolve(spec)
        # Declaring the space builds a plan, so invalid candidates fail here.
        super().__init__(
            oracle,
            hypermodel=self._plan,
            directory=directory,
            project_name=project_name,
            overwrite=overwrite,
        )

    def _plan(self, hp: keras_tuner.HyperParameters) -> DimensionPlan:
        # One choice per field; on an empty set, this declares the space.
        fields = {name: hp.Choice(name, list(self.candidates)) for name in self.spec.field_names}
        vocab_sizes = {name: self.spec.field(name).vocab_size for name in fields}
        return DimensionPlan(fields=fields, candidates=self.candidates, vocab_sizes=vocab_sizes)

    def run_trial(self, trial, verbose: int = 1) -> dict:
        """Retrains the trial's plan and scores it.

        Args:
            trial: keras_tuner Trial, from the oracle.
            verbose: int, as given to `search` (keras-tuner passes it on).

        Returns:
            dict with `val_auc`, `val_logloss` and `embedding_params`.
        """
        return _retrain_and_validate(
            self.spec,
            self.model_name,
            self.trial_plan(trial),
            os.path.join(self.get_trial_dir(trial.trial_id), _RETRAIN),
            self.unify,
            _trial_settings(self.settings, trial.hyperparameters),
        )

    def trial_plan(self, trial) -> DimensionPlan:
        """The plan of a trial: its value of each field.

        Args:
            trial: keras_tuner Trial.

        Returns:
            The DimensionPlan.
        """
        return self._plan(trial.hyperparameters)


def best_plan(tuner: Union[SearchTuner, RandomDimensionTuner]) -> DimensionPlan:
    """The plan of the tuner's best finished trial (highest validation AUC by default).

    Its retrained model, with test metrics, is in the trial's `retrain/` folder.

    Args:
        tuner: SearchTuner or RandomDimensionTuner, after `search`.

    Returns:
        The DimensionPlan.

    Raises:
        ValueError: when no trial has finished.

    Examples:

        >>> tuner = RandomDimensionTuner(  # doctest: +SKIP
        ...     spec, "fm", keras_tuner.oracles.RandomSearchOracle(max_trials=20, seed=1),
        ...     directory="ras", candidates=(2, 8, 16, 24, 32),
        ... )
        >>> tuner.search(verbose=0)  # doctest: +SKIP
        >>> plan = best_plan(tuner)  # doctest: +SKIP
        >>> plan.embedding_params < plan.full_embedding_params  # doctest: +SKIP
        True
    """
    trials = tuner.oracle.get_best_trials(1)
    if not trials or not _completed(trials[0]):
        raise ValueError(f"no trial of {tuner.project_dir} has finished: run `search` first")
    return tuner.trial_plan(trials[0])
