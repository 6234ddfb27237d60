"""Small helpers the layers share: argument checks, initializer copies, a static branch."""

from __future__ import annotations

import re
import zlib
from typing import Any, Callable

import numpy as np
import tensorflow as tf


def is_int(value: Any) -> bool:
    """Whether `value` is an integer (Python or NumPy), booleans excluded.

    Examples:

        >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
        (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def as_int_array(values: Any) -> np.ndarray:
    """Integers, one per id (a list or an array), as an int64 array.

    Layers keep such per-id values as arrays, never as lists: Keras walks
    every item of a list attribute each time it lists a layer's weights (in
    every `fit`, `evaluate` and `trainable_variables`), millions of items for
    a large vocabulary. Integer arrays are converted at once; anything else
    item by item with `int`, whose errors name the item (`int(nan)`).

    Examples:

        >>> as_int_array([3, 1.0]).tolist()
        [3, 1]
    """
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    return np.array([int(value) for value in array.tolist()], dtype=np.int64)


def clone_initializer(initializer: Any) -> tf.keras.initializers.Initializer:
    """A fresh instance of an initializer (or its name), one per weight.

    A shared instance would give seeded weights identical values and tie the
    weights' creation together.

    Examples:

        >>> first = tf.keras.initializers.GlorotUniform(seed=1)
        >>> second = clone_initializer(first)
        >>> second is first, second.get_config() == first.get_config()
        (False, True)
    """
    initializer = tf.keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())


def static_cond(pred: Any, true_fn: Callable, false_fn: Callable):
    """`true_fn()` or `false_fn()`, chosen in Python when `pred` is known before running.

    `training` is a Python bool in almost every call; building both branches
    of a `tf.cond` then would trace the unused one for nothing.

    Examples:

        >>> static_cond(True, lambda: 1, lambda: 2)
        1
        >>> int(static_cond(tf.constant(False), lambda: tf.constant(1), lambda: tf.constant(2)))
        2
    """
    value = pred if isinstance(pred, (bool, np.bool_)) else tf.get_static_value(pred)
    if value is not None:
        return true_fn() if bool(value) else false_fn()
    return tf.cond(pred, true_fn, false_fn)


_SCOPE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def scope_name(name: str) -> str:
    """`name` as a valid part of a layer or summary name, distinct for distinct names.

    A field is named after its column, which may hold any character; TensorFlow
    name scopes take only ASCII letters, digits and `_.-`. A name that has
    only those, and starts with a letter or digit, is returned as it is; any
    other gets its other characters replaced by `_` and a hash of the original
    appended, so that two columns that differ only there (`user id`,
    `user_id`) still get two names.

    Examples:

        >>> scope_name("C1"), scope_name("user id"), scope_name("größe")
        ('C1', 'user_id_f8c3fcf8', 'gr_e_5bd3a989')
    """
    safe = _SCOPE_UNSAFE.sub("_", name)
    if safe == name and name[:1] not in ("", "_", "-", "."):
        return name
    return f"{safe.strip('_.-') or 'field'}_{zlib.crc32(name.encode('utf-8')):08x}"
