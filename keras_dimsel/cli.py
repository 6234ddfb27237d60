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
dimsel run        --dataset synthetic --output DIR   (preprocess, baseline, search, retrain)
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


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_vocabulary_cap_arguments(parser) -> None:
    cap = parser.add_argument_group("vocabulary cap (fields with huge numbers of values)")
    cap.add_argument(
        "--max-vocab-size",
        type=_positive_int,
        metavar="N",
        help="keep at most N values per field, the most frequent; the others share "
        "--hash-buckets ids picked by a hash of the value (default: no cap)",
    )
    cap.add_argument(
        "--hash-buckets",
        type=_non_negative_int,
        metavar="B",
        help="at most B hash buckets per field for the values without an id of their own "
        "(beyond the cap, below --min-count or unseen); 0 = they share the OOV id "
        "(default: one per 100 values left out, at most --max-vocab-size; none without a cap)",
    )


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
    _add_data_arguments(parser)
    _add_vocabulary_cap_arguments(parser)
    parser.set_defaults(run=_run_preprocess)


def _add_data_arguments(parser) -> None:
    """The raw-data options of `preprocess`, shared with `run`."""
    from keras_dimsel.data.datasets import DATASETS, DEFAULT_SYNTHETIC_ROWS

    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH",
        help="file, glob or folder; repeat for several",
    )
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument(
        "--min-count",
        type=_positive_int,
        default=1,
        help="values seen fewer times in train map to the OOV id (default 1)",
    )
    parser.add_argument(
        "--split",
        default="8:1:1",
        metavar="T:V:T",
        help="train:validation:test ratios (default 8:1:1)",
    )
    parser.add_argument(
        "--num-buckets",
        type=_positive_int,
        default=16,
        help="buckets per numeric field with quantile bucketing (default 16)",
    )
    parser.add_argument(
        "--numeric-transform",
        choices=("log_square", "quantiles"),
        help="how numbers become ids (criteo default log_square, csv quantiles)",
    )
    csv = parser.add_argument_group("csv")
    csv.add_argument("--label", help="the 0/1 label column")
    csv.add_argument("--categorical", type=_comma_list, default=[], metavar="A,B")
    csv.add_argument("--numeric", type=_comma_list, default=[], metavar="X,Y")
    csv.add_argument("--sep", default=",", help="one-character delimiter; \\t for tab")
    synthetic = parser.add_argument_group("synthetic")
    synthetic.add_argument("--rows", type=_positive_int, default=DEFAULT_SYNTHETIC_ROWS)
    synthetic.add_argument("--seed", type=int, default=0, help="data and training seed")


def _check_beam_args(beam_args: Sequence[str]) -> None:
    """Rejects flags that are neither ours nor Beam pipeline options (typos)."""
    from keras_dimsel._compat import beam_option_parser

    _, unknown = beam_option_parser().parse_known_args(list(beam_args))
    flags = [arg for arg in unknown if arg.startswith("-")]
    if flags or unknown:
        raise CommandError(f"unrecognised argument {(flags or unknown)[0]!r}")


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

    _check_beam_args(beam_args)
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
    )
    return reader, config, beam_args


def _candidates(text: str) -> tuple:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        ) from None
    if any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError(f"candidates must be positive, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"candidates must not repeat, got {text!r}")
    if list(values) != sorted(values):
        raise argparse.ArgumentTypeError(f"candidates must be in increasing order, got {text!r}")
    if len(values) < 2:
        raise argparse.ArgumentTypeError(f"give at least two candidates, got {text!r}")
    return values


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def _size(text: str) -> int:
    from keras_dimsel.autodim.memory import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def _add_fit_arguments(parser, seed: bool = True) -> None:
    from keras_dimsel.training.checkpointing import DEFAULT_CHECKPOINT_EVERY

    group = parser.add_argument_group("training")
    group.add_argument(
        "--epochs", type=_positive_int, help="passes over the train split (default 3)"
    )
    group.add_argument(
        "--batch-size",
        type=_positive_int,
        help="default: 2000, or less so that an epoch has at least 100 steps",
    )
    if seed:
        group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    group.add_argument(
        "--checkpoint-every",
        type=_non_negative_int,
        default=DEFAULT_CHECKPOINT_EVERY,
        metavar="N",
        help=(
            f"steps between checkpoints (default {DEFAULT_CHECKPOINT_EVERY}; 0 = epoch ends only); "
            "re-running a killed command with the same --output resumes from the last one"
        ),
    )
    group.add_argument(
        "--keep-best",
        action="store_true",
        help=(
            "end with the weights of the epoch of best validation AUC, not the last epoch's "
            "(the search keeps its last state)"
        ),
    )


def _add_model_arguments(parser, model_required: bool = True) -> None:
    from keras_dimsel.models import MODELS

    parser.add_argument("--data", required=True, metavar="DIR", help="a `dimsel preprocess` output")
    if model_required:
        parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--output", required=True, metavar="RUN")


def _add_search_arguments(parser) -> None:
    from keras_dimsel import autodim
    from keras_dimsel.autodim import plan, temperature

    group = parser.add_argument_group("search")
    group.add_argument(
        "--candidates",
        type=_candidates,
        default=autodim.DEFAULT_CANDIDATES,
        metavar="D1,D2,...",
        help="candidate dimensions, increasing (default 2,8,16,24,32)",
    )
    group.add_argument("--storage", choices=("shared", "separate"), default="shared")
    group.add_argument("--unify", choices=("linear", "zero_pad"), default="linear")
    group.add_argument(
        "--arch-every",
        type=_positive_int,
        default=10,
        metavar="F",
        help="network steps per alpha update (default 10)",
    )
    group.add_argument(
        "--pretrain-steps",
        type=_non_negative_int,
        metavar="N",
        help="network steps with alpha frozen before the search (default: half an epoch)",
    )
    group.add_argument(
        "--mode",
        choices=("alternating", "joint"),
        default="alternating",
        help="joint = AutoDim-s: alpha and network on the same training batch",
    )
    group.add_argument(
        "--arch-learning-rate",
        type=_positive_float,
        metavar="LR",
        help="Adam learning rate of alpha (default: scaled to the number of alpha updates)",
    )
    group.add_argument(
        "--hard",
        action="store_true",
        help="one candidate per example in the forward pass, straight-through gradients",
    )
    group.add_argument(
        "--no-rank-scaling",
        dest="rank_scaling",
        action="store_false",
        help="BatchNorm of linear candidates exactly as the paper's Eq. 2, without the "
        "sqrt(d_n/d_N) factor",
    )
    group.add_argument(
        "--budget",
        type=_fraction,
        metavar="FRACTION",
        help="derive the most probable plan within this fraction of the full model's "
        "embedding parameters, e.g. 0.5 (default: argmax, no limit)",
    )
    group.add_argument(
        "--derive",
        choices=plan.DERIVE_METHODS,
        default="alpha",
        help="alpha = argmax of the architecture weights (the paper); probe = per field, the "
        "smallest candidate whose validation loss is within --tolerance of the best "
        "(default alpha)",
    )
    group.add_argument(
        "--tolerance",
        type=_non_negative_float,
        default=plan.DEFAULT_TOLERANCE,
        metavar="LOSS",
        help="validation logloss a larger dimension must save to be chosen with --derive probe "
        f"(default {plan.DEFAULT_TOLERANCE})",
    )
    group.add_argument(
        "--temperature-floor",
        type=_positive_float,
        default=temperature.DEFAULT_FLOOR,
        metavar="TAU",
        help="lowest Gumbel-softmax temperature (default 0.01)",
    )
    group.add_argument(
        "--temperature-rate",
        type=_non_negative_float,
        default=temperature.DEFAULT_RATE,
        metavar="R",
        help="temperature decrease per 2000 training examples (default 0.00005)",
    )
    group.add_argument(
        "--memory-budget",
        type=_size,
        metavar="SIZE",
        help="memory the supernet may take in training, e.g. 8G; the search stops before "
        "it starts when its estimate is larger (default: 80%% of the physical memory)",
    )


def _add_search(subparsers) -> None:
    parser = subparsers.add_parser(
        "search",
        help="AutoDim: search one embedding dimension per field",
        description=(
            "Trains the supernet of candidate dimensions with alpha fitted on validation "
            "batches, and writes RUN/plan.json, alpha_history.csv, search.png and logs/."
        ),
    )
    _add_model_arguments(parser)
    _add_search_arguments(parser)
    _add_fit_arguments(parser)
    parser.set_defaults(run=_run_search)


def _add_retrain(subparsers) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="train the physically smaller model of a plan and export it",
        description="Retrains with one table [vocab, dim] per field and exports RUN/saved_model.",
    )
    _add_model_arguments(parser)
    parser.add_argument("--plan", required=True, metavar="RUN/plan.json")
    parser.add_argument("--unify", choices=("linear", "zero_pad"), default="linear")
    parser.add_argument(
        "--warm-start", metavar="RUN", help="start the tables from this search run's tables"
    )
    _add_fit_arguments(parser)
    parser.set_defaults(run=_run_retrain)


def _add_baseline(subparsers) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="train and export the full-dimension model",
        description="Every field at the same dimension: the model AutoDim is compared with.",
    )
    _add_model_arguments(parser)
    parser.add_argument("--dim", type=_positive_int, default=32, help="(default 32)")
    _add_fit_arguments(parser)
    parser.set_defaults(run=_run_baseline)


def _field_names(text: str) -> list:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated field names, got {text!r}")
    return names


def _positive_ints(text: str) -> tuple:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = (0,)
    if not all(value > 0 for value in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        )
    return values


def _initial_length(text: str):
    """`full` or a positive integer (checked against D by `run_amtl`)."""
    if text == "full":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected full or a positive integer, got {text!r}"
        ) from None


def _add_amtl(subparsers) -> None:
    from keras_dimsel import amtl

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
    _add_model_arguments(parser)
    group = parser.add_argument_group("amtl")
    group.add_argument(
        "--fields",
        type=_field_names,
        metavar="A,B",
        help="the fields to mask (default: the largest tables, 95%% of the embedding numbers)",
    )
    group.add_argument(
        "--max-dim",
        type=_positive_int,
        metavar="D",
        help=f"the full dimension (default: the warm-start run's, or {amtl.DEFAULT_MAX_DIM})",
    )
    group.add_argument("--warm-start", metavar="RUN", help="a `dimsel baseline` run to start from")
    group.add_argument(
        "--hidden-units",
        type=_positive_ints,
        default=amtl.DEFAULT_HIDDEN_UNITS,
        metavar="H1,H2",
        help="hidden layers of each mask branch (default 64)",
    )
    group.add_argument(
        "--temperature",
        type=_positive_float,
        default=amtl.DEFAULT_TEMPERATURE,
        help=f"temperature of the relaxed selection (default {amtl.DEFAULT_TEMPERATURE})",
    )
    group.add_argument(
        "--no-straight-through",
        dest="straight_through",
        action="store_false",
        help="train with the soft mask (AMTL-nSTE)",
    )
    group.add_argument(
        "--single-branch",
        dest="twins",
        action="store_false",
        help="one mask branch instead of the frequency-mixed twins (AML)",
    )
    group.add_argument(
        "--length-penalty",
        type=_non_negative_float,
        default=amtl.DEFAULT_LENGTH_PENALTY,
        metavar="LAMBDA",
        help="weight of the memory term: the average length over each masked field's values "
        f"divided by the max dim (default {amtl.DEFAULT_LENGTH_PENALTY}; 0 is the paper's loss)",
    )
    group.add_argument(
        "--initial-length",
        type=_initial_length,
        metavar="full|K",
        help="start every value at this length (full: the max dim, so that a warm start "
        "begins as exactly the trained model) instead of the random lengths of freshly "
        "initialised mask networks",
    )
    group.add_argument(
        "--masks-only",
        dest="train_network",
        action="store_false",
        help="train only the mask networks; tables and network stay as loaded",
    )
    _add_fit_arguments(parser)
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
    _add_data_arguments(parser)
    _add_vocabulary_cap_arguments(parser)
    parser.add_argument("--model", choices=MODELS, default="deepfm", help="(default deepfm)")
    _add_search_arguments(parser)
    _add_fit_arguments(parser, seed=False)
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
    print(f"compact model: {os.path.join(steps['autodim'], 'saved_model')}")
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
