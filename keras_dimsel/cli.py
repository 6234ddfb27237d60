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

The training commands also take `--epochs`, `--batch-size` and `--seed`.

Every command ends with a short summary, writes machine-readable results and,
on bad input, exits non-zero with a one-line reason (no traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
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

EXIT_BAD_INPUT = 2


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
    from keras_dimsel.preprocessing import pipeline

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
    from keras_dimsel.training import run_baseline

    _no_extra(extra)
    spec = _load_spec(args.data)
    metrics = run_baseline(spec, args.model, args.output, args.dim, _settings(args))
    print(f"{args.model} at dim {args.dim}: {_describe(metrics)}")
    print(f"run: {args.output}")
    return 0


def _run_search(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from keras_dimsel.autodim.runs import run_search

    _no_extra(extra)
    spec = _load_spec(args.data)
    plan = run_search(
        spec, args.model, args.output, settings=_settings(args), **_search_options(args)
    )
    print(plan.summary_table())
    print(f"plan: {os.path.join(args.output, 'plan.json')}")
    return 0


def _run_retrain(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from keras_dimsel.autodim.plan import DimensionPlan
    from keras_dimsel.autodim.runs import run_retrain

    _no_extra(extra)
    spec = _load_spec(args.data)
    plan = DimensionPlan.load(args.plan)
    metrics = run_retrain(
        spec,
        plan,
        args.model,
        args.output,
        unify=args.unify,
        warm_start=args.warm_start,
        settings=_settings(args),
    )
    print(f"{args.model} with the plan: {_describe(metrics)} ({plan.saving:.1%} saved)")
    print(f"run: {args.output}")
    return 0


def _run_amtl(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from keras_dimsel import amtl
    from keras_dimsel.amtl.runs import run_amtl

    _no_extra(extra)
    spec = _load_spec(args.data)
    metrics = run_amtl(
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
    print(f"run: {args.output}")
    return 0


def _run_all(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from keras_dimsel import pipeline
    from keras_dimsel.autodim.report import comparison_report
    from keras_dimsel.training import RunDir

    options = {
        key: value for key, value in vars(args).items() if key not in ("run", "verbose", "command")
    }
    options["beam_args"] = list(beam_args)
    _check_run_directory(args.output, options)
    settings = _settings(args)
    steps = {name: os.path.join(args.output, name) for name in pipeline.RUN_STEPS}

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
    return 0


RUN_OPTIONS = "run_options.json"


def _check_run_directory(directory: str, options: dict) -> None:
    """Refuses to resume a run that was started with other options."""
    from keras_dimsel.training import RunDir

    changed = RunDir(directory).changed_options(options, RUN_OPTIONS)
    if changed:
        raise CommandError(
            f"{directory} holds a run started with other options "
            f"({', '.join(key for key, _, _ in changed)}); "
            "give a new --output or the same options to resume it"
        )


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
    from keras_dimsel.data.reader import DataError

    try:
        return args.run(args, extra)
    except (CommandError, DataError, FileNotFoundError, ValueError) as error:
        if args.verbose:
            raise
        # Library errors explain themselves on their first line.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"dimsel {args.command}: error: {reason}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
