"""Every library model saves as `.keras` and reloads in a fresh process, predicting the same.

The reloading process imports `keras_dimsel.models`, which registers every
library model part with Keras, and gives no `custom_objects`.
"""

import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel import amtl
from keras_dimsel.autodim.model import planned_model, search_model
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.models import full_model, vocab_sizes

KINDS = ("full", "plan", "search", "amtl", "compact")


@pytest.fixture(scope="module")
def spec(synthetic_artifact):
    return synthetic_artifact(1500, min_count=2)


def _models(spec) -> dict:
    tf.keras.utils.set_random_seed(0)
    dims = {name: 8 if name in ("user", "item") else 2 for name in spec.field_names}
    plan = DimensionPlan(fields=dims, candidates=(2, 8), vocab_sizes=vocab_sizes(spec))
    masked = amtl.masked_model("deepfm", spec, ["user", "item"], dim=8, length_penalty=0.1)
    models = {
        "full": full_model("deepfm", spec, dim=4),
        "plan": planned_model("wide_deep", spec, plan),
        "search": search_model("fm", spec, candidates=(2, 4), storage="separate", seed=1),
        "amtl": masked,
    }
    for model in models.values():
        model.build_weights()
        # Every weight away from its initial value, as after training.
        rng = np.random.default_rng(0)
        model.set_weights([w + rng.uniform(0.01, 0.1, w.shape) for w in model.get_weights()])
    models["compact"], _ = amtl.compact_model(masked)
    return models


@pytest.mark.e2e
def test_every_model_reloads_from_keras_format_in_a_fresh_process(spec, tmp_path):
    features, _ = next(iter(make_dataset(spec, "test", batch_size=64)))
    arrays = {
        name: value.numpy().astype(str) if value.dtype == tf.string else value.numpy()
        for name, value in features.items()
    }
    np.savez(tmp_path / "features.npz", **arrays)
    expected = {}
    for kind, model in _models(spec).items():
        expected[kind] = model(features, training=False).numpy()
        path = tmp_path / f"{kind}.keras"
        model.save(path)
        with zipfile.ZipFile(path) as archive:
            config = archive.read("config.json").decode()
        assert spec.directory not in config and str(tmp_path) not in config, kind
    script = textwrap.dedent(
        f"""
        import json, os, sys
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import numpy as np
        import tensorflow as tf
        import keras_dimsel.models
        features = dict(np.load({str(tmp_path / "features.npz")!r}, allow_pickle=False))
        features = {{k: tf.constant(v) for k, v in features.items()}}
        out = {{}}
        for kind in {list(KINDS)!r}:
            model = tf.keras.models.load_model({str(tmp_path)!r} + f"/{{kind}}.keras")
            out[kind] = [type(model).__name__, model(features, training=False).numpy().tolist()]
        print(json.dumps(out))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    for kind in KINDS:
        class_name, predictions = reloaded[kind]
        assert class_name == ("SearchModel" if kind == "search" else "CTRModel"), kind
        np.testing.assert_allclose(predictions, expected[kind], rtol=1e-6, atol=1e-7)
