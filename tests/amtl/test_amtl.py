"""AMTL in the ready models: warm start, compact export, the report and `dimsel amtl`."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel import amtl
from keras_dimsel.cli import EXIT_BAD_INPUT, main
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.export import export_saved_model, saved_embedding_params
from keras_dimsel.layers import AdaptiveMaskTwinsLayer
from keras_dimsel.models import full_model
from tests import tensorboard_events

D = 8
MASKED = ["user", "item"]


@pytest.fixture(scope="module")
def spec(synthetic_artifact):
    return synthetic_artifact(2000, min_count=2)


def _features(spec, batch_size=64):
    return next(iter(make_dataset(spec, "test", batch_size=batch_size)))[0]


def _amtl_model(spec, name="deepfm", **options):
    tf.keras.utils.set_random_seed(0)
    model = amtl.masked_model(name, spec, MASKED, dim=D, mask_options=options)
    model(_features(spec))
    return model


@pytest.mark.parametrize("name", ["fm", "wide_deep", "deepfm"])
def test_compact_export_predicts_like_the_masked_model_and_keeps_only_the_lengths(
    spec, tmp_path, name
):
    model = _amtl_model(spec, name)
    # Every weight away from its initial value, as after training (the
    # first-order weights start at zero).
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.uniform(0.01, 0.1, w.shape) for w in model.get_weights()])
    compact, lengths = amtl.compact_model(model)
    features = _features(spec)
    expected = model(features, training=False).numpy()
    np.testing.assert_allclose(compact(features).numpy(), expected, rtol=1e-5, atol=1e-6)
    # The lengths are those the mask layer picks for each id, in [1, D] (worked
    # out once per distinct count, here checked id by id).
    embeddings = model.field_embeddings
    for field in MASKED:
        values = lengths[field]
        assert values.shape == (spec.field(field).vocab_size,)
        assert values.min() >= 1 and values.max() <= D
        ids = tf.range(spec.field(field).vocab_size)
        by_id = embeddings.masks[field].lengths(embeddings.frequencies[field](ids)).numpy()
        np.testing.assert_array_equal(values, by_id)
    export_saved_model(compact, str(tmp_path / "saved_model"))
    served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    np.testing.assert_allclose(served(**features)["probability"].numpy(), expected, rtol=1e-5)
    kept = sum(int(lengths[field].sum()) for field in MASKED)
    others = sum(f.vocab_size * D for f in spec.fields if f.name not in MASKED)
    assert saved_embedding_params(str(tmp_path / "saved_model")) == kept + others
    assert compact.embedding_params == kept + others
    # No mask network is left in the compact model.
    assert not [layer for layer in compact.submodules if isinstance(layer, AdaptiveMaskTwinsLayer)]


def test_warm_start_copies_every_trained_weight_and_leaves_the_masks(spec):
    tf.keras.utils.set_random_seed(1)
    full = full_model("deepfm", spec, dim=D)
    full(_features(spec))
    model = _amtl_model(spec)
    masks_before = [v.numpy().copy() for v in model.field_embeddings.masks["user"].variables]
    amtl.warm_start_from_model(model, full)
    for name in spec.field_names:
        np.testing.assert_array_equal(
            model.field_embeddings.embeddings[name].embedding_table.numpy(),
            full.field_embeddings.embeddings[name].embedding_table.numpy(),
        )
        np.testing.assert_array_equal(
            model.head.first_order[name].embeddings.numpy(),
            full.head.first_order[name].embeddings.numpy(),
        )
    for got, want in zip(model.head.deep.weights, full.head.deep.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(model.field_embeddings.masks["user"].variables, masks_before):
        np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("name", ["fm", "wide_deep", "deepfm"])
def test_a_warm_start_at_the_full_length_starts_as_the_trained_model(spec, name):
    tf.keras.utils.set_random_seed(2)
    full = full_model(name, spec, dim=D)
    features = _features(spec)
    full(features)
    rng = np.random.default_rng(0)  # every weight away from its initial value
    full.set_weights([w + rng.uniform(-0.1, 0.1, w.shape) for w in full.get_weights()])
    model = _amtl_model(spec, name, initial_length=D)
    amtl.warm_start_from_model(model, full)
    np.testing.assert_allclose(
        model(features, training=False).numpy(), full(features, training=False).numpy(), rtol=1e-6
    )
    for field in MASKED:
        assert set(model.field_embeddings.value_lengths_now()[field].tolist()) == {D}
    # With random lengths the warm-started model computes something else.
    random = _amtl_model(spec, name)
    amtl.warm_start_from_model(random, full)
    assert not np.allclose(random(features).numpy(), full(features).numpy(), rtol=1e-3)


def test_warm_start_from_a_model_of_another_dim_or_other_fields_is_refused(spec):
    model = _amtl_model(spec)
    other_dim = full_model("deepfm", spec, dim=4)
    other_dim(_features(spec))
    with pytest.raises(ValueError, match="have dim 4, but the masked model uses max dim 8"):
        amtl.warm_start_from_model(model, other_dim)
    fewer = full_model("deepfm", spec, dim=D, fields=["user", "item"])
    fewer(_features(spec))
    with pytest.raises(ValueError, match=r"do not match the data: missing \['category'"):
        amtl.warm_start_from_model(model, fewer)
    tables = {name: (spec.field(name).vocab_size, D) for name in spec.field_names}
    tables["user"] = (5, D)
    with pytest.raises(ValueError, match="field 'user' has 5 ids in RUN and"):
        amtl.check_warm_start(model, tables, "RUN")


def test_masks_only_training_leaves_only_the_mask_networks_trainable(spec):
    model = _amtl_model(spec)
    amtl.freeze_all_but_masks(model)
    mask_variables = {
        id(v) for layer in model.field_embeddings.masks.values() for v in layer.trainable_variables
    }
    assert mask_variables
    assert {id(v) for v in model.trainable_variables} == mask_variables


def test_default_fields_are_the_largest_tables_up_to_the_share(spec):
    sizes = {f.name: f.vocab_size for f in spec.fields}
    total = sum(sizes.values())
    largest = sorted(sizes, key=lambda name: -sizes[name])
    fields = amtl.default_fields(spec, max_dim=D, share=0.95)
    assert set(fields) == set(largest[: len(fields)])
    held = sum(sizes[name] for name in fields)
    assert held >= 0.95 * total and held - min(sizes[n] for n in fields) < 0.95 * total
    # Spec order, and never a field whose table is no larger than D.
    assert fields == [name for name in spec.field_names if name in fields]
    everything = amtl.default_fields(spec, max_dim=D, share=1.0)
    assert everything == [name for name in spec.field_names if sizes[name] > D]
    assert amtl.default_fields(spec, max_dim=D, share=1e-9) == [largest[0]]
    with pytest.raises(ValueError, match=r"`share` must be in \(0, 1\]"):
        amtl.default_fields(spec, max_dim=D, share=0.0)


def test_dims_by_frequency_group_orders_values_rarest_first():
    counts = [0, 50, 3, 9, 100, 1, 7]
    lengths = [1, 6, 2, 3, 7, 1, 4]
    # Sorted by count: 0, 1, 3, 7, 9, 50, 100 -> lengths 1, 1, 2, 4, 3, 6, 7.
    assert amtl.dims_by_frequency_group(lengths, counts) == [1, 1, 2, 4, 3, 6, 7]
    # Two groups of 4 and 3 values: (1 + 1 + 2 + 4) / 4 and (3 + 6 + 7) / 3.
    assert amtl.dims_by_frequency_group(lengths, counts, groups=2) == pytest.approx([2.0, 16 / 3])


def _error_of(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.e2e
def test_dimsel_amtl_with_warm_start_writes_the_report_and_the_compact_model(
    spec, tmp_path, capsys
):
    data = spec.directory
    base = str(tmp_path / "base")
    common = ["--data", data, "--epochs", "1", "--batch-size", "256"]
    assert main(["baseline", "--model", "fm", "--dim", str(D), "--output", base] + common) == 0
    output = tmp_path / "amtl"
    argv = ["amtl", "--model", "fm", "--output", str(output), "--warm-start", base]
    assert main(argv + ["--fields", "user,item"] + common) == 0
    printed = capsys.readouterr().out
    assert "avg dim" in printed and "G6" in printed
    metrics = json.loads((output / "metrics.json").read_text())
    assert set(metrics) >= {
        "auc", "logloss", "embedding_params", "full_embedding_params", "examples_per_second",
        "average_dim", "dim_by_frequency_group",
    }  # fmt: skip
    assert set(metrics["average_dim"]) == {"user", "item"}
    assert all(len(groups) == 7 for groups in metrics["dim_by_frequency_group"].values())
    assert metrics["embedding_params"] < metrics["full_embedding_params"]
    assert metrics["max_dim"] == D and metrics["warm_start"] == base
    assert "initial_length" not in metrics  # the paper's random start
    full_start = str(tmp_path / "amtl_full_start")
    argv_full = ["amtl", "--model", "fm", "--output", full_start, "--warm-start", base]
    assert main(argv_full + ["--fields", "user,item", "--initial-length", "full"] + common) == 0
    assert (
        json.loads((tmp_path / "amtl_full_start" / "metrics.json").read_text())["initial_length"]
        == D
    )
    assert (output / "amtl_dims.png").stat().st_size > 1000
    assert f"TensorBoard logs: {output / 'logs'}" in printed
    logged = tensorboard_events.tags(output / "logs" / "train")
    assert tensorboard_events.TRAINING | {"mean_length/user", "lengths/item"} <= logged
    assert saved_embedding_params(str(output / "saved_model")) == metrics["embedding_params"]

    # Bad input, in a new directory (the finished run refuses other options first).
    bad = ["amtl", "--model", "fm", "--output", str(tmp_path / "bad"), "--warm-start", base]
    err = _error_of(capsys, bad + ["--fields", "user,nobody"] + common)
    assert "field(s) ['nobody'] are not in the data" in err
    err = _error_of(capsys, bad + ["--max-dim", "4"] + common)
    assert "have dim 8, but the masked model uses max dim 4" in err
    err = _error_of(capsys, ["amtl", "--model", "deepfm", "--output", str(tmp_path / "x")]
                    + ["--warm-start", base] + common)  # fmt: skip
    assert f"the warm-start run {base} trained model 'fm', not 'deepfm'" in err
    err = _error_of(capsys, bad[:-1] + [str(tmp_path)] + common)
    assert "holds no trained weights" in err
    err = _error_of(capsys, bad + ["--initial-length", "9"] + common)
    assert "`initial_length` must be None, 'full' or an integer in [1, 8]" in err
    err = _error_of(capsys, bad + ["--initial-length", "random"] + common)
    assert "expected full or a positive integer, got 'random'" in err
