"""AMTL warm-start variants: what else a warm start could load, over seeds.

Each run is `dimsel amtl --warm-start RUN` (`keras_dimsel.amtl.run_amtl`) with
one change made right after the trained weights are loaded:

- `default`: none, the library's warm start (for a same-run reference).
- `tables`: only the embedding tables are kept; network, first-order weights
  and bias go back to their fresh initial values.
- `no_mlp`: everything is kept but the MLP's weights and normalisation
  statistics, which start fresh (Wide & Deep and DeepFM).
- `principal_axes`: every table is rotated by one orthogonal matrix, the
  principal axes of the masked fields' count-weighted vectors, largest first,
  and the MLP's first layer is rotated back (`align_principal_axes`). The
  model computes the same function as before, and a prefix of each vector
  keeps as much of the trained vectors as a prefix can.

None of these is a library option: on the Criteo 10k sample none of them
brought the warm start up to the cold start (README, AMTL section).

Usage (from the repository root), with `full_s{seed}` the `dimsel baseline`
runs of the same seeds:

    .venv/bin/python benchmarks/amtl_warm_variants.py --data DATA --model deepfm \
        --variant principal_axes --warm-start 'runs/full_s{seed}' --seeds 0,1,2 \
        --keep-best --output runs/principal_axes
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from typing import Dict, Iterator, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from keras_dimsel.amtl import runs as amtl_runs  # noqa: E402
from keras_dimsel.data.feature_spec import FeatureSpec  # noqa: E402
from keras_dimsel.models.dropout import CheckpointedDropout  # noqa: E402
from keras_dimsel.training import TrainSettings  # noqa: E402

VARIANTS = ("default", "tables", "no_mlp", "principal_axes")


def principal_axes(model, counts: Dict[str, Sequence[int]]) -> np.ndarray:
    """The `[D, D]` rotation onto the principal axes of some fields' tables.

    The axes are the eigenvectors of sum_f sum_v (c_v / sum c) e_v e_v^T over
    the given fields f and their ids v with train counts c_v, largest
    eigenvalue first: each field weighs as much as the examples it is in, and
    within a field a value weighs by its count.

    Args:
        model: a built `CTRModel` (every field at one dim D).
        counts: dict of field to the train count of every id of the field.

    Returns:
        The orthogonal matrix R whose columns are the axes; `table @ R` gives
        each vector's coordinates on them.
    """
    embeddings = model.field_embeddings.embeddings
    dim = model.field_embeddings.dim
    moment = np.zeros((dim, dim))
    for name, field_counts in counts.items():
        table = embeddings[name].embedding_table.numpy().astype(np.float64)
        weights = np.asarray(field_counts, np.float64)
        if weights.sum() > 0:
            moment += (table * weights[:, None]).T @ table / weights.sum()
    _, vectors = np.linalg.eigh(moment)
    return vectors[:, ::-1]


def align_principal_axes(model, counts: Dict[str, Sequence[int]]) -> np.ndarray:
    """Rotates every table onto `principal_axes`, leaving the model's output unchanged.

    One rotation for all fields keeps every inner product between fields (the
    FM term) as it was; the first layer of the MLP over the concatenated
    fields (`model.head.deep`, if any) takes R^T on each field's block of rows, so
    it reads the same numbers. First-order weights and bias do not see the
    vectors.

    Args:
        model: a built `CTRModel` (every field at one dim D, no search stage).
        counts: dict of field to the train count of every id, for the axes.

    Returns:
        The rotation R.
    """
    rotation = principal_axes(model, counts)
    embeddings = model.field_embeddings.embeddings
    for layer in embeddings.values():
        table = layer.embedding_table
        table.assign((table.numpy().astype(np.float64) @ rotation).astype(np.float32))
    deep = getattr(model.head, "deep", None)
    if deep is not None:
        kernel = deep.layers[0].kernel
        dim = model.field_embeddings.dim
        blocks = kernel.numpy().astype(np.float64).reshape(len(embeddings), dim, -1)
        rotated = np.einsum("dk,fdh->fkh", rotation, blocks)  # R^T K_f for each field f
        kernel.assign(rotated.reshape(kernel.shape).astype(np.float32))
    return rotation


def apply_variant(model, variant: str, initial: dict) -> None:
    """Makes the change of `variant` to a warm-started AMTL model.

    Args:
        model: the `CTRModel` (with `MaskedEmbeddings`) just loaded from a trained model.
        variant: one of `VARIANTS`.
        initial: dict of `variable.ref()` to its value before the load.
    """
    if variant == "principal_axes":
        frequencies = model.field_embeddings.frequencies
        masked = model.field_embeddings.masked_fields
        align_principal_axes(model, {name: frequencies[name].counts for name in masked})
        return
    if variant == "tables":
        kept = {layer.embedding_table.ref() for layer in model.field_embeddings.embeddings.values()}
        fresh = [v for v in model.variables if v.ref() not in kept]
    elif variant == "no_mlp":
        if getattr(model.head, "deep", None) is None:
            raise ValueError(f"variant 'no_mlp': model {model.name!r} has no MLP")
        # The dropout layers' draw counters keep counting, as in the default warm start.
        fresh = [
            variable
            for layer in model.head.deep.layers
            if not isinstance(layer, CheckpointedDropout)
            for variable in layer.variables
        ]
    else:
        return
    for variable in fresh:
        variable.assign(initial[variable.ref()])


@contextlib.contextmanager
def warm_start_variant(variant: str) -> Iterator[None]:
    """Within the block, `run_amtl`'s warm start also makes the change of `variant`."""
    load = amtl_runs.warm_start_from_run

    def load_and_change(model, run_dir, source=None):
        initial = {v.ref(): v.numpy() for v in model.variables}
        load(model, run_dir, source)
        apply_variant(model, variant, initial)

    amtl_runs.warm_start_from_run = load_and_change
    try:
        yield
    finally:
        amtl_runs.warm_start_from_run = load


def _seeds(text: str) -> list:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2, got {text!r}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `dimsel preprocess` artifact")
    parser.add_argument("--model", required=True, choices=("fm", "wide_deep", "deepfm"))
    parser.add_argument("--variant", required=True, choices=VARIANTS)
    parser.add_argument(
        "--warm-start",
        required=True,
        metavar="PATTERN",
        help="the baseline run of each seed, with {seed} in it, e.g. 'runs/full_s{seed}'",
    )
    parser.add_argument("--seeds", type=_seeds, default=[0, 1, 2], metavar="0,1,2")
    parser.add_argument("--keep-best", action="store_true", help="as `dimsel amtl --keep-best`")
    parser.add_argument("--output", required=True, help="one run directory per seed: DIR/seedS")
    args = parser.parse_args(argv)
    if "{seed}" not in args.warm_start:
        parser.error(f"--warm-start must contain {{seed}}, got {args.warm_start!r}")

    spec = FeatureSpec.load(args.data)
    aucs = []
    for seed in args.seeds:
        settings = TrainSettings(seed=seed, keep_best=args.keep_best)
        with warm_start_variant(args.variant):
            metrics = amtl_runs.run_amtl(
                spec,
                args.model,
                os.path.join(args.output, f"seed{seed}"),
                warm_start=args.warm_start.format(seed=seed),
                settings=settings,
            )
        aucs.append(metrics["auc"])
        share = metrics["embedding_params"] / metrics["full_embedding_params"]
        print(f"seed {seed}: test AUC {metrics['auc']:.4f}, {share:.0%} of the embedding numbers")
    summary = {
        "variant": args.variant,
        "model": args.model,
        "data": args.data,
        "seeds": args.seeds,
        "auc": aucs,
        "auc_mean": statistics.mean(aucs),
        "auc_std": statistics.stdev(aucs) if len(aucs) > 1 else 0.0,
    }
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(
        f"{args.variant}: test AUC {summary['auc_mean']:.4f} ± {summary['auc_std']:.4f} "
        f"over seeds {','.join(map(str, args.seeds))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
