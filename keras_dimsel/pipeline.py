"""The steps of a run, each skipping itself when its run directory is complete.

`preprocess`, `baseline`, `search`, `retrain` and `amtl` take what the
library's own functions take (the Beam job, `run_baseline`, `run_search`,
`run_retrain`, `run_amtl`) and call them only when their output directory
does not hold a finished run yet: `dimsel run`, the TFX trainer, the tuners
and the benchmark study string them together, so an interrupted sequence
resumes where it stopped (a step cut short continues from its checkpoints).

A finished run is reused only for the same options: each step records them
in its run directory (`step.json`) and refuses to reuse a finished run made
with others, naming the options that differ.
"""

from __future__ import annotations

from typing import Optional, Sequence

from keras_dimsel.autodim.plan import PLAN_FILE, DimensionPlan
from keras_dimsel.data.feature_spec import FEATURE_SPEC_FILE, FeatureSpec
from keras_dimsel.training.run_dir import RunDir, RunMismatchError, describe_changes
from keras_dimsel.training.settings import TrainSettings

#: The options a step's run was made with, in its directory.
STEP_RECORD = "step.json"
#: The sub-directories of a `dimsel run`, in the order the steps run.
RUN_STEPS = ("data", "baseline", "search", "autodim")


class StepMismatchError(RunMismatchError):
    """A finished run in the step's directory was made with other options.

    A `ValueError`, so the command line reports it in one line.

    Examples:

        >>> issubclass(StepMismatchError, ValueError)
        True
    """


def _claim(run_dir: RunDir, options: dict) -> None:
    changed = run_dir.changed_options(options, STEP_RECORD)
    if changed:
        raise StepMismatchError(
            f"{run_dir.path} holds a run made with other options ({describe_changes(changed)}); "
            "give a new directory or the same options"
        )


def _record(settings: Optional[TrainSettings], **options) -> dict:
    record = {key: _plain(value) for key, value in options.items()}
    if settings is not None:
        record["settings"] = settings.record()
    return record


def _plain(value):
    """A JSON-friendly form of an option (a schedule by its config, a plan by its record)."""
    if isinstance(value, DimensionPlan):
        return value.to_json()
    if hasattr(value, "get_config"):
        return value.get_config()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def preprocess(reader, config, beam_args: Sequence[str] = ()) -> FeatureSpec:
    """The Beam job into `config.output_dir`, unless the artifact is there already.

    Args:
        reader: Reader, the raw data (`keras_dimsel.data.make_reader`).
        config: PreprocessConfig, where and how.
        beam_args: Beam pipeline options.

    Returns:
        The artifact's FeatureSpec.

    Examples:

        An artifact made earlier is read back; the Beam job does not run again:

        >>> import tempfile
        >>> from keras_dimsel.data import FieldSpec
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig
        >>> made = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 160},
        ...     directory=tempfile.mkdtemp(),
        ... )
        >>> _ = made.save()
        >>> preprocess(reader=None, config=PreprocessConfig(output_dir=made.directory)) == made
        True
    """
    from keras_dimsel.preprocessing.pipeline import run as run_beam_job

    run_dir = RunDir(config.output_dir, done=FEATURE_SPEC_FILE)
    if run_dir.is_complete():
        return FeatureSpec.load(config.output_dir)
    return run_beam_job(reader, config, list(beam_args))


def baseline(
    spec: FeatureSpec,
    model_name: str,
    output: str,
    dim: int = 32,
    settings: Optional[TrainSettings] = None,
) -> dict:
    """`run_baseline`, unless `output` holds its finished run; returns its metrics.

    Examples:

        A finished run (its `metrics.json`) is read back, and nothing trains:

        >>> import json, os, tempfile
        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 160, "validation": 20, "test": 20},
        ... )
        >>> output = tempfile.mkdtemp()
        >>> with open(os.path.join(output, "metrics.json"), "w") as f:
        ...     json.dump({"auc": 0.71}, f)
        >>> baseline(spec, "fm", output, dim=8)
        {'auc': 0.71}
        >>> baseline(spec, "fm", output, dim=16)
        Traceback (most recent call last):
        ...
        keras_dimsel.pipeline.StepMismatchError: ... other options (dim: 8 then, 16 now); ...
    """
    from keras_dimsel.training.baseline import run_baseline

    run_dir = RunDir(output)
    _claim(run_dir, _record(settings, command="baseline", model=model_name, dim=dim))
    if run_dir.is_complete():
        return run_dir.read_metrics()
    return run_baseline(spec, model_name, output, dim, settings)


def search(
    spec: FeatureSpec,
    model_name: str,
    output: str,
    settings: Optional[TrainSettings] = None,
    **options,
) -> DimensionPlan:
    """`run_search` with `options`, unless `output` holds its finished search; returns the plan.

    Examples:

        >>> import json, os, tempfile
        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 160, "validation": 20, "test": 20},
        ... )
        >>> plan = DimensionPlan(fields={"user": 2}, candidates=(2, 4), vocab_sizes={"user": 79})
        >>> output = tempfile.mkdtemp()
        >>> _ = plan.save(os.path.join(output, "plan.json"))  # a search finished earlier
        >>> search(spec, "fm", output, candidates=(2, 4)) == plan
        True
        >>> search(spec, "fm", output, candidates=(2, 8))
        Traceback (most recent call last):
        ...
        keras_dimsel.pipeline.StepMismatchError: ... (candidates: [2, 4] then, [2, 8] now); ...
    """
    from keras_dimsel.autodim.runs import run_search

    run_dir = RunDir(output, done=PLAN_FILE)
    _claim(run_dir, _record(settings, command="search", model=model_name, **options))
    if run_dir.is_complete():
        return DimensionPlan.load(output)
    return run_search(spec, model_name, output, settings=settings, **options)


def retrain(
    spec: FeatureSpec,
    plan: DimensionPlan,
    model_name: str,
    output: str,
    unify: str = "linear",
    warm_start: Optional[str] = None,
    settings: Optional[TrainSettings] = None,
) -> dict:
    """`run_retrain`, unless `output` holds its finished run; returns its metrics.

    Examples:

        >>> import json, os, tempfile
        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 160, "validation": 20, "test": 20},
        ... )
        >>> plan = DimensionPlan(fields={"user": 2}, candidates=(2, 4), vocab_sizes={"user": 79})
        >>> output = tempfile.mkdtemp()
        >>> with open(os.path.join(output, "metrics.json"), "w") as f:
        ...     json.dump({"auc": 0.7}, f)
        >>> retrain(spec, plan, "fm", output)
        {'auc': 0.7}
        >>> retrain(spec, plan, "fm", output, unify="zero_pad")
        Traceback (most recent call last):
        ...
        keras_dimsel.pipeline.StepMismatchError: ... (unify: 'linear' then, 'zero_pad' now); ...
    """
    from keras_dimsel.autodim.runs import run_retrain

    run_dir = RunDir(output)
    record = _record(
        settings, command="retrain", model=model_name, plan=plan, unify=unify, warm_start=warm_start
    )
    _claim(run_dir, record)
    if run_dir.is_complete():
        return run_dir.read_metrics()
    return run_retrain(
        spec, plan, model_name, output, unify=unify, warm_start=warm_start, settings=settings
    )


def amtl(
    spec: FeatureSpec,
    model_name: str,
    output: str,
    settings: Optional[TrainSettings] = None,
    **options,
) -> dict:
    """`run_amtl` with `options`, unless `output` holds its finished run; returns its metrics.

    Examples:

        >>> import json, os, tempfile
        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 160, "validation": 20, "test": 20},
        ... )
        >>> output = tempfile.mkdtemp()
        >>> with open(os.path.join(output, "metrics.json"), "w") as f:
        ...     json.dump({"auc": 0.69}, f)
        >>> amtl(spec, "fm", output, fields=["user"])
        {'auc': 0.69}
        >>> amtl(spec, "fm", output, fields=["user"], length_penalty=0.0)
        Traceback (most recent call last):
        ...
        keras_dimsel.pipeline.StepMismatchError: ... other options (length_penalty: ...); ...
    """
    from keras_dimsel.amtl.runs import run_amtl

    run_dir = RunDir(output)
    _claim(run_dir, _record(settings, command="amtl", model=model_name, **options))
    if run_dir.is_complete():
        return run_dir.read_metrics()
    return run_amtl(spec, model_name, output, settings=settings, **options)
