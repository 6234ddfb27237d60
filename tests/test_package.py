"""The Keras-2 import gate and the installed entry points."""

import os
import subprocess
import sys

import pytest


def _python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment.update(env)
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120
    )


def test_import_sets_legacy_keras_when_unset():
    result = _python(
        "import keras_dimsel, tensorflow as tf, os;"
        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.__name__)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "tf_keras.api._v2.keras"]


def test_import_after_keras_3_was_loaded_raises_with_the_fix():
    result = _python("import tensorflow as tf; tf.keras.layers; import keras_dimsel")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: keras_dimsel needs Keras 2")
    assert "TF_USE_LEGACY_KERAS=1" in last_line


def test_import_with_legacy_keras_disabled_raises_without_loading_tensorflow():
    result = _python(
        "import sys\ntry:\n import keras_dimsel\nexcept ImportError as e:\n"
        " print('tensorflow' in sys.modules, e)",
        TF_USE_LEGACY_KERAS="0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False keras_dimsel needs Keras 2")


@pytest.mark.parametrize(
    "module",
    ["keras_dimsel.cli", "keras_dimsel.preprocessing.pipeline", "keras_dimsel.autodim.plan"],
)
def test_tensorflow_free_modules_do_not_import_tensorflow(module):
    # Beam workers that only parse and count, and tools that read a plan, must not
    # pay for loading TensorFlow.
    result = _python(f"import sys, {module}; print('tensorflow' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "statement",
    [
        "from keras_dimsel.autodim.embeddings import SearchEmbeddings",
        "from keras_dimsel.autodim import SearchModel",
        "from keras_dimsel.amtl.embeddings import MaskedEmbeddings",
        "from keras_dimsel.models.embeddings import FullEmbeddings",
        "import keras_dimsel.models",
    ],
)
def test_every_model_module_imports_first_in_a_fresh_process(statement):
    # `keras_dimsel.models` registers the search and AMTL parts too, so every import
    # order must get through the cycle between the packages.
    result = _python(f"{statement}; import keras_dimsel.models as m; print(m.MODELS)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "('fm', 'wide_deep', 'deepfm')"
