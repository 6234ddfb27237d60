"""The AMTL warm-start variants benchmark: each change does what it says."""

import json
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import amtl_warm_variants  # noqa: E402

from keras_dimsel.amtl.embeddings import masked_model  # noqa: E402
from keras_dimsel.amtl.runs import warm_start_from_run  # noqa: E402
from keras_dimsel.data import make_dataset, make_reader  # noqa: E402
from keras_dimsel.models import full_model  # noqa: E402
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run  # noqa: E402
from keras_dimsel.training import RunDir, TrainSettings, run_baseline  # noqa: E402

FIELDS = ["user", "item"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("synthetic"))
    reader = make_reader("synthetic", output_dir=directory, rows=600)
    return run(reader, PreprocessConfig(output_dir=directory))


@pytest.fixture(scope="module")
def baseline(spec, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("runs") / "full_s0")
    run_baseline(spec, "deepfm", output, dim=8, settings=TrainSettings(epochs=1, seed=0))
    return output


def _trained(spec, model_name):
    model = full_model(model_name, spec, dim=8)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.fit(make_dataset(spec, "train", 64), epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("model_name", ["fm", "wide_deep", "deepfm"])
def test_the_principal_axes_rotation_leaves_the_output_unchanged(spec, model_name):
    model = _trained(spec, model_name)
    features, _ = next(iter(make_dataset(spec, "test", 32)))
    before = model(features, training=False).numpy()
    tables = {n: e.embedding_table.numpy() for n, e in model.field_embeddings.embeddings.items()}
    counts = {name: spec.value_counts(name) for name in FIELDS}

    rotation = amtl_warm_variants.align_principal_axes(model, counts)

    np.testing.assert_allclose(rotation.T @ rotation, np.eye(8), atol=1e-10)
    np.testing.assert_allclose(model(features, training=False).numpy(), before, atol=1e-5)
    # The first coordinate now holds the largest count-weighted energy of the two fields,
    # and each table is the old one on the new axes.
    energy = sum(
        (np.asarray(counts[n], np.float64)[:, None] * (tables[n] @ rotation) ** 2).sum(0)
        / sum(counts[n])
        for n in FIELDS
    )
    assert all(first >= second - 1e-9 for first, second in zip(energy, energy[1:]))
    for name, table in tables.items():
        rotated = model.field_embeddings.embeddings[name].embedding_table.numpy()
        np.testing.assert_allclose(rotated, table @ rotation, atol=1e-5)


def _warm_started(spec, baseline, variant):
    model = masked_model("deepfm", spec, FIELDS, dim=8)
    model.build_weights()
    with amtl_warm_variants.warm_start_variant(variant):
        amtl_warm_variants.amtl_runs.warm_start_from_run(model, baseline)
    return model


def test_each_variant_keeps_what_it_says(spec, baseline):
    trained = full_model("deepfm", spec, dim=8)
    trained.build_weights()
    trained.network_weights().read(RunDir(baseline).weights).assert_existing_objects_matched()
    table = trained.field_embeddings.embeddings["user"].embedding_table.numpy()
    kernel = trained.head.deep.layers[0].kernel.numpy()

    default = _warm_started(spec, baseline, "default")
    tables = _warm_started(spec, baseline, "tables")
    no_mlp = _warm_started(spec, baseline, "no_mlp")

    for model in (default, tables, no_mlp):
        user = model.field_embeddings.embeddings["user"].embedding_table.numpy()
        np.testing.assert_array_equal(user, table)
    np.testing.assert_array_equal(default.head.deep.layers[0].kernel.numpy(), kernel)
    for model in (tables, no_mlp):
        assert not np.array_equal(model.head.deep.layers[0].kernel.numpy(), kernel)
    # `tables` also starts the first-order weights afresh; `no_mlp` keeps them.
    linear = default.head.first_order["user"].embeddings.numpy()
    assert not np.array_equal(tables.head.first_order["user"].embeddings.numpy(), linear)
    np.testing.assert_array_equal(no_mlp.head.first_order["user"].embeddings.numpy(), linear)
    # The library's warm start is back once the block ends.
    assert amtl_warm_variants.amtl_runs.warm_start_from_run is warm_start_from_run


@pytest.mark.e2e
def test_the_script_runs_each_seed_and_writes_a_summary(spec, baseline, tmp_path, capsys):
    pattern = baseline.replace("full_s0", "full_s{seed}")
    argv = ["--data", spec.directory, "--model", "deepfm", "--variant", "principal_axes"]
    argv += ["--warm-start", pattern, "--seeds", "0", "--output", str(tmp_path / "out")]

    assert amtl_warm_variants.main(argv) == 0

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    metrics = json.loads((tmp_path / "out" / "seed0" / "metrics.json").read_text())
    assert summary["auc"] == [metrics["auc"]] and summary["variant"] == "principal_axes"
    assert "principal_axes: test AUC" in capsys.readouterr().out


def test_a_pattern_without_the_seed_is_refused(spec, capsys):
    argv = ["--data", spec.directory, "--model", "fm", "--variant", "tables"]
    argv += ["--warm-start", "runs/full", "--output", "out"]
    with pytest.raises(SystemExit):
        amtl_warm_variants.main(argv)
    assert "--warm-start must contain {seed}" in capsys.readouterr().err
