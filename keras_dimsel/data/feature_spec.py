"""`FeatureSpec`: the feature statistics artifact written by `dimsel preprocess`.

The artifact directory holds

- `feature_spec.json`: the label, one entry per field and the split sizes,
- `vocab/<field>.txt`: `"<count> <value>"` lines, most frequent first (ties by
  value), counted on the train split only,
- `vocab/<field>.buckets.txt`, for a field with hash buckets only:
  `"<count> <bucket>"` lines, the summed train counts of the values that fall
  in each bucket, in bucket order,
- `train/`, `validation/`, `test/`: raw examples as gzip TFRecords of
  `tf.train.Example`,
- `rejected/`: the malformed input rows with their reasons (JSON lines).

Every field, categorical or numeric, reaches the model as an integer id:

- id 0 is the out-of-vocabulary (OOV) id: values never seen in the train split
  and values seen fewer than `min_count` times;
- ids 1..V are the vocabulary entries, in file order;
- ids V+1..V+B are the field's B hash buckets, when it has some (`hash_buckets`
  > 0, from `dimsel preprocess --max-vocab-size/--hash-buckets`). Every value
  outside the vocabulary then goes to bucket `Fingerprint64(token) mod B`
  (`tf.strings.to_hash_bucket_fast`), whether it was left out by the cap, seen
  fewer than `min_count` times or never seen, and the OOV id 0 stays unused
  (count 0). A bucket's count is the sum of the train counts of the values
  that fall in it, so the frequency features of a hashed value are those of
  its bucket.

`vocab_size` counts every id, V + 1 + B, so a model needs nothing else.

A field's raw value becomes a vocabulary *token* first (`keras_dimsel.data.tokens`):
categorical values are their own token, numeric values are bucketised by the
field's `transform`, and a missing value (empty cell, NaN) is the token
`[MISSING]`, counted like any other value.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterator, Optional

import numpy as np

from keras_dimsel import _io
from keras_dimsel.data.tokens import bucket_token

FEATURE_SPEC_FILE = "feature_spec.json"
SPLITS = ("train", "validation", "test")
#: how values may be stored in the examples (`FeatureSpec.value_types`)
VALUE_TYPES = ("bytes", "int", "float")
KINDS = ("categorical", "numeric")
NUMERIC_TRANSFORMS = ("log_square", "quantiles")
OOV_INDEX = 0


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One feature field of the artifact.

    Args:
        name: str, the field name (also the feature key in the examples).
        kind: str, `"categorical"` or `"numeric"` (the raw value's type).
        vocab_size: int, number of ids the field uses, OOV included (V + 1).
        vocab_file: str, the vocabulary path relative to the artifact directory.
        oov_index: int, the id of rare and unseen values (always 0).
        transform: str or None, for numeric fields how a number becomes a token:
            `"log_square"` (Criteo rule) or `"quantiles"` (bucket boundaries).
        boundaries: list of float or None, the bucket boundaries of a
            `"quantiles"` field.
        oov_count: int, train occurrences of values mapped to the OOV id
            (below `min_count`, or beyond the vocabulary cap without buckets).
        hash_buckets: int, number of hash buckets after the vocabulary, 0 for none.
        bucket_file: str or None, the bucket counts file relative to the
            artifact directory, when `hash_buckets` > 0.

    Raises:
        ValueError: on an unknown `kind`, a numeric field without a known
            `transform`, a `"quantiles"` field without `boundaries`, or hash
            buckets without a `bucket_file` or that do not fit in `vocab_size`.

    Examples:

        >>> field = FieldSpec(
        ...     name="price", kind="numeric", vocab_size=4, vocab_file="vocab/price.txt",
        ...     transform="quantiles", boundaries=(9.5, 20.0),
        ... )
        >>> field.to_json()["boundaries"]
        [9.5, 20.0]
        >>> FieldSpec.from_json(field.to_json()) == field
        True
        >>> FieldSpec(name="price", kind="numeric", vocab_size=4, vocab_file="vocab/price.txt")
        Traceback (most recent call last):
        ...
        ValueError: `transform` of numeric field 'price' must be one of ('log_square', ...

        A field whose rarer values share 100 hash buckets after its 1,000 own ids:

        >>> site = FieldSpec(
        ...     name="site", kind="categorical", vocab_size=1 + 1000 + 100,
        ...     vocab_file="vocab/site.txt", hash_buckets=100,
        ...     bucket_file="vocab/site.buckets.txt",
        ... )
        >>> site.vocabulary_entries, site.first_bucket_id
        (1000, 1001)
        >>> FieldSpec.from_json(site.to_json()) == site
        True
    """

    name: str
    kind: str
    vocab_size: int
    vocab_file: str
    oov_index: int = OOV_INDEX
    transform: Optional[str] = None
    boundaries: Optional[tuple[float, ...]] = None
    oov_count: int = 0
    hash_buckets: int = 0
    bucket_file: Optional[str] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(
                f"`kind` of field '{self.name}' must be one of {KINDS}. "
                f"Received: kind={self.kind!r}"
            )
        if self.kind == "numeric" and self.transform not in NUMERIC_TRANSFORMS:
            raise ValueError(
                f"`transform` of numeric field '{self.name}' must be one of "
                f"{NUMERIC_TRANSFORMS}. Received: transform={self.transform!r}"
            )
        if self.transform == "quantiles" and self.boundaries is None:
            raise ValueError(f"Quantile field '{self.name}' has no `boundaries`.")
        if isinstance(self.hash_buckets, bool) or not isinstance(self.hash_buckets, int):
            raise ValueError(
                f"`hash_buckets` of field '{self.name}' must be an integer. "
                f"Received: hash_buckets={self.hash_buckets!r}"
            )
        if self.hash_buckets < 0 or self.vocab_size < 1 + self.hash_buckets:
            raise ValueError(
                f"`hash_buckets` of field '{self.name}' must be in [0, vocab_size - 1]. "
                f"Received: hash_buckets={self.hash_buckets}, vocab_size={self.vocab_size}"
            )
        if self.hash_buckets and not self.bucket_file:
            raise ValueError(f"Field '{self.name}' has hash buckets but no `bucket_file`.")

    @property
    def vocabulary_entries(self) -> int:
        """V, the number of values with an id of their own (ids 1..V)."""
        return self.vocab_size - 1 - self.hash_buckets

    @property
    def first_bucket_id(self) -> int:
        """The id of hash bucket 0 (V + 1); buckets take the last `hash_buckets` ids."""
        return self.vocabulary_entries + 1

    def to_json(self) -> dict[str, Any]:
        """Returns the field's `feature_spec.json` record (unset keys left out).

        `hash_buckets` is written only when positive: an absent key means 0, as
        in artifacts written before the key existed.
        """
        record = dataclasses.asdict(self)
        if self.boundaries is not None:
            record["boundaries"] = list(self.boundaries)
        if not self.hash_buckets:
            del record["hash_buckets"]
        return {key: value for key, value in record.items() if value is not None}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> FieldSpec:
        """Builds a field from its `feature_spec.json` record; unknown keys are ignored.

        Args:
            record: dict, a record written by `to_json`.

        Returns:
            The FieldSpec.
        """
        record = dict(record)
        if record.get("boundaries") is not None:
            record["boundaries"] = tuple(float(b) for b in record["boundaries"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """The feature statistics artifact: label, fields, splits and where they live.

    Args:
        label: str, the label's feature key in the examples (values 0.0 / 1.0).
        fields: tuple of `FieldSpec`, in model input order.
        splits: dict, number of examples per split.
        rejected_rows: int, input rows rejected as malformed.
        directory: str, the artifact directory the spec was loaded from.
        dataset: str, the reader that produced the artifact.
        min_count: int, values seen fewer times in train go to the OOV id
            (or to their hash bucket, in a field that has buckets).
        max_vocab_size: int or None, the per-field cap on the vocabulary the
            artifact was made with (None: no cap).
        label_positives: dict, the number of examples of label 1 per split
            (empty when unknown: an artifact made by an older version or a
            TFX ExampleGen).
        rejections: dict, the rejected rows by kind (`rejection_kind`), most
            frequent first: `{kind: {"count": n, "examples": [{"source",
            "reason", "text"}, ...]}}` with the first few rows of each kind.
        split_patterns: dict of split to a file pattern, for examples kept
            outside the artifact directory (a TFX ExampleGen's splits); by
            default each split is `DIR/<split>/*.tfrecord.gz`.
        value_types: dict of field (or label) to the type its values are
            stored as in the examples, `"bytes"`, `"int"` or `"float"`, where
            it differs from the default (bytes for categorical fields, float
            for numeric fields and the label).

    Examples:

        The preprocessing job writes the artifact; later steps load it:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> _ = run(reader, PreprocessConfig(output_dir=directory))
        >>> spec = FeatureSpec.load(directory)
        >>> spec.label, spec.splits
        ('label', {'train': 166, 'validation': 16, 'test': 18})
        >>> spec.field_names
        ['user', 'item', 'category', 'device', 'noise_high', 'noise_mid', 'noise_low', 'price']
        >>> spec.field("device").vocab_size  # 8 values seen in train, plus the OOV id 0
        9
        >>> values, counts = spec.vocabulary("device")
        >>> values[:3], counts[:3]
        (['d2', 'd4', 'd7'], [63, 23, 22])
    """

    label: str
    fields: tuple[FieldSpec, ...]
    splits: dict[str, int]
    rejected_rows: int = 0
    directory: str = ""
    dataset: str = ""
    min_count: int = 1
    split_patterns: dict[str, str] = dataclasses.field(default_factory=dict)
    value_types: dict[str, str] = dataclasses.field(default_factory=dict)
    max_vocab_size: Optional[int] = None
    label_positives: dict[str, int] = dataclasses.field(default_factory=dict)
    rejections: dict[str, dict] = dataclasses.field(default_factory=dict)

    @property
    def field_names(self) -> list[str]:
        """The field names, in model input order."""
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        """Returns the `FieldSpec` of one field.

        Args:
            name: str, the field name.

        Returns:
            The FieldSpec.

        Raises:
            KeyError: when the spec has no such field; the message lists the known fields.
        """
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(
            f"No field named {name!r} in the feature spec. Known fields: "
            f"{', '.join(self.field_names)}"
        )

    def vocabulary(self, name: str) -> tuple[list[str], list[int]]:
        """Returns the values and train counts of every id of one field but 0, in id order.

        In a field with hash buckets the last `hash_buckets` entries are the
        buckets, named `[BUCKET b]`, with the summed counts of their values,
        so `[0] + counts` is the train count of every id (`vocab_size` of them).

        Args:
            name: str, the field name.

        Returns:
            `(values, counts)`: two lists; `values[i]` has id `i + 1` (id 0 is the OOV id).
        """
        field = self.field(name)
        values, counts = read_vocabulary(os.path.join(self.directory, field.vocab_file))
        if field.hash_buckets:
            bucket_counts = self.bucket_counts(name)
            values += [bucket_token(b) for b in range(field.hash_buckets)]
            counts += bucket_counts
        return values, counts

    def value_counts(self, name: str) -> list[int]:
        """The train count of every id of a field, in id order.

        0 for the OOV id 0 (unseen values get zero-count features), then the
        vocabulary counts.

        Args:
            name: str, the field name.

        Returns:
            list of int, `vocab_size` counts.
        """
        return self.value_count_array(name).tolist()

    def value_count_array(self, name: str) -> np.ndarray:
        """`value_counts` as an int64 array, read without a Python object per id.

        Args:
            name: str, the field name.

        Returns:
            int64 array of `vocab_size` counts.

        Examples:

            >>> import os, tempfile
            >>> directory = tempfile.mkdtemp()
            >>> os.makedirs(os.path.join(directory, "vocab"))
            >>> with open(os.path.join(directory, "vocab", "site.txt"), "w") as f:
            ...     _ = f.write("9 news\\n4 shop\\n")
            >>> spec = FeatureSpec(
            ...     label="label",
            ...     fields=(FieldSpec("site", "categorical", 3, "vocab/site.txt"),),
            ...     splits={"train": 13},
            ...     directory=directory,
            ... )
            >>> spec.value_count_array("site").tolist()
            [0, 9, 4]
        """
        field = self.field(name)
        _, counts = read_vocabulary_columns(os.path.join(self.directory, field.vocab_file))
        buckets = np.asarray(self.bucket_counts(name), dtype=np.int64)
        return np.concatenate([np.zeros(1, np.int64), counts, buckets])

    def bucket_counts(self, name: str) -> list[int]:
        """Returns the train count of each hash bucket of one field (empty without buckets).

        Args:
            name: str, the field name.

        Returns:
            list of int, one count per bucket, in bucket order.

        Raises:
            ValueError: when the bucket file does not hold one line per bucket.
        """
        field = self.field(name)
        if not field.hash_buckets:
            return []
        path = os.path.join(self.directory, field.bucket_file)
        buckets, counts = read_vocabulary(path)
        if buckets != [str(b) for b in range(field.hash_buckets)]:
            raise ValueError(
                f"{path}: expected one '<count> <bucket>' line for each bucket "
                f"0..{field.hash_buckets - 1}, in order"
            )
        return counts

    def split_files(self, split: str) -> list[str]:
        """The example files of one split (gzip TFRecords of `tf.train.Example`).

        Args:
            split: str, `"train"`, `"validation"` or `"test"`.

        Returns:
            list of str, the file paths.

        Raises:
            ValueError: on an unknown split name.
        """
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
        if split in self.split_patterns:
            return _io.glob(self.split_patterns[split])
        return _io.glob(os.path.join(self.directory, split, "*.tfrecord.gz"))

    def to_json(self) -> dict[str, Any]:
        """Returns the `feature_spec.json` record (the directory is not part of it)."""
        return {
            "label": self.label,
            "fields": [f.to_json() for f in self.fields],
            "splits": dict(self.splits),
            "rejected_rows": self.rejected_rows,
            "dataset": self.dataset,
            "min_count": self.min_count,
            **({"split_patterns": dict(self.split_patterns)} if self.split_patterns else {}),
            **({"value_types": dict(self.value_types)} if self.value_types else {}),
            **({"max_vocab_size": self.max_vocab_size} if self.max_vocab_size else {}),
            **({"label_positives": dict(self.label_positives)} if self.label_positives else {}),
            **({"rejections": dict(self.rejections)} if self.rejections else {}),
        }

    def save(self, directory: Optional[str] = None) -> str:
        """Writes `feature_spec.json` atomically (temporary file, then rename).

        Args:
            directory: str or None, where to write; None writes into `self.directory`.

        Returns:
            str, the path of the written file.
        """
        directory = directory or self.directory
        path = os.path.join(directory, FEATURE_SPEC_FILE)
        _io.write_text_atomically(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str) -> FeatureSpec:
        """Reads `DIR/feature_spec.json`, with a one-line error when it is absent.

        Args:
            directory: str, the artifact directory (local or any `tf.io.gfile` path).

        Returns:
            The FeatureSpec, with `directory` set.

        Raises:
            FileNotFoundError: when the directory holds no `feature_spec.json`.
        """
        path = os.path.join(directory, FEATURE_SPEC_FILE)
        if not _io.exists(path):
            raise FileNotFoundError(
                f"{path} not found: run `dimsel preprocess --output {directory}` first"
            )
        with _io.open_file(path) as f:
            return cls.from_json(json.load(f), directory)

    @classmethod
    def from_json(cls, record: dict[str, Any], directory: str = "") -> FeatureSpec:
        """The FeatureSpec of a `feature_spec.json` record (`to_json`).

        Args:
            record: dict, the record.
            directory: str, the artifact directory its files are in; "" for a
                spec without files (a model's config: its vocabularies travel
                as the model's own assets).

        Returns:
            The FeatureSpec.
        """
        return cls(
            label=record["label"],
            fields=tuple(FieldSpec.from_json(r) for r in record["fields"]),
            splits={k: int(v) for k, v in record["splits"].items()},
            rejected_rows=int(record.get("rejected_rows", 0)),
            directory=directory,
            dataset=record.get("dataset", ""),
            min_count=int(record.get("min_count", 1)),
            split_patterns=dict(record.get("split_patterns", {})),
            value_types=dict(record.get("value_types", {})),
            max_vocab_size=record.get("max_vocab_size"),
            label_positives={k: int(v) for k, v in record.get("label_positives", {}).items()},
            rejections=dict(record.get("rejections", {})),
        )


def format_vocabulary_line(count: int, value: str) -> str:
    """One vocabulary line, the `tft.vocabulary(store_frequency=True)` format."""
    return f"{count} {value}\n"


def iter_vocabulary(path: str) -> Iterator[tuple[int, str]]:
    with _io.open_file(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.decode("utf-8").rstrip("\n")
            count, sep, value = line.partition(" ")
            if not sep or not count.isdigit():
                raise ValueError(f"{path}:{number}: expected '<count> <value>', got {line!r}")
            yield int(count), value


def read_vocabulary_columns(path: str) -> tuple[bytes, np.ndarray]:
    """Reads a vocabulary file as its two columns, without a Python object per line.

    Millions of values are read in a second: the lines are cut at their
    first space with array operations on the file's bytes. A file that this
    fast path does not take line by line (a malformed line, a count in other
    digits) is read by the line-by-line parser, which gives the same columns
    or raises its error naming the line. As that parser (the line reader of
    `tf.io.gfile`) does, every carriage return is dropped.

    Args:
        path: str, a `"<count> <value>"` file, such as `DIR/vocab/<field>.txt`.

    Returns:
        `(values, counts)`: the values as UTF-8 bytes, each followed by a
        newline (a one-value-per-line file, in id order), and the counts as
        an int64 array.

    Raises:
        ValueError: naming the line that is not `"<count> <value>"`.
        UnicodeDecodeError: when the file is not UTF-8.

    Examples:

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "device.txt")
        >>> with open(path, "w") as f:
        ...     _ = f.write("63 d2\\n23 new device\\n")
        >>> values, counts = read_vocabulary_columns(path)
        >>> values, counts.tolist()
        (b'd2\\nnew device\\n', [63, 23])
    """
    with _io.open_file(path, "rb") as f:
        data = f.read().replace(b"\r", b"")
    if data and not data.endswith(b"\n"):
        data += b"\n"
    columns = _split_columns(data)
    if columns is None:
        pairs = list(iter_vocabulary(path))
        values = "".join(value + "\n" for _, value in pairs).encode("utf-8")
        return values, np.array([count for count, _ in pairs], dtype=np.int64)
    columns[0].decode("utf-8")  # the error of a file that is not UTF-8, as line by line
    return columns


def _split_columns(data: bytes) -> Optional[tuple[bytes, np.ndarray]]:
    """The values and counts of `"<count> <value>\\n"` lines, or None when a line is not one."""
    text = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(text == ord("\n"))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    spaces = np.flatnonzero(text == ord(" "))
    if not len(spaces):
        return (b"", np.zeros(0, np.int64)) if not len(ends) else None
    first = np.searchsorted(spaces, starts)
    separators = spaces[np.minimum(first, len(spaces) - 1)]  # each line's first space
    if not np.all((first < len(spaces)) & (separators > starts) & (separators < ends)):
        return None
    # +1 from a line's start, -1 after its separator: the running sum marks "<count> ".
    marks = np.zeros(len(text), np.int8)
    marks[starts] = 1
    marks[separators + 1] = -1
    in_count = np.cumsum(marks, dtype=np.int8).astype(bool)
    count_text = text[in_count]
    if not np.all((count_text == ord(" ")) | ((count_text >= ord("0")) & (count_text <= ord("9")))):
        return None
    counts = np.fromstring(count_text.tobytes(), dtype=np.int64, sep=" ")
    return text[~in_count].tobytes(), counts


def read_vocabulary(path: str) -> tuple[list[str], list[int]]:
    """Reads a vocabulary file into (values, counts), most frequent first.

    Args:
        path: str, a `"<count> <value>"` file, such as `DIR/vocab/<field>.txt`.

    Returns:
        `(values, counts)`: a list of str and a list of int, in file (id) order.

    Raises:
        ValueError: naming the line that is not `"<count> <value>"`.

    Examples:

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "device.txt")
        >>> with open(path, "w") as f:
        ...     _ = f.write("63 d2\\n23 d4\\n5 d1\\n")
        >>> read_vocabulary(path)
        (['d2', 'd4', 'd1'], [63, 23, 5])
    """
    values, counts = read_vocabulary_columns(path)
    return values.decode("utf-8").split("\n")[:-1], counts.tolist()
