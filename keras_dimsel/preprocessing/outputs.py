"""Writing the splits (gzip TFRecords of `tf.train.Example`) and the rejected rows.

Each (split, chunk) batch becomes one shard, `<split>/part-<chunk>.tfrecord.gz`,
encoded in one call by tfx-bsl's C++ `RecordBatchToExamples` and written by
TensorFlow's TFRecord writer: no Python per field, and a shard is written under
a temporary name and renamed, so a retried bundle rewrites the same shard and
a reader never sees a partial one.
"""

from __future__ import annotations

import json
import os
from typing import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa

from keras_dimsel.data.feature_spec import SPLITS
from keras_dimsel.data.reader import Rejection, rejection_kind
from keras_dimsel.preprocessing.statistics import write_bytes_atomically

REJECTED_DIR = "rejected"
#: Examples of each kind of rejection kept in `feature_spec.json`.
REJECTION_EXAMPLES = 3
# Level 1 compresses these repetitive records nearly as well as the default (6)
# at a quarter of the CPU time, and compression dominates the write.
GZIP_LEVEL = 1


def _as_feature_lists(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Wraps every column in a one-element list (the layout tf.Example encoding wants)."""
    offsets = pa.array(np.arange(batch.num_rows + 1, dtype=np.int32))
    columns = []
    for column in batch.columns:
        if pa.types.is_string(column.type):
            column = column.cast(pa.binary())
        columns.append(pa.ListArray.from_arrays(offsets, column))
    return pa.RecordBatch.from_arrays(columns, batch.schema.names)


def encode_examples(batch: pa.RecordBatch) -> list[bytes]:
    """Serialized `tf.train.Example`s, one per row: strings as bytes, numbers as floats."""
    from tfx_bsl.coders import example_coder

    return example_coder.RecordBatchToExamples(_as_feature_lists(batch))


def shard_path(output_dir: str, split: str, index: int) -> str:
    return os.path.join(output_dir, split, f"part-{index:05d}.tfrecord.gz")


class _WriteShard(beam.DoFn):
    def __init__(self, output_dir: str):
        self._output_dir = output_dir

    def setup(self):
        import tensorflow as tf

        self._tf = tf
        for split in SPLITS:
            tf.io.gfile.makedirs(os.path.join(self._output_dir, split))

    def process(self, element) -> Iterator[tuple[str, int]]:
        split, index, batch = element
        path = shard_path(self._output_dir, split, index)
        tmp = f"{path}.tmp-{os.getpid()}"
        options = self._tf.io.TFRecordOptions("GZIP", compression_level=GZIP_LEVEL)
        with self._tf.io.TFRecordWriter(tmp, options=options) as writer:
            for record in encode_examples(batch):
                writer.write(record)
        self._tf.io.gfile.rename(tmp, path, overwrite=True)
        yield split, batch.num_rows


class WriteExamples(beam.PTransform):
    """Writes `(split, index, batch)` as shards; emits `(split, rows written)`.

    Args:
        output_dir: str, the artifact directory.
    """

    def __init__(self, output_dir: str):
        super().__init__()
        self._output_dir = output_dir

    def expand(self, batches):
        return batches | "WriteShards" >> beam.ParDo(_WriteShard(self._output_dir))


def _write_rejected(element: tuple[int, list[Rejection]], output_dir: str) -> int:
    index, rejections = element
    lines = "".join(json.dumps(r._asdict(), ensure_ascii=False) + "\n" for r in rejections)
    path = os.path.join(output_dir, REJECTED_DIR, f"part-{index:05d}.jsonl")
    write_bytes_atomically(path, lines.encode("utf-8"))
    return len(rejections)


class WriteRejected(beam.PTransform):
    """Writes rejected rows as JSON lines (`source`, `reason`, `text`); emits the counts.

    Args:
        output_dir: str, the artifact directory (`rejected/` is written inside).
    """

    def __init__(self, output_dir: str):
        super().__init__()
        self._output_dir = output_dir

    def expand(self, rejected):
        return rejected | "WriteRejectedRows" >> beam.Map(_write_rejected, self._output_dir)


class SummarizeRejections(beam.CombineFn):
    """`(chunk index, [Rejection])` elements to the rejections by kind.

    The output is `{kind: {"count": n, "examples": [record, ...]}}`
    (`keras_dimsel.data.reader.rejection_kind`), with the first
    `REJECTION_EXAMPLES` records of each kind in input order (by chunk, then
    line), whatever order the runner combines them in.

    Examples:

        >>> rejections = [Rejection("a.csv@0", "bad label '2': expected 0 or 1", "2,x")] * 4
        >>> with beam.Pipeline() as pipeline:
        ...     _ = (
        ...         pipeline
        ...         | beam.Create([(1, rejections[:1]), (0, rejections[1:])])
        ...         | beam.CombineGlobally(SummarizeRejections())
        ...         | beam.Map(lambda kinds: print(kinds["bad label"]["count"]))
        ...     )
        4
    """

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, accumulator: dict, element) -> dict:
        index, rejections = element
        for position, rejection in enumerate(rejections):
            kind = rejection_kind(rejection.reason)
            count, examples = accumulator.get(kind, (0, []))
            examples = sorted([*examples, ((index, position), rejection)])[:REJECTION_EXAMPLES]
            accumulator[kind] = (count + 1, examples)
        return accumulator

    def merge_accumulators(self, accumulators) -> dict:
        merged = {}
        for accumulator in accumulators:
            for kind, (count, examples) in accumulator.items():
                total, kept = merged.get(kind, (0, []))
                merged[kind] = (total + count, sorted(kept + examples)[:REJECTION_EXAMPLES])
        return merged

    def extract_output(self, accumulator: dict) -> dict:
        return {
            kind: {"count": count, "examples": [r._asdict() for _, r in examples]}
            for kind, (count, examples) in sorted(accumulator.items(), key=lambda kv: -kv[1][0])
        }
