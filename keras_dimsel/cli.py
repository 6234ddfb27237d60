"""The `dimsel` command line.

```
dimsel preprocess --dataset {criteo,avazu,movielens-100k,movielens-1m,csv,synthetic}
                  --input PATH [--input PATH ...] --output DIR [--min-count N]
                  [beam pipeline options, e.g. --runner DirectRunner]
```

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


def _add_preprocess(subparsers) -> None:
    from keras_dimsel.data.datasets import DATASETS, DEFAULT_SYNTHETIC_ROWS

    parser = subparsers.add_parser(
        "preprocess",
        help="count frequencies, build vocabularies and splits (Apache Beam)",
        description=(
            "Reads raw rows, splits them 8:1:1 by a hash of each row, counts values on "
            "the train split and writes feature_spec.json, vocab/, the splits and "
            "rejected/. Unrecognised --flags are Beam pipeline options."
        ),
    )
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
    synthetic.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=_run_preprocess)


def _check_beam_args(beam_args: Sequence[str]) -> None:
    """Rejects flags that are neither ours nor Beam pipeline options (typos)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pending = list(PipelineOptions.__subclasses__())
    seen = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # an option declared by two option classes
    _, unknown = parser.parse_known_args(list(beam_args))
    flags = [arg for arg in unknown if arg.startswith("-")]
    if flags or unknown:
        raise CommandError(f"unrecognised argument {(flags or unknown)[0]!r}")


def _run_preprocess(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from keras_dimsel.data.datasets import make_reader
    from keras_dimsel.preprocessing import pipeline
    from keras_dimsel.preprocessing.splits import parse_ratios

    _check_beam_args(beam_args)
    sep = "\t" if args.sep in ("\\t", "tab") else args.sep
    config = pipeline.PreprocessConfig(
        output_dir=args.output,
        min_count=args.min_count,
        split_ratios=parse_ratios(args.split),
        num_buckets=args.num_buckets,
    )
    reader = make_reader(
        args.dataset,
        args.input,
        output_dir=args.output,
        label=args.label,
        categorical=args.categorical,
        numeric=args.numeric,
        sep=sep,
        numeric_transform=args.numeric_transform,
        rows=args.rows,
        seed=args.seed,
    )
    spec = pipeline.run(reader, config, beam_args)
    print(pipeline.summary(spec))
    print(f"artifact: {os.path.join(args.output, 'feature_spec.json')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dimsel", description="Learned embedding dimensions for recommender models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_preprocess(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # Beam reports progress at INFO; keep its warnings, drop TensorFlow's noise.
    logging.getLogger("apache_beam").setLevel(logging.INFO if args.verbose else logging.WARNING)
    from keras_dimsel.data.reader import DataError

    try:
        return args.run(args, extra)
    except (CommandError, DataError, FileNotFoundError) as error:
        print(f"dimsel {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
