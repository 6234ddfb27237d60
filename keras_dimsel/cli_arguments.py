"""The options of the `dimsel` commands: argument groups and the types that check values.

`keras_dimsel.cli` wires them into its sub-commands; every value is checked
where it enters, with a message that says what was expected and what was given.
"""

from __future__ import annotations

import argparse
import csv
from typing import Sequence


class ArgumentValueError(ValueError):
    """A command-line value that is neither ours nor Beam's (reported in one line)."""


def comma_list(text: str) -> list[str]:
    """Names separated by commas, read as one CSV line: `'a,"b,c"'` is `a` and `b,c`.

    Examples:

        >>> comma_list('user id, größe,"price, in $"')
        ['user id', 'größe', 'price, in $']
    """
    try:
        parts = next(csv.reader([text], skipinitialspace=True), [])
    except csv.Error as error:
        raise argparse.ArgumentTypeError(f"cannot read {text!r} as a list: {error}") from None
    return [part.strip() for part in parts if part.strip()]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_output_arguments(parser, metavar: str) -> None:
    """`--output` and `--overwrite`: where a command writes (`keras_dimsel.cli_outputs`)."""
    parser.add_argument(
        "--output",
        required=True,
        metavar=metavar,
        help="a new or empty directory, or one that holds a run of this command to resume",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --output that holds other files or another run, and start "
        "afresh there (files of other names stay)",
    )


def add_vocabulary_cap_arguments(parser) -> None:
    cap = parser.add_argument_group("vocabulary cap (fields with huge numbers of values)")
    cap.add_argument(
        "--max-vocab-size",
        type=positive_int,
        metavar="N",
        help="keep at most N values per field, the most frequent; the others share "
        "--hash-buckets ids picked by a hash of the value (default: no cap)",
    )
    cap.add_argument(
        "--hash-buckets",
        type=non_negative_int,
        metavar="B",
        help="at most B hash buckets per field for the values without an id of their own "
        "(beyond the cap, below --min-count or unseen); 0 = they share the OOV id "
        "(default: one per 100 values left out, at most --max-vocab-size; none without a cap)",
    )


def add_data_arguments(parser) -> None:
    """The raw-data options of `preprocess`, shared with `run`."""
    from keras_dimsel.data.datasets import DATASETS, DEFAULT_SYNTHETIC_ROWS
    from keras_dimsel.data.synthetic import PROFILES

    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH",
        help="file, glob or folder; repeat for several",
    )
    add_output_arguments(parser, "DIR")
    parser.add_argument(
        "--min-count",
        type=positive_int,
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
        type=positive_int,
        default=16,
        help="buckets per numeric field with quantile bucketing (default 16)",
    )
    parser.add_argument(
        "--numeric-transform",
        choices=("log_square", "quantiles"),
        help="how numbers become ids (criteo default log_square, csv and synthetic quantiles)",
    )
    csv_group = parser.add_argument_group("csv")
    csv_group.add_argument("--label", help="the 0/1 label column")
    names_help = "columns as named in the header, comma-separated; quote a name that holds a comma"
    csv_group.add_argument(
        "--categorical", type=comma_list, default=[], metavar="A,B", help=names_help
    )
    csv_group.add_argument("--numeric", type=comma_list, default=[], metavar="X,Y", help=names_help)
    csv_group.add_argument("--sep", default=",", help="one-character delimiter; \\t for tab")
    synthetic = parser.add_argument_group("synthetic")
    synthetic.add_argument(
        "--profile",
        choices=PROFILES,
        default="demo",
        help="demo: 7 small fields, learnt in minutes (default); criteo: Criteo's shape, "
        "26 categorical fields up to millions of ids and 13 numeric ones, for runs at "
        "production size (planted roles in keras_dimsel/data/synthetic.py)",
    )
    synthetic.add_argument(
        "--rows",
        type=positive_int,
        default=DEFAULT_SYNTHETIC_ROWS,
        help=f"rows to generate (default {DEFAULT_SYNTHETIC_ROWS:,})",
    )
    synthetic.add_argument("--seed", type=int, default=0, help="data and training seed")


def check_beam_args(beam_args: Sequence[str]) -> None:
    """Rejects flags that are neither ours nor Beam pipeline options (typos)."""
    from keras_dimsel._compat import beam_option_parser

    _, unknown = beam_option_parser().parse_known_args(list(beam_args))
    flags = [arg for arg in unknown if arg.startswith("-")]
    if flags or unknown:
        raise ArgumentValueError(f"unrecognised argument {(flags or unknown)[0]!r}")


def candidates(text: str) -> tuple:
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


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def size(text: str) -> int:
    from keras_dimsel.training.memory import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def add_fit_arguments(parser, seed: bool = True) -> None:
    from keras_dimsel.training.checkpointing import DEFAULT_CHECKPOINT_EVERY
    from keras_dimsel.training.optimizers import DEFAULT_EMBEDDING_OPTIMIZER, EMBEDDING_OPTIMIZERS

    group = parser.add_argument_group("training")
    group.add_argument(
        "--epochs", type=positive_int, help="passes over the train split (default 3)"
    )
    group.add_argument(
        "--batch-size",
        type=positive_int,
        help="default: 2000, or less so that an epoch has at least 100 steps",
    )
    if seed:
        group.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    group.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
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
    group.add_argument(
        "--embedding-optimizer",
        choices=EMBEDDING_OPTIMIZERS,
        default=DEFAULT_EMBEDDING_OPTIMIZER,
        help=(
            f"how the embedding tables learn (default {DEFAULT_EMBEDDING_OPTIMIZER}): lazy_adam "
            "and adagrad update only the rows in a batch, so a step costs the same at any "
            "vocabulary size; adam is dense Adam over whole tables; the rest of the network "
            "always learns with Adam"
        ),
    )


def add_model_arguments(parser, model_required: bool = True) -> None:
    from keras_dimsel.models import MODELS

    parser.add_argument("--data", required=True, metavar="DIR", help="a `dimsel preprocess` output")
    if model_required:
        parser.add_argument("--model", required=True, choices=MODELS)
    add_output_arguments(parser, "RUN")


def add_search_arguments(parser) -> None:
    from keras_dimsel import autodim
    from keras_dimsel.autodim import plan, temperature

    group = parser.add_argument_group("search")
    group.add_argument(
        "--candidates",
        type=candidates,
        default=autodim.DEFAULT_CANDIDATES,
        metavar="D1,D2,...",
        help="candidate dimensions, increasing (default 2,8,16,24,32)",
    )
    group.add_argument("--storage", choices=("shared", "separate"), default="shared")
    group.add_argument("--unify", choices=("linear", "zero_pad"), default="linear")
    group.add_argument(
        "--arch-every",
        type=positive_int,
        default=10,
        metavar="F",
        help="network steps per alpha update (default 10)",
    )
    group.add_argument(
        "--pretrain-steps",
        type=non_negative_int,
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
        type=positive_float,
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
        type=fraction,
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
        type=non_negative_float,
        default=plan.DEFAULT_TOLERANCE,
        metavar="LOSS",
        help="validation logloss a larger dimension must save to be chosen with --derive probe "
        f"(default {plan.DEFAULT_TOLERANCE})",
    )
    group.add_argument(
        "--temperature-floor",
        type=positive_float,
        default=temperature.DEFAULT_FLOOR,
        metavar="TAU",
        help="lowest Gumbel-softmax temperature (default 0.01)",
    )
    group.add_argument(
        "--temperature-rate",
        type=non_negative_float,
        default=temperature.DEFAULT_RATE,
        metavar="R",
        help="temperature decrease per 2000 training examples (default 0.00005)",
    )
    group.add_argument(
        "--memory-budget",
        type=size,
        metavar="SIZE",
        help="memory the supernet may take in training, e.g. 8G; the search stops before "
        "it starts when its estimate is larger (default: 80%% of the physical memory)",
    )


def field_names(text: str) -> list:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated field names, got {text!r}")
    return names


def positive_ints(text: str) -> tuple:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = (0,)
    if not all(value > 0 for value in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        )
    return values


def initial_length(text: str):
    """`full` or a positive integer (checked against D by `run_amtl`)."""
    if text == "full":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected full or a positive integer, got {text!r}"
        ) from None


def add_amtl_arguments(parser) -> None:
    """The options of `dimsel amtl`."""
    from keras_dimsel import amtl

    group = parser.add_argument_group("amtl")
    group.add_argument(
        "--fields",
        type=field_names,
        metavar="A,B",
        help="the fields to mask (default: the largest tables, 95%% of the embedding numbers)",
    )
    group.add_argument(
        "--max-dim",
        type=positive_int,
        metavar="D",
        help=f"the full dimension (default: the warm-start run's, or {amtl.DEFAULT_MAX_DIM})",
    )
    group.add_argument("--warm-start", metavar="RUN", help="a `dimsel baseline` run to start from")
    group.add_argument(
        "--hidden-units",
        type=positive_ints,
        default=amtl.DEFAULT_HIDDEN_UNITS,
        metavar="H1,H2",
        help="hidden layers of each mask branch (default 64)",
    )
    group.add_argument(
        "--temperature",
        type=positive_float,
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
        type=non_negative_float,
        default=amtl.DEFAULT_LENGTH_PENALTY,
        metavar="LAMBDA",
        help="weight of the memory term: the average length over each masked field's values "
        f"divided by the max dim (default {amtl.DEFAULT_LENGTH_PENALTY}; 0 is the paper's loss)",
    )
    group.add_argument(
        "--initial-length",
        type=initial_length,
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
