"""Test set-up: Keras 2 behind tf.keras before TensorFlow is imported anywhere."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402

import pytest  # noqa: E402

from keras_dimsel._compat import exempt_keras_from_autograph  # noqa: E402

# As the training runner does: tests that call `fit` themselves trace as fast.
exempt_keras_from_autograph()

# The real public samples live beside the repository and must never be copied
# into it; tests that read them skip when the folder is absent.
SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> pathlib.Path:
    """The ../shared/data folder, or a skip when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}")
    return SHARED_DATA
