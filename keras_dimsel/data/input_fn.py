"""tf.data input functions over the splits written by `dimsel preprocess`."""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from keras_dimsel.data.feature_spec import FeatureSpec


def feature_description(spec: FeatureSpec) -> dict:
    """`tf.io.parse_example` features: label, strings and float32 numbers.

    Absent features parse to the missing value (`""` or NaN), the same as an
    empty cell in the raw data.
    """
    description = {spec.label: tf.io.FixedLenFeature([], tf.float32)}
    for field in spec.fields:
        if field.kind == "categorical":
            description[field.name] = tf.io.FixedLenFeature([], tf.string, default_value="")
        else:
            description[field.name] = tf.io.FixedLenFeature(
                [], tf.float32, default_value=float("nan")
            )
    return description


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

    Example:

    ```python
    spec = FeatureSpec.load("artifacts/synthetic")
    features, labels = next(iter(make_dataset(spec, "train", batch_size=4)))
    ```
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
        features = tf.io.parse_example(serialized, description)
        label = features.pop(spec.label)
        return features, label

    dataset = dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
