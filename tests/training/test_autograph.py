"""`exempt_keras_from_autograph` (applied for the whole suite by `conftest.py`):
AutoGraph rewrites the function a `tf.function` wraps, not Keras's code or the
library's below it."""

import sys

import tensorflow as tf

from keras_dimsel.data import make_dataset
from keras_dimsel.models import full_model
from keras_dimsel.training import exempt_keras_from_autograph


def _rewritten_while_tracing(function, *args) -> set:
    """The names of the functions AutoGraph rewrote and ran while `function` traced.

    AutoGraph runs a rewritten function `f` as `tf__f`, from a module it generates.
    """
    rewritten = set()

    def profile(frame, event, arg):
        if event == "call" and "__autograph_generated_file" in frame.f_code.co_filename:
            rewritten.add(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        function.get_concrete_function(*args)
    finally:
        sys.setprofile(None)
    return rewritten


def test_the_library_and_keras_run_as_written_inside_a_tf_function(synthetic_artifact):
    assert exempt_keras_from_autograph()
    spec = synthetic_artifact(2000)
    model = full_model("deepfm", spec, dim=4)
    features, _ = next(iter(make_dataset(spec, "train", batch_size=8)))

    @tf.function
    def predict(features):
        return model(features, training=False)

    rewritten = _rewritten_while_tracing(predict, features)
    assert "tf__predict" in rewritten  # the wrapped function itself is rewritten
    # Functions of the library's lookup, embeddings and head that the call reaches.
    for name in ("field_tokens", "categorical_tokens", "pairwise_interaction", "linear_logit"):
        assert f"tf__{name}" not in rewritten, sorted(rewritten)
    assert not any(name.startswith("tf__") and "keras" in name for name in rewritten)
