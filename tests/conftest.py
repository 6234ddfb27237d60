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


@pytest.fixture(scope="session")
def synthetic_artifact(tmp_path_factory):
    """`synthetic_artifact(rows, min_count=1)`: the FeatureSpec of the synthetic data
    (seed 0) preprocessed by the Beam pipeline, made once per session for each
    `(rows, min_count)` and shared by the tests that ask for it.

    The tests only read it (`spec.directory`); one that changes the artifact
    changes a copy.
    """
    from keras_dimsel.data.datasets import make_reader
    from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run

    made = {}

    def artifact(rows: int, min_count: int = 1):
        if (rows, min_count) not in made:
            output = str(tmp_path_factory.mktemp(f"synthetic_{rows}_min{min_count}"))
            reader = make_reader("synthetic", [], output_dir=output, rows=rows, seed=0)
            made[rows, min_count] = run(
                reader, PreprocessConfig(output_dir=output, min_count=min_count)
            )
        return made[rows, min_count]

    return artifact
