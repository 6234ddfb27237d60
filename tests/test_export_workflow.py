"""Compact export and the baseline -> search -> retrain workflow on a small artifact."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.autodim.model import planned_model
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.autodim.runs import run_retrain, run_search
from keras_dimsel.autodim.temperature import TemperatureSchedule
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import export_saved_model, saved_embedding_params
from keras_dimsel.models import full_model, vocab_sizes
from keras_dimsel.training import TrainSettings, run_baseline
from keras_dimsel.training.memory import RUNTIME_BYTES


@pytest.fixture(scope="module")
def spec(synthetic_artifact):
    return synthetic_artifact(2000, min_count=2)


@pytest.mark.parametrize("name", ["fm", "wide_deep", "deepfm"])
def test_export_predicts_like_the_model_and_stores_only_the_planned_tables(spec, tmp_path, name):
    plan_dims = {field: (8 if field in ("user", "item") else 2) for field in spec.field_names}
    plan = DimensionPlan(fields=plan_dims, candidates=(2, 8), vocab_sizes=vocab_sizes(spec))
    model = planned_model(name, spec, plan)
    features, _ = next(iter(make_dataset(spec, "test", batch_size=16)))
    expected = model(features, training=False).numpy()
    export_saved_model(model, str(tmp_path / "saved_model"))
    reloaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    served = reloaded.signatures["serving_default"](**features)["probability"].numpy()
    np.testing.assert_allclose(served, expected, rtol=1e-6)
    assert saved_embedding_params(str(tmp_path / "saved_model")) == model.embedding_params
    assert model.embedding_params == sum(spec.field(f).vocab_size * d for f, d in plan_dims.items())


def test_export_serves_unseen_and_empty_values(spec, tmp_path):
    model = full_model("fm", spec, dim=4)
    export_saved_model(model, str(tmp_path / "m"))
    serve = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"]
    features = {
        f.name: tf.constant(["never-seen", ""])
        if f.kind == "categorical"
        else tf.constant([1e9, float("nan")])
        for f in spec.fields
    }
    probabilities = serve(**features)["probability"].numpy()
    assert probabilities.shape == (2,) and np.all(np.isfinite(probabilities))


def test_train_settings_defaults_follow_the_data(spec):
    settings = TrainSettings().resolve(spec)
    assert settings.epochs == 3
    assert settings.batch_size == max(64, spec.splits["train"] // 100)
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        TrainSettings(epochs=-1).resolve(spec)


def _served_test_auc(spec, saved_model):
    """The reported metric, Keras's AUC at 2000 thresholds, of a SavedModel's test predictions."""
    serve = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    auc = tf.keras.metrics.AUC(num_thresholds=2000)
    for features, label in make_dataset(spec, "test", batch_size=512):
        auc.update_state(label, serve(**features)["probability"])
    return float(auc.result())


@pytest.mark.e2e
def test_baseline_search_retrain_write_their_results(spec, tmp_path):
    settings = TrainSettings(epochs=1, batch_size=128, seed=0)
    run_baseline(spec, "fm", str(tmp_path / "base"), dim=8, settings=settings)
    plan = run_search(spec, "fm", str(tmp_path / "search"), candidates=(2, 4, 8), settings=settings)
    assert set(plan.fields) == set(spec.field_names)
    assert DimensionPlan.load(str(tmp_path / "search" / "plan.json")).fields == plan.fields
    history = (tmp_path / "search" / "alpha_history.csv").read_text().splitlines()
    assert history[0] == "step,field,candidate,probability" and len(history) > 24
    assert (tmp_path / "search" / "search.png").stat().st_size > 1000
    retrained = run_retrain(spec, plan, "fm", str(tmp_path / "retrain"), settings=settings)
    for directory in ("base", "retrain"):
        written = json.loads((tmp_path / directory / "metrics.json").read_text())
        assert set(written) >= {"auc", "logloss", "embedding_params", "examples_per_second"}
        # The exported model is the one whose test AUC was written. The exact AUC
        # differs by 2e-3 on the retrained model, whose test predictions all lie in
        # [0.47, 0.49]; the written logloss averages the batches' means (test_models).
        auc = _served_test_auc(spec, tmp_path / directory / "saved_model")
        assert written["auc"] == pytest.approx(auc, abs=1e-6)
    assert retrained["embedding_params"] == plan.embedding_params


@pytest.mark.e2e
def test_search_derived_by_probing_keeps_alpha_equal_and_records_the_losses(spec, tmp_path):
    settings = TrainSettings(epochs=1, batch_size=256, seed=0)
    output = tmp_path / "probe"
    plan = run_search(
        spec, "fm", str(output), candidates=(2, 8), derive="probe", tolerance=0.0,
        settings=settings,
    )  # fmt: skip
    # One-shot supernet: alpha never leaves equal weights, every candidate trains.
    for weights in plan.alpha.values():
        assert weights == pytest.approx([0.5, 0.5])
    assert set(plan.probe_loss) == set(spec.field_names)
    # With no tolerance each field takes its lowest-loss candidate.
    for name, losses in plan.probe_loss.items():
        assert plan.fields[name] == (2, 8)[int(np.argmin(losses))]
    assert DimensionPlan.load(str(output)).probe_loss == plan.probe_loss
    metrics = json.loads((output / "search_metrics.json").read_text())
    steps = -(-spec.splits["train"] // 256)
    assert (metrics["derive"], metrics["tolerance"], metrics["pretrain_steps"]) == (
        "probe", 0.0, steps
    )  # fmt: skip
    assert metrics["training_memory_estimate_bytes"] > RUNTIME_BYTES  # the search records it
    with pytest.raises(ValueError, match=r"`derive` must be one of \('alpha', 'probe'\)"):
        run_search(spec, "fm", str(tmp_path / "bad"), derive="best", settings=settings)


@pytest.mark.e2e
def test_a_search_with_an_anneal_fraction_reaches_the_floor_at_that_fraction(
    spec, tmp_path, capsys
):
    settings = TrainSettings(epochs=2, batch_size=256, seed=0)
    output = tmp_path / "relative"
    run_search(spec, "fm", str(output), candidates=(2, 8), anneal_fraction=0.5, settings=settings)
    steps = -(-spec.splits["train"] // 256)
    schedule = json.loads((output / "search_metrics.json").read_text())["temperature_schedule"]
    # Half of 2 epochs: the floor after the first epoch's examples.
    assert schedule["rate"] == pytest.approx((1 - 0.01) * 2000 / (steps * 256))
    temperatures = [
        float(line.split("temperature: ")[1].split()[0])
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("epoch ") and "temperature: " in line
    ]
    # Each epoch logs the temperature of its last batch: that of the examples before it.
    assert temperatures == pytest.approx([1 - 0.99 * (steps - 1) / steps, 0.01], abs=1e-4)
    with pytest.raises(ValueError, match="`temperature_schedule` or `anneal_fraction`, not both"):
        run_search(
            spec, "fm", str(tmp_path / "both"), temperature_schedule=TemperatureSchedule(),
            anneal_fraction=0.5, settings=settings,
        )  # fmt: skip
    assert not (tmp_path / "both").exists()  # refused before anything is written
