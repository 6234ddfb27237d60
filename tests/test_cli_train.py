"""`dimsel search|retrain|baseline|run`: one-line errors on bad input, and a whole run."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.autodim.model import planned_model, search_model
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.autodim.search_tables import (
    SEARCH_TABLES,
    load_warm_start_tables,
    save_search_tables,
)
from keras_dimsel.cli import EXIT_BAD_INPUT, main
from keras_dimsel.pipeline import RUN_STEPS
from tests import tensorboard_events


@pytest.fixture(scope="module")
def artifact(synthetic_artifact):
    return synthetic_artifact(1500, min_count=2).directory


def _error_of(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert len(err.splitlines()) == 1, err
    return err


def _plan_for(artifact):
    spec = json.loads(open(f"{artifact}/feature_spec.json").read())
    vocab_sizes = {field["name"]: field["vocab_size"] for field in spec["fields"]}
    record = {"fields": {name: 2 for name in vocab_sizes}, "candidates": [2, 4, 8]}
    record["vocab_sizes"] = vocab_sizes
    return record


def _with_split(artifact, tmp_path, split, rows):
    copy = tmp_path / f"no_{split}"
    shutil.copytree(artifact, copy)
    spec = json.loads((copy / "feature_spec.json").read_text())
    spec["splits"][split] = rows
    (copy / "feature_spec.json").write_text(json.dumps(spec))
    return str(copy)


@pytest.mark.parametrize(
    "candidates, message",
    [
        ("8,2,16", "increasing order"),
        ("2,8,8", "must not repeat"),
        ("0,8", "must be positive"),
        ("-2,8", "must be positive"),
        ("2,eight", "comma-separated positive integers"),
        ("8", "at least two"),
    ],
)
def test_search_rejects_bad_candidates(artifact, tmp_path, capsys, candidates, message):
    argv = ["search", "--data", artifact, "--model", "fm", "--output", str(tmp_path / "r")]
    err = _error_of(capsys, argv + [f"--candidates={candidates}"])
    assert err.startswith("dimsel search: error: argument --candidates") and message in err


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--budget=0", "argument --budget: expected a number in (0, 1], got '0'"),
        ("--budget=1.5", "argument --budget: expected a number in (0, 1], got '1.5'"),
        ("--temperature-rate=-1", "argument --temperature-rate: expected a non-negative number"),
        ("--temperature-floor=0", "argument --temperature-floor: expected a positive number"),
        ("--tolerance=-0.1", "argument --tolerance: expected a non-negative number"),
        ("--derive=best", "argument --derive: invalid choice: 'best'"),
        ("--memory-budget=8X", "argument --memory-budget: expected a positive size"),
        ("--checkpoint-every=-1", "argument --checkpoint-every"),
    ],
)
def test_search_rejects_bad_search_settings(artifact, tmp_path, capsys, flag, message):
    argv = ["search", "--data", artifact, "--model", "fm", "--output", str(tmp_path / "r")]
    err = _error_of(capsys, argv + [flag])
    assert err.startswith("dimsel search: error: ") and message in err


def test_search_refuses_a_budget_no_plan_fits_before_searching(artifact, tmp_path, capsys):
    output = tmp_path / "r"
    argv = ["search", "--data", artifact, "--model", "fm", "--output", str(output)]
    err = _error_of(capsys, argv + ["--candidates", "2,4,8", "--budget", "0.2"])
    assert err == (
        "dimsel search: error: no plan fits a budget of 0.2: with candidates (2, 4, 8) the "
        "smallest plan takes 25.0% of the full model"
    )
    assert not output.exists()


def test_search_refuses_a_supernet_over_the_memory_budget_before_building_it(
    artifact, tmp_path, capsys
):
    output = tmp_path / "r"
    argv = ["search", "--data", artifact, "--model", "fm", "--output", str(output)]
    err = _error_of(capsys, argv + ["--storage", "separate", "--memory-budget", "64K"])
    assert err.startswith("dimsel search: error: the search supernet needs about ")
    assert "over the memory budget of 64.0 KiB" in err
    assert not output.exists()


def test_temperature_floor_above_one_is_one_line(artifact, tmp_path, capsys):
    argv = ["search", "--data", artifact, "--model", "fm", "--output", str(tmp_path / "r")]
    err = _error_of(capsys, argv + ["--temperature-floor", "2"])
    assert "`floor` must be a number in (0, 1]" in err


@pytest.mark.parametrize("command", ["search", "baseline", "retrain"])
def test_unknown_model_names_the_choices(artifact, tmp_path, capsys, command):
    argv = [command, "--data", artifact, "--model", "xdeepfm", "--output", str(tmp_path / "r")]
    err = _error_of(capsys, argv + ["--plan", "p.json"] if command == "retrain" else argv)
    assert "invalid choice: 'xdeepfm'" in err and "'deepfm'" in err


def test_missing_artifact(tmp_path, capsys):
    argv = ["baseline", "--data", str(tmp_path / "nothing"), "--model", "fm", "--output", "r"]
    err = _error_of(capsys, argv)
    assert err.startswith("dimsel baseline: error: ") and "feature_spec.json" in err


def test_unknown_flag_of_a_training_command(artifact, tmp_path, capsys):
    argv = ["baseline", "--data", artifact, "--model", "fm", "--output", str(tmp_path / "r")]
    err = _error_of(capsys, argv + ["--epoch", "2"])
    assert "'--epoch'" in err


def _add_colour(record):
    record["fields"]["colour"] = 2
    record["vocab_sizes"]["colour"] = 5


def _drop_user(record):
    del record["fields"]["user"], record["vocab_sizes"]["user"]


@pytest.mark.parametrize(
    "change, message",
    [
        (_add_colour, "plan field(s) ['colour'] are not among"),
        (_drop_user, "field(s) ['user'] have no dimension in the plan"),
        (lambda r: r["fields"].update(user=6), "must be one of the candidates (2, 4, 8)"),
        (lambda r: r.update(candidates=[4, 2, 8]), "increasing"),
        (lambda r: r["vocab_sizes"].update(user=7), "searched on other data"),
    ],
)
def test_retrain_rejects_a_plan_that_does_not_fit(artifact, tmp_path, capsys, change, message):
    path = tmp_path / "plan.json"
    record = _plan_for(artifact)
    change(record)
    path.write_text(json.dumps(record))
    argv = ["retrain", "--data", artifact, "--model", "fm", "--plan", str(path)]
    err = _error_of(capsys, argv + ["--output", str(tmp_path / "r")])
    assert err.startswith("dimsel retrain: error: ") and message in err, err


def test_retrain_names_a_missing_plan(artifact, tmp_path, capsys):
    argv = ["retrain", "--data", artifact, "--model", "fm", "--plan", str(tmp_path / "none")]
    err = _error_of(capsys, argv + ["--output", str(tmp_path / "r")])
    assert "not found" in err and "dimsel search" in err


def test_search_needs_validation_data(artifact, tmp_path, capsys):
    data = _with_split(artifact, tmp_path, "validation", 0)
    argv = ["search", "--data", data, "--model", "fm", "--output", str(tmp_path / "r")]
    err = _error_of(capsys, argv)
    assert "the validation split" in err and "is empty" in err


@pytest.mark.parametrize("split", ["train", "test"])
def test_training_commands_refuse_an_empty_split(artifact, tmp_path, capsys, split):
    data = _with_split(artifact, tmp_path, split, 0)
    argv = ["baseline", "--data", data, "--model", "fm", "--output", str(tmp_path / "r")]
    err = _error_of(capsys, argv)
    assert f"the {split} split" in err and "is empty" in err


def test_warm_start_needs_a_search_run(artifact, tmp_path, capsys):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(_plan_for(artifact)))
    argv = ["retrain", "--data", artifact, "--model", "fm", "--plan", str(path)]
    argv += ["--output", str(tmp_path / "r"), "--warm-start", str(tmp_path)]
    err = _error_of(capsys, argv)
    assert "search_tables.npz not found" in err


@pytest.mark.parametrize("storage", ["shared", "separate"])
def test_warm_start_tables_are_the_planned_columns_of_the_search_tables(
    artifact, tmp_path, storage
):
    from keras_dimsel.data.feature_spec import FeatureSpec

    spec = FeatureSpec.load(artifact)
    model = search_model("fm", spec, candidates=(2, 4, 8), storage=storage)
    model.field_embeddings.build(None)
    for layer in model.field_embeddings.embeddings.values():
        layer.build((None,))
    save_search_tables(model.field_embeddings, str(tmp_path / SEARCH_TABLES))
    record = _plan_for(artifact)
    record["fields"]["user"] = 4
    plan = DimensionPlan.from_json(record)
    tables = load_warm_start_tables(str(tmp_path), plan)
    user = model.field_embeddings.embeddings["user"]
    expected = user.tables[0].numpy() if storage == "shared" else user.tables[1].numpy()
    np.testing.assert_array_equal(tables["user"], expected)
    retrain = planned_model("fm", spec, plan)
    planned = retrain.field_embeddings.embeddings["user"]
    planned.warm_start_from(tables["user"])
    np.testing.assert_array_equal(planned.embedding_table.numpy(), expected[:, :4])


@pytest.mark.e2e
def test_run_reports_both_models_and_resumes(tmp_path, capsys):
    output = tmp_path / "demo"
    argv = ["run", "--dataset", "synthetic", "--rows", "3000", "--output", str(output)]
    argv += ["--model", "fm", "--candidates", "2,4,8", "--epochs", "1", "--warm-start"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for line in ("field", "user", "full dim 8", "AutoDim", "AUC difference"):
        assert line in printed
    for step in RUN_STEPS:
        assert (output / step).is_dir()
    metrics = json.loads((output / "autodim" / "metrics.json").read_text())
    assert metrics["warm_start"] == str(output / "search")
    # The compact model served is the one whose test AUC was reported: the same
    # metric (Keras's AUC at 2000 thresholds) recomputed from its predictions.
    from keras_dimsel.data import FeatureSpec, make_dataset

    spec = FeatureSpec.load(str(output / "data"))
    saved_model = tf.saved_model.load(str(output / "autodim" / "saved_model"))
    serve = saved_model.signatures["serving_default"]
    auc = tf.keras.metrics.AUC(num_thresholds=2000)
    for features, label in make_dataset(spec, "test", batch_size=512):
        auc.update_state(label, serve(**features)["probability"])
    assert metrics["auc"] == pytest.approx(float(auc.result()), abs=1e-6)
    assert (output / "report.txt").read_text().strip() in printed

    # Every step is reused: the report is the same and nothing retrains.
    stamp = (output / "autodim" / "metrics.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (output / "report.txt").read_text().strip() in capsys.readouterr().out
    assert (output / "autodim" / "metrics.json").stat().st_mtime_ns == stamp

    err = _error_of(capsys, argv[:-1] + ["--storage", "separate"])
    assert "other options (storage: 'shared' then, 'separate' now, warm_start: True" in err
    assert err.endswith("or --overwrite to start afresh")

    # TensorBoard logs: each training step's metrics and learning rates, the search's own.
    for step in ("baseline", "search", "autodim"):
        assert tensorboard_events.TRAINING <= tensorboard_events.tags(output / step / "logs/train")
    for step in ("baseline", "autodim"):
        logs = output / step / "logs/validation"
        assert tensorboard_events.METRICS <= tensorboard_events.tags(logs)
    search = output / "search" / "logs"
    assert {"temperature", "learning_rate/alpha"} <= tensorboard_events.tags(search / "train")
    assert {"alpha/user/2", "alpha/user/8"} <= tensorboard_events.tags(search)


def test_keep_best_ends_with_the_epoch_of_best_validation_auc(artifact, tmp_path):
    # Settings where this small sample's validation AUC peaks before the last epoch.
    common = ["--data", artifact, "--model", "fm", "--dim", "16", "--batch-size", "32"]
    best_dir = tmp_path / "best"
    argv = ["baseline", *common, "--epochs", "4", "--keep-best", "--output", str(best_dir)]
    assert main(argv) == 0
    kept = json.loads((best_dir / "metrics.json").read_text())
    assert kept["best_epoch"] < 4 and 0.5 < kept["best_val_auc"] <= 1.0
    # Training is deterministic: the kept model is the one trained for that many epochs.
    shorter = tmp_path / "shorter"
    argv = ["baseline", *common, "--epochs", str(kept["best_epoch"]), "--output", str(shorter)]
    assert main(argv) == 0
    expected = json.loads((shorter / "metrics.json").read_text())
    assert (kept["auc"], kept["logloss"]) == (expected["auc"], expected["logloss"])
    assert "best_epoch" not in expected
