"""Keeps AutoGraph out of Keras 2's own code, as TensorFlow does for `keras`.

When a `tf.function` is traced, AutoGraph rewrites the Python source of every
function it calls, unless a rule of `CONVERSION_RULES` exempts the function's
module. TensorFlow 2.16 exempts `keras` but not `tf_keras`, the package name
of Keras 2 behind `TF_USE_LEGACY_KERAS=1`. So the first `fit`, `evaluate` or
`predict` of every model parses and rewrites Keras' whole training loop, its
layers and metrics: on a 2-core machine the first epoch of a two-embedding
model took 14 s instead of 0.9 s, and the first epoch of a DeepFM search on
Criteo's 39 fields several minutes. Keras 2 never needed the conversion: it is
the same code that `DoNotConvert("keras")` exempted up to TensorFlow 2.15, and
Keras 3 is exempt today. The function `tf.function` is given (Keras'
`train_function`) and user code such as a model's `call` are still converted.
"""

from tensorflow.python.autograph.core import config as _config

_EXEMPT = ("tf_keras",)


def exempt_keras_2() -> None:
    """Puts a `DoNotConvert` rule for `tf_keras` first in AutoGraph's rules, once."""
    missing = tuple(
        _config.DoNotConvert(name)
        for name in _EXEMPT
        if not any(
            isinstance(rule, _config.DoNotConvert) and rule.matches(name)
            for rule in _config.CONVERSION_RULES
        )
    )
    _config.CONVERSION_RULES = missing + tuple(_config.CONVERSION_RULES)


exempt_keras_2()
