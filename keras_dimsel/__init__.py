"""keras_dimsel: learned embedding dimensions for recommender models.

The library is built on Keras 2 (`tf_keras`), which TensorFlow Recommenders and
TFX require. In TensorFlow 2.16 `tf.keras` is Keras 3 unless the environment
variable `TF_USE_LEGACY_KERAS=1` is set before `tf.keras` is first used.
Importing this package sets the variable when it is not set yet, and raises an
`ImportError` that says how to fix it when `tf.keras` is (or would be) Keras 3.
"""

import importlib.util
import os
import sys

__version__ = "0.1.0"

_KERAS_FIX = (
    "keras_dimsel needs Keras 2 (the `tf_keras` package) behind `tf.keras`, but "
    "`tf.keras` is Keras {version}. Set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before TensorFlow is imported (for example "
    "`export TF_USE_LEGACY_KERAS=1`, or `os.environ['TF_USE_LEGACY_KERAS'] = '1'` "
    "as the first line of your program) and `pip install tf-keras~=2.16`."
)


def _check_keras_2() -> None:
    """Ensures `tf.keras` will be Keras 2, or raises an actionable ImportError.

    TensorFlow reads `TF_USE_LEGACY_KERAS` when `tf.keras` is first resolved, so
    setting it here works even after `import tensorflow`, as long as `tf.keras`
    was not used yet. TensorFlow itself is not imported here: Beam workers that
    only count values never pay for it.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if os.environ["TF_USE_LEGACY_KERAS"] not in ("1", "true", "True"):
        raise ImportError(_KERAS_FIX.format(version="3"))
    if importlib.util.find_spec("tf_keras") is None:
        raise ImportError(_KERAS_FIX.format(version="3 (tf_keras is not installed)"))
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        # Keras 3 exposes `version()`; tf_keras 2.16 behind tf.keras does not.
        version_fn = getattr(tf.keras, "version", None)
        if version_fn is not None and not version_fn().startswith("2"):
            raise ImportError(_KERAS_FIX.format(version=version_fn()))


_check_keras_2()
