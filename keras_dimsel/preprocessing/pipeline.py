"""The preprocessing job: raw files to the feature statistics artifact.

```
ReadRows ─► AssignSplits ─► WriteExamples ─────────────► splits (TFRecord, gzip)
   │             └─ train ─► ComputeBoundaries ─┐
   │                      └─► CountValues ◄─────┘ ─► ComputeVocabulary ─► vocab/
   └─ rejected ─► WriteRejected ─► rejected/
all of them ─► WriteFeatureSpec ─► feature_spec.json
```

This job is the only place feature frequencies are counted. It runs on the
DirectRunner by default and, unchanged, on any Beam runner given standard
pipeline options (`--runner DataflowRunner --project ... --region ...`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from keras_dimsel.data.feature_spec import (
    FEATURE_SPEC_FILE,
    SPLITS,
    FeatureSpec,
    FieldSpec,
    iter_vocabulary,
)
from keras_dimsel.data.reader import DataError, Reader
from keras_dimsel.preprocessing.outputs import (
    REJECTED_DIR,
    SummarizeRejections,
    WriteExamples,
    WriteRejected,
)
from keras_dimsel.preprocessing.read import DEFAULT_CHUNK_BYTES, REJECTED_TAG, ReadRows
from keras_dimsel.preprocessing.splits import DEFAULT_RATIOS, AssignSplits
from keras_dimsel.preprocessing.statistics import (
    DEFAULT_NUM_BUCKETS,
    VOCAB_DIR,
    ComputeBoundaries,
    ComputeVocabulary,
    CountValues,
    bucket_file_name,
    write_bytes_atomically,
)

_OUTPUT_DIRS = (*SPLITS, VOCAB_DIR, REJECTED_DIR)


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Settings of one preprocessing run.

    A vocabulary cap guards against fields with hundreds of millions of ids:
    each field keeps at most `max_vocab_size` values with an id of their own,
    the most frequent ones (ties by value), among those seen at least
    `min_count` times. In a field with hash buckets, every other value,
    whether beyond the cap, below `min_count` or never seen in train, shares
    one of the buckets' ids, picked by a hash of its token
    (`tf.strings.to_hash_bucket_fast`, the same in the Beam job and in the
    exported model), and a bucket's count is the sum of the train counts of
    its values (AMTL's frequency features read it). Such a field has
    `V + 1 + buckets` ids; id 0, the OOV id, is then unused.

    Args:
        output_dir: str, the artifact directory.
        min_count: int, values seen fewer times in train get no id of their
            own: they map to the OOV id, or share the hash buckets.
        split_ratios: three floats, train / validation / test fractions.
        num_buckets: int, buckets of `quantiles` numeric fields.
        chunk_bytes: int, input files are read in byte ranges of this size.
        max_vocab_size: int or None, the most values per field with an id of
            their own; None (the default) keeps them all.
        hash_buckets: int or None, the most hash buckets per field for the
            values without an id of their own; 0 for none (they share the OOV
            id). None (the default) means none without a cap and, with a cap,
            one bucket per 100 distinct values left out, at most
            `max_vocab_size`. A field never gets more buckets than it has
            values left out, and fewer than 2 become none
            (`statistics.field_hash_buckets`). Also usable without a cap: the
            values below `min_count` are then hashed instead of sharing id 0.

    Raises:
        DataError: when `min_count` is below 1, `num_buckets` below 2,
            `max_vocab_size` not a positive integer or `hash_buckets` not a
            non-negative integer.

    Examples:

        >>> config = PreprocessConfig(output_dir="artifacts/clicks", min_count=2)
        >>> config.split_ratios, config.num_buckets
        ((8.0, 1.0, 1.0), 16)
        >>> PreprocessConfig(output_dir="artifacts/clicks", min_count=0)
        Traceback (most recent call last):
        ...
        keras_dimsel.data.reader.DataError: --min-count must be a positive integer. Received: 0

        Keep the 50,000 most frequent values of each field; the others share
        up to 1,000 hash buckets:

        >>> capped = PreprocessConfig("artifacts/clicks", max_vocab_size=50_000, hash_buckets=1000)
        >>> capped.max_vocab_size, capped.hash_buckets
        (50000, 1000)
        >>> PreprocessConfig(output_dir="artifacts/clicks", max_vocab_size=0)
        Traceback (most recent call last):
        ...
        keras_dimsel.data.reader.DataError: --max-vocab-size must be a positive integer. Received: 0
    """

    output_dir: str
    min_count: int = 1
    split_ratios: tuple[float, float, float] = DEFAULT_RATIOS
    num_buckets: int = DEFAULT_NUM_BUCKETS
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    max_vocab_size: Optional[int] = None
    hash_buckets: Optional[int] = None

    def __post_init__(self):
        if self.min_count < 1:
            raise DataError(f"--min-count must be a positive integer. Received: {self.min_count}")
        if self.num_buckets < 2:
            raise DataError(f"--num-buckets must be at least 2. Received: {self.num_buckets}")
        if self.max_vocab_size is not None and not _is_int_at_least(self.max_vocab_size, 1):
            raise DataError(
                f"--max-vocab-size must be a positive integer. Received: {self.max_vocab_size!r}"
            )
        if self.hash_buckets is not None and not _is_int_at_least(self.hash_buckets, 0):
            raise DataError(
                f"--hash-buckets must be a non-negative integer. Received: {self.hash_buckets!r}"
            )


def _is_int_at_least(value, minimum: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


def make_feature_spec(
    label: str,
    fields,
    dataset: str,
    config: PreprocessConfig,
    vocab: dict,
    boundaries: dict,
    splits: dict,
    rejected: int = 0,
    **extra,
) -> FeatureSpec:
    """The artifact's `FeatureSpec` from the job's outputs.

    Args:
        label: str, the label column.
        fields: the `FieldDef`s, in model input order.
        dataset: str, the reader's name.
        config: the run's `PreprocessConfig`.
        vocab: dict of field to its `ComputeVocabulary` summary.
        boundaries: dict of field to its quantile boundaries.
        splits: dict of split to its number of rows.
        rejected: int, rows rejected as malformed.
        **extra: further `FeatureSpec` arguments (`split_patterns`, `value_types`).

    Returns:
        The FeatureSpec (its `directory` is not set).

    Examples:

        >>> from keras_dimsel.data import FieldDef
        >>> fields = [FieldDef("site", "categorical"), FieldDef("price", "numeric", "quantiles")]
        >>> spec = make_feature_spec(
        ...     "clicked",
        ...     fields,
        ...     "csv",
        ...     PreprocessConfig(output_dir="artifacts/clicks"),
        ...     vocab={"site": {"vocab_size": 3, "oov_count": 0}},
        ...     boundaries={"price": [2.0, 5.0]},
        ...     splits={"train": 80, "test": 10},
        ... )
        >>> spec.splits  # every split, 0 when absent
        {'train': 80, 'validation': 0, 'test': 10}
        >>> price = spec.field("price")
        >>> price.vocab_size, price.boundaries  # no vocabulary summary: only the OOV id
        (1, (2.0, 5.0))
    """
    specs = []
    for field in fields:
        summary = vocab.get(field.name, {"vocab_size": 1, "oov_count": 0})
        hash_buckets = int(summary.get("hash_buckets", 0))
        specs.append(
            FieldSpec(
                name=field.name,
                kind=field.kind,
                vocab_size=summary["vocab_size"],
                vocab_file=f"{VOCAB_DIR}/{field.name}.txt",
                transform=field.transform,
                boundaries=(
                    tuple(boundaries.get(field.name, ()))
                    if field.transform == "quantiles"
                    else None
                ),
                oov_count=summary["oov_count"],
                hash_buckets=hash_buckets,
                bucket_file=(
                    f"{VOCAB_DIR}/{bucket_file_name(field.name)}" if hash_buckets else None
                ),
            )
        )
    return FeatureSpec(
        label=label,
        fields=tuple(specs),
        splits={name: int(splits.get(name, 0)) for name in SPLITS},
        rejected_rows=int(rejected),
        dataset=dataset,
        min_count=config.min_count,
        max_vocab_size=config.max_vocab_size,
        **extra,
    )


def write_feature_spec(spec: FeatureSpec, output_dir: str) -> str:
    """Writes `feature_spec.json` into `output_dir` atomically; returns its path.

    Args:
        spec: FeatureSpec, the artifact's description.
        output_dir: str, the artifact directory (local or any Beam filesystem).

    Returns:
        str, the path of the written file.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="clicked",
        ...     fields=(FieldSpec("site", "categorical", 3, "vocab/site.txt"),),
        ...     splits={"train": 80, "validation": 10, "test": 10},
        ... )
        >>> directory = tempfile.mkdtemp()
        >>> path = write_feature_spec(spec, directory)
        >>> FeatureSpec.load(directory).splits
        {'train': 80, 'validation': 10, 'test': 10}
    """
    path = FileSystems.join(output_dir, FEATURE_SPEC_FILE)
    write_bytes_atomically(path, (json.dumps(spec.to_json(), indent=2) + "\n").encode())
    return path


def _write_feature_spec(
    _,
    reader: Reader,
    config: PreprocessConfig,
    vocab,
    boundaries,
    splits,
    rejected,
    positives,
    rejections,
):
    spec = make_feature_spec(
        reader.label,
        reader.fields,
        reader.name,
        config,
        vocab,
        boundaries,
        splits,
        rejected,
        label_positives={name: int(positives.get(name, 0)) for name in SPLITS},
        rejections=rejections,
    )
    return write_feature_spec(spec, config.output_dir)


class ComputeFeatureStatistics(beam.PTransform):
    """Train batches to quantile boundaries and vocabulary files.

    The counting half of the job, shared by `dimsel preprocess` and the TFX
    component. Input: `(split, index, RecordBatch)` elements of the train split.
    Output: a dict of PCollections, `boundaries` (`(field, [float])`) and
    `vocab` (`(field, summary dict)`).

    Args:
        fields: the reader's fields.
        config: PreprocessConfig, for the output directory, min count and buckets.

    Examples:

        >>> import tempfile
        >>> import pyarrow as pa
        >>> from keras_dimsel.data import FieldDef
        >>> batch = pa.RecordBatch.from_pydict({
        ...     "label": pa.array([0.0, 1.0, 0.0, 1.0], pa.float32()),
        ...     "site": ["news", "shop", "news", ""],
        ...     "price": pa.array([1.0, 2.0, 3.0, 4.0], pa.float32()),
        ... })
        >>> fields = [FieldDef("site", "categorical"), FieldDef("price", "numeric", "quantiles")]
        >>> config = PreprocessConfig(output_dir=tempfile.mkdtemp(), num_buckets=2)
        >>> with beam.Pipeline() as pipeline:
        ...     statistics = (
        ...         pipeline
        ...         | beam.Create([("train", 0, batch)])
        ...         | ComputeFeatureStatistics(fields, config)
        ...     )
        ...     _ = statistics["boundaries"] | "PrintBoundaries" >> beam.Map(print)
        ('price', [2.0])
        >>> sorted(os.listdir(os.path.join(config.output_dir, "vocab")))
        ['price.txt', 'site.txt']
    """

    def __init__(self, fields, config: PreprocessConfig):
        super().__init__()
        self._fields = tuple(fields)
        self._config = config

    def expand(self, train):
        config = self._config
        boundaries = train | "ComputeBoundaries" >> ComputeBoundaries(
            self._fields, config.num_buckets
        )
        counts = train | "CountValues" >> CountValues(self._fields, beam.pvalue.AsDict(boundaries))
        vocab = counts | "ComputeVocabulary" >> ComputeVocabulary(
            config.output_dir, config.min_count, config.max_vocab_size, config.hash_buckets
        )
        return {"boundaries": boundaries, "vocab": vocab}


def build_pipeline(pipeline: beam.Pipeline, reader: Reader, config: PreprocessConfig):
    """Adds the whole job to `pipeline`; returns the PCollection of the spec path.

    `run` also checks and prepares the output directory (a re-run replaces the
    outputs of an earlier one); here the caller owns the pipeline and the folder.

    Args:
        pipeline: beam.Pipeline, the pipeline to add the steps to.
        reader: Reader, the dataset layout.
        config: PreprocessConfig, the run's settings.

    Returns:
        A PCollection holding the path of the written `feature_spec.json`.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> config = PreprocessConfig(output_dir=directory)
        >>> with beam.Pipeline() as pipeline:
        ...     written = build_pipeline(pipeline, reader, config)
        ...     _ = written | "PrintName" >> beam.Map(lambda path: print(os.path.basename(path)))
        feature_spec.json
        >>> FeatureSpec.load(directory).splits
        {'train': 166, 'validation': 16, 'test': 18}
    """
    read = pipeline | "ReadRows" >> ReadRows(reader, config.chunk_bytes)
    batches = read["rows"] | "AssignSplits" >> AssignSplits(config.split_ratios)
    train = batches | "TrainOnly" >> beam.Filter(lambda element: element[0] == "train")
    statistics = train | "ComputeFeatureStatistics" >> ComputeFeatureStatistics(
        reader.fields, config
    )
    written = batches | "WriteExamples" >> WriteExamples(config.output_dir)
    split_sizes = written | "CountSplitRows" >> beam.CombinePerKey(sum)
    positives = (
        batches | "LabelOnes" >> beam.Map(_label_ones) | "CountLabelOnes" >> beam.CombinePerKey(sum)
    )
    rejected = (
        read[REJECTED_TAG]
        | "WriteRejected" >> WriteRejected(config.output_dir)
        | "CountRejected" >> beam.CombineGlobally(sum)
    )
    rejections = read[REJECTED_TAG] | "SummarizeRejections" >> beam.CombineGlobally(
        SummarizeRejections()
    )
    return (
        pipeline
        | "Start" >> beam.Create([None])
        | "WriteFeatureSpec"
        >> beam.Map(
            _write_feature_spec,
            reader,
            config,
            vocab=beam.pvalue.AsDict(statistics["vocab"]),
            boundaries=beam.pvalue.AsDict(statistics["boundaries"]),
            splits=beam.pvalue.AsDict(split_sizes),
            rejected=beam.pvalue.AsSingleton(rejected),
            positives=beam.pvalue.AsDict(positives),
            rejections=beam.pvalue.AsSingleton(rejections),
        )
    )


def _label_ones(element) -> tuple:
    """`(split, index, batch)` to `(split, the number of its rows of label 1)`."""
    split, _, batch = element
    return split, int(np.count_nonzero(batch.column(0).to_numpy(zero_copy_only=False) == 1.0))


def _prepare_output(output_dir: str) -> None:
    """Creates the artifact directory; clears outputs of an earlier run into it."""
    for name in _OUTPUT_DIRS:
        path = FileSystems.join(output_dir, name)
        if FileSystems.exists(path):
            FileSystems.delete([path])
        FileSystems.mkdirs(path)
    spec = FileSystems.join(output_dir, FEATURE_SPEC_FILE)
    if FileSystems.exists(spec):
        FileSystems.delete([spec])


def pipeline_options(beam_args: Sequence[str] = ()) -> PipelineOptions:
    """Beam options from command-line flags, defaulting to the DirectRunner.

    `--direct_num_workers N` (N > 1) alone switches the DirectRunner to its
    multi-process mode.

    Args:
        beam_args: sequence of str, Beam command-line flags.

    Returns:
        The PipelineOptions.

    Examples:

        >>> options = pipeline_options(["--direct_num_workers", "2"])
        >>> options.view_as(DirectOptions).direct_running_mode
        'multi_processing'
    """
    options = PipelineOptions(list(beam_args))
    direct = options.view_as(DirectOptions)
    if (direct.direct_num_workers or 1) > 1 and "--direct_running_mode" not in " ".join(beam_args):
        direct.direct_running_mode = "multi_processing"
    return options


def run(reader: Reader, config: PreprocessConfig, beam_args: Sequence[str] = ()) -> FeatureSpec:
    """Runs the job to completion and returns the written `FeatureSpec`.

    Outputs of an earlier run into the same directory are cleared first.

    Args:
        reader: Reader, the dataset layout (`make_reader`).
        config: PreprocessConfig, the output directory and settings.
        beam_args: sequence of str, Beam options (`pipeline_options`).

    Returns:
        The FeatureSpec, loaded from the written artifact.

    Raises:
        DataError: when no row at all was accepted.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory, min_count=2))
        >>> spec.splits, spec.rejected_rows
        ({'train': 166, 'validation': 16, 'test': 18}, 0)
        >>> sorted(os.listdir(directory))
        ['feature_spec.json', 'raw', 'rejected', 'test', 'train', 'validation', 'vocab']
    """
    _prepare_output(config.output_dir)
    with beam.Pipeline(options=pipeline_options(beam_args)) as pipeline:
        build_pipeline(pipeline, reader, config)
    spec = FeatureSpec.load(config.output_dir)
    accepted = sum(spec.splits.values())
    if accepted == 0:
        # An artifact of no rows is no artifact: a later step must not take it as made.
        FileSystems.delete([FileSystems.join(config.output_dir, FEATURE_SPEC_FILE)])
    if accepted == 0 and spec.rejected_rows == 0:
        raise DataError("the input has no data rows")
    if accepted == 0:
        raise DataError(
            f"no row accepted: all {spec.rejected_rows} rows were rejected, see "
            f"{os.path.join(config.output_dir, REJECTED_DIR)}/"
        )
    logging.info("wrote %s", os.path.join(config.output_dir, FEATURE_SPEC_FILE))
    return spec


def summary(spec: FeatureSpec) -> str:
    """A short human summary of an artifact: splits, rejects and one line per field.

    Rejected rows are counted by kind, each with its first row (its text, the
    reason and where it is); `feature_spec.json` keeps the first few of each
    kind and `rejected/` every one. Each field's line gives its vocabulary
    size (ids, the OOV id and any hash buckets included) and how many of its
    values were seen only once in the train split, read from
    `vocab/<field>.txt`. Those values are where a full-size embedding table
    overfits small data; when the artifact keeps them (`min_count` 1), a last
    line counts them and names `--min-count 2`,
    which maps them to the OOV id.

    Args:
        spec: FeatureSpec, the artifact (its vocabulary files are read).

    Returns:
        str, the summary `dimsel preprocess` prints.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> print(summary(run(reader, PreprocessConfig(output_dir=directory))))
        synthetic: train 166, validation 16, test 18 rows; 0 rejected
        field                kind             vocab  seen once  transform
        user                 categorical         79         52
        item                 categorical         71         48
        category             categorical         40         15
        device               categorical          9          0
        noise_high           categorical         89         70
        noise_mid            categorical         60         34
        noise_low            categorical         11          0
        price                numeric             17          0  quantiles
        219 of 368 values were seen once in train (--min-count 2 maps them to the OOV id)
    """
    splits = ", ".join(f"{name} {spec.splits.get(name, 0):,}" for name in SPLITS)
    lines = [f"{spec.dataset}: {splits} rows; {spec.rejected_rows:,} rejected"]
    if spec.rejected_rows and spec.directory:
        lines[0] += f" (every one in {os.path.join(spec.directory, REJECTED_DIR)}/)"
    for kind, rejections in spec.rejections.items():
        line = f"  {rejections['count']:,} {kind}"
        if rejections["examples"]:
            first = rejections["examples"][0]
            text = first["text"] if len(first["text"]) <= 60 else first["text"][:57] + "..."
            line += f", e.g. {text!r} ({first['reason']}) at {first['source']}"
        lines.append(line)
    lines.append(f"{'field':<20} {'kind':<12} {'vocab':>9}  {'seen once':>9}  transform")
    values = seen_once = 0
    for field in spec.fields:
        once = 0
        for count, _ in iter_vocabulary(os.path.join(spec.directory, field.vocab_file)):
            values += 1
            once += count == 1
        seen_once += once
        line = (
            f"{field.name:<20} {field.kind:<12} {field.vocab_size:>9,}  {once:>9,}  "
            f"{field.transform or ''}"
        )
        if field.hash_buckets:
            line = f"{line.rstrip()}  ({field.hash_buckets:,} hash buckets)"
        lines.append(line.rstrip())
    if seen_once:  # only with min_count 1: a higher one keeps no value seen once
        lines.append(
            f"{seen_once:,} of {values:,} values were seen once in train "
            "(--min-count 2 maps them to the OOV id)"
        )
    return "\n".join(lines)
