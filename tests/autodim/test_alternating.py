"""Tests for the alternating (first-order DARTS) search step."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from keras_dimsel.autodim.alternating import (
    SUPPORTED_MODES,
    AlternatingSearch,
    _tape_watching,
    zip_train_validation,
)


def paper_schedule(examples_seen):
    """tau = max(0.01, 1 - 0.00005 * t) with t counted in batches of 2000 examples."""
    return tf.maximum(0.01, 1.0 - 0.00005 * tf.cast(examples_seen, tf.float32) / 2000.0)


def unit_schedule(examples_seen):
    del examples_seen
    return tf.constant(1.0)


class TwoBranchSelector(tf.keras.layers.Layer):
    """softmax(alpha / temperature) weights over two Dense candidate branches."""

    def __init__(self, units=2, **kwargs):
        super().__init__(**kwargs)
        self.small = tf.keras.layers.Dense(
            units, kernel_initializer=tf.keras.initializers.Constant(0.5), name="small"
        )
        self.large = tf.keras.layers.Dense(
            units, kernel_initializer=tf.keras.initializers.Constant(-0.25), name="large"
        )

    def build(self, input_shape):
        self.alpha_logits = self.add_weight(
            name="alpha_logits", shape=(2,), initializer="zeros", trainable=True
        )
        # Created in `build`, so it does not exist before the first forward pass.
        self.temperature = self.add_weight(
            name="temperature", shape=(), initializer="ones", trainable=False
        )
        super().build(input_shape)

    @property
    def architecture_variables(self):
        return [self.alpha_logits]

    def call(self, inputs):
        weights = tf.nn.softmax(self.alpha_logits / self.temperature)
        return weights[0] * self.small(inputs) + weights[1] * self.large(inputs)


class KerasSearchModel(AlternatingSearch, tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.selector = TwoBranchSelector()
        self.head = tf.keras.layers.Dense(
            1, activation="sigmoid", kernel_initializer=tf.keras.initializers.Constant(1.0)
        )

    def call(self, inputs, training=False):
        return self.head(self.selector(inputs))


class TfrsSearchModel(AlternatingSearch, tfrs.models.Model):
    def __init__(self):
        super().__init__()
        self.selector = TwoBranchSelector()
        self.head = tf.keras.layers.Dense(
            1, activation="sigmoid", kernel_initializer=tf.keras.initializers.Constant(1.0)
        )
        self.task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.BinaryCrossentropy(),
            metrics=[tf.keras.metrics.BinaryAccuracy(name="accuracy")],
        )

    def call(self, features, training=False):
        return self.head(self.selector(features["x"]))

    def compute_loss(self, inputs, training=False):
        predictions = self(inputs, training=training)
        return self.task(labels=inputs["label"], predictions=predictions, training=training)


class PlainModel(AlternatingSearch, tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = tf.keras.layers.Dense(1)

    def call(self, inputs, training=False):
        return self.dense(inputs)


# Labels depend on the first feature; validation batches differ from training ones.
X_TRAIN = np.array(
    [[1.0, 0.0, 2.0], [-1.0, 1.0, 0.0], [2.0, -1.0, 1.0], [-2.0, 0.5, -1.0]], np.float32
)
Y_TRAIN = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
X_VAL = np.array([[0.5, 2.0, -1.0], [-0.5, -2.0, 1.0]], np.float32)
Y_VAL = np.array([[0.0], [1.0]], np.float32)


def keras_pair():
    return ((X_TRAIN, Y_TRAIN), (X_VAL, Y_VAL))


def datasets(steps, batch_size=4):
    x = np.tile(X_TRAIN, (steps * batch_size // 4, 1))
    y = np.tile(Y_TRAIN, (steps * batch_size // 4, 1))
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    val = tf.data.Dataset.from_tensor_slices((X_VAL, Y_VAL)).batch(2)
    return train, val


def compiled_keras_model(network_lr=0.1, arch_lr=0.5, **kwargs):
    kwargs.setdefault("temperature_schedule", unit_schedule)
    model = KerasSearchModel()
    model.compile(
        optimizer=tf.keras.optimizers.SGD(network_lr),
        arch_optimizer=tf.keras.optimizers.SGD(arch_lr),
        loss=tf.keras.losses.BinaryCrossentropy(),
        **kwargs,
    )
    model(X_TRAIN)
    return model


def alpha(model):
    return model.selector.alpha_logits.numpy().copy()


def network_values(model):
    return [v.numpy().copy() for v in model.network_variables]


def run_steps(model, steps):
    """Runs graph-mode train steps one at a time; returns alpha after each."""
    train_step = tf.function(model.train_step)
    history = []
    for _ in range(steps):
        train_step(keras_pair())
        history.append(alpha(model))
    return history


def test_variables_are_partitioned_into_network_and_architecture():
    model = compiled_keras_model()
    assert [v.name for v in model.architecture_variables] == [model.selector.alpha_logits.name]
    network_refs = {v.ref() for v in model.network_variables}
    assert model.selector.alpha_logits.ref() not in network_refs
    assert len(network_refs) + 1 == len(model.trainable_variables)


@pytest.mark.parametrize("part", ["network", "architecture"])
def test_a_step_records_only_the_variables_it_differentiates_with_the_same_gradients(part):
    # The alpha step watches alpha alone and the network step the network alone:
    # the tape holds only what depends on them, and their gradients are those of
    # a tape that watches every variable read.
    model = compiled_keras_model()
    variables = getattr(model, f"{part}_variables")
    batch = (tf.constant(X_VAL), tf.constant(Y_VAL))
    with _tape_watching(variables) as tape:
        loss, _ = model._batch_loss(batch)
    with tf.GradientTape() as everything:
        full_loss, _ = model._batch_loss(batch)
    assert {v.ref() for v in tape.watched_variables()} == {v.ref() for v in variables}
    assert len(everything.watched_variables()) == len(model.trainable_variables)
    assert float(loss) == float(full_loss)
    expected = everything.gradient(full_loss, variables)
    for ours, full in zip(tape.gradient(loss, variables), expected):
        np.testing.assert_array_equal(ours.numpy(), full.numpy())


def test_alpha_updates_happen_exactly_every_arch_every_steps_after_pretraining():
    model = compiled_keras_model(arch_every=3, pretrain_steps=2)
    history = run_steps(model, 9)
    before = [np.zeros(2, np.float32)] + history[:-1]
    changed = [i for i in range(9) if not np.array_equal(before[i], history[i])]
    assert changed == [2, 5, 8]


def test_alpha_stays_frozen_during_pretraining_while_network_trains():
    model = compiled_keras_model(arch_every=1, pretrain_steps=4)
    start = network_values(model)
    history = run_steps(model, 4)
    for value in history:
        np.testing.assert_array_equal(value, np.zeros(2, np.float32))
    assert any(not np.array_equal(a, b) for a, b in zip(start, network_values(model)))


def test_fit_on_data_of_unknown_length_counts_each_batch_once():
    # A filter hides the length: Keras then finds the end of the first epoch by a
    # step whose batch read fails, and that step must not advance the counters.
    model = compiled_keras_model(arch_every=1, pretrain_steps=3 * 5)
    train, val = datasets(steps=5)
    train = train.filter(lambda x, y: True)
    assert int(train.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    model.fit(zip_train_validation(train, val), epochs=3, verbose=0)
    assert int(model.search_step.numpy()) == 15
    assert int(model.examples_seen.numpy()) == 15 * 4
    # Every step was a pre-training step: alpha never moved.
    np.testing.assert_array_equal(alpha(model), np.zeros(2, np.float32))


def test_network_weights_do_not_change_on_the_alpha_step():
    # With a zero network learning rate, any change to W would come from the
    # architecture step.
    model = compiled_keras_model(network_lr=0.0, arch_every=1)
    start = network_values(model)
    history = run_steps(model, 3)
    assert not np.array_equal(history[-1], np.zeros(2, np.float32))
    for before, after in zip(start, network_values(model)):
        np.testing.assert_array_equal(before, after)


def test_alpha_step_descends_the_validation_loss_gradient():
    model = compiled_keras_model(network_lr=0.0, arch_lr=0.5, arch_every=1)
    loss_fn = tf.keras.losses.BinaryCrossentropy()

    def gradient(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.selector.alpha_logits).numpy(), float(loss)

    val_gradient, val_loss = gradient(X_VAL, Y_VAL)
    train_gradient, _ = gradient(X_TRAIN, Y_TRAIN)
    assert np.all(np.isfinite(val_gradient)) and np.any(val_gradient != 0)
    assert not np.allclose(val_gradient, train_gradient)

    logs = tf.function(model.train_step)(keras_pair())
    np.testing.assert_allclose(alpha(model), -0.5 * val_gradient, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(logs["arch_loss"]), val_loss, rtol=1e-5)


def test_validation_forward_does_not_count_towards_training_loss_metric():
    model = compiled_keras_model(network_lr=0.0, arch_every=1)
    train_loss = float(tf.keras.losses.BinaryCrossentropy()(Y_TRAIN, model(X_TRAIN)))
    logs = tf.function(model.train_step)(keras_pair())
    np.testing.assert_allclose(float(logs["loss"]), train_loss, rtol=1e-6)


def test_joint_mode_updates_alpha_and_network_on_the_training_batch():
    model = compiled_keras_model(network_lr=0.1, arch_lr=0.5, mode="joint", pretrain_steps=1)
    loss_fn = tf.keras.losses.BinaryCrossentropy()
    train_step = tf.function(model.train_step)

    train_step(keras_pair())  # pre-training: alpha frozen
    np.testing.assert_array_equal(alpha(model), np.zeros(2, np.float32))

    variables = model.network_variables + model.architecture_variables
    with tf.GradientTape() as tape:
        loss = loss_fn(Y_TRAIN, model(X_TRAIN, training=True))
    gradients = tape.gradient(loss, variables)
    expected = [v.numpy() - 0.1 * g.numpy() for v, g in zip(variables[:-1], gradients[:-1])]
    expected.append(alpha(model) - 0.5 * gradients[-1].numpy())

    logs = train_step(keras_pair())
    for variable, value in zip(variables, expected):
        np.testing.assert_allclose(variable.numpy(), value, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(logs["arch_loss"]), float(loss), rtol=1e-5)


def test_keras_model_fits_on_zipped_datasets_with_arch_metrics():
    tf.keras.utils.set_random_seed(0)
    train, val = datasets(steps=4)
    model = compiled_keras_model(arch_every=2, pretrain_steps=1, metrics=["accuracy"])
    history = model.fit(
        zip_train_validation(train, val),
        validation_data=val,
        epochs=1,
        verbose=0,
    )
    assert {"loss", "accuracy", "arch_loss", "temperature", "val_loss"} <= set(history.history)
    assert history.history["arch_loss"][0] > 0.0
    assert history.history["temperature"] == [1.0]
    assert int(model.search_step.numpy()) == 4
    assert int(model.examples_seen.numpy()) == 16
    assert not np.array_equal(alpha(model), np.zeros(2, np.float32))


def test_fit_traces_the_search_step_once_with_slots_for_each_variable_set():
    train, val = datasets(steps=3)
    model = compiled_keras_model(arch_every=1)
    model.fit(zip_train_validation(train, val), epochs=1, verbose=0)
    # Both optimizers were built before the first trace, each for its own set.
    assert model.train_function.experimental_get_tracing_count() == 1
    network_slots = {v.name for v in model.optimizer.variables}
    arch_slots = {v.name for v in model.arch_optimizer.variables}
    assert any("alpha_logits" in name for name in arch_slots)
    assert not any("alpha_logits" in name for name in network_slots)


def test_tfrs_model_fits_on_zipped_datasets_with_arch_metrics():
    tf.keras.utils.set_random_seed(0)
    x = np.tile(X_TRAIN, (3, 1))
    y = np.tile(Y_TRAIN, (3, 1))
    train = tf.data.Dataset.from_tensor_slices({"x": x, "label": y}).batch(4)
    val = tf.data.Dataset.from_tensor_slices({"x": X_VAL, "label": Y_VAL}).batch(2)
    model = TfrsSearchModel()
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.01),
        arch_optimizer=tf.keras.optimizers.Adam(0.01),
        arch_every=1,
        temperature_schedule=paper_schedule,
    )
    history = model.fit(zip_train_validation(train, val), validation_data=val, epochs=1, verbose=0)
    assert {"loss", "accuracy", "arch_loss", "temperature", "val_loss"} <= set(history.history)
    assert history.history["arch_loss"][0] > 0.0
    assert int(model.search_step.numpy()) == 3
    assert not np.array_equal(alpha(model), np.zeros(2, np.float32))


def test_tfrs_validation_forward_does_not_count_towards_task_metrics():
    model = TfrsSearchModel()
    model.compile(
        optimizer=tf.keras.optimizers.SGD(0.0),
        arch_optimizer=tf.keras.optimizers.SGD(0.5),
        arch_every=1,
        temperature_schedule=unit_schedule,
    )
    train_batch = {"x": X_TRAIN, "label": Y_TRAIN}
    predictions = model(train_batch).numpy()
    expected_accuracy = np.mean((predictions > 0.5) == (Y_TRAIN > 0.5))
    logs = tf.function(model.train_step)((train_batch, {"x": X_VAL, "label": Y_VAL}))
    assert float(logs["accuracy"]) == pytest.approx(expected_accuracy)
    assert not np.array_equal(alpha(model), np.zeros(2, np.float32))


def test_temperature_follows_the_schedule_of_examples_seen():
    def schedule(examples_seen):
        return 1.0 / (1.0 + tf.cast(examples_seen, tf.float32))

    model = compiled_keras_model(arch_every=1, temperature_schedule=schedule)
    train_step = tf.function(model.train_step)
    temperatures = [float(train_step(keras_pair())["temperature"]) for _ in range(3)]
    # Four training examples per step; validation examples are not counted.
    assert temperatures == pytest.approx([1.0, 1 / 5, 1 / 9])
    assert float(model.selector.temperature.numpy()) == pytest.approx(1 / 13)


def test_temperature_depends_on_examples_not_steps():
    small, large = compiled_keras_model(), compiled_keras_model()
    for model in (small, large):
        model.compile(
            optimizer=tf.keras.optimizers.SGD(0.1),
            arch_optimizer=tf.keras.optimizers.SGD(0.1),
            loss="binary_crossentropy",
            temperature_schedule=lambda n: tf.maximum(0.01, 1.0 - 0.05 * n),
        )
    small.fit(zip_train_validation(*datasets(steps=4, batch_size=4)), verbose=0)
    large.fit(zip_train_validation(*datasets(steps=2, batch_size=8)), verbose=0)
    for model in (small, large):
        assert int(model.examples_seen.numpy()) == 16
        assert float(model.selector.temperature.numpy()) == pytest.approx(0.2)


def test_default_schedule_is_the_library_temperature_schedule():
    from keras_dimsel.autodim import temperature

    model = KerasSearchModel()
    model.compile(
        optimizer=tf.keras.optimizers.SGD(0.1),
        arch_optimizer=tf.keras.optimizers.SGD(0.1),
        loss="binary_crossentropy",
    )
    assert isinstance(model.temperature_schedule, temperature.TemperatureSchedule)
    logs = [tf.function(model.train_step)(keras_pair()) for _ in range(2)]
    expected = [float(model.temperature_schedule(n)) for n in (0, 4)]
    assert [float(log["temperature"]) for log in logs] == pytest.approx(expected)


def test_train_on_batch_accepts_a_pair():
    # With a zero network learning rate, the alpha step sees the weights as they were before.
    model = compiled_keras_model(network_lr=0.0, arch_every=1)
    loss_fn = tf.keras.losses.BinaryCrossentropy()
    val_loss = float(loss_fn(Y_VAL, model(X_VAL, training=True)))
    # `train_on_batch` requires equal batch sizes across the pair.
    pair = ((X_TRAIN[:2], Y_TRAIN[:2]), (X_VAL, Y_VAL))
    logs = model.train_on_batch(pair, return_dict=True)
    assert logs["arch_loss"] == pytest.approx(val_loss, rel=1e-5)
    assert int(model.search_step.numpy()) == 1


def test_counters_and_arch_optimizer_are_checkpointed(tmp_path):
    model = compiled_keras_model(arch_every=1)
    run_steps(model, 2)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))

    restored = compiled_keras_model(arch_every=1)
    tf.train.Checkpoint(model=restored).restore(path).assert_existing_objects_matched()
    assert int(restored.search_step.numpy()) == 2
    assert int(restored.examples_seen.numpy()) == 8
    np.testing.assert_array_equal(alpha(restored), alpha(model))


def test_saved_model_round_trip_after_search(tmp_path):
    model = compiled_keras_model(arch_every=1)
    run_steps(model, 2)
    serve = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, 3], tf.float32)],
    )
    tf.saved_model.save(model, str(tmp_path / "sm"), signatures=serve)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    outputs = loaded.signatures["serving_default"](x=tf.constant(X_VAL))
    np.testing.assert_allclose(
        next(iter(outputs.values())).numpy(), model(X_VAL).numpy(), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arch_optimizer": None}, "`arch_optimizer` is required"),
        ({"arch_every": 0}, "`arch_every` must be an integer >= 1. Received: arch_every=0"),
        ({"arch_every": 2.5}, "`arch_every` must be an integer >= 1"),
        ({"pretrain_steps": -1}, "`pretrain_steps` must be an integer >= 0. Received"),
        ({"mode": "bilevel"}, f"`mode` must be one of {SUPPORTED_MODES}. Received: mode="),
        ({"temperature_schedule": 1.0}, "`temperature_schedule` must be callable"),
    ],
)
def test_bad_compile_arguments_raise(kwargs, message):
    arguments = {
        "optimizer": tf.keras.optimizers.SGD(0.1),
        "arch_optimizer": tf.keras.optimizers.SGD(0.1),
        "temperature_schedule": unit_schedule,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        KerasSearchModel().compile(**arguments)


def test_the_same_optimizer_for_both_variable_sets_is_rejected():
    optimizer = tf.keras.optimizers.Adam()
    with pytest.raises(ValueError, match="must be a different object from `optimizer`"):
        KerasSearchModel().compile(
            optimizer=optimizer, arch_optimizer=optimizer, temperature_schedule=unit_schedule
        )


def test_model_without_architecture_variables_raises():
    model = PlainModel()
    model.compile(
        optimizer=tf.keras.optimizers.SGD(0.1),
        arch_optimizer=tf.keras.optimizers.SGD(0.1),
        loss="mse",
        temperature_schedule=unit_schedule,
    )
    model(X_TRAIN)
    with pytest.raises(ValueError, match="has no architecture variables"):
        _ = model.architecture_variables
    with pytest.raises(ValueError, match="has no architecture variables"):
        model.train_on_batch(((X_TRAIN[:2], Y_TRAIN[:2]), (X_VAL, Y_VAL)))


def test_plain_batches_are_rejected_with_a_hint_to_zip():
    model = compiled_keras_model()
    train, _ = datasets(steps=1)
    with pytest.raises(ValueError, match="zip_train_validation"):
        model.fit(train.map(lambda x, y: x), verbose=0)


def test_zip_train_validation_repeats_the_validation_set():
    train = tf.data.Dataset.range(5).batch(2)
    validation = tf.data.Dataset.range(2).batch(1)
    pairs = [
        (t.numpy().tolist(), v.numpy().tolist()) for t, v in zip_train_validation(train, validation)
    ]
    assert pairs == [([0, 1], [0]), ([2, 3], [1]), ([4], [0])]


def test_zip_train_validation_shares_each_validation_batch_among_arch_every_steps():
    train = tf.data.Dataset.range(7).batch(1)
    validation = tf.data.Dataset.from_tensor_slices(([10, 20], [1, 2])).batch(1)
    pairs = list(zip_train_validation(train, validation, arch_every=3))
    assert [int(t[0]) for t, _ in pairs] == list(range(7))
    assert [(int(x[0]), int(y[0])) for _, (x, y) in pairs] == (
        [(10, 1)] * 3 + [(20, 2)] * 3 + [(10, 1)]
    )


def test_zip_train_validation_rejects_bad_inputs():
    train = tf.data.Dataset.range(4).batch(2)
    with pytest.raises(ValueError, match="`validation` must be a tf.data.Dataset"):
        zip_train_validation(train, [1, 2])
    with pytest.raises(ValueError, match="`validation` must not be empty"):
        zip_train_validation(train, tf.data.Dataset.range(0).batch(1))
    with pytest.raises(ValueError, match="`arch_every` must be an integer >= 1"):
        zip_train_validation(train, train, arch_every=0)


MIRRORED_SCRIPT = """
import json, os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.autodim.test_alternating import KerasSearchModel, datasets, zip_train_validation

def search(strategy):
    with strategy.scope():
        model = KerasSearchModel()
        model.compile(
            optimizer=tf.keras.optimizers.SGD(0.1),
            arch_optimizer=tf.keras.optimizers.Adam(0.1),
            loss="binary_crossentropy",
            arch_every=2,
            pretrain_steps=1,
            temperature_schedule=lambda n: 1.0 / (1.0 + n),
        )
    alphas = []
    record = tf.keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: alphas.append(
            model.selector.alpha_logits.numpy().tolist()
        )
    )
    history = model.fit(
        zip_train_validation(*datasets(steps=5)), callbacks=[record], verbose=0
    )
    return {
        "alphas": alphas,
        "temperature_log": history.history["temperature"][0],
        "temperature": float(model.selector.temperature.numpy()),
        "step": int(model.search_step.numpy()),
        "examples_seen": int(model.examples_seen.numpy()),
    }

print(json.dumps({
    "mirrored": search(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
    "default": search(tf.distribute.get_strategy()),
}))
"""


@pytest.mark.e2e
def test_search_under_mirrored_strategy_matches_a_single_device(tmp_path):
    # Logical devices must be configured before TensorFlow starts: a fresh process.
    root = pathlib.Path(__file__).resolve().parents[2]
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, str(script)], cwd=root, env=env, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    mirrored, default = results["mirrored"], results["default"]

    alphas = [[0.0, 0.0]] + mirrored["alphas"]
    changed = [i for i in range(5) if alphas[i] != alphas[i + 1]]
    assert changed == [1, 3]
    np.testing.assert_allclose(mirrored["alphas"], default["alphas"], rtol=1e-4, atol=1e-6)
    assert mirrored["step"] == 5 and mirrored["examples_seen"] == 20
    assert mirrored["temperature_log"] == pytest.approx(1 / 17)
    assert mirrored["temperature"] == pytest.approx(1 / 21)
