"""`FeatureLookup`: raw feature values to integer ids, inside the model.

Built from the feature statistics artifact, so an exported model takes raw
values (strings and numbers) and needs no preprocessing at serving time. The
token rules are the TensorFlow twins of `keras_dimsel.data.tokens`; a test
checks both give the same tokens.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from typing import Optional, Sequence, Union

import tensorflow as tf

from keras_dimsel.data.feature_spec import (
    OOV_INDEX,
    FeatureSpec,
    FieldSpec,
    read_vocabulary_columns,
)
from keras_dimsel.data.tokens import MISSING_TOKEN
from keras_dimsel.layers._utils import scope_name

#: The vocabulary of a lookup rebuilt from a config until its assets are loaded.
_PLACEHOLDER = "[NO VOCABULARY LOADED]"


def categorical_tokens(values: tf.Tensor) -> tf.Tensor:
    """Strings to tokens: the value, or `[MISSING]` when empty.

    Args:
        values: tensor of raw categorical values; numbers become their decimal string.

    Returns:
        A string tensor of the same shape.

    Examples:

        >>> categorical_tokens(tf.constant(["news", ""])).numpy().tolist()
        [b'news', b'[MISSING]']
        >>> categorical_tokens(tf.constant([17])).numpy().tolist()
        [b'17']
    """
    values = tf.convert_to_tensor(values)
    if values.dtype != tf.string:
        values = tf.strings.as_string(values)
    return tf.where(tf.equal(values, ""), MISSING_TOKEN, values)


def numeric_tokens(
    values: tf.Tensor, transform: str, boundaries: Optional[Sequence[float]] = None
) -> tf.Tensor:
    """Numbers (NaN = missing) to tokens under `log_square` or `quantiles`.

    `log_square` (the Criteo rule) gives `floor(ln(v)^2)` for v > 2 and
    `floor(v)` otherwise; `quantiles` gives the bucket index
    `searchsorted(boundaries, v, side="right")`. Values are rounded to float32
    first, as the examples store them.

    Args:
        values: tensor of numbers, NaN for a missing value.
        transform: str, `"log_square"` or `"quantiles"`.
        boundaries: sequence of float, the bucket boundaries (`quantiles`).

    Returns:
        A string tensor of the same shape: the bucket as a decimal integer, or `[MISSING]`.

    Raises:
        ValueError: on an unknown `transform`.

    Examples:

        >>> values = tf.constant([1.5, 10.0, float("nan")])
        >>> numeric_tokens(values, "log_square").numpy().tolist()
        [b'1', b'5', b'[MISSING]']
        >>> numeric_tokens(values, "quantiles", boundaries=[2.0, 10.0]).numpy().tolist()
        [b'0', b'2', b'[MISSING]']
    """
    values = tf.cast(tf.cast(values, tf.float32), tf.float64)
    missing = tf.math.is_nan(values)
    values = tf.where(missing, tf.zeros_like(values), values)
    if transform == "log_square":
        large = values > 2.0
        squared_log = tf.floor(tf.square(tf.math.log(tf.where(large, values, 3.0))))
        buckets = tf.clip_by_value(
            tf.where(large, squared_log, tf.floor(values)), -(2.0**53), 2.0**53
        )
    elif transform == "quantiles":
        edges = tf.constant(list(boundaries or ()), dtype=tf.float64)
        flat = tf.reshape(values, [1, -1])
        found = tf.searchsorted(tf.reshape(edges, [1, -1]), flat, side="right")
        buckets = tf.reshape(found, tf.shape(values))
    else:
        raise ValueError(
            f"`transform` must be 'log_square' or 'quantiles'. Received: transform={transform!r}"
        )
    tokens = tf.strings.as_string(tf.cast(buckets, tf.int64))
    return tf.where(missing, MISSING_TOKEN, tokens)


def field_tokens(values: tf.Tensor, field: FieldSpec) -> tf.Tensor:
    """The vocabulary tokens of one field's raw values.

    Args:
        values: tensor of the field's raw values.
        field: FieldSpec, the field (its kind, transform and boundaries).

    Returns:
        A string tensor of the same shape (see `categorical_tokens`, `numeric_tokens`).

    Examples:

        >>> price = FieldSpec(
        ...     "price", "numeric", 4, "vocab/price.txt",
        ...     transform="quantiles", boundaries=(5.0, 20.0)
        ... )
        >>> field_tokens(tf.constant([3.0, 12.5, 99.0]), price).numpy().tolist()
        [b'0', b'1', b'2']
    """
    if field.kind == "categorical":
        return categorical_tokens(values)
    return numeric_tokens(values, field.transform, field.boundaries)


def _vocabulary_source(values: bytes, name: str) -> Union[str, list]:
    """What a `StringLookup` is given for a vocabulary: a file of its own, or a list.

    A vocabulary file read by `tf.lookup.TextFileInitializer` is a
    SavedModel asset: the export copies the file instead of writing the
    values into the graph, and nothing of it is a Python object that Keras
    walks. The file is written into a new temporary directory, removed once
    no lookup table reads it any more (`_own_vocabulary_file`). TensorFlow
    reads a line without a trailing carriage return and refuses an empty
    line, so a vocabulary holding such a value (an empty one in an
    artifact, whose reader drops every carriage return) is given as a list
    instead, which keeps every value exactly.

    Args:
        values: bytes, the values in id order, each followed by a newline.
        name: str, the field name (the file's name).

    Returns:
        str, the path of a one-value-per-line file; or the list of the values.
    """
    if values.startswith(b"\n") or b"\n\n" in values or b"\r\n" in values:
        return values.decode("utf-8").split("\n")[:-1]
    directory = tempfile.mkdtemp(prefix="keras_dimsel-vocabulary-")
    path = os.path.join(directory, re.sub(r"[^\w.-]", "_", name) + ".values.txt")
    with open(path, "wb") as f:
        f.write(values)
    return path


def _own_vocabulary_file(lookup: tf.keras.layers.StringLookup, source) -> None:
    """Removes the temporary file of `_vocabulary_source` when `lookup`'s table is gone."""
    if isinstance(source, str):
        weakref.finalize(lookup.lookup_table, shutil.rmtree, os.path.dirname(source), True)


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class FeatureLookup(tf.keras.layers.Layer):
    """Maps a dict of raw feature values to a dict of integer ids.

    Id 0 is the out-of-vocabulary id (rare and unseen values); ids 1..V follow
    the vocabulary file order (most frequent first). Each field uses a
    `tf.keras.layers.StringLookup` over its vocabulary tokens, which it reads
    from a one-value-per-line file: an export carries the file as an asset,
    and the layer holds no Python list of the values. In a field with
    B hash buckets (`FieldSpec.hash_buckets`), every token outside the
    vocabulary gets id `V + 1 + tf.strings.to_hash_bucket_fast(token, B)`
    instead of 0: the bucket the preprocessing job counted it in.

    Args:
        spec: FeatureSpec or str, the artifact (or its directory).
        fields: list of str or None, the fields to look up (default: all).

    Input shape:
        A dict `{field: tensor}`, each of shape `[batch]` or `[batch, 1]`;
        categorical fields as strings, numeric fields as numbers.

    Output shape:
        A dict `{field: int64 tensor}` of the same shapes.

    Examples:

        A one-field artifact whose vocabulary holds `news` (9 times in train) and `shop`:

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
        >>> lookup = FeatureLookup(spec)
        >>> ids = lookup({"site": tf.constant(["shop", "news", "never-seen", ""])})
        >>> ids["site"].numpy().tolist()
        [2, 1, 0, 0]
        >>> lookup.vocabulary_size("site")
        3

        With 4 hash buckets after the 2 values (ids 3 to 6), an unseen value
        goes to its bucket instead of the OOV id:

        >>> with open(os.path.join(directory, "vocab", "site.buckets.txt"), "w") as f:
        ...     _ = f.write("2 0\\n0 1\\n5 2\\n1 3\\n")
        >>> hashed = FieldSpec(
        ...     "site", "categorical", 7, "vocab/site.txt",
        ...     hash_buckets=4, bucket_file="vocab/site.buckets.txt",
        ... )
        >>> spec = FeatureSpec("label", (hashed,), {"train": 21}, directory=directory)
        >>> ids = FeatureLookup(spec)({"site": tf.constant(["news", "video", "sport", ""])})
        >>> ids["site"].numpy().tolist()
        [1, 6, 4, 3]
        >>> 3 + tf.strings.to_hash_bucket_fast(["video", "sport", "[MISSING]"], 4).numpy()
        array([6, 4, 3])
    """

    def __init__(self, spec, fields: Optional[Sequence[str]] = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(spec, str):
            spec = FeatureSpec.load(spec)
        elif isinstance(spec, dict):  # from `get_config`
            spec = FeatureSpec.from_json(spec)
        self.spec = spec
        self.fields = list(fields) if fields is not None else spec.field_names
        for name in self.fields:
            spec.field(name)  # raises a KeyError naming the known fields
        self._lookups = {}
        self._sources = {}
        for name in self.fields:
            field = spec.field(name)
            source = None
            if spec.directory:
                values, _ = read_vocabulary_columns(os.path.join(spec.directory, field.vocab_file))
                source = _vocabulary_source(values, name) if values else None
            elif field.vocabulary_entries:
                # Rebuilt from a config: the vocabularies are the model's assets
                # (`load_assets`); until they are loaded, every value is unseen.
                source = [_PLACEHOLDER]
            self._lookups[name] = tf.keras.layers.StringLookup(
                vocabulary=source,
                num_oov_indices=1,
                mask_token=None,
                output_mode="int",
                name=f"lookup_{scope_name(name)}",
            )
            self._set_source(name, source)

    def vocabulary_size(self, name: str) -> int:
        """Number of ids of a field, the OOV id included.

        Args:
            name: str, the field name.

        Returns:
            int, V + 1.
        """
        return self.spec.field(name).vocab_size

    def call(self, inputs: dict) -> dict:
        missing = [name for name in self.fields if name not in inputs]
        if missing:
            raise ValueError(
                f"FeatureLookup is missing input feature(s) {missing}. Expected: {self.fields}"
            )
        return {name: self._field_ids(inputs[name], self.spec.field(name)) for name in self.fields}

    def _field_ids(self, values: tf.Tensor, field: FieldSpec) -> tf.Tensor:
        tokens = field_tokens(values, field)
        ids = self._lookups[field.name](tokens)
        if not field.hash_buckets:
            return ids
        buckets = tf.strings.to_hash_bucket_fast(tokens, field.hash_buckets)
        return tf.where(ids == OOV_INDEX, buckets + field.first_bucket_id, ids)

    def _set_source(self, name: str, source) -> None:
        # A path, not the list of a placeholder or of values a file cannot hold.
        self._sources[name] = source if isinstance(source, str) else ""
        if source is not None:
            _own_vocabulary_file(self._lookups[name], source)

    def save_assets(self, dir_path: str) -> None:
        """Writes each field's vocabulary, one value per line, as `<field index>.txt`."""
        for index, (name, lookup) in enumerate(self._lookups.items()):
            path = os.path.join(dir_path, f"{index}.txt")
            if self._sources[name]:
                tf.io.gfile.copy(self._sources[name], path, overwrite=True)
                continue
            values = lookup.get_vocabulary(include_special_tokens=False)
            with tf.io.gfile.GFile(path, "w") as f:
                f.write("".join(value + "\n" for value in values))

    def load_assets(self, dir_path: str) -> None:
        """Reads the vocabularies `save_assets` wrote into the lookups."""
        for index, (name, lookup) in enumerate(self._lookups.items()):
            path = os.path.join(dir_path, f"{index}.txt")
            if not tf.io.gfile.exists(path):
                continue  # a field without values keeps its empty vocabulary
            with tf.io.gfile.GFile(path, "rb") as f:
                values = f.read()
            if values:
                # A file of the lookup's own: the assets directory is temporary.
                source = _vocabulary_source(values, name)
                lookup.set_vocabulary(source)
                self._set_source(name, source)

    def get_config(self) -> dict:
        """The artifact's record and the fields; no path (the vocabularies are assets)."""
        config = super().get_config()
        config.update({"spec": self.spec.to_json(), "fields": self.fields})
        return config
