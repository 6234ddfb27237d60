"""Does a code change leave the numbers of a run unchanged? Fingerprints runs, compares them.

`run` trains, through the `dimsel` command line of the interpreter it is
given (so an older checkout can be measured with `PYTHONPATH=that/checkout`),
a baseline, a search, a warm-started retrain and a warm-started AMTL run on
one artifact, and writes `fingerprint.json`: every number of each run's
`metrics.json` and `plan.json` except the timings, and the probabilities the
exported SavedModel gives on the first test rows. `compare` prints every
difference between two fingerprints and exits 1 when there is one.

TensorFlow's graph optimizer (Grappler) rewrites each traced graph, and what
it fuses or reorders depends on how the graph is built, names and nesting
included. A change that moves code but keeps its operations can therefore
change results in the last bits, which training then amplifies.
`--graph-rewrites off` runs every command without those rewrites: with the
same operations the runs are then identical bit for bit.

    python benchmarks/same_numbers.py run --input ../shared/data/criteo/train_head10k.txt \\
        --work /tmp/before
    python benchmarks/same_numbers.py compare /tmp/before/fingerprint.json \\
        /tmp/after/fingerprint.json
    # the same with --graph-rewrites off on both sides: identical bits
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

#: metrics that measure the machine, not the model
TIMINGS = ("examples_per_second", "train_examples_per_second")
#: test rows whose served probabilities are compared
SERVED_ROWS = 256


#: The command line with TensorFlow's graph rewrites (Grappler) off: what a run computes then
#: depends on its ops alone, not on how the graph around them is named and nested.
_WITHOUT_REWRITES = (
    "import sys, tensorflow as tf; "
    "tf.config.optimizer.set_experimental_options({'disable_meta_optimizer': True}); "
    "from keras_dimsel.cli import main; sys.exit(main(sys.argv[1:]))"
)
_REWRITES = {"on": ["-m", "keras_dimsel.cli"], "off": ["-c", _WITHOUT_REWRITES]}
_rewrites = "on"


def _dimsel(*args: str) -> None:
    command = [sys.executable, *_REWRITES[_rewrites], *args]
    print("+ dimsel", " ".join(args), flush=True)
    subprocess.run(command, check=True)


def _numbers(path: str) -> dict:
    with open(path) as f:
        record = json.load(f)
    return {key: value for key, value in record.items() if key not in TIMINGS}


def _served(data: str, saved_model: str) -> list:
    import tensorflow as tf

    if _rewrites == "off":
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

    from keras_dimsel.data import make_dataset
    from keras_dimsel.data.feature_spec import FeatureSpec

    spec = FeatureSpec.load(data)
    features, _ = next(iter(make_dataset(spec, "test", batch_size=SERVED_ROWS)))
    signature = tf.saved_model.load(saved_model).signatures["serving_default"]
    names = signature.structured_input_signature[1]
    outputs = signature(**{name: features[name] for name in names})
    return [float(p) for p in outputs["probability"].numpy()]


def run(args: argparse.Namespace) -> dict:
    global _rewrites
    _rewrites = args.graph_rewrites
    work = args.work
    data = os.path.join(work, "data")
    if not os.path.exists(os.path.join(data, "feature_spec.json")):
        _dimsel("preprocess", "--dataset", args.dataset, "--input", args.input, "--output", data)
    common = ["--data", data, "--model", args.model, "--seed", str(args.seed)]
    common += ["--epochs", str(args.epochs)]
    runs = {name: os.path.join(work, name) for name in ("baseline", "search", "retrain", "amtl")}
    if not os.path.exists(os.path.join(runs["baseline"], "metrics.json")):
        _dimsel("baseline", *common, "--output", runs["baseline"])
    if not os.path.exists(os.path.join(runs["search"], "plan.json")):
        _dimsel("search", *common, "--output", runs["search"])
    if not os.path.exists(os.path.join(runs["retrain"], "metrics.json")):
        plan = os.path.join(runs["search"], "plan.json")
        _dimsel("retrain", *common, "--plan", plan, "--warm-start", runs["search"],
                "--output", runs["retrain"])  # fmt: skip
    if not os.path.exists(os.path.join(runs["amtl"], "metrics.json")):
        _dimsel("amtl", *common, "--warm-start", runs["baseline"], "--output", runs["amtl"])
    fingerprint = {"plan": _numbers(os.path.join(runs["search"], "plan.json"))}
    for name in ("baseline", "retrain", "amtl"):
        fingerprint[name] = _numbers(os.path.join(runs[name], "metrics.json"))
        fingerprint[name]["served"] = _served(data, os.path.join(runs[name], "saved_model"))
    for record in fingerprint.values():
        record.pop("warm_start", None)  # a path, different in every work directory
    with open(os.path.join(work, "fingerprint.json"), "w") as f:
        json.dump(fingerprint, f, indent=1)
    return fingerprint


def differences(before, after, where: str = "") -> list:
    """Every path at which two JSON values differ, as `path: before != after` lines.

    Examples:

        >>> differences({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3], "c": 0})
        ['b[1]: 2 != 3', 'c: absent != 0']
    """
    if isinstance(before, dict) and isinstance(after, dict):
        lines = []
        for key in sorted(set(before) | set(after)):
            path = f"{where}.{key}" if where else str(key)
            if key not in before or key not in after:
                shown = [repr(d[key]) if key in d else "absent" for d in (before, after)]
                lines.append(f"{path}: {shown[0]} != {shown[1]}")
            else:
                lines += differences(before[key], after[key], path)
        return lines
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        lines = []
        for index, (b, a) in enumerate(zip(before, after)):
            lines += differences(b, a, f"{where}[{index}]")
        return lines
    return [] if before == after else [f"{where}: {before!r} != {after!r}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="train the four runs and write fingerprint.json")
    runner.add_argument("--dataset", default="criteo")
    runner.add_argument("--input", required=True)
    runner.add_argument("--work", required=True)
    runner.add_argument("--model", default="deepfm")
    runner.add_argument("--seed", type=int, default=0)
    runner.add_argument("--epochs", type=int, default=2)
    runner.add_argument(
        "--graph-rewrites",
        choices=tuple(_REWRITES),
        default="on",
        help="off: TensorFlow's graph optimizer is off, so a run that builds the same ops "
        "under other names gives the same bits (default on, as users run)",
    )
    comparer = commands.add_parser("compare", help="print the differences of two fingerprints")
    comparer.add_argument("before")
    comparer.add_argument("after")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args)
        print(f"fingerprint: {os.path.join(args.work, 'fingerprint.json')}")
        return 0
    with open(args.before) as f, open(args.after) as g:
        lines = differences(json.load(f), json.load(g))
    print("\n".join(lines) if lines else "identical")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
