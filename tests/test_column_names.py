"""Any column name a CSV may hold works end to end: preprocess, every training
command, TensorBoard, export and serving.

The columns are named with a space, non-ASCII letters, a comma, a slash and
brackets. Layer names get a scope-safe form of them, the serving signature an
input name of its own (`serving_input_names`), printed by each command.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.cli import main
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import serving_input_names
from tests import tensorboard_events

COLUMNS = ["clicked", "user id", "größe", "a,b/c", "price ($)"]
RENAMED = "serving_default inputs renamed: 'user id' as user_id, 'größe' as gro_e, 'a,b/c' as a_b_c"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("names")
    rng = np.random.default_rng(0)
    lines = ['clicked,user id,größe,"a,b/c",price ($)']
    for _ in range(1500):
        user = int(rng.integers(0, 40))
        clicked = int(rng.random() < (0.75 if user % 2 else 0.15))
        size = "ÄÖÜ"[int(rng.integers(0, 3))]
        lines.append(f'{clicked},u {user},{size},"v,{rng.integers(0, 5)}",{rng.random() * 9:.2f}')
    path = directory / "clicks.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = directory / "data"
    argv = ["preprocess", "--dataset", "csv", "--input", str(path), "--output", str(output)]
    argv += ["--label", "clicked", "--categorical", 'user id, größe,"a,b/c"']
    assert main(argv + ["--numeric", "price ($)"]) == 0
    return str(output)


def _served_auc(spec: FeatureSpec, saved_model: str) -> float:
    """Keras's AUC (the reported metric) of the SavedModel's test predictions, fed by input name."""
    serve = tf.saved_model.load(saved_model).signatures["serving_default"]
    names = serving_input_names(spec.field_names)
    assert sorted(serve.structured_input_signature[1]) == sorted(names.values())
    auc = tf.keras.metrics.AUC(num_thresholds=2000)
    for features, label in make_dataset(spec, "test", batch_size=512):
        inputs = {names[field]: value for field, value in features.items()}
        auc.update_state(label, serve(**inputs)["probability"])
    return float(auc.result())


def test_the_artifact_keeps_the_names_of_the_header(data):
    spec = FeatureSpec.load(data)
    assert spec.label == "clicked"
    assert spec.field_names == COLUMNS[1:]
    assert set(spec.vocabulary("größe")[0]) >= {"Ä", "Ö", "Ü"}
    assert set(spec.vocabulary("a,b/c")[0]) >= {f"v,{i}" for i in range(5)}


@pytest.mark.e2e
def test_every_training_command_trains_exports_and_serves_them(data, tmp_path, capsys):
    spec = FeatureSpec.load(data)
    common = ["--data", data, "--model", "deepfm", "--epochs", "1", "--batch-size", "64"]
    runs = {
        "baseline": ["--dim", "4"],
        "search": ["--candidates", "2,4"],
        "retrain": ["--plan", str(tmp_path / "search" / "plan.json")],
        "amtl": ["--warm-start", str(tmp_path / "baseline"), "--max-dim", "4"],
    }
    for command, more in runs.items():
        output = tmp_path / command
        assert main([command, *common, "--output", str(output), *more]) == 0, command
        out = capsys.readouterr().out
        if command == "search":
            plan = json.loads((output / "plan.json").read_text())
            assert sorted(plan["fields"]) == sorted(spec.field_names)
            alpha = {f"alpha/{field}/2" for field in spec.field_names}
            assert alpha <= tensorboard_events.tags(output / "logs")
            continue
        assert RENAMED in out, command
        written = json.loads((output / "metrics.json").read_text())
        assert written["auc"] > 0.7, command
        served = _served_auc(spec, str(output / "saved_model"))
        assert written["auc"] == pytest.approx(served, abs=1e-6), command
    logged = tensorboard_events.tags(tmp_path / "amtl" / "logs" / "train")
    assert {"mean_length/user id", "lengths/user id"} <= logged
