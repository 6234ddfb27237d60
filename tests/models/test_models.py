"""FM, WideDeep and DeepFM on a real (small) artifact, in every stage."""

import json

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import log_loss, roc_auc_score

from keras_dimsel.autodim.alternating import zip_train_validation
from keras_dimsel.autodim.model import planned_model, search_model
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.data.datasets import make_reader
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.models import full_model, make_model, vocab_sizes
from keras_dimsel.models.embeddings import FullEmbeddings
from keras_dimsel.models.heads import pairwise_interaction
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run

MODELS = ["fm", "wide_deep", "deepfm"]
PLAN = {
    "user": 16, "item": 16, "category": 8, "device": 2,
    "noise_high": 2, "noise_mid": 2, "noise_low": 2, "price": 8,
}  # fmt: skip


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    output = str(tmp_path_factory.mktemp("artifact"))
    reader = make_reader("synthetic", [], output_dir=output, rows=3000, seed=0)
    return run(reader, PreprocessConfig(output_dir=output, min_count=2))


def _train(spec, batch_size=256):
    return make_dataset(spec, "train", batch_size=batch_size)


def _plan(spec, candidates=(2, 8, 16)):
    return DimensionPlan(fields=PLAN, candidates=candidates, vocab_sizes=vocab_sizes(spec))


@pytest.mark.parametrize("model_name", MODELS)
def test_full_dimension_model_trains_and_reports_auc_and_logloss(spec, model_name):
    tf.keras.utils.set_random_seed(0)
    model = full_model(model_name, spec, dim=8)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    history = model.fit(_train(spec), epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    test = make_dataset(spec, "test", batch_size=512)
    metrics = model.evaluate(test, return_dict=True, verbose=0)
    labels = np.concatenate([y.numpy() for _, y in test])
    probabilities = model.predict(test, verbose=0)
    # Keras's AUC sums over 2000 thresholds, an approximation of the exact AUC:
    # predictions that fall between two thresholds count as ties.
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, probabilities), abs=2e-3)
    assert metrics["logloss"] == pytest.approx(log_loss(labels, probabilities), rel=1e-5)
    vocab = sum(f.vocab_size for f in spec.fields)
    assert model.embedding_params == vocab * 8


def test_the_logged_loss_is_the_mean_over_the_epoch_s_batches(spec):
    model = full_model("fm", spec, dim=4)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.0))  # the weights stay: batch losses fixed
    batches = _train(spec, batch_size=512)
    history = model.fit(batches, epochs=1, verbose=0)
    losses = [float(model.compute_loss(batch)) for batch in batches]
    assert len(losses) > 2 and np.std(losses) > 0
    assert history.history["loss"][0] == pytest.approx(np.mean(losses), rel=1e-5)
    assert not {"total_loss", "regularization_loss"} & set(history.history)
    evaluated = model.evaluate(batches, return_dict=True, verbose=0)
    assert evaluated["loss"] == pytest.approx(np.mean(losses), rel=1e-5)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Keras's BinaryCrossentropy metric reduces [batch] labels to one value per "
    "batch, so `logloss` is the mean of the batches' means: a smaller last batch "
    "weighs as much as a full one",
)
def test_logloss_is_the_mean_over_examples_when_the_last_batch_is_smaller(spec):
    tf.keras.utils.set_random_seed(0)
    model = full_model("fm", spec, dim=8)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.fit(_train(spec), epochs=2, verbose=0)
    test = make_dataset(spec, "test", batch_size=128)  # the last batch holds fewer rows
    metrics = model.evaluate(test, return_dict=True, verbose=0)
    labels = np.concatenate([y.numpy() for _, y in test])
    probabilities = model.predict(test, verbose=0)
    assert metrics["logloss"] == pytest.approx(log_loss(labels, probabilities), rel=1e-5)


@pytest.mark.parametrize(
    "optimizer",
    [tf.keras.optimizers.Adam, tf.keras.optimizers.legacy.Adam],
    ids=["optimizer", "legacy_optimizer"],
)
def test_a_built_model_traces_its_train_step_once(spec, optimizer):
    # The optimizer's slots exist before the first trace, which then creates no
    # variables and is not traced again; a legacy optimizer still trains.
    model = full_model("deepfm", spec, dim=4)
    model.compile(optimizer=optimizer(0.01))
    model.build_weights()
    history = model.fit(_train(spec).take(3), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    traces = model.train_function.experimental_get_tracing_count()
    assert traces == (1 if optimizer is tf.keras.optimizers.Adam else 2)


@pytest.mark.parametrize("kind", ["full", "search"])
def test_an_unbuilt_model_is_built_before_its_first_trace_with_the_same_weights(spec, kind):
    # `fit` on a model never called creates its weights before tracing the step
    # (a trace that created them would be traced again), the same numbers as
    # `build_weights` gives; a learning rate of 0 leaves them as created.
    def trained(build_first):
        tf.keras.utils.set_random_seed(0)
        fields = [field.name for field in spec.fields][:3]
        if kind == "full":
            model = full_model("fm", spec, dim=4, fields=fields)
            model.compile(optimizer=tf.keras.optimizers.Adam(0.0))
            data = _train(spec).take(2)
        else:
            model = search_model("fm", spec, candidates=(2, 4), seed=0, fields=fields)
            model.compile(
                optimizer=tf.keras.optimizers.Adam(0.0),
                arch_optimizer=tf.keras.optimizers.Adam(0.0),
                arch_every=1,
            )
            data = zip_train_validation(_train(spec), _train(spec), arch_every=1).take(2)
        if build_first:
            model.build_weights()
        assert model.built == build_first
        model.fit(data, epochs=1, verbose=0)
        assert model.train_function.experimental_get_tracing_count() == 1
        return [(v.name, v.numpy()) for v in model.weights]

    lazily, first = trained(build_first=False), trained(build_first=True)
    assert len(lazily) == len(first)
    for (name, value), (_, expected) in zip(lazily, first):  # the second model's names count on
        np.testing.assert_array_equal(value, expected, err_msg=name)


@pytest.mark.parametrize("model_name", MODELS)
def test_planned_model_holds_exactly_the_planned_tables(spec, model_name):
    model = planned_model(model_name, spec, _plan(spec))
    features, _ = next(iter(_train(spec, 4)))
    assert model(features).shape == (4,)
    expected = sum(spec.field(name).vocab_size * dim for name, dim in PLAN.items())
    assert model.embedding_params == expected
    tables = [w for w in model.weights if "embedding_table" in w.name]
    assert sum(int(np.prod(w.shape)) for w in tables) == expected
    unify = [w for w in model.weights if "unify_kernel" in w.name]
    # Interaction models unify every field to 16; Wide&Deep concatenates mixed dims.
    assert len(unify) == (0 if model_name == "wide_deep" else len(PLAN))
    if model_name != "fm":
        # The MLP reads the planned rows, not the unified vectors.
        first_kernel = model.head.deep.layers[0].kernel
        assert first_kernel.shape == (sum(PLAN.values()), 128)


@pytest.mark.parametrize("unify", ["linear", "zero_pad"])
def test_planned_deepfm_interacts_unified_vectors_and_feeds_rows_to_the_mlp(spec, unify):
    model = planned_model("deepfm", spec, _plan(spec), unify=unify)
    features, _ = next(iter(_train(spec, 4)))
    ids = model.lookup({name: features[name] for name in model.field_names})
    ids = {name: tf.reshape(value, [-1]) for name, value in ids.items()}
    vectors, rows = model.field_embeddings(ids, return_rows=True)
    assert [v.shape[-1] for v in vectors] == [16] * len(PLAN)
    assert [r.shape[-1] for r in rows] == list(PLAN.values())
    head = model.head
    deep = tf.reshape(head.deep(tf.concat(rows, axis=1)), [-1])
    expected = tf.sigmoid(head.bias(head.linear_logit(ids) + pairwise_interaction(vectors) + deep))
    np.testing.assert_allclose(model(features), expected, rtol=1e-5)


@pytest.mark.parametrize("model_name", MODELS)
def test_search_model_outputs_probabilities(spec, model_name):
    model = search_model(model_name, spec, candidates=(2, 8), seed=1)
    features, _ = next(iter(_train(spec, 4)))
    probabilities = model(features, training=False).numpy()
    assert probabilities.shape == (4,) and np.all((probabilities > 0) & (probabilities < 1))
    alphas = model.field_embeddings.selection_probabilities()
    assert set(alphas) == set(spec.field_names)
    np.testing.assert_allclose(alphas["user"], [0.5, 0.5])


def _models(spec):
    """One model of each kind, with the options a config must carry."""
    sizes = vocab_sizes(spec)
    return {
        "full": make_model(
            "deepfm", spec, FullEmbeddings(sizes, 4), hidden_units=(16,), dropout=0.1
        ),
        "plan": planned_model("wide_deep", spec, _plan(spec), unify="zero_pad"),
        "search": search_model(
            "fm", spec, candidates=(2, 4), storage="separate", hard=True, seed=3
        ),
    }


@pytest.mark.parametrize("kind", ["full", "plan", "search"])
def test_get_config_rebuilds_the_same_model_and_holds_no_path(spec, kind, caplog):
    model = _models(spec)[kind]
    config = model.get_config()
    assert spec.directory not in json.dumps(config)
    rebuilt = type(model).from_config(config)
    assert rebuilt.get_config() == config
    rebuilt.build_weights()
    model.build_weights()
    assert rebuilt.embedding_params == model.embedding_params
    assert [v.shape for v in rebuilt.trainable_variables] == [
        v.shape for v in model.trainable_variables
    ]
    # Keras no longer warns that the model cannot describe itself.
    assert "non-serializable" not in caplog.text
