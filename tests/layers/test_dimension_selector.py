"""Tests for `DimensionGumbelSelector`."""

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector

# Two examples, three candidates, dimension two: candidate n of example b is
# [6b + 2n, 6b + 2n + 1].
CANDIDATES = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
# softmax(log [1, 2, 3]) = [1/6, 2/6, 3/6]
LOGITS = np.log(np.array([1.0, 2.0, 3.0], dtype=np.float32))
TINY = np.finfo(np.float32).tiny


def make_selector(**kwargs) -> DimensionGumbelSelector:
    selector = DimensionGumbelSelector(num_candidates=3, **kwargs)
    selector.build((None, 3, 2))
    selector.alpha_logits.assign(LOGITS)
    return selector


def gumbel_noise(seed, counter, shape=(2, 3)) -> np.ndarray:
    """The noise the layer draws on its `counter`-th training call."""
    uniform = tf.random.stateless_uniform(shape, seed=[seed, counter], minval=TINY, maxval=1.0)
    return -np.log(-np.log(uniform.numpy().astype(np.float64)))


def numpy_softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def test_inference_output_is_softmax_weighted_sum_of_candidates():
    selector = make_selector(seed=0)
    expected = np.array([[16 / 6, 22 / 6], [52 / 6, 58 / 6]], dtype=np.float32)
    np.testing.assert_allclose(selector(CANDIDATES).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(selector(CANDIDATES, training=False).numpy(), expected, rtol=1e-6)


def test_inference_output_has_no_noise_and_starts_with_equal_weights():
    selector = DimensionGumbelSelector(num_candidates=3, seed=0)
    first = selector(CANDIDATES).numpy()
    np.testing.assert_allclose(selector.probabilities().numpy(), [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(first, CANDIDATES.mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(selector(CANDIDATES).numpy(), first)


def test_probabilities_is_softmax_of_logits():
    selector = make_selector()
    np.testing.assert_allclose(selector.probabilities().numpy(), [1 / 6, 2 / 6, 3 / 6], rtol=1e-6)


def test_training_output_follows_eq6_and_eq7_with_the_layer_noise():
    selector = make_selector(seed=7)
    selector.temperature.assign(0.5)
    output = selector(CANDIDATES, training=True).numpy()

    noise = gumbel_noise(seed=7, counter=1)
    weights = numpy_softmax((np.log([1 / 6, 2 / 6, 3 / 6]) + noise) / 0.5)
    expected = np.einsum("bn,bnd->bd", weights, CANDIDATES)
    np.testing.assert_allclose(output, expected, rtol=1e-5)


def test_training_noise_differs_per_call_and_example_and_repeats_with_the_seed():
    first_layer = make_selector(seed=3)
    first = first_layer(CANDIDATES, training=True).numpy()
    second = first_layer(CANDIDATES, training=True).numpy()
    again = make_selector(seed=3)(CANDIDATES, training=True).numpy()
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, again)
    # The same candidates in both rows still mix differently: noise is per example.
    same_rows = np.stack([CANDIDATES[0], CANDIDATES[0]])
    mixed = make_selector(seed=3)(same_rows, training=True).numpy()
    assert not np.allclose(mixed[0], mixed[1])


def test_low_temperature_gives_the_one_hot_of_the_gumbel_argmax():
    selector = make_selector(seed=11)
    selector.temperature.assign(1e-4)
    output = selector(CANDIDATES, training=True).numpy()
    chosen = np.argmax(np.log([1 / 6, 2 / 6, 3 / 6]) + gumbel_noise(seed=11, counter=1), axis=-1)
    expected = CANDIDATES[np.arange(2), chosen]
    np.testing.assert_allclose(output, expected, atol=1e-4)


def test_hard_forward_is_exactly_one_candidate_and_gradient_reaches_logits():
    selector = make_selector(hard=True, seed=5)
    with tf.GradientTape() as tape:
        output = selector(CANDIDATES, training=True)
        loss = tf.reduce_sum(output * tf.constant([[1.0, -2.0], [0.5, 3.0]]))
    chosen = np.argmax(np.log([1 / 6, 2 / 6, 3 / 6]) + gumbel_noise(seed=5, counter=1), axis=-1)
    np.testing.assert_array_equal(output.numpy(), CANDIDATES[np.arange(2), chosen])
    gradient = tape.gradient(loss, selector.alpha_logits).numpy()
    assert np.all(np.isfinite(gradient))
    assert np.any(gradient != 0.0)


def test_training_weights_sum_to_one():
    selector = make_selector(seed=2)
    # Identical candidates e_1 in every slot: the output is sum_n p_n * 1.
    ones = np.ones((4, 3, 1), dtype=np.float32)
    selector.temperature.assign(0.3)
    np.testing.assert_allclose(selector(ones, training=True).numpy(), np.ones((4, 1)), rtol=1e-6)


def test_training_draws_new_noise_inside_a_tf_function():
    selector = make_selector(seed=9)

    @tf.function
    def step(x):
        return selector(x, training=True)

    first = step(CANDIDATES).numpy()
    second = step(CANDIDATES).numpy()
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(selector.noise_seed.numpy(), [9, 2])


def test_training_as_a_tensor_selects_the_branch():
    selector = make_selector(seed=4)
    deterministic = selector(CANDIDATES, training=tf.constant(False)).numpy()
    np.testing.assert_allclose(deterministic, selector(CANDIDATES).numpy())
    noisy = selector(CANDIDATES, training=tf.constant(True)).numpy()
    assert not np.allclose(noisy, deterministic)


def test_temperature_is_a_non_trainable_assignable_scalar():
    selector = DimensionGumbelSelector(num_candidates=3, initial_temperature=0.7)
    selector.build((None, 3, 2))
    assert selector.temperature.dtype == tf.float32
    assert selector.temperature.shape == ()
    assert not selector.temperature.trainable
    assert selector.temperature.ref() not in {w.ref() for w in selector.trainable_weights}
    assert selector.temperature.ref() in {w.ref() for w in selector.non_trainable_weights}
    np.testing.assert_allclose(selector.temperature.numpy(), 0.7)
    selector.temperature.assign(0.25)
    np.testing.assert_allclose(selector.temperature.numpy(), 0.25)


def test_temperature_assignment_changes_the_training_output():
    warm = make_selector(seed=1)
    cold = make_selector(seed=1)
    cold.temperature.assign(0.1)
    assert not np.allclose(
        warm(CANDIDATES, training=True).numpy(), cold(CANDIDATES, training=True).numpy()
    )


def test_architecture_variables_are_exactly_alpha_logits_and_trainable():
    selector = make_selector()
    assert len(selector.architecture_variables) == 1
    assert selector.architecture_variables[0] is selector.alpha_logits
    assert selector.alpha_logits.name.endswith("alpha_logits:0")
    assert [w.ref() for w in selector.trainable_weights] == [selector.alpha_logits.ref()]


def test_weights_have_explicit_names_and_shapes():
    selector = make_selector()
    names = {w.name.split("/")[-1]: tuple(w.shape) for w in selector.weights}
    assert names == {"alpha_logits:0": (3,), "temperature:0": (), "noise_seed:0": (2,)}


def test_fit_updates_alpha_logits():
    inputs = tf.keras.Input((3, 2))
    selector = DimensionGumbelSelector(num_candidates=3, seed=0)
    model = tf.keras.Model(inputs, tf.reduce_sum(selector(inputs), axis=-1, keepdims=True))
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    model.fit(CANDIDATES, np.zeros((2, 1), np.float32), batch_size=2, epochs=1, verbose=0)
    logits = selector.alpha_logits.numpy()
    # Candidate 0 has the smallest values and candidate 2 the largest, so pulling
    # the output to 0 raises the first logit and lowers the last, whatever the noise.
    assert logits[0] > 0.0 > logits[2]
    np.testing.assert_array_equal(selector.noise_seed.numpy(), [0, 1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_candidates": 0}, "`num_candidates` must be a positive integer"),
        ({"num_candidates": 2.0}, "`num_candidates` must be a positive integer"),
        ({"num_candidates": True}, "`num_candidates` must be a positive integer"),
        ({"num_candidates": 3, "hard": "yes"}, "`hard` must be a boolean"),
        ({"num_candidates": 3, "initial_temperature": 0.0}, "`initial_temperature` must be"),
        ({"num_candidates": 3, "initial_temperature": -1.0}, "`initial_temperature` must be"),
        ({"num_candidates": 3, "initial_temperature": float("inf")}, "`initial_temperature`"),
        ({"num_candidates": 3, "seed": 1.5}, "`seed` must be an integer or None"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DimensionGumbelSelector(**kwargs)


def test_error_message_names_the_received_value():
    with pytest.raises(ValueError, match=r"Received: num_candidates=-2"):
        DimensionGumbelSelector(num_candidates=-2)


def test_candidate_count_mismatch_is_rejected_at_build():
    selector = DimensionGumbelSelector(num_candidates=4)
    with pytest.raises(ValueError, match=r"\[batch, 4, dim\]"):
        selector(CANDIDATES)


def test_compute_output_shape_drops_the_candidate_axis():
    selector = DimensionGumbelSelector(num_candidates=3)
    assert selector.compute_output_shape((None, 3, 8)).as_list() == [None, 8]


def test_from_config_round_trip():
    selector = DimensionGumbelSelector(
        num_candidates=4, hard=True, initial_temperature=0.3, seed=17, name="field_a"
    )
    config = selector.get_config()
    assert {k: config[k] for k in ("num_candidates", "hard", "initial_temperature", "seed")} == {
        "num_candidates": 4,
        "hard": True,
        "initial_temperature": 0.3,
        "seed": 17,
    }
    restored = DimensionGumbelSelector.from_config(config)
    assert restored.get_config() == config


def test_keras_serialization_finds_the_registered_class():
    selector = DimensionGumbelSelector(num_candidates=2, seed=1)
    serialized = tf.keras.layers.serialize(selector)
    assert serialized["registered_name"] == "keras_dimsel>DimensionGumbelSelector"
    restored = tf.keras.layers.deserialize(serialized)
    assert isinstance(restored, DimensionGumbelSelector)
    assert restored.get_config() == selector.get_config()


def small_model() -> tf.keras.Model:
    inputs = tf.keras.Input((3, 2), name="candidates")
    selector = DimensionGumbelSelector(num_candidates=3, seed=0, name="selector")
    model = tf.keras.Model(inputs, selector(inputs))
    selector.alpha_logits.assign(LOGITS)
    selector.temperature.assign(0.2)
    return model


def test_saved_model_round_trip_keeps_inference_output(tmp_path):
    model = small_model()
    expected = model(CANDIDATES).numpy()
    tf.saved_model.save(model, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(loaded(tf.constant(CANDIDATES), training=False).numpy(), expected)
    noisy = loaded(tf.constant(CANDIDATES), training=True).numpy()
    assert noisy.shape == (2, 2)


@pytest.mark.parametrize("filename", ["model.keras", "model.h5"])
def test_keras_file_round_trip_keeps_weights_and_output(tmp_path, filename):
    model = small_model()
    expected = model(CANDIDATES).numpy()
    model.save(str(tmp_path / filename))
    loaded = tf.keras.models.load_model(str(tmp_path / filename))
    selector = loaded.get_layer("selector")
    assert isinstance(selector, DimensionGumbelSelector)
    np.testing.assert_allclose(selector.alpha_logits.numpy(), LOGITS)
    np.testing.assert_allclose(selector.temperature.numpy(), 0.2)
    np.testing.assert_allclose(loaded(CANDIDATES).numpy(), expected)


def test_mixed_precision_computes_weights_in_float32():
    selector = DimensionGumbelSelector(num_candidates=3, seed=0, dtype="mixed_float16")
    output = selector(CANDIDATES, training=True)
    assert output.dtype == tf.float16
    assert selector.alpha_logits.dtype == tf.float32
    assert selector.temperature.dtype == tf.float32
