"""The `dimsel` command line.

```
dimsel preprocess --dataset {criteo,avazu,movielens-100k,movielens-1m,frappe,csv,synthetic}
                  --input PATH [--input PATH ...] --output DIR [--min-count N]
                  [beam pipeline options, e.g. --runner DirectRunner]
dimsel search     --data DIR --model {fm,wide_deep,deepfm} --output RUN
                  [--candidates 2,8,16,24,32] [--storage shared|separate]
                  [--unify linear|zero_pad] [--arch-every 10] [--pretrain-steps N]
                  [--mode alternating|joint] [--arch-learning-rate LR] [--hard]
                  [--no-rank-scaling] [--temperature-floor 0.01] [--temperature-rate 5e-05]
                  [--budget FRACTION] [--derive alpha|probe] [--tolerance 0.002]
dimsel retrain    --data DIR --plan RUN/plan.json --model M --output RUN2 [--warm-start RUN]
dimsel baseline   --data DIR --model M --dim 32 --output RUN3
dimsel amtl       --data DIR --model M --output RUN4 [--fields a,b] [--max-dim D]
                  [--warm-start RUN3] [--hidden-units 64] [--temperature 1.0]
                  [--no-straight-through] [--single-branch] [--masks-only]
                  [--length-penalty LAMBDA] [--initial-length full|K]
dimsel run        --dataset synthetic [--profile demo|criteo] [--rows N] --output DIR
                  (preprocess, baseline, search, retrain)
```

The training commands also take `--epochs`, `--batch-size` and `--seed`;
every command takes `--overwrite` (`keras_dimsel.cli_outputs`: a command
writes only into a new or empty `--output` or its own earlier run).

Every command ends with a short summary and writes machine-readable results.
What goes wrong is one line on stderr, never a traceback without `-v`, and
the exit code says what kind: 0 done, 2 bad input (or the machine's limit: a
full disk, no permission), 130 interrupted (with the step a re-run resumes
from), 1 a bug.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import sys
import warnings
from typing import Optional, Sequence

from keras_dimsel import cli_arguments as arguments

# Before TensorFlow can be imported by anything below. Level 3 hides the CUDA
# plugin registration messages a CPU-only TensorFlow prints at import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Beam's GCP extras warn about Python 3.10 support at import: not the user's concern.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")

#: Exit codes: 0 done, 2 bad input (or a machine's limit: disk, permissions),
#: 130 interrupted (Ctrl-C), 1 a bug (the traceback under -v).
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_BUG = 1


class CommandError(Exception):
    """A one-line reason to stop a command with a non-zero exit."""


class _UsageError(CommandError):
    def __init__(self, message: str, prog: str):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`dimsel search: error: ...`).

    Abbreviated flags are refused: `--epoch` must not silently mean `--epochs`.
    """

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise _UsageError(message, self.prog)


def _add_preprocess(subparsers) -> None:
    parser = subparsers.add_parser(
        "preprocess",
        help="count frequencies, build vocabularies and splits (Apache Beam)",
        description=(
            "Reads raw rows, splits them 8:1:1 by a hash of each row, counts values on "
            "the train split and writes feature_spec.json, vocab/, the splits and "
            "rejected/. Unrecognised --flags are Beam pipeline options."
        ),
    )
    arguments.add_data_arguments(parser)
    arguments.add_vocabulary_cap_arguments(parser)
    parser.set_defaults(run=_run_preprocess)


def _run_preprocess(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from keras_dimsel.data.feature_spec import FEATURE_SPEC_FILE
    from keras_dimsel.preprocessing import pipeline
    from keras_dimsel.training import RunDir

    _claim(args, "preprocess", {"--input": args.input}, state=(PREPROCESS_OPTIONS,))
    # A finished artifact is made again only with the same options; an unfinished one
    # (the job does not resume) is made again with any.
    finished = RunDir(args.output, done=FEATURE_SPEC_FILE).is_complete()
    _check_options(args.output, _options(args, beam_args), PREPROCESS_OPTIONS, finished)
    reader, config, beam_args = _preprocess_job(args, beam_args, args.output)
    spec = pipeline.run(reader, config, list(beam_args))
    print(pipeline.summary(spec))
    print(f"artifact: {os.path.join(args.output, 'feature_spec.json')}")
    return 0


def _preprocess_job(args: argparse.Namespace, beam_args: Sequence[str], output: str):
    """The reader, the Beam job's config and its options, from the command line."""
    from keras_dimsel.data.datasets import make_reader
    from keras_dimsel.preprocessing import pipeline
    from keras_dimsel.preprocessing.splits import parse_ratios

    arguments.check_beam_args(beam_args)
    sep = "\t" if args.sep in ("\\t", "tab") else args.sep
    config = pipeline.PreprocessConfig(
        output_dir=output,
        min_count=args.min_count,
        split_ratios=parse_ratios(args.split),
        num_buckets=args.num_buckets,
        max_vocab_size=args.max_vocab_size,
        hash_buckets=args.hash_buckets,
    )
    reader = make_reader(
        args.dataset,
        args.input,
        output_dir=output,
        label=args.label,
        categorical=args.categorical,
        numeric=args.numeric,
        sep=sep,
        numeric_transform=args.numeric_transform,
        rows=args.rows,
        seed=args.seed,
        profile=args.profile,
    )
    return reader, config, beam_args


def _add_search(subparsers) -> None:
    parser = subparsers.add_parser(
        "search",
        help="AutoDim: search one embedding dimension per field",
        description=(
            "Trains the supernet of candidate dimensions with alpha fitted on validation "
            "batches, and writes RUN/plan.json, alpha_history.csv, search.png and logs/."
        ),
    )
    arguments.add_model_arguments(parser)
    arguments.add_search_arguments(parser)
    arguments.add_fit_arguments(parser)
    parser.set_defaults(run=_run_search)


def _add_retrain(subparsers) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="train the physically smaller model of a plan and export it",
        description="Retrains with one table [vocab, dim] per field and exports RUN/saved_model.",
    )
    arguments.add_model_arguments(parser)
    parser.add_argument("--plan", required=True, metavar="RUN/plan.json")
    parser.add_argument("--unify", choices=("linear", "zero_pad"), default="linear")
    parser.add_argument(
        "--warm-start", metavar="RUN", help="start the tables from this search run's tables"
    )
    arguments.add_fit_arguments(parser)
    parser.set_defaults(run=_run_retrain)


def _add_baseline(subparsers) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="train and export the full-dimension model",
        description="Every field at the same dimension: the model AutoDim is compared with.",
    )
    arguments.add_model_arguments(parser)
    parser.add_argument("--dim", type=arguments.positive_int, default=32, help="(default 32)")
    arguments.add_fit_arguments(parser)
    parser.set_defaults(run=_run_baseline)


def _add_amtl(subparsers) -> None:
    parser = subparsers.add_parser(
        "amtl",
        help="AMTL: a learnt embedding length for every feature value",
        description=(
            "Masks the chosen fields value by value with an adaptively-masked twins layer, "
            "optionally starting from a `dimsel baseline` run, and exports the compact model: "
            "RUN/saved_model, metrics.json (average dim per field, dims by frequency group) "
            "and amtl_dims.png."
        ),
    )
    arguments.add_model_arguments(parser)
    arguments.add_amtl_arguments(parser)
    arguments.add_fit_arguments(parser)
    parser.set_defaults(run=_run_amtl)


def _add_run(subparsers) -> None:
    from keras_dimsel.models import MODELS

    parser = subparsers.add_parser(
        "run",
        help="preprocess, full-dimension baseline, search, retrain and export in one go",
        description=(
            "Writes DIR/data (the artifact), DIR/baseline, DIR/search and DIR/autodim, and "
            "ends with the dimensions chosen and the test metrics of both models. Steps "
            "already finished in DIR are reused, so an interrupted run resumes."
        ),
    )
    arguments.add_data_arguments(parser)
    arguments.add_vocabulary_cap_arguments(parser)
    parser.add_argument("--model", choices=MODELS, default="deepfm", help="(default deepfm)")
    arguments.add_search_arguments(parser)
    arguments.add_fit_arguments(parser, seed=False)
    parser.add_argument("--warm-start", action="store_true", help="retrain from the search tables")
    parser.set_defaults(run=_run_all)


def _load_spec(directory: str):
    from keras_dimsel.data.feature_spec import FeatureSpec

    return FeatureSpec.load(directory)


def _settings(args: argparse.Namespace):
    from keras_dimsel.training import TrainSettings

    return TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        keep_best=args.keep_best,
        embedding_optimizer=args.embedding_optimizer,
    )


def _search_options(args: argparse.Namespace) -> dict:
    from keras_dimsel.autodim.temperature import TemperatureSchedule

    return {
        "candidates": tuple(args.candidates),
        "storage": args.storage,
        "unify": args.unify,
        "arch_every": args.arch_every,
        "pretrain_steps": args.pretrain_steps,
        "mode": args.mode,
        "arch_learning_rate": args.arch_learning_rate,
        "hard": args.hard,
        "rank_scaling": args.rank_scaling,
        "budget": args.budget,
        "derive": args.derive,
        "tolerance": args.tolerance,
        "temperature_schedule": TemperatureSchedule(
            floor=args.temperature_floor, rate=args.temperature_rate
        ),
        "memory_budget": args.memory_budget,
    }


def _describe(metrics: dict) -> str:
    return (
        f"test AUC {metrics['auc']:.4f}, logloss {metrics['logloss']:.4f}, "
        f"{metrics['embedding_params']:,} embedding parameters"
    )


def _run_baseline(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from keras_dimsel import pipeline

    _no_extra(extra)
    reused = _claim_run(args, "baseline", {"--data": args.data})
    spec = _load_spec(args.data)
    metrics = pipeline.baseline(spec, args.model, args.output, args.dim, _settings(args))
    print(f"{args.model} at dim {args.dim}: {_describe(metrics)}")
    _print_serving_names(spec)
    _print_run(args.output, reused)
    return 0


def _run_search(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from keras_dimsel import pipeline
    from keras_dimsel.autodim.plan import PLAN_FILE

    _no_extra(extra)
    reused = _claim_run(args, "search", {"--data": args.data}, done=PLAN_FILE)
    spec = _load_spec(args.data)
    plan = pipeline.search(
        spec, args.model, args.output, settings=_settings(args), **_search_options(args)
    )
    print(plan.summary_table())
    print(f"plan: {os.path.join(args.output, PLAN_FILE)}")
    _print_run(args.output, reused)
    return 0


def _run_retrain(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from keras_dimsel import pipeline
    from keras_dimsel.autodim.plan import DimensionPlan

    _no_extra(extra)
    inputs = {"--data": args.data, "--plan": args.plan, "--warm-start": args.warm_start}
    reused = _claim_run(args, "retrain", inputs)
    spec = _load_spec(args.data)
    plan = DimensionPlan.load(args.plan)
    metrics = pipeline.retrain(
        spec,
        plan,
        args.model,
        args.output,
        unify=args.unify,
        warm_start=args.warm_start,
        settings=_settings(args),
    )
    print(f"{args.model} with the plan: {_describe(metrics)} ({plan.saving:.1%} saved)")
    _print_serving_names(spec)
    _print_run(args.output, reused)
    return 0


def _run_amtl(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from keras_dimsel import amtl, pipeline

    _no_extra(extra)
    reused = _claim_run(args, "amtl", {"--data": args.data, "--warm-start": args.warm_start})
    spec = _load_spec(args.data)
    metrics = pipeline.amtl(
        spec,
        args.model,
        args.output,
        fields=args.fields,
        max_dim=args.max_dim,
        warm_start=args.warm_start,
        hidden_units=args.hidden_units,
        temperature=args.temperature,
        straight_through=args.straight_through,
        twins=args.twins,
        train_network=args.train_network,
        length_penalty=args.length_penalty,
        initial_length=args.initial_length,
        settings=_settings(args),
    )
    print(amtl.summary_table(metrics))
    print(f"{args.model} with value-level dims: {_describe(metrics)}")
    _print_serving_names(spec)
    _print_run(args.output, reused)
    return 0


def _run_all(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from keras_dimsel import pipeline
    from keras_dimsel.autodim.plan import PLAN_FILE
    from keras_dimsel.autodim.report import comparison_report
    from keras_dimsel.data.feature_spec import FEATURE_SPEC_FILE
    from keras_dimsel.training import CHECKPOINTS, METRICS, RunDir

    steps = {name: os.path.join(args.output, name) for name in pipeline.RUN_STEPS}
    state = [RUN_OPTIONS, os.path.join("data", FEATURE_SPEC_FILE)]
    for name in pipeline.RUN_STEPS[1:]:
        done = PLAN_FILE if name == "search" else METRICS
        state += [os.path.join(name, part) for part in (done, pipeline.STEP_RECORD, CHECKPOINTS)]
    _claim(args, "run", {"--input": args.input}, state)
    _check_options(args.output, _options(args, beam_args), RUN_OPTIONS)
    settings = _settings(args)

    spec = pipeline.preprocess(*_preprocess_job(args, beam_args, steps["data"]))
    baseline = pipeline.baseline(
        spec, args.model, steps["baseline"], max(args.candidates), settings
    )
    plan = pipeline.search(
        spec, args.model, steps["search"], settings=settings, **_search_options(args)
    )
    autodim = pipeline.retrain(
        spec,
        plan,
        args.model,
        steps["autodim"],
        unify=args.unify,
        warm_start=steps["search"] if args.warm_start else None,
        settings=settings,
    )
    report = comparison_report(plan, baseline, autodim)
    _write_text(os.path.join(args.output, "report.txt"), report)
    print(report)
    print(f"compact model: {RunDir(steps['autodim']).saved_model}")
    _print_serving_names(spec)
    return 0


#: The options a `dimsel run` and a `dimsel preprocess` were made with, in their directory.
RUN_OPTIONS = "run_options.json"
PREPROCESS_OPTIONS = "preprocess_options.json"


def _options(args: argparse.Namespace, beam_args: Sequence[str]) -> dict:
    """What defines a run of `preprocess` or `run`: its flags, less those that do not."""
    ignored = ("run", "verbose", "command", "overwrite", "claim")
    options = {key: value for key, value in vars(args).items() if key not in ignored}
    options["beam_args"] = list(beam_args)
    return options


def _check_options(directory: str, options: dict, name: str, binding: bool = True) -> None:
    """Refuses to resume or redo a run that was made with other options.

    Options recorded earlier bind only when `binding`; otherwise they are replaced.
    """
    from keras_dimsel.training import RunDir, RunMismatchError
    from keras_dimsel.training.run_dir import describe_changes

    run = RunDir(directory)
    if not binding:
        run.write_json(name, json.loads(json.dumps(options)))
        return
    changed = run.changed_options(options, name)
    if changed:
        raise RunMismatchError(
            f"{directory} holds a run made with other options ({describe_changes(changed)}); "
            "give a new --output or the same options"
        )


def _claim(args: argparse.Namespace, command: str, inputs: dict, state=()) -> bool:
    """`cli_outputs.claim_output` for `--output`; `--input` may be given several times."""
    from keras_dimsel.cli_outputs import claim_output

    flat = {}
    for flag, given in inputs.items():
        for i, path in enumerate(given if isinstance(given, list) else [given]):
            flat[flag if i == 0 else f"{flag} ({i + 1})"] = path
    args.claim = claim_output(args.output, command, args.overwrite, flat, state)
    return args.claim.resumes


def _claim_run(args: argparse.Namespace, command: str, inputs: dict, done: str = "") -> bool:
    """Claims a training command's run directory; True when it holds its finished run."""
    from keras_dimsel import pipeline
    from keras_dimsel.training import CHECKPOINTS, METRICS, RunDir

    done = done or METRICS
    ours = _claim(args, command, inputs, state=(done, pipeline.STEP_RECORD, CHECKPOINTS))
    return ours and RunDir(args.output, done=done).is_complete()


def _print_serving_names(spec) -> None:
    """One line naming the fields whose serving input names differ from their columns."""
    from keras_dimsel.export import serving_input_names

    names = serving_input_names([field.name for field in spec.fields])
    renamed = [f"{field!r} as {name}" for field, name in names.items() if field != name]
    if renamed:
        print(f"serving_default inputs renamed: {', '.join(renamed)}")


def _print_run(directory: str, reused: bool) -> None:
    if reused:
        print(
            f"run: {directory} (finished earlier with the same options, reused; "
            "--overwrite trains it again)"
        )
    else:
        print(f"run: {directory}")


def _write_text(path: str, text: str) -> None:
    from keras_dimsel import _io

    _io.write_text_atomically(path, text)


def _no_extra(extra: Sequence[str]) -> None:
    if extra:
        raise CommandError(f"unrecognised argument {extra[0]!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dimsel", description="Learned embedding dimensions for recommender models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_preprocess(subparsers)
    _add_search(subparsers)
    _add_retrain(subparsers)
    _add_baseline(subparsers)
    _add_amtl(subparsers)
    _add_run(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except _UsageError as error:
        print(f"{error.prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # Beam reports progress at INFO; keep its warnings, drop TensorFlow's noise.
    logging.getLogger("apache_beam").setLevel(logging.INFO if args.verbose else logging.WARNING)
    # Keras's "callback ... is slow compared to the batch time": the checkpoint writer is,
    # by design, once every --checkpoint-every steps.
    logging.getLogger("tensorflow").addFilter(_not_about_slow_callbacks)
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_first_line_only)
    try:
        return args.run(args, extra)
    except KeyboardInterrupt as interrupt:
        if args.verbose:
            raise
        # The command is ending: another Ctrl-C, while the line is written or the
        # process exits, must not turn into a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"dimsel {args.command}: {_interrupted(args.command, interrupt)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # every error becomes one line and an exit code
        if args.verbose:
            raise
        code, reason = _explain(error)
        print(f"dimsel {args.command}: {reason}", file=sys.stderr)
        claim = getattr(args, "claim", None)
        if claim is not None:  # a directory made for nothing is not left behind
            from keras_dimsel.pipeline import STEP_RECORD

            claim.discard_if_unused(records=(RUN_OPTIONS, PREPROCESS_OPTIONS, STEP_RECORD))
        return code


def _not_about_slow_callbacks(record: logging.LogRecord) -> bool:
    return "is slow compared to the batch time" not in record.getMessage()


def _first_line_only(record: logging.LogRecord) -> bool:
    """A logging filter: a record keeps its first line, so no traceback (a worker's
    error that Beam logs before it reaches the command) is shown without -v."""
    message = record.getMessage()
    record.msg, record.args = (message.splitlines() or [""])[0], ()
    record.exc_info = record.exc_text = record.stack_info = None
    return True


def _interrupted(command: str, interrupt: KeyboardInterrupt) -> str:
    from keras_dimsel.training import TrainingInterrupted

    if isinstance(interrupt, TrainingInterrupted):
        return f"{interrupt}; run the same command again to resume from there"
    if command == "preprocess":
        return "interrupted; run the same command again to make the artifact"
    return "interrupted; run the same command again to resume"


def _explain(error: Exception) -> tuple:
    """The exit code and the one line that tells a person what went wrong."""
    from keras_dimsel.data.reader import DataError
    from keras_dimsel.training import RunMismatchError

    reason = _first_line(error)
    if isinstance(error, RunMismatchError):
        return EXIT_BAD_INPUT, f"error: {reason}, or --overwrite to start afresh"
    if isinstance(error, (CommandError, DataError, ValueError)):
        return EXIT_BAD_INPUT, f"error: {reason}"
    if isinstance(error, OSError):
        if error.errno == errno.ENOSPC:
            return (
                EXIT_BAD_INPUT,
                f"error: no space left on the device ({error.filename or reason})",
            )
        return EXIT_BAD_INPUT, f"error: {reason}"
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, _resource_errors(tf)):
        return EXIT_BAD_INPUT, f"error: {reason}"
    return EXIT_BUG, (
        f"internal error: {type(error).__name__}: {reason}. This is a bug: run the command "
        "again with -v for the traceback, and report it"
    )


def _resource_errors(tf) -> tuple:
    """TensorFlow's errors of files and resources: the input's or the machine's, not a bug."""
    return (
        tf.errors.NotFoundError,
        tf.errors.PermissionDeniedError,
        tf.errors.ResourceExhaustedError,
        tf.errors.AlreadyExistsError,
        tf.errors.FailedPreconditionError,
        tf.errors.DataLossError,
    )


def _first_line(error: BaseException) -> str:
    """An error's first line (library errors explain themselves there); TF's without its op."""
    text = getattr(error, "message", None) or str(error)
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.filename}: {error.strerror}"
    text = text.strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
