"""AutoDim training speed: the search and the retrained model against full-dimension training.

One process, one synthetic data set, one batch size for every variant:

- `full`: the full-dimension model (every field at d_N = max(candidates)),
  the ordinary `fit` of `dimsel baseline`.
- `search`: the AutoDim supernet with the alternating step of `dimsel search`
  (network step on every training batch, alpha step on a validation batch
  once every `--arch-every` steps; alpha is live: no pre-training steps).
- `retrain`: the model of a plan, as `dimsel retrain` builds it. The plan is
  the one the search variant ends with after its first (untimed) epoch, so the
  dimensions are what a search on these data picks.
- `retrain_zero_pad`: the same plan with `--unify zero_pad` (rows padded with
  zeros to d_N instead of a linear map per field: no unify weights).

Each variant is built, compiled and traced on a few batches first (outside
the timing). Then every repeat times one `fit` epoch of each variant in turn
(round-robin, so the drifts of a shared machine hit all variants alike), and
the throughput is training examples per second of wall time. The ratios
compare medians.

`--input` says what an epoch reads. `memory` (the default) parses the
TFRecord splits once into memory (`Dataset.cache`, filled before the timing),
so the epochs time the training steps: lookup of the raw values, embeddings,
network and optimizer. `files` re-reads and parses the files every epoch, as
`dimsel` runs do; on two cores the parsing competes with the training steps
for the same cores and narrows the differences between models. Throughput
on the development machines also switches between two levels (about 62,000
and 100,000+ examples/s for the full model) in either mode: read the
per-epoch rates in the JSON, not only the medians.

`steps` takes Keras' `fit` and tf.data out of the loop as well: each
variant's own `train_step`, compiled once with `tf.function`, runs over the
same in-memory batches (an epoch's worth), so the ratios compare the
training steps alone: lookups, network, backward pass and optimizer.

Usage (from the repository root):

    .venv/bin/python benchmarks/autodim_speed.py --rows 200000 \
        --out benchmarks/results/autodim_speed.json
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import tensorflow as tf  # noqa: E402

from keras_dimsel import amtl, cli  # noqa: E402
from keras_dimsel.amtl.embeddings import masked_model  # noqa: E402
from keras_dimsel.autodim.alternating import zip_train_validation  # noqa: E402
from keras_dimsel.autodim.model import planned_model, search_model  # noqa: E402
from keras_dimsel.autodim.plan import DimensionPlan  # noqa: E402
from keras_dimsel.data.feature_spec import FeatureSpec  # noqa: E402
from keras_dimsel.data.input_fn import make_dataset  # noqa: E402
from keras_dimsel.models import full_model, vocab_sizes  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import REPO_ROOT, code_state, machine_description, write_results  # noqa: E402

CANDIDATES = (2, 8, 16, 24, 32)
TRACE_STEPS = 5


def prepare_data(rows: int, seed: int, work_dir: str) -> FeatureSpec:
    """The synthetic artifact, reused when it already has `rows` rows."""
    data_dir = os.path.join(work_dir, f"synthetic_{rows}_{seed}")
    try:
        spec = FeatureSpec.load(data_dir)
        if sum(spec.splits.values()) == rows:
            return spec
    except FileNotFoundError:
        pass
    shutil.rmtree(data_dir, ignore_errors=True)
    argv = ["preprocess", "--dataset", "synthetic", "--rows", str(rows), "--seed", str(seed)]
    if cli.main(argv + ["--output", data_dir]) != 0:
        raise SystemExit("preprocessing the synthetic data failed")
    return FeatureSpec.load(data_dir)


INPUTS = ("memory", "files", "steps")


def training_data(spec: FeatureSpec, batch_size: int, source: str, seed: int = 0):
    """The (train, validation) batches every variant reads, from `memory` or `files`."""
    if source not in INPUTS:
        raise ValueError(f"`input` must be one of {INPUTS}. Received: {source!r}")
    train = make_dataset(spec, "train", batch_size, shuffle=True, seed=seed)
    validation = make_dataset(spec, "validation", batch_size, shuffle=True, seed=seed + 1)
    if source in ("memory", "steps"):
        train, validation = train.cache(), validation.cache()
        for dataset in (train, validation):
            for _ in dataset:  # fills the cache outside the timing
                pass
    return train, validation


class Variant:
    """A compiled model and the dataset one timed epoch of it runs over."""

    def __init__(self, name: str, model, dataset: tf.data.Dataset):
        self.name = name
        self.model = model
        self.dataset = dataset
        self.examples_per_second = []

        self.batches = None

    def use_steps(self) -> None:
        """Times the compiled `train_step` over in-memory batches instead of `fit`."""
        self.batches = list(self.dataset)
        self.step = tf.function(self.model.train_step)

    def trace(self) -> None:
        if self.batches is None:
            self.model.fit(self.dataset.take(TRACE_STEPS), epochs=1, verbose=0)
            return
        for batch in self.batches[:TRACE_STEPS]:
            self.step(batch)

    def time_epoch(self, examples: int) -> float:
        start = time.perf_counter()
        if self.batches is None:
            self.model.fit(self.dataset, epochs=1, verbose=0)
        else:
            for batch in self.batches:
                logs = self.step(batch)
            tf.nest.map_structure(lambda value: value.numpy(), logs)  # waits for the last step
        rate = examples / (time.perf_counter() - start)
        self.examples_per_second.append(rate)
        return rate


def compiled_model(
    name: str, spec: FeatureSpec, model_name: str, arch_every: int = 10, plan_dims=None
):
    """One variant's model, built and compiled as every speed comparison builds it.

    Args:
        name: str, `full`, `search`, `retrain`, `retrain_zero_pad` or `amtl`
            (the default masked fields, D = the largest candidate).
        spec: FeatureSpec, the artifact.
        model_name: str, the backbone.
        arch_every: int, the search's network steps per alpha step.
        plan_dims: dict of field to dim, the retrain variants' plan.
    """
    full_dim = max(CANDIDATES)
    optimizer = tf.keras.optimizers.Adam(1e-3)
    if name == "search":
        model = search_model(model_name, spec, candidates=CANDIDATES, seed=0)
        model.compile(
            optimizer=optimizer,
            arch_optimizer=tf.keras.optimizers.Adam(0.01),
            arch_every=arch_every,
            pretrain_steps=0,
        )
        return model
    if name == "full":
        model = full_model(model_name, spec, dim=full_dim)
    elif name in ("retrain", "retrain_zero_pad"):
        plan = DimensionPlan(fields=plan_dims, candidates=CANDIDATES, vocab_sizes=vocab_sizes(spec))
        unify = "zero_pad" if name == "retrain_zero_pad" else "linear"
        model = planned_model(model_name, spec, plan, unify=unify)
    elif name == "amtl":
        fields = amtl.default_fields(spec, full_dim)
        model = masked_model(model_name, spec, fields, dim=full_dim)
    else:
        raise ValueError(f"unknown variant {name!r}")
    model.compile(optimizer=optimizer)
    return model


def search_plan(search, spec: FeatureSpec) -> DimensionPlan:
    """The plan a search model's alpha gives now (argmax per field)."""
    vocab_sizes = {name: spec.field(name).vocab_size for name in search.field_names}
    return DimensionPlan.from_alpha(
        search.field_embeddings.selection_probabilities(), CANDIDATES, vocab_sizes
    )


def build_variants(spec: FeatureSpec, model_name: str, batch_size: int, arch_every: int, source):
    seed = 0
    train, validation = training_data(spec, batch_size, source, seed)
    tf.keras.utils.set_random_seed(seed)

    full = compiled_model("full", spec, model_name)
    search = compiled_model("search", spec, model_name, arch_every)
    pairs = zip_train_validation(train, validation, arch_every)
    search.fit(pairs, epochs=1, verbose=0)  # untimed: gives the plan of the retrain variant
    plan = search_plan(search, spec)
    variants = [Variant("full", full, train), Variant("search", search, pairs)]
    for name in ("retrain", "retrain_zero_pad"):
        model = compiled_model(name, spec, model_name, plan_dims=plan.fields)
        variants.append(Variant(name, model, train))
    return variants, plan


def summarize(variants, plan, args, spec: FeatureSpec) -> dict:
    medians = {v.name: statistics.median(v.examples_per_second) for v in variants}
    results = {}
    for variant in variants:
        rates = variant.examples_per_second
        results[variant.name] = {
            "examples_per_second": rates,
            "median": medians[variant.name],
            "mean": statistics.mean(rates),
            "std": statistics.stdev(rates) if len(rates) > 1 else 0.0,
            "embedding_params": int(variant.model.embedding_params),
        }
    return {
        "benchmark": "autodim_speed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code": code_state(),
        "machine": machine_description(),
        "settings": {
            "rows": args.rows,
            "train_examples": spec.splits["train"],
            "model": args.model,
            "batch_size": args.batch_size,
            "arch_every": args.arch_every,
            "repeats": args.repeats,
            "input": args.input,
            "candidates": list(CANDIDATES),
        },
        "plan": plan.fields,
        "variants": results,
        "ratios": {
            "search_vs_full": medians["search"] / medians["full"],
            "retrain_vs_full": medians["retrain"] / medians["full"],
            "retrain_zero_pad_vs_full": medians["retrain_zero_pad"] / medians["full"],
        },
        "targets": {
            "search_vs_full": 0.5,
            "retrain_vs_full": 1.0,
            "retrain_zero_pad_vs_full": 1.0,
        },
    }


def markdown(summary: dict) -> str:
    machine, settings = summary["machine"], summary["settings"]
    lines = [
        "# AutoDim training speed",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores, "
        f"{machine['memory_gib']} GiB, TensorFlow {machine['tensorflow']}, "
        f"Python {machine['python']}. Commit {summary['code']['commit'] or 'unknown'}, "
        f"{summary['date']}.",
        "",
        f"{settings['model']} on {settings['train_examples']:,} synthetic training examples, "
        f"batch size {settings['batch_size']}, candidates {settings['candidates']}, "
        f"alpha step every {settings['arch_every']} network steps; "
        f"{settings['repeats']} timed epochs per variant, round-robin; "
        f"input read from {settings.get('input', 'files')}.",
        "",
        "| variant | median examples/s | mean ± std | ratio to full | target | embedding params |",
        "|---|---|---|---|---|---|",
    ]
    ratios = {"full": 1.0}
    ratios.update({k.split("_vs_")[0]: v for k, v in summary["ratios"].items()})
    for name, result in summary["variants"].items():
        target = summary["targets"].get(f"{name}_vs_full")
        verdict = (
            ""
            if target is None
            else f"≥ {target} ({'met' if ratios[name] >= target else 'NOT met'})"
        )
        lines.append(
            f"| {name} | {result['median']:,.0f} | {result['mean']:,.0f} ± {result['std']:,.0f} "
            f"| {ratios[name]:.2f} | {verdict} | {result['embedding_params']:,} |"
        )
    lines += ["", f"Plan of the retrained model: {summary['plan']}", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--model", default="deepfm", choices=("fm", "wide_deep", "deepfm"))
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--arch-every", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument(
        "--input", choices=INPUTS, default="memory", help="what each epoch reads (see above)"
    )
    parser.add_argument(
        "--out", default=os.path.join(REPO_ROOT, "benchmarks/results/autodim_speed.json")
    )
    parser.add_argument(
        "--work-dir", default=os.path.join(REPO_ROOT, "benchmarks/work/autodim_speed")
    )
    args = parser.parse_args(argv)

    spec = prepare_data(args.rows, args.seed, args.work_dir)
    variants, plan = build_variants(spec, args.model, args.batch_size, args.arch_every, args.input)
    for variant in variants:
        if args.input == "steps":
            variant.use_steps()
        variant.trace()
    for repeat in range(args.repeats):
        for variant in variants:
            rate = variant.time_epoch(spec.splits["train"])
            print(f"repeat {repeat + 1}: {variant.name:8s} {rate:10,.0f} examples/s", flush=True)

    summary = summarize(variants, plan, args, spec)
    write_results(summary, markdown(summary), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
