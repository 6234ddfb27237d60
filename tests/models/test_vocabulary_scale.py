"""Vocabularies are files and arrays, never Python lists: what keeps large models cheap.

Keras walks every item of a list attribute each time it lists a model's
weights (every `fit`, `evaluate`, `trainable_variables`), and an export writes
a list vocabulary into the graph. These tests pin down the form instead of
timing it: nothing tracked in a model holds a list as long as a vocabulary,
and the export carries the vocabularies as asset files.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel import amtl
from keras_dimsel.autodim.model import planned_model, search_model
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.data.feature_spec import FeatureSpec, FieldSpec
from keras_dimsel.data.lookup import FeatureLookup
from keras_dimsel.export import export_saved_model
from keras_dimsel.models import full_model, vocab_sizes

#: values of the large field, the one whose table dominates a model
LARGE = 200_000


def _artifact(directory, sizes: dict) -> FeatureSpec:
    """A hand-made artifact: `sizes[field]` values `<field>-<rank>`, counts falling with rank."""
    os.makedirs(directory / "vocab")
    fields = []
    for name, size in sizes.items():
        ranks = np.arange(1, size + 1)
        counts = np.maximum(1, 100_000 // ranks)
        lines = [f"{count} {name}-{rank:06d}\n" for count, rank in zip(counts, ranks)]
        (directory / "vocab" / f"{name}.txt").write_text("".join(lines))
        fields.append(FieldSpec(name, "categorical", size + 1, f"vocab/{name}.txt"))
    return FeatureSpec("label", tuple(fields), {"train": 10}, directory=str(directory))


def _long_containers(model, longest: int) -> list:
    """The lists, tuples and dicts tracked in `model`'s object graph with `longest`+ items."""
    nodes = tf.train.TrackableView(model).descendants()
    containers = [node for node in nodes if isinstance(node, (list, tuple, dict))]
    return [(type(node).__name__, len(node)) for node in containers if len(node) >= longest]


def _stage_models(spec) -> dict:
    sizes = vocab_sizes(spec)
    plan = DimensionPlan(fields=dict.fromkeys(sizes, 2), candidates=(2, 4), vocab_sizes=sizes)
    masked = amtl.masked_model("deepfm", spec, ["item"], dim=4)
    models = {
        "full": full_model("deepfm", spec, dim=4),
        "plan": planned_model("deepfm", spec, plan),
        "search": search_model("deepfm", spec, candidates=(2, 4)),
        "amtl": masked,
    }
    for model in models.values():
        model.build_weights()
    models["compact"], _ = amtl.compact_model(masked)
    return models


def test_no_model_stage_tracks_a_list_as_long_as_its_vocabulary(tmp_path):
    spec = _artifact(tmp_path, {"item": 500, "device": 3})
    for stage, model in _stage_models(spec).items():
        # A vocabulary or per-value counts kept as a list would show up here.
        assert _long_containers(model, 500) == [], stage


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """An FM over a 200,000-value field with random weights, and its export."""
    directory = tmp_path_factory.mktemp("large")
    spec = _artifact(directory / "data", {"item": LARGE, "device": 3})
    model = full_model("fm", spec, dim=2)
    model.build_weights()
    # Every id apart, so that equal probabilities mean equal ids.
    for weight in model.weights:
        weight.assign(tf.random.stateless_uniform(weight.shape, [0, 1], -0.5, 0.5))
    export = export_saved_model(model, str(directory / "saved_model"))
    return spec, model, export


def test_export_carries_the_vocabularies_as_assets_not_graph_constants(large):
    spec, _, export = large
    values = [
        line.split(" ", 1)[1] for line in open(os.path.join(spec.directory, "vocab/item.txt"))
    ]
    vocabulary_bytes = len("".join(values))
    assets = os.path.join(export, "assets")
    files = {name: open(os.path.join(assets, name)).read() for name in os.listdir(assets)}
    assert files["item.values.txt"] == "".join(values)  # the ids' order: line i is id i + 1
    assert files["device.values.txt"] == "device-000001\ndevice-000002\ndevice-000003\n"
    # Written as constants the 2.8 MB of values would be in the graph.
    assert os.path.getsize(os.path.join(export, "saved_model.pb")) < vocabulary_bytes / 10


def test_reloaded_export_serves_known_unseen_and_missing_values_as_the_model(large):
    _, model, export = large
    items = ["item-000001", f"item-{LARGE:06d}", "never-seen", "also-unseen", ""]
    features = {"item": tf.constant(items), "device": tf.constant(["device-000002"] * 5)}
    served = tf.saved_model.load(export).signatures["serving_default"](**features)
    expected = model(features, training=False).numpy()
    np.testing.assert_allclose(served["probability"].numpy(), expected, rtol=1e-6)
    ids = model.lookup(features)["item"].numpy().tolist()
    assert ids == [1, LARGE, 0, 0, 0]  # unseen and missing ([MISSING] is not a value here)
    assert len(set(expected.tolist())) == 3


def test_keras_file_reloads_and_exports_with_its_vocabularies(large, tmp_path):
    _, model, _ = large
    model.save(tmp_path / "model.keras")
    reloaded = tf.keras.models.load_model(tmp_path / "model.keras")
    # The `.keras` assets were extracted into a directory that is gone by now.
    export = export_saved_model(reloaded, str(tmp_path / "saved_model"))
    features = {"item": tf.constant(["item-000007", "nope"]), "device": tf.constant(["", "x"])}
    served = tf.saved_model.load(export).signatures["serving_default"](**features)
    np.testing.assert_allclose(
        served["probability"].numpy(), model(features, training=False).numpy(), rtol=1e-6
    )
    assert _long_containers(reloaded, 1000) == []


def test_carriage_returns_and_empty_values_keep_the_ids_they_had(tmp_path):
    # As `tf.io.gfile`'s line reader, the artifact's reader drops carriage
    # returns; TensorFlow's vocabulary file reader refuses an empty line, yet
    # the values after an empty one keep their ids.
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "site.txt").write_bytes(b"5 news\r\n4 \n3 sh\rop\n")
    field = FieldSpec("site", "categorical", 4, "vocab/site.txt")
    spec = FeatureSpec("label", (field,), {"train": 12}, directory=str(tmp_path))
    ids = FeatureLookup(spec)({"site": tf.constant(["news\r", "news", "shop", "sh\rop"])})
    assert ids["site"].numpy().tolist() == [0, 1, 3, 0]
