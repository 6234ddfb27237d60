"""Preprocessing speed: the Beam job against a single-process pyarrow/pandas baseline.

One process, one synthetic CSV, every variant timed in turn (round-robin over
the repeats, so slow drifts of a shared machine hit all variants alike):

- `beam_counting/<mode>`: the counting half of the job, built from the library's
  PTransforms: `ReadRows` -> `AssignSplits` -> train only ->
  `ComputeFeatureStatistics` (quantile boundaries, value counts, vocab files).
- `beam_full/<mode>`: `keras_dimsel.preprocessing.pipeline.run`, the whole job
  (also writes the gzip TFRecord splits and `feature_spec.json`).
- `baseline_counting`: the same counting in one process with pyarrow, pandas and
  NumPy: read the CSV as strings, split by the same row hash, exact NumPy
  quantiles, the same tokens, value counts, the same vocab file format.
- `baseline_counting_1thread`: the same with pyarrow's CSV reader on one thread.
- `baseline_full`: `baseline_counting` plus the TFRecord splits, written with the
  library's encoder and TensorFlow's gzip TFRecord writer at the same level.

`<mode>` is the DirectRunner mode: `in_memory` (the default, one worker) or
`multi_processing` (`--direct_num_workers 2 --direct_running_mode
multi_processing`).

A timed measurement is the job only (pipeline construction and run, or the
baseline function); imports, data generation, clearing the output directory
and the output checks are outside it. After the timings, the script checks that
the baseline wrote the same vocabulary files as the Beam runs and, for the full
job, the same examples in each split.

Usage (from the repository root):

    .venv/bin/python benchmarks/preprocess_speed.py --rows 1000000 \
        --out benchmarks/results/preprocess_speed.json
"""

from __future__ import annotations

import os

# Keras 2 behind tf.keras; TensorFlow reads these when it is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Callable, Optional, Sequence  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")

import apache_beam as beam  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pcsv  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_dimsel.data import tokens  # noqa: E402
from keras_dimsel.data.feature_spec import (  # noqa: E402
    FEATURE_SPEC_FILE,
    SPLITS,
    format_vocabulary_line,
)
from keras_dimsel.data.reader import Reader, hash_rows, parse_numbers  # noqa: E402
from keras_dimsel.data.synthetic import SyntheticReader, generate_csv  # noqa: E402
from keras_dimsel.preprocessing import outputs, pipeline  # noqa: E402
from keras_dimsel.preprocessing.pipeline import (  # noqa: E402
    ComputeFeatureStatistics,
    PreprocessConfig,
)
from keras_dimsel.preprocessing.read import ReadRows  # noqa: E402
from keras_dimsel.preprocessing.splits import AssignSplits, split_indices  # noqa: E402
from keras_dimsel.preprocessing.statistics import VOCAB_DIR  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import code_state, machine_description, peak_rss_mib, reset_peak_rss  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join("benchmarks", "results", "preprocess_speed.json")
DEFAULT_WORK_DIR = os.path.join("benchmarks", "work", "preprocess_speed")
TARGET_RATIO = 2.0
# DirectRunner modes: name -> Beam pipeline flags.
RUNNER_MODES = {
    "in_memory": [],
    "multi_processing": ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
}
# Rows encoded per call when the baseline writes a split (bounds memory).
WRITE_SLICE_ROWS = 1 << 18


# ---------------------------------------------------------------------------
# The Beam side.


def _is_train(element) -> bool:
    """True for `(split, index, batch)` elements of the train split."""
    return element[0] == "train"


def beam_counting(reader: Reader, config: PreprocessConfig, beam_args: Sequence[str]) -> None:
    """Runs the counting half of the job: read, split, train only, statistics.

    The same transforms, in the same order, as `pipeline.build_pipeline`, without
    the writing of the splits, the rejected rows and the feature spec.
    """
    with beam.Pipeline(options=pipeline.pipeline_options(beam_args)) as root:
        read = root | "ReadRows" >> ReadRows(reader, config.chunk_bytes)
        train = (
            read.rows
            | "AssignSplits" >> AssignSplits(config.split_ratios)
            | "TrainOnly" >> beam.Filter(_is_train)
        )
        _ = train | "ComputeFeatureStatistics" >> ComputeFeatureStatistics(reader.fields, config)


def beam_full(reader: Reader, config: PreprocessConfig, beam_args: Sequence[str]) -> None:
    """Runs the whole job, `keras_dimsel.preprocessing.pipeline.run`."""
    pipeline.run(reader, config, beam_args)


# ---------------------------------------------------------------------------
# The single-process baseline.


def read_string_table(path: str, use_threads: bool) -> pa.RecordBatch:
    """The CSV with every column as a string (empty cells stay `""`), like the reader."""
    table = pcsv.read_csv(
        path,
        read_options=pcsv.ReadOptions(use_threads=use_threads, block_size=1 << 24),
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(_header(path), pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    columns = [column.combine_chunks() for column in table.columns]
    return pa.RecordBatch.from_arrays(columns, table.schema.names)


def _header(path: str) -> list[str]:
    """The column names of a CSV file's header line."""
    with open(path, encoding="utf-8") as f:
        return f.readline().rstrip("\r\n").split(",")


def parse_rows(raw: pa.RecordBatch, reader: Reader) -> pa.RecordBatch:
    """The label and field columns as the reader types them (float32 numbers, strings).

    Raises:
        ValueError: on a label other than 0/1 or an unparsable number (the
            synthetic data has none; the Beam job would reject such rows).
    """
    labels, bad = parse_numbers(raw.column(reader.label))
    if bad.any() or not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("the input has bad labels; this baseline expects clean rows")
    arrays = [pa.array(labels.astype(np.float32))]
    for field in reader.fields:
        column = raw.column(field.name)
        if field.kind == "numeric":
            numbers, bad = parse_numbers(column)
            if bad.any():
                raise ValueError(f"unparsable numbers in {field.name!r}")
            column = pa.array(numbers.astype(np.float32))
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=reader.schema())


def quantile_boundaries(values: np.ndarray, num_buckets: int) -> list[float]:
    """Exact interior quantiles of the non-missing values, deduplicated and sorted.

    `values` are float32 (as in the examples) promoted to float64, like the Beam
    job. `inverted_cdf` picks data points, as Beam's quantiles do.
    """
    values = np.asarray(values, dtype=np.float32).astype(np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        return []
    probabilities = np.linspace(0.0, 1.0, num_buckets + 1)
    quantiles = np.quantile(values, probabilities, method="inverted_cdf")
    return sorted({float(q) for q in quantiles[1:-1]})


def write_counts(values: pa.Array, path: str) -> int:
    """Writes the `"<count> <value>"` vocabulary of `values`; returns its length.

    Most frequent first, ties by value (ascending), as the Beam job orders them.
    """
    counted = pc.value_counts(values)
    table = pa.table({"value": counted.field("values"), "count": counted.field("counts")})
    table = table.take(
        pc.sort_indices(table, sort_keys=[("count", "descending"), ("value", "ascending")])
    )
    lines = map(
        format_vocabulary_line,
        table.column("count").to_pylist(),
        table.column("value").to_pylist(),
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(lines))
    return table.num_rows


def write_split(batch: pa.RecordBatch, path: str) -> None:
    """Writes `batch` as gzip TFRecords of `tf.train.Example`, like the Beam job's shards."""
    options = tf.io.TFRecordOptions("GZIP", compression_level=outputs.GZIP_LEVEL)
    with tf.io.TFRecordWriter(path, options=options) as writer:
        for start in range(0, batch.num_rows, WRITE_SLICE_ROWS):
            for record in outputs.encode_examples(batch.slice(start, WRITE_SLICE_ROWS)):
                writer.write(record)


def baseline_job(
    csv_path: str,
    reader: Reader,
    config: PreprocessConfig,
    write_splits: bool = False,
    use_threads: bool = True,
) -> dict:
    """The job in one process: splits, boundaries and vocab files (and the splits).

    Returns:
        dict with the split sizes and the quantile boundaries.
    """
    raw = read_string_table(csv_path, use_threads)
    # The config holds the ratios at any scale (8:1:1); the split rule wants fractions.
    ratios = np.asarray(config.split_ratios, dtype=np.float64)
    which = split_indices(hash_rows(raw.columns), ratios / ratios.sum())
    batch = parse_rows(raw, reader)
    del raw
    train = batch.filter(pa.array(which == 0))
    vocab_dir = os.path.join(config.output_dir, VOCAB_DIR)
    os.makedirs(vocab_dir, exist_ok=True)
    boundaries = {}
    for field in reader.fields:
        column = train.column(train.schema.get_field_index(field.name))
        if field.kind == "categorical":
            values = tokens.categorical_tokens(column)
        else:
            numbers = column.to_numpy(zero_copy_only=False)
            edges = ()
            if field.transform == "quantiles":
                edges = boundaries[field.name] = quantile_boundaries(numbers, config.num_buckets)
            values = tokens.numeric_tokens(numbers, field.transform, edges)
        write_counts(values, os.path.join(vocab_dir, f"{field.name}.txt"))
    if write_splits:
        for number, name in enumerate(SPLITS):
            os.makedirs(os.path.join(config.output_dir, name), exist_ok=True)
            rows = batch.filter(pa.array(which == number))
            write_split(rows, outputs.shard_path(config.output_dir, name, 0))
    sizes = np.bincount(which, minlength=len(SPLITS))
    return {
        "splits": {name: int(sizes[i]) for i, name in enumerate(SPLITS)},
        "boundaries": boundaries,
    }


# ---------------------------------------------------------------------------
# Measuring.


class Variant:
    """One thing to time: a name, a description and the job, given its output dir."""

    def __init__(self, name: str, description: str, job: Callable[[str], object], **info):
        self.name = name
        self.description = description
        self.job = job
        self.info = info
        self.last_result = None


def measure(variant: Variant, output_dir: str) -> dict:
    """Times one run of `variant` into a freshly cleared `output_dir`."""
    shutil.rmtree(output_dir, ignore_errors=True)
    os.makedirs(output_dir)
    load = os.getloadavg()[0]
    reset = reset_peak_rss()
    cpu_before = os.times()
    start = time.perf_counter()
    variant.last_result = variant.job(output_dir)
    seconds = time.perf_counter() - start
    cpu_after = os.times()
    cpu = sum(
        after - before
        for after, before in zip(cpu_after[:4], cpu_before[:4])  # user, system, children's
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mib": peak_rss_mib(reset),
        "load_average_before": load,
    }


def summarize(runs: list[dict], rows: int) -> dict:
    """Median, mean and standard deviation of seconds and rows/s over the runs."""
    seconds = [run["seconds"] for run in runs]
    rates = [rows / s for s in seconds]

    def spread(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    return {
        "seconds": seconds,
        "median_seconds": statistics.median(seconds),
        "mean_seconds": statistics.fmean(seconds),
        "std_seconds": spread(seconds),
        "median_rows_per_second": rows / statistics.median(seconds),
        "mean_rows_per_second": statistics.fmean(rates),
        "std_rows_per_second": spread(rates),
        "cpu_seconds": [run["cpu_seconds"] for run in runs],
        "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
        "load_average_before": [run["load_average_before"] for run in runs],
    }


def run_variants(
    variants: list[Variant], work_dir: str, repeats: int, label: str
) -> dict[str, list[dict]]:
    """Runs every variant `repeats` times, round-robin; returns the raw runs by name."""
    runs: dict[str, list[dict]] = {variant.name: [] for variant in variants}
    for repeat in range(repeats):
        for variant in variants:
            output_dir = os.path.join(work_dir, "out", variant.name.replace("/", "-"))
            result = measure(variant, output_dir)
            runs[variant.name].append(result)
            print(
                f"[{label} {repeat + 1}/{repeats}] {variant.name:<28} "
                f"{result['seconds']:8.2f} s  cpu {result['cpu_seconds']:8.2f} s  "
                f"peak rss {result['peak_rss_mib']:7.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
    return runs


def make_variants(csv_path: str, chunk_bytes: int, num_buckets: int) -> list[Variant]:
    """The Beam variants (counting, full; both runner modes) and the baselines."""
    reader = SyntheticReader([csv_path])

    def config(output_dir: str) -> PreprocessConfig:
        return PreprocessConfig(
            output_dir=output_dir, num_buckets=num_buckets, chunk_bytes=chunk_bytes
        )

    variants = []
    for mode, flags in RUNNER_MODES.items():
        variants.append(
            Variant(
                f"beam_counting/{mode}",
                "Beam, counting half only: ReadRows, AssignSplits, train filter, "
                "ComputeFeatureStatistics (writes the vocab files)",
                lambda out, flags=flags: beam_counting(reader, config(out), flags),
                beam_args=flags,
            )
        )
    for mode, flags in RUNNER_MODES.items():
        variants.append(
            Variant(
                f"beam_full/{mode}",
                "Beam, the whole job: pipeline.run (vocab files, gzip TFRecord splits, "
                "rejected rows, feature_spec.json)",
                lambda out, flags=flags: beam_full(reader, config(out), flags),
                beam_args=flags,
            )
        )
    variants += [
        Variant(
            "baseline_counting",
            "pyarrow/pandas/NumPy in one process, counting only (pyarrow's CSV reader "
            "with its default thread pool)",
            lambda out: baseline_job(csv_path, reader, config(out)),
        ),
        Variant(
            "baseline_counting_1thread",
            "as baseline_counting, with pyarrow's CSV reader on one thread",
            lambda out: baseline_job(csv_path, reader, config(out), use_threads=False),
        ),
        Variant(
            "baseline_full",
            "baseline_counting plus the gzip TFRecord splits (library encoder, "
            f"GZIP level {outputs.GZIP_LEVEL}, one file per split)",
            lambda out: baseline_job(csv_path, reader, config(out), write_splits=True),
        ),
    ]
    return variants


# ---------------------------------------------------------------------------
# Checking that both sides did the same work.


def compare_vocab(beam_dir: str, baseline_dir: str, fields: Sequence[str]) -> dict[str, bool]:
    """Field name -> whether the two vocab files are byte-identical."""
    result = {}
    for name in fields:
        paths = [os.path.join(d, VOCAB_DIR, f"{name}.txt") for d in (beam_dir, baseline_dir)]
        contents = []
        for path in paths:
            with open(path, "rb") as f:
                contents.append(f.read())
        result[name] = contents[0] == contents[1]
    return result


def read_examples(pattern: str, schema: pa.Schema) -> pd.DataFrame:
    """The examples of the gzip TFRecord files matching `pattern`, decoded and sorted.

    Compared decoded: the serialized bytes of equal examples may differ, since a
    `tf.train.Example`'s features are a map with no fixed order on the wire.
    """
    features = {
        field.name: tf.io.FixedLenFeature(
            [], tf.string if pa.types.is_string(field.type) else tf.float32
        )
        for field in schema
    }
    files = sorted(tf.io.gfile.glob(pattern))
    columns: dict[str, list] = {name: [] for name in features}
    if files:
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1 << 16)
        for records in dataset:
            for name, values in tf.io.parse_example(records, features).items():
                columns[name].append(values.numpy())
    frame = pd.DataFrame(
        {name: np.concatenate(parts) if parts else [] for name, parts in columns.items()}
    )
    return frame.sort_values(list(features)).reset_index(drop=True)


def compare_splits(beam_dir: str, baseline_dir: str, schema: pa.Schema) -> dict[str, dict]:
    """Per split: the example counts of both sides and whether the examples are equal."""
    result = {}
    for name in SPLITS:
        pattern = os.path.join("{}", name, "*.tfrecord.gz")
        beam_examples = read_examples(pattern.format(beam_dir), schema)
        baseline_examples = read_examples(pattern.format(baseline_dir), schema)
        result[name] = {
            "beam_rows": len(beam_examples),
            "baseline_rows": len(baseline_examples),
            "same_examples": beam_examples.equals(baseline_examples),
        }
    return result


def check_outputs(work_dir: str, reader: Reader, baseline_result: dict) -> dict:
    """Compares the last run's outputs of the Beam variants with the baselines'."""
    out = os.path.join(work_dir, "out")
    checks: dict = {"vocab": {}, "splits": {}}
    for beam_name in [
        f"beam_{kind}-{mode}" for kind in ("counting", "full") for mode in RUNNER_MODES
    ]:
        baseline_name = "baseline_full" if "full" in beam_name else "baseline_counting"
        checks["vocab"][beam_name] = compare_vocab(
            os.path.join(out, beam_name),
            os.path.join(out, baseline_name),
            [field.name for field in reader.fields],
        )
    for mode in RUNNER_MODES:
        beam_dir = os.path.join(out, f"beam_full-{mode}")
        checks["splits"][f"beam_full-{mode}"] = compare_splits(
            beam_dir, os.path.join(out, "baseline_full"), reader.schema()
        )
        with open(os.path.join(beam_dir, FEATURE_SPEC_FILE)) as f:
            spec = json.load(f)
        checks.setdefault("beam_boundaries", {})[mode] = {
            field["name"]: field["boundaries"]
            for field in spec["fields"]
            if field.get("boundaries")
        }
        checks.setdefault("beam_split_sizes", {})[mode] = spec["splits"]
    checks["baseline_boundaries"] = baseline_result["boundaries"]
    checks["baseline_split_sizes"] = baseline_result["splits"]
    return checks


# ---------------------------------------------------------------------------
# Reporting.


def compute_ratios(measurements: dict) -> dict:
    """Beam median / baseline median for every Beam variant."""
    ratios = {}
    for mode in RUNNER_MODES:
        counting = measurements[f"beam_counting/{mode}"]["median_seconds"]
        full = measurements[f"beam_full/{mode}"]["median_seconds"]
        ratios[f"beam_counting/{mode} / baseline_counting"] = (
            counting / measurements["baseline_counting"]["median_seconds"]
        )
        ratios[f"beam_counting/{mode} / baseline_counting_1thread"] = (
            counting / measurements["baseline_counting_1thread"]["median_seconds"]
        )
        ratios[f"beam_full/{mode} / baseline_full"] = (
            full / measurements["baseline_full"]["median_seconds"]
        )
    return ratios


def target_verdicts(ratios: dict) -> dict:
    """Per runner mode: the counting ratio and whether it is within the target."""
    verdicts = {}
    for mode in RUNNER_MODES:
        ratio = ratios[f"beam_counting/{mode} / baseline_counting"]
        verdicts[mode] = {"ratio": ratio, "met": ratio <= TARGET_RATIO}
    return verdicts


def render_markdown(report: dict) -> str:
    """The short human summary written next to the JSON results."""
    settings, machine = report["settings"], report["machine"]
    loads = [load for m in report["measurements"].values() for load in m["load_average_before"]]
    rows = settings["rows"]
    lines = [
        "# Preprocessing speed: Beam job vs single-process baseline",
        "",
        f"{rows:,} synthetic rows ({settings['csv_mib']:.1f} MiB CSV, seed {settings['seed']}), "
        f"{settings['repeats']} repeats per variant, run on {report['date']}.",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpu_count']} cores, "
        f"{machine['memory_gib']} GiB RAM, {machine['platform']}.  ",
        f"Python {machine['python']}, TensorFlow {machine['tensorflow']}, "
        f"Apache Beam {machine['apache_beam']}, tfx-bsl {machine['tfx_bsl']}, "
        f"pyarrow {machine['pyarrow']}, pandas {machine['pandas']}, numpy {machine['numpy']}.  ",
        f"Library commit {report['code']['commit'][:12] or 'unknown'}"
        + (" (with uncommitted changes)" if report["code"]["library_modified"] else "")
        + ".",
        "",
        f"1-minute load average before each measurement: {min(loads):.2f} to {max(loads):.2f} "
        f"(the job itself adds up to {machine['cpu_count']} on this machine).",
        "",
        "| variant | median s | mean ± std s | median rows/s | CPU s (median) "
        "| peak RSS MiB (main process) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in report["measurements"].items():
        lines.append(
            f"| `{name}` | {m['median_seconds']:.2f} | {m['mean_seconds']:.2f} ± "
            f"{m['std_seconds']:.2f} | {m['median_rows_per_second']:,.0f} | "
            f"{statistics.median(m['cpu_seconds']):.1f} | {m['peak_rss_mib']:,.0f} |"
        )
    lines += [
        "",
        f"Largest peak RSS of a worker process: {report['worker_peak_rss_mib']:,.0f} MiB.",
        "",
        "Ratios of medians (Beam / baseline):",
        "",
    ]
    for name, ratio in report["ratios"].items():
        lines.append(f"- `{name}`: {ratio:.2f}x")
    lines += ["", f"Target: Beam (counting) <= {TARGET_RATIO:g}x the baseline counting time.", ""]
    for mode, verdict in report["target"].items():
        lines.append(
            f"- `{mode}`: {verdict['ratio']:.2f}x, target "
            + ("**met**." if verdict["met"] else "**not met**.")
        )
    ratios = report["ratios"]
    lines += [
        "",
        "Full job (with the TFRecord splits): "
        + ", ".join(
            f"`{mode}` {report['measurements'][f'beam_full/{mode}']['median_seconds']:.1f} s "
            f"({ratios[f'beam_full/{mode} / baseline_full']:.2f}x the baseline's "
            f"{report['measurements']['baseline_full']['median_seconds']:.1f} s)"
            for mode in RUNNER_MODES
        )
        + ".",
        "",
        "Same work: " + report["checks_summary"],
        "",
    ]
    return "\n".join(lines)


def summarize_checks(checks: dict) -> str:
    """One sentence on whether the Beam runs and the baseline produced the same outputs."""
    parts = []
    for run, fields in checks["vocab"].items():
        others = {name: same for name, same in fields.items() if name != "price"}
        differing = sorted(name for name, same in others.items() if not same)
        text = f"`{run}` vocab files " + (
            "identical to the baseline's"
            if not differing
            else f"DIFFER from the baseline's for {', '.join(differing)}"
        )
        if "price" in fields:
            text += "; price " + ("identical" if fields["price"] else "differs")
        parts.append(text)
    for run, splits in checks["splits"].items():
        same = all(s["same_examples"] for s in splits.values())
        parts.append(
            f"`{run}` splits "
            + ("contain the same examples as the baseline's" if same else "DIFFER")
            + " ("
            + ", ".join(f"{name} {s['beam_rows']:,}" for name, s in splits.items())
            + ")"
        )
    return "; ".join(parts) + "."


def build_report(args, csv_path, measurements, checks, started) -> dict:
    """Assembles the JSON report."""
    ratios = compute_ratios(measurements)
    return {
        "benchmark": "preprocess_speed",
        "command": " ".join([os.path.relpath(sys.executable, REPO_ROOT), *sys.argv]),
        "date": started.isoformat(timespec="seconds"),
        "settings": {
            "rows": args.rows,
            "repeats": args.repeats,
            "seed": args.seed,
            "warmup_rows": args.warmup_rows,
            "split_ratios": list(PreprocessConfig(output_dir="").split_ratios),
            "num_buckets": args.num_buckets,
            "chunk_bytes": args.chunk_bytes,
            "csv_mib": os.path.getsize(csv_path) / 2**20,
            "runner_modes": RUNNER_MODES,
            "target_ratio": TARGET_RATIO,
        },
        "machine": machine_description(
            ("tensorflow", "apache-beam", "tfx-bsl", "pyarrow", "pandas", "numpy")
        ),
        "code": code_state(),
        "measurements": measurements,
        "ratios": ratios,
        "target": target_verdicts(ratios),
        "checks": checks,
        "checks_summary": summarize_checks(checks),
        "worker_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic rows")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant")
    parser.add_argument("--out", default=DEFAULT_OUT, help="the JSON results file")
    parser.add_argument(
        "--markdown", default=None, help="the Markdown summary (default: --out with .md)"
    )
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="input and output files")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    parser.add_argument(
        "--warmup-rows",
        type=int,
        default=20_000,
        help="rows of an untimed run of every variant first (0: none)",
    )
    parser.add_argument("--num-buckets", type=int, default=PreprocessConfig("").num_buckets)
    parser.add_argument("--chunk-bytes", type=int, default=PreprocessConfig("").chunk_bytes)
    args = parser.parse_args(argv)
    if args.rows <= 0 or args.repeats <= 0 or args.warmup_rows < 0:
        parser.error("--rows and --repeats must be positive, --warmup-rows non-negative")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Generates the data, times every variant, checks the outputs, writes the reports."""
    args = parse_args(argv)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    started = datetime.datetime.now(datetime.timezone.utc)
    work_dir = os.path.abspath(args.work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)

    if args.warmup_rows:
        warmup_dir = os.path.join(work_dir, "warmup")
        warmup_csv = generate_csv(os.path.join(warmup_dir, "rows.csv"), args.warmup_rows, args.seed)
        warmup = make_variants(warmup_csv, args.chunk_bytes, args.num_buckets)
        run_variants(warmup, warmup_dir, 1, "warm-up")

    print(f"generating {args.rows:,} rows ...", file=sys.stderr, flush=True)
    csv_path = generate_csv(os.path.join(work_dir, "rows.csv"), args.rows, args.seed)
    variants = make_variants(csv_path, args.chunk_bytes, args.num_buckets)
    runs = run_variants(variants, work_dir, args.repeats, "run")
    measurements = {variant.name: summarize(runs[variant.name], args.rows) for variant in variants}
    for variant in variants:
        measurements[variant.name] = {
            "description": variant.description,
            **variant.info,
            **measurements[variant.name],
        }

    print("checking the outputs ...", file=sys.stderr, flush=True)
    baseline_result = next(v.last_result for v in variants if v.name == "baseline_full")
    checks = check_outputs(work_dir, SyntheticReader([csv_path]), baseline_result)
    report = build_report(args, csv_path, measurements, checks, started)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    markdown = args.markdown or os.path.splitext(args.out)[0] + ".md"
    with open(markdown, "w") as f:
        f.write(render_markdown(report))
    print(render_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
