"""Runs the pipeline on this machine with `LocalDagRunner`.

```
python -m tfx_pipeline.local_runner --dataset synthetic --output runs/tfx
python -m tfx_pipeline.local_runner --dataset criteo \
    --input ../shared/data/criteo/train_head10k.txt \
    --output runs/criteo --method autodim
python -m tfx_pipeline.local_runner --dataset csv --input clicks.csv --label clicked \
    --categorical user,item --numeric price --output runs/clicks [--direct_num_workers=2]
```

Flags the runner does not know are Beam pipeline options, passed to every
Beam component. The pushed model lands in `OUTPUT/serving/<version>/`; ML
Metadata in `OUTPUT/metadata.sqlite`, so a re-run reuses cached components.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from keras_dimsel import _io  # noqa: E402
from keras_dimsel.data.datasets import DATASETS, make_reader  # noqa: E402
from keras_dimsel.data.reader import DataError  # noqa: E402
from keras_dimsel.data.synthetic import SyntheticReader  # noqa: E402
from keras_dimsel.training.optimizers import EMBEDDING_OPTIMIZERS  # noqa: E402
from tfx_pipeline import configs  # noqa: E402
from tfx_pipeline.field_schema import csv_fields, field_dicts  # noqa: E402


def _names(text: str) -> list:
    return [name for name in (part.strip() for part in text.split(",")) if name]


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(
        prog="python -m tfx_pipeline.local_runner", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--input", help="the data file or folder (synthetic: where to write it)")
    parser.add_argument("--output", required=True, help="the run folder")
    parser.add_argument("--method", choices=configs.METHODS, default=configs.DEFAULT_METHOD)
    parser.add_argument("--model", choices=configs.MODELS, default=configs.DEFAULT_MODEL)
    parser.add_argument("--dim", type=int, default=configs.DEFAULT_DIM)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep-best",
        action="store_true",
        help="end each training run with its epoch of best validation AUC",
    )
    parser.add_argument(
        "--embedding-optimizer",
        choices=EMBEDDING_OPTIMIZERS,
        default=configs.DEFAULT_TRAIN_CONFIG["embedding_optimizer"],
        help="how the embedding tables learn (lazy_adam and adagrad are row-sparse)",
    )
    parser.add_argument("--tolerance", type=float, default=configs.AUC_TOLERANCE)
    parser.add_argument("--rows", type=int, default=20_000, help="synthetic rows")
    group = parser.add_argument_group("csv")
    group.add_argument("--label")
    group.add_argument("--categorical", type=_names, default=[])
    group.add_argument("--numeric", type=_names, default=[])
    return parser.parse_known_args(argv)


def build(args, beam_args: Sequence[str]):
    """The pipeline object the flags describe (creates the synthetic data if asked)."""
    from tfx import v1 as tfx

    from tfx_pipeline.pipeline import create_pipeline

    output = os.path.abspath(args.output)
    inputs = [os.path.abspath(args.input)] if args.input else []
    dataset = args.dataset
    if dataset == "synthetic":
        # The generated file is a CSV with a header, read by TFX's CsvExampleGen;
        # it is written once, so a re-run finds ExampleGen's input unchanged.
        path = inputs[0] if inputs else os.path.join(output, "raw", "synthetic.csv")
        if _io.exists(path):
            reader = SyntheticReader([path])
        else:
            reader = make_reader("synthetic", [path], rows=args.rows, seed=args.seed)
        dataset, inputs = "csv", [path]
        label, field_defs = reader.label, reader.fields
    elif dataset == "csv":
        # Only the declared columns: whether the file has them is checked by the
        # pipeline (ExampleValidator), which names what is missing.
        if not args.label or not inputs:
            raise DataError("csv needs --input and --label (the 0/1 label column)")
        label = args.label
        field_defs = csv_fields(args.categorical, args.numeric)
        if not field_defs:
            raise DataError("csv needs --categorical and/or --numeric columns")
    else:
        reader = make_reader(dataset, inputs)
        label, field_defs = reader.label, reader.fields
    path = inputs[0]
    if _io.is_directory(path):
        input_base, pattern = path, "*"
    else:
        input_base, pattern = os.path.dirname(path), os.path.basename(path)
    fields = field_dicts(field_defs)
    train_config = {
        "model": args.model,
        "dim": args.dim,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "keep_best": args.keep_best,
        "embedding_optimizer": args.embedding_optimizer,
    }
    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=os.path.join(output, "pipeline_root"),
        dataset=dataset,
        input_base=input_base,
        input_pattern=pattern,
        inputs=inputs,
        label=label,
        fields=fields,
        serving_dir=os.path.join(output, "serving"),
        method=args.method,
        train_config=train_config,
        tolerance=args.tolerance,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(output, "metadata.sqlite")
        ),
        beam_pipeline_args=beam_args,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, beam_args = parse_args(argv)
    logging.getLogger().setLevel(logging.INFO)
    try:
        pipeline = build(args, beam_args)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from tfx import v1 as tfx

    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    except DataError as error:  # bad data, named by the component that found it
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
