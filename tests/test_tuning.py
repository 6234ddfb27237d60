"""Tuning the search's hyperparameters and the RaS baseline with keras-tuner oracles."""

import json

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel import tuning
from keras_dimsel.autodim import runs as autodim_runs
from keras_dimsel.autodim.model import planned_model
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.autodim.temperature import DEFAULT_RATE
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.training import DEFAULT_LEARNING_RATE, RunDir, TrainSettings

SETTINGS = TrainSettings(epochs=1, batch_size=128)
CANDIDATES = (2, 8)


@pytest.fixture(scope="module")
def spec(synthetic_artifact):
    return synthetic_artifact(2000)


def _search_tuner(spec, directory, max_trials=2):
    return tuning.SearchTuner(
        spec,
        "fm",
        keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, seed=3),
        directory=str(directory),
        search_options={"candidates": CANDIDATES},
        settings=SETTINGS,
    )


def _random_tuner(spec, directory, max_trials=2, oracle=None, settings=SETTINGS):
    return tuning.RandomDimensionTuner(
        spec,
        "fm",
        oracle or keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, seed=1),
        directory=str(directory),
        candidates=CANDIDATES,
        settings=settings,
    )


def _fail(*args, **kwargs):
    raise AssertionError("a finished run was trained again")


@pytest.fixture(scope="module")
def searched(spec, tmp_path_factory):
    """A SearchTuner after two trials."""
    directory = tmp_path_factory.mktemp("search_tuning")
    tuner = _search_tuner(spec, directory)
    tuner.search(verbose=0)
    return tuner, directory


@pytest.fixture(scope="module")
def random_searched(spec, tmp_path_factory):
    """A RandomDimensionTuner after two trials."""
    directory = tmp_path_factory.mktemp("random_dimensions")
    tuner = _random_tuner(spec, directory)
    tuner.search(verbose=0)
    return tuner, directory


def test_search_space_declares_the_paper_defaults():
    hp = keras_tuner.HyperParameters()
    options = tuning.search_space(hp)
    assert hp.values == {
        "arch_every": 10,
        "temperature_rate": DEFAULT_RATE,
        "arch_learning_rate": DEFAULT_LEARNING_RATE,
        "learning_rate": DEFAULT_LEARNING_RATE,
    }
    assert hp.get_config()["space"][0]["config"]["values"] == [1, 5, 10, 20]
    rate = hp.space[1].get_config()
    assert (rate["min_value"], rate["max_value"], rate["sampling"]) == (5e-6, 5e-3, "log")
    assert options["temperature_schedule"].rate == DEFAULT_RATE


def test_search_space_turns_a_trials_values_into_run_search_arguments():
    hp = keras_tuner.HyperParameters()
    tuning.search_space(hp)
    hp.values.update(
        arch_every=5, temperature_rate=1e-4, arch_learning_rate=0.02, learning_rate=0.003
    )
    options = tuning.search_space(hp)
    assert (options["arch_every"], options["arch_learning_rate"]) == (5, 0.02)
    assert options["learning_rate"] == 0.003
    assert options["temperature_schedule"].get_config() == {
        "floor": 0.01,
        "rate": 1e-4,
        "reference_batch_size": 2000,
    }


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"model_name": "lr"}, "`model_name` must be one of"),
        ({"search_options": {"arch_evry": 5}}, r"names \['arch_evry'\], which run_search"),
        ({"search_options": {"arch_every": 5}}, r"\['arch_every'\] are both fixed"),
        ({"space": lambda hp: {"epochs": hp.Int("epochs", 1, 3)}}, r"names \['epochs'\]"),
        (
            {"oracle": keras_tuner.oracles.RandomSearchOracle(objective="val_loss")},
            "objective must be among the trial metrics",
        ),
    ],
)
def test_search_tuner_rejects_options_it_cannot_run(spec, tmp_path, arguments, message):
    given = {
        "model_name": "fm",
        "oracle": keras_tuner.oracles.RandomSearchOracle(max_trials=1),
        "directory": str(tmp_path),
        **arguments,
    }
    with pytest.raises(ValueError, match=message):
        tuning.SearchTuner(spec, **given)


def test_an_oracle_without_objective_maximises_validation_auc(spec, tmp_path):
    oracle = keras_tuner.oracles.BayesianOptimizationOracle(max_trials=1)
    tuning.SearchTuner(spec, "fm", oracle, directory=str(tmp_path), project_name="bayes")
    assert oracle.objective == tuning.OBJECTIVE == keras_tuner.Objective("val_auc", "max")


def test_random_dimension_space_is_one_candidate_choice_per_field(spec, tmp_path):
    tuner = _random_tuner(spec, tmp_path)
    space = tuner.oracle.get_space().space
    assert [parameter.name for parameter in space] == spec.field_names
    assert all(parameter.values == list(CANDIDATES) for parameter in space)
    with pytest.raises(ValueError, match="no trial of .* has finished"):
        tuning.best_plan(tuner)


def test_validation_metrics_score_the_written_weights_on_the_validation_split(spec, tmp_path):
    plan = DimensionPlan(
        fields={name: 8 if name in ("user", "item") else 2 for name in spec.field_names},
        candidates=CANDIDATES,
        vocab_sizes={field.name: field.vocab_size for field in spec.fields},
    )
    model = planned_model("fm", spec, plan)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    model.fit(make_dataset(spec, "train", 128), epochs=1, verbose=0)
    model.network_weights().write(RunDir(str(tmp_path)).weights)
    expected = model.evaluate(make_dataset(spec, "validation", 128), return_dict=True, verbose=0)
    metrics = tuning.validation_metrics(spec, "fm", plan, str(tmp_path), batch_size=128)
    assert metrics["val_auc"] == pytest.approx(expected["auc"], abs=1e-6)
    assert metrics["val_logloss"] == pytest.approx(expected["logloss"], abs=1e-6)
    with pytest.raises(FileNotFoundError, match="holds no trained weights"):
        tuning.validation_metrics(spec, "fm", plan, str(tmp_path / "empty"))


def test_a_hyperband_budget_sets_the_epochs_of_a_trial(spec, tmp_path, monkeypatch):
    seen = {}

    def record_settings(*args, settings, **kwargs):
        seen["epochs"] = settings.epochs
        raise InterruptedError

    monkeypatch.setattr(autodim_runs, "run_retrain", record_settings)
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=4, factor=2, seed=0)
    tuner = _random_tuner(spec, tmp_path, oracle=oracle, settings=TrainSettings(epochs=5))
    trial = tuner.oracle.create_trial(tuner.tuner_id)
    with pytest.raises(InterruptedError):
        tuner.run_trial(trial)
    assert seen["epochs"] == trial.hyperparameters.values["tuner/epochs"] == 1


def test_a_larger_max_trials_runs_only_the_new_trials(spec, tmp_path, monkeypatch):
    retrained = []

    def fake_retrain(spec, plan, model_name, output, **kwargs):
        retrained.append(output)

    def fake_validation(spec, model_name, plan, run_dir, unify, batch_size):
        return {"val_auc": len(retrained) / 10, "val_logloss": 0.5}

    monkeypatch.setattr(autodim_runs, "run_retrain", fake_retrain)
    monkeypatch.setattr(tuning, "validation_metrics", fake_validation)
    _random_tuner(spec, tmp_path, max_trials=2).search(verbose=0)
    assert len(retrained) == 2
    again = _random_tuner(spec, tmp_path, max_trials=3)
    again.search(verbose=0)
    assert sorted(again.oracle.trials) == ["0", "1", "2"]
    assert [output.split("/")[-2] for output in retrained] == ["trial_0", "trial_1", "trial_2"]
    assert again.oracle.get_best_trials(1)[0].trial_id == "2"


def _metrics(trial) -> dict:
    return {name: trial.metrics.get_last_value(name) for name in tuning.TRIAL_METRICS}


@pytest.mark.e2e
def test_every_search_trial_reports_validation_auc_and_embedding_params(searched):
    tuner, _ = searched
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    for trial in trials:
        assert trial.status == "COMPLETED", trial.message
        metrics = _metrics(trial)
        assert metrics["embedding_params"] == tuner.trial_plan(trial).embedding_params
        # The objective recomputed from the retrained model's served validation
        # predictions, with the same metric (Keras's AUC at 2000 thresholds).
        serve = tf.saved_model.load(
            tuner.get_trial_dir(trial.trial_id) + "/retrain/saved_model"
        ).signatures["serving_default"]
        auc = tf.keras.metrics.AUC(num_thresholds=2000)
        for features, label in make_dataset(tuner.spec, "validation", batch_size=512):
            auc.update_state(label, serve(**features)["probability"])
        assert metrics["val_auc"] == pytest.approx(float(auc.result()), abs=1e-6)


@pytest.mark.e2e
def test_the_trials_values_reach_run_search(searched):
    tuner, _ = searched
    for trial in tuner.oracle.trials.values():
        values = trial.hyperparameters.values
        path = tuner.get_trial_dir(trial.trial_id) + "/search/search_metrics.json"
        with open(path) as f:
            recorded = json.load(f)
        assert recorded["arch_every"] == values["arch_every"]
        assert recorded["arch_learning_rate"] == values["arch_learning_rate"]
        assert recorded["learning_rate"] == values["learning_rate"]
        assert recorded["temperature_schedule"]["rate"] == values["temperature_rate"]
        assert recorded["epochs"] == 1 and recorded["batch_size"] == 128
    tried = [t.hyperparameters.values["arch_every"] for t in tuner.oracle.trials.values()]
    assert len(set(tried)) == 2  # the seed draws two different f


@pytest.mark.e2e
def test_the_best_search_trial_has_the_highest_validation_auc(searched):
    tuner, _ = searched
    trials = list(tuner.oracle.trials.values())
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.score == max(_metrics(trial)["val_auc"] for trial in trials)
    assert tuning.best_plan(tuner) == DimensionPlan.load(
        tuner.get_trial_dir(best.trial_id) + "/search"
    )


@pytest.mark.e2e
def test_tuning_again_in_the_same_directory_runs_no_new_trial(spec, searched, monkeypatch):
    tuner, directory = searched
    before = {trial_id: _metrics(t) for trial_id, t in tuner.oracle.trials.items()}
    monkeypatch.setattr(autodim_runs, "run_search", _fail)
    monkeypatch.setattr(autodim_runs, "run_retrain", _fail)
    again = _search_tuner(spec, directory)
    again.search(verbose=0)
    assert {trial_id: _metrics(t) for trial_id, t in again.oracle.trials.items()} == before
    assert sorted(path.name for path in (directory / "search_tuning").glob("trial_*")) == [
        "trial_0",
        "trial_1",
    ]


@pytest.mark.e2e
def test_a_trial_run_again_reads_back_its_finished_search_and_retrain(searched, monkeypatch):
    tuner, _ = searched
    trial = tuner.oracle.trials["0"]
    monkeypatch.setattr(autodim_runs, "run_search", _fail)
    monkeypatch.setattr(autodim_runs, "run_retrain", _fail)
    metrics = tuner.run_trial(trial)
    assert metrics == pytest.approx(_metrics(trial), abs=1e-6)


@pytest.mark.e2e
def test_random_dimension_trials_retrain_plans_of_the_candidates(random_searched):
    tuner, _ = random_searched
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    plans = [tuner.trial_plan(trial) for trial in trials]
    assert plans[0].fields != plans[1].fields
    for trial, plan in zip(trials, plans):
        assert trial.status == "COMPLETED", trial.message
        assert set(plan.fields.values()) <= set(CANDIDATES)
        assert plan.fields == trial.hyperparameters.values
        metrics = _metrics(trial)
        assert 0.0 <= metrics["val_auc"] <= 1.0
        assert metrics["embedding_params"] == plan.embedding_params
        with open(tuner.get_trial_dir(trial.trial_id) + "/retrain/metrics.json") as f:
            retrained = json.load(f)
        assert retrained["fields"] == plan.fields
        assert retrained["embedding_params"] == plan.embedding_params
    best = int(np.argmax([_metrics(trial)["val_auc"] for trial in trials]))
    assert tuning.best_plan(tuner) == plans[best]


@pytest.mark.e2e
def test_random_dimensions_again_in_the_same_directory_run_no_new_trial(
    spec, random_searched, monkeypatch
):
    tuner, directory = random_searched
    monkeypatch.setattr(autodim_runs, "run_retrain", _fail)
    again = _random_tuner(spec, directory)
    again.search(verbose=0)
    assert sorted(again.oracle.trials) == ["0", "1"]
    assert tuning.best_plan(again) == tuning.best_plan(tuner)
