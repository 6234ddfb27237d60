"""Every workaround that reaches into a private TensorFlow, Keras or Beam API, with its why.

Each one is guarded by the versions it was checked against: outside them it
does nothing (or falls back to the public behaviour) instead of failing, and
the library stays correct, only slower or less strict.
"""

from __future__ import annotations

import argparse
import functools

#: TensorFlow versions whose AutoGraph rules were checked (`exempt_keras_from_autograph`).
_AUTOGRAPH_CHECKED = ("2.16",)
#: The packages `exempt_keras_from_autograph` keeps AutoGraph out of.
_NEVER_CONVERTED = ("tf_keras", "keras_dimsel")
#: tf_keras versions whose callback list reads `_supports_tf_logs` (`skip_numpy_logs`).
_TF_KERAS_CHECKED = ("2.16",)


def _version_in(version: str, checked: tuple) -> bool:
    return any(version == v or version.startswith(v + ".") for v in checked)


@functools.cache
def exempt_keras_from_autograph() -> bool:
    """Keeps AutoGraph out of Keras 2's code and this library's, as TensorFlow does for `keras`.

    When a `tf.function` is traced, AutoGraph rewrites the Python source of
    every function it calls, unless a rule of its `CONVERSION_RULES` exempts
    the function's module. TensorFlow 2.16 exempts `keras` but not `tf_keras`,
    the package name of Keras 2 behind `TF_USE_LEGACY_KERAS=1`. So the first
    `fit`, `evaluate` or `predict` of every model parses and rewrites Keras's
    whole training loop, its layers and metrics: on a 2-core machine the first
    epoch of a two-embedding model took 14 s instead of 0.9 s, and the first
    epoch of a DeepFM search on Criteo's 39 fields several minutes. Keras 2
    never needed the conversion: `DoNotConvert("keras")` exempted the same code
    up to TensorFlow 2.15.

    `keras_dimsel` is exempted too. Its layers, models and input functions
    are written for graph mode (no Python `if` or loop on a tensor), so the
    conversion changes nothing in them but costs time at every trace: a
    one-epoch `dimsel baseline` of DeepFM on the Criteo sample took 25.8 s
    with it and 21.8 s without (medians of 3 processes; the search's 38 s
    did not change beyond the noise). The function a `tf.function` wraps is
    still converted, and so is code of one's own (a head, a layer) that Keras
    calls.

    The rules are not public; this adds `DoNotConvert("tf_keras")` and
    `DoNotConvert("keras_dimsel")` first, once, on the TensorFlow versions it
    was checked with. The training runner and the command line call it; a
    program of one's own may too.

    Returns:
        bool, whether the rules are in place.

    Examples:

        >>> exempt_keras_from_autograph()
        True
    """
    import tensorflow as tf

    if not _version_in(tf.__version__, _AUTOGRAPH_CHECKED):
        return False
    from tensorflow.python.autograph.core import config

    missing = tuple(
        config.DoNotConvert(package)
        for package in _NEVER_CONVERTED
        if not any(
            isinstance(rule, config.DoNotConvert) and rule.matches(package)
            for rule in config.CONVERSION_RULES
        )
    )
    config.CONVERSION_RULES = missing + tuple(config.CONVERSION_RULES)
    return True


def skip_numpy_logs(callback) -> None:
    """Tells Keras a callback's batch hooks do not read the logs.

    Keras otherwise converts every batch's logs to NumPy for the callbacks,
    a device-to-host copy per step. The flag is private to tf_keras's
    `CallbackList`; on other versions the callback just gets NumPy logs.
    """
    import tf_keras

    if _version_in(tf_keras.__version__, _TF_KERAS_CHECKED):
        callback._supports_tf_logs = True


def beam_option_parser() -> argparse.ArgumentParser:
    """An argument parser that knows every Beam pipeline option, to spot typos in them.

    Beam parses its options leniently (an unknown flag is dropped with a log
    line). Each `PipelineOptions` subclass declares its flags in the private
    classmethod `_add_argparse_args`, the hook Beam's own parsing uses; an
    option class that lacks it is skipped, so a newer Beam only makes the
    check less complete.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pending = list(PipelineOptions.__subclasses__())
    seen = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        add_arguments = getattr(cls, "_add_argparse_args", None)
        if add_arguments is None:
            continue
        try:
            add_arguments(parser)
        except argparse.ArgumentError:
            pass  # an option declared by two option classes
    return parser


def adam_slots(optimizer, variable):
    """`(m, v, v_hat or None)` of one variable of a built tf_keras `Adam`, or None.

    A lazy Adam step (`keras_dimsel.training.optimizers.LazyAdam`) updates
    the rows of `m` and `v` a batch read; tf_keras's optimizers keep the
    slots in private lists (`_momentums`, `_velocities`, `_velocity_hats`)
    indexed by `_index_dict[_var_key(variable)]` and offer no public lookup.
    On other tf_keras versions this returns None and `LazyAdam` falls back to
    Adam's own (dense) update: correct, only as slow as Adam.
    """
    import tf_keras

    if not _version_in(tf_keras.__version__, _TF_KERAS_CHECKED):
        return None
    index = optimizer._index_dict[optimizer._var_key(variable)]
    v_hat = optimizer._velocity_hats[index] if optimizer.amsgrad else None
    return optimizer._momentums[index], optimizer._velocities[index], v_hat
