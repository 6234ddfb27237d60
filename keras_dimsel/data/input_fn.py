"""tf.data input functions over the splits written by `dimsel preprocess`."""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from keras_dimsel.data.feature_spec import FeatureSpec

#: What an absent integer parses to: no default would do, 0 being a value like any
#: other; `model_features` turns it into the missing value ("" or NaN).
INT_MISSING = -(2**63)
_STORED = {
    "bytes": (tf.string, ""),
    "int": (tf.int64, INT_MISSING),
    "float": (tf.float32, float("nan")),
}


def feature_description(spec: FeatureSpec) -> dict:
    """`tf.io.parse_example` features, each in the type its values are stored as.

    By default the label and numeric fields are floats and categorical fields
    strings; `spec.value_types` names the exceptions (e.g. integer columns of
    a CSV read by a TFX ExampleGen). Absent features parse to the missing
    value (`""` or NaN), the same as an empty cell in the raw data.

    Args:
        spec: FeatureSpec, the artifact.

    Returns:
        dict of feature key to `tf.io.FixedLenFeature`, the label first.

    Examples:

        >>> import dataclasses
        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("site", "categorical", 3, "vocab/site.txt"),
        ...         FieldSpec("price", "numeric", 5, "vocab/price.txt", transform="log_square"),
        ...     ),
        ...     splits={"train": 100},
        ... )
        >>> description = feature_description(spec)
        >>> {name: feature.dtype.name for name, feature in description.items()}
        {'label': 'float32', 'site': 'string', 'price': 'float32'}
        >>> description["site"].default_value
        ''
        >>> stored_as_int = dataclasses.replace(spec, value_types={"site": "int"})
        >>> feature_description(stored_as_int)["site"].dtype.name
        'int64'
    """
    description = {}
    for name, default in [(spec.label, "float")] + [
        (f.name, "bytes" if f.kind == "categorical" else "float") for f in spec.fields
    ]:
        dtype, missing = _STORED[spec.value_types.get(name, default)]
        # The label is required; a field may be absent (a missing value).
        default_value = None if name == spec.label else missing
        description[name] = tf.io.FixedLenFeature([], dtype, default_value=default_value)
    return description


def model_features(spec: FeatureSpec, parsed: dict) -> dict:
    """Parsed examples to `{field: raw values}` in the model's types.

    Categorical fields become strings (an integer id `17` becomes `"17"`, the
    token the vocabulary holds), numeric fields float32. An absent integer
    (`INT_MISSING`) becomes the missing value, `""` or NaN, as an absent
    string or float does.

    Args:
        spec: FeatureSpec, the artifact.
        parsed: dict, the output of `tf.io.parse_example` with `feature_description(spec)`.

    Returns:
        dict of field name to tensor, the fields only (no label).

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("site", "categorical", 3, "vocab/site.txt"),
        ...         FieldSpec("price", "numeric", 5, "vocab/price.txt", transform="log_square"),
        ...     ),
        ...     splits={"train": 100},
        ...     value_types={"site": "int"},
        ... )
        >>> parsed = {
        ...     "label": tf.constant([1.0]),
        ...     "site": tf.constant([17], tf.int64),
        ...     "price": tf.constant([2.5]),
        ... }
        >>> features = model_features(spec, parsed)
        >>> sorted(features)
        ['price', 'site']
        >>> features["site"].numpy().tolist()
        [b'17']
        >>> absent = {**parsed, "site": tf.constant([INT_MISSING, 0], tf.int64)}
        >>> model_features(spec, absent)["site"].numpy().tolist()
        [b'', b'0']
    """
    features = {}
    for field in spec.fields:
        value = parsed[field.name]
        if field.kind == "categorical" and value.dtype != tf.string:
            converted, missing = tf.strings.as_string(value), tf.constant("")
        elif field.kind != "categorical" and value.dtype != tf.float32:
            converted, missing = tf.cast(value, tf.float32), tf.constant(float("nan"))
        else:
            features[field.name] = value
            continue
        if value.dtype == tf.int64:
            converted = tf.where(value == INT_MISSING, missing, converted)
        features[field.name] = converted
    return features


def as_model_inputs(spec: FeatureSpec, parsed: dict) -> tuple[dict, tf.Tensor]:
    """Parsed examples to `({field: raw values}, float32 label)` (see `model_features`).

    Args:
        spec: FeatureSpec, the artifact.
        parsed: dict, the output of `tf.io.parse_example` with `feature_description(spec)`.

    Returns:
        `(features, label)`: the `model_features` dict and the label as float32.

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="clicked",
        ...     fields=(FieldSpec("site", "categorical", 3, "vocab/site.txt"),),
        ...     splits={"train": 100},
        ...     value_types={"clicked": "int"},
        ... )
        >>> parsed = {"clicked": tf.constant([1, 0], tf.int64), "site": tf.constant([b"news", b""])}
        >>> features, label = as_model_inputs(spec, parsed)
        >>> label.dtype.name, label.numpy().tolist()
        ('float32', [1.0, 0.0])
    """
    return model_features(spec, parsed), tf.cast(parsed[spec.label], tf.float32)


def make_dataset(
    spec: FeatureSpec,
    split: str,
    batch_size: int = 2000,
    shuffle: bool = False,
    repeat: bool = False,
    seed: Optional[int] = None,
    shuffle_buffer: int = 100_000,
) -> tf.data.Dataset:
    """Batches of `({field: raw values}, label)` from one split.

    Args:
        spec: FeatureSpec, the artifact.
        split: str, `"train"`, `"validation"` or `"test"`.
        batch_size: int, examples per batch.
        shuffle: bool, shuffle files and examples (with `seed`).
        repeat: bool, repeat forever.
        seed: int or None, the shuffle seed.
        shuffle_buffer: int, examples held for shuffling.

    Returns:
        A `tf.data.Dataset` of `(features, labels)`: a dict of field name to a
        `[batch]` tensor of raw values (strings for categorical fields, float32
        for numeric ones) and a float32 `[batch]` label.

    Raises:
        ValueError: when `batch_size` is not positive or `split` is unknown.
        FileNotFoundError: when the split has no example files.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> features, labels = next(iter(make_dataset(spec, "train", batch_size=4)))
        >>> features["user"].dtype.name, features["price"].dtype.name
        ('string', 'float32')
        >>> print(labels.shape)
        (4,)
        >>> spec.splits["test"], sum(len(y) for _, y in make_dataset(spec, "test", batch_size=8))
        (18, 18)
    """
    if batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size}")
    files = spec.split_files(split)
    if not files:
        raise FileNotFoundError(f"no examples for split {split!r} in {spec.directory}")
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=min(4, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    description = feature_description(spec)

    def parse(serialized):
        return as_model_inputs(spec, tf.io.parse_example(serialized, description))

    dataset = dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
