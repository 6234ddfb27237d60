"""Tests for `TemperatureSchedule` and the `TemperatureAnnealing` callback."""

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.autodim.temperature import TemperatureAnnealing, TemperatureSchedule
from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector


def tau(schedule, examples_seen) -> float:
    return float(schedule(examples_seen).numpy())


def test_schedule_starts_at_one():
    assert tau(TemperatureSchedule(), 0) == 1.0


def test_schedule_halves_after_ten_thousand_steps_of_2000():
    # 1 - 0.00005 * 10_000 = 0.5
    assert tau(TemperatureSchedule(), 10_000 * 2000) == pytest.approx(0.5, abs=1e-7)


def test_schedule_is_linear_between_start_and_floor():
    schedule = TemperatureSchedule()
    assert tau(schedule, 1 * 2000) == pytest.approx(0.99995, abs=1e-7)
    assert tau(schedule, 19_000 * 2000) == pytest.approx(0.05, abs=1e-7)


def test_schedule_clamps_at_the_floor():
    schedule = TemperatureSchedule()
    floor = float(np.float32(0.01))
    assert tau(schedule, 19_800 * 2000) == pytest.approx(0.01, abs=1e-7)
    assert tau(schedule, 30_000 * 2000) == floor
    assert tau(schedule, 10**12) == floor
    assert tau(TemperatureSchedule(floor=0.2), 10**12) == float(np.float32(0.2))


def test_schedule_means_the_same_at_any_batch_size():
    schedule = TemperatureSchedule()
    ten_steps_of_2000 = tau(schedule, 10 * 2000)
    twenty_steps_of_1000 = tau(schedule, 20 * 1000)
    assert ten_steps_of_2000 == twenty_steps_of_1000
    assert ten_steps_of_2000 == pytest.approx(1 - 0.00005 * 10, abs=1e-7)


def test_reference_batch_size_sets_the_meaning_of_rate():
    schedule = TemperatureSchedule(rate=0.1, reference_batch_size=4)
    # 8 examples = 2 reference steps of 4: 1 - 0.1 * 2
    assert tau(schedule, 8) == pytest.approx(0.8, abs=1e-7)


def test_zero_rate_keeps_the_temperature_at_one():
    assert tau(TemperatureSchedule(rate=0.0), 10**9) == 1.0


def test_the_paper_schedule_reaches_its_floor_after_39_6_million_examples():
    schedule = TemperatureSchedule()
    assert schedule.examples_to_floor() == pytest.approx(19_800 * 2000)
    assert TemperatureSchedule(rate=0.0).examples_to_floor() == float("inf")


@pytest.mark.parametrize("total", [1, 2_000, 123_457, 3_000_000, 45_000_000, 10**10])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("floor", [0.01, 0.3])
def test_a_relative_schedule_reaches_its_floor_at_the_fraction_for_any_run_length(
    total, fraction, floor
):
    schedule = TemperatureSchedule.relative(total, anneal_fraction=fraction, floor=floor)
    at_floor = fraction * total
    assert schedule.examples_to_floor() == pytest.approx(at_floor, rel=1e-12)
    assert tau(schedule, 0) == 1.0
    # Linear: half-way through the annealing, half-way between 1 and the floor.
    assert tau(schedule, at_floor / 2) == pytest.approx((1 + floor) / 2, abs=1e-6)
    assert tau(schedule, 0.99 * at_floor) > float(np.float32(floor))
    assert tau(schedule, at_floor) == pytest.approx(floor, abs=1e-6)
    assert tau(schedule, total) == pytest.approx(floor, abs=1e-6)
    assert tau(schedule, 3 * total) == float(np.float32(floor))


def test_a_relative_schedule_is_a_schedule_like_any_other():
    schedule = TemperatureSchedule.relative(40_000, anneal_fraction=0.5, reference_batch_size=500)
    assert schedule.reference_batch_size == 500
    assert schedule.rate == pytest.approx(0.99 * 500 / 20_000)
    restored = TemperatureSchedule.from_config(schedule.get_config())
    assert tau(restored, 12_345) == tau(schedule, 12_345)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"total_examples": 0}, "`total_examples` must be a positive integer"),
        ({"total_examples": 1e6}, "`total_examples` must be a positive integer"),
        ({"total_examples": 10, "anneal_fraction": 0.0}, "`anneal_fraction` must be a number"),
        ({"total_examples": 10, "anneal_fraction": 1.5}, "Received: anneal_fraction=1.5"),
        ({"total_examples": 10, "floor": 0.0}, "`floor` must be a number in \\(0, 1\\]"),
    ],
)
def test_a_relative_schedule_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TemperatureSchedule.relative(**kwargs)


def test_schedule_returns_float32_for_numbers_and_tensors():
    schedule = TemperatureSchedule()
    for value in (0, 4000.0, tf.constant(4000), tf.constant(4000, tf.int64), np.int64(4000)):
        result = schedule(value)
        assert result.dtype == tf.float32
        assert result.shape == ()
    assert tau(schedule, tf.constant(4000)) == pytest.approx(0.9999, abs=1e-7)


def test_schedule_works_inside_tf_function():
    schedule = TemperatureSchedule()

    @tf.function
    def at(examples):
        return schedule(examples)

    assert float(at(tf.constant(2000 * 100, tf.int64))) == pytest.approx(0.995, abs=1e-7)


def test_schedule_keeps_large_example_counts_exact():
    # 2**24 + 1 is not a float32; the schedule counts in float64.
    schedule = TemperatureSchedule(floor=1e-9, rate=1.0, reference_batch_size=2**25)
    assert tau(schedule, 2**24 + 1) == pytest.approx(0.5 - 2.0**-25, abs=1e-7)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"floor": 0.0}, "`floor` must be a number in \\(0, 1\\]"),
        ({"floor": 1.5}, "`floor` must be a number in \\(0, 1\\]"),
        ({"floor": "0.1"}, "`floor` must be a number"),
        ({"rate": -0.1}, "`rate` must be a finite non-negative number"),
        ({"rate": float("nan")}, "`rate` must be a finite non-negative number"),
        ({"reference_batch_size": 0}, "`reference_batch_size` must be a positive integer"),
        ({"reference_batch_size": 2000.0}, "`reference_batch_size` must be a positive integer"),
        ({"reference_batch_size": True}, "`reference_batch_size` must be a positive integer"),
    ],
)
def test_schedule_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TemperatureSchedule(**kwargs)


def test_schedule_error_names_the_received_value():
    with pytest.raises(ValueError, match="Received: floor=0"):
        TemperatureSchedule(floor=0)


def test_schedule_config_round_trip():
    schedule = TemperatureSchedule(floor=0.05, rate=0.001, reference_batch_size=512)
    config = schedule.get_config()
    assert config == {"floor": 0.05, "rate": 0.001, "reference_batch_size": 512}
    restored = TemperatureSchedule.from_config(config)
    assert restored.get_config() == config
    assert tau(restored, 512 * 10) == tau(schedule, 512 * 10)


def test_schedule_is_registered_for_keras_serialization():
    schedule = TemperatureSchedule(floor=0.1)
    serialized = tf.keras.utils.serialize_keras_object(schedule)
    restored = tf.keras.utils.deserialize_keras_object(serialized)
    assert isinstance(restored, TemperatureSchedule)
    assert restored.get_config() == schedule.get_config()


class RecordTemperature(tf.keras.callbacks.Callback):
    """Records a selector's temperature as each training batch starts."""

    def __init__(self, selector):
        super().__init__()
        self.selector = selector
        self.seen = []

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append(float(self.selector.temperature.numpy()))


def selector_model(nested: bool = False):
    selector = DimensionGumbelSelector(num_candidates=3, seed=0, name="selector")
    inputs = tf.keras.Input((3, 2))
    if nested:
        inner_inputs = tf.keras.Input((3, 2))
        inner = tf.keras.Model(inner_inputs, selector(inner_inputs), name="inner")
        mixed = inner(inputs)
    else:
        mixed = selector(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1, kernel_initializer="ones")(mixed))
    model.compile(optimizer=tf.keras.optimizers.SGD(0.01), loss="mse")
    return model, selector


# 8 examples at batch size 4: two batches per epoch.
FEATURES = np.arange(48, dtype=np.float32).reshape(8, 3, 2) / 48.0
LABELS = np.zeros((8, 1), dtype=np.float32)
# One reference step per batch of 4 examples, 0.05 per step.
FAST = TemperatureSchedule(floor=0.01, rate=0.05, reference_batch_size=4)


def test_annealing_sets_the_temperature_before_every_batch_of_fit():
    model, selector = selector_model()
    record = RecordTemperature(selector)
    annealing = TemperatureAnnealing(FAST, batch_size=4)
    model.fit(
        FEATURES,
        LABELS,
        batch_size=4,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[annealing, record],
    )
    np.testing.assert_allclose(record.seen, [1.0, 0.95, 0.9, 0.85], rtol=1e-6)
    assert annealing.examples_seen == 16
    # After training: tau(total examples) = 1 - 0.05 * 16 / 4.
    np.testing.assert_allclose(selector.temperature.numpy(), FAST(16).numpy())
    np.testing.assert_allclose(selector.temperature.numpy(), 0.8, rtol=1e-6)


def test_annealing_count_continues_across_fit_calls_and_from_a_resume_point():
    model, selector = selector_model()
    annealing = TemperatureAnnealing(FAST, batch_size=4)
    model.fit(FEATURES, LABELS, batch_size=4, epochs=1, verbose=0, callbacks=[annealing])
    model.fit(FEATURES, LABELS, batch_size=4, epochs=1, verbose=0, callbacks=[annealing])
    np.testing.assert_allclose(selector.temperature.numpy(), 0.8, rtol=1e-6)

    resumed = TemperatureAnnealing(FAST, batch_size=4, initial_examples_seen=16)
    model.fit(FEATURES, LABELS, batch_size=4, epochs=1, verbose=0, callbacks=[resumed])
    np.testing.assert_allclose(selector.temperature.numpy(), 0.7, rtol=1e-6)


def test_annealing_finds_selectors_in_nested_models():
    model, selector = selector_model(nested=True)
    model.fit(
        FEATURES,
        LABELS,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[TemperatureAnnealing(FAST, batch_size=4)],
    )
    np.testing.assert_allclose(selector.temperature.numpy(), 0.9, rtol=1e-6)


def test_annealing_default_schedule_is_the_paper_schedule():
    annealing = TemperatureAnnealing(batch_size=2000)
    assert annealing.schedule.get_config() == TemperatureSchedule().get_config()


def test_annealing_rejects_a_model_without_temperature():
    inputs = tf.keras.Input((2,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="no layer with a `temperature` variable"):
        model.fit(
            np.zeros((4, 2), np.float32),
            np.zeros((4, 1), np.float32),
            batch_size=2,
            verbose=0,
            callbacks=[TemperatureAnnealing(batch_size=2)],
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "`batch_size` must be a positive integer"),
        ({"batch_size": 2.0}, "`batch_size` must be a positive integer"),
        ({"batch_size": 8, "schedule": 0.5}, "`schedule` must be a TemperatureSchedule"),
        ({"batch_size": 8, "initial_examples_seen": -1}, "`initial_examples_seen` must be"),
    ],
)
def test_annealing_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TemperatureAnnealing(**kwargs)
