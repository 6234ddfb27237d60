"""`ResumableFit` and `CheckpointedDropout`: a restored run continues exactly."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.models.dropout import CheckpointedDropout
from keras_dimsel.training.checkpointing import (
    CHECKPOINTS,
    OPTIONS,
    BestEpoch,
    CheckpointMismatchError,
    ResumableFit,
    epoch_seed,
)

STEPS_PER_EPOCH = 5
EPOCHS = 3


def _model(seed=0):
    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(8, activation="relu"),
            CheckpointedDropout(0.5),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
    model(tf.zeros([1, 3]))
    return model


def _epoch_data(epoch):
    x = tf.random.stateless_normal([STEPS_PER_EPOCH * 4, 3], seed=[epoch_seed(0, epoch), 0])
    y = tf.reduce_sum(x, axis=1, keepdims=True)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4)


class _Kill(tf.keras.callbacks.Callback):
    """Stops the process's training at a step, as a crash would (no clean-up)."""

    def __init__(self, at_step):
        super().__init__()
        self.steps = 0
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.at_step:
            raise KeyboardInterrupt


def _fit(run_dir, every=2, callbacks=(), options=None, epochs=EPOCHS):
    model = _model()
    run = ResumableFit(
        model, str(run_dir), options or {"lr": 0.01}, STEPS_PER_EPOCH, epochs, every=every
    )
    run.fit(_epoch_data, callbacks=list(callbacks), verbose=0)
    return model, run


@pytest.mark.parametrize("kill_at", [1, 3, 5, 7, 12])
def test_a_run_stopped_and_restarted_ends_with_the_weights_of_an_uninterrupted_one(
    tmp_path, kill_at
):
    reference, _ = _fit(tmp_path / "reference")
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "resumed", callbacks=[_Kill(kill_at)])
    resumed, run = _fit(tmp_path / "resumed")
    assert run.steps_done == STEPS_PER_EPOCH * EPOCHS
    assert int(resumed.optimizer.iterations) == STEPS_PER_EPOCH * EPOCHS
    for got, want in zip(resumed.weights, reference.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=got.name)


def test_checkpoints_are_written_every_n_steps_and_at_epoch_ends(tmp_path):
    saved = []

    class Spy(tf.keras.callbacks.Callback):
        def flush(self):
            saved.append(int(self.model.optimizer.iterations))

    _fit(tmp_path, every=4, callbacks=[Spy()])
    assert saved == [4, 5, 8, 10, 12, 15]
    assert tf.train.latest_checkpoint(str(tmp_path / CHECKPOINTS)).endswith("ckpt-15")


def test_a_finished_run_trains_no_further(tmp_path):
    model, run = _fit(tmp_path)
    before = [w.numpy() for w in model.weights]
    assert run.fit(_epoch_data, verbose=0) == 0.0
    again, _ = _fit(tmp_path)  # a new process with the same options
    for got, want in zip(again.weights, before):
        np.testing.assert_array_equal(got.numpy(), want)


def test_a_restart_with_other_options_names_them(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, callbacks=[_Kill(3)], options={"lr": 0.01, "dim": 8})
    assert json.loads((tmp_path / CHECKPOINTS / OPTIONS).read_text()) == {"lr": 0.01, "dim": 8}
    with pytest.raises(CheckpointMismatchError, match=r"other options \(dim: 8 then, 16 now\)"):
        _fit(tmp_path, options={"lr": 0.01, "dim": 16})


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path, callbacks=[_Kill(3)])
    other = tf.keras.Sequential([tf.keras.layers.Dense(2), tf.keras.layers.Dense(1)])
    other.compile(optimizer="adam", loss="mse")
    other(tf.zeros([1, 3]))
    run = ResumableFit(other, str(tmp_path), {"lr": 0.01}, STEPS_PER_EPOCH, EPOCHS)
    with pytest.raises(CheckpointMismatchError, match="does not fit this model"):
        run.restore()


def test_remove_deletes_the_checkpoints(tmp_path):
    _, run = _fit(tmp_path)
    run.remove()
    assert not os.path.exists(tmp_path / CHECKPOINTS)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"every": -1}, "`every` must be an integer >= 0"),
        ({"steps_per_epoch": 0}, "`steps_per_epoch` must be a positive integer"),
        ({"epochs": 1.5}, "`epochs` must be a positive integer"),
    ],
)
def test_bad_arguments(tmp_path, arguments, message):
    values = {"steps_per_epoch": 5, "epochs": 2, "every": 1, **arguments}
    with pytest.raises(ValueError, match=message):
        ResumableFit(_model(), str(tmp_path), {}, **values)


def test_epoch_seeds_differ_between_epochs_and_seeds():
    seeds = {epoch_seed(seed, epoch) for seed in range(5) for epoch in range(5)}
    assert len(seeds) == 25 and all(0 <= s < 2**31 for s in seeds)


class _Scores(tf.keras.callbacks.Callback):
    """Logs a given validation score at each epoch end, before the callbacks after it."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def on_epoch_end(self, epoch, logs=None):
        logs["val_auc"] = self.scores[epoch]


def _fit_keeping_best(run_dir, scores, callbacks=()):
    model = _model()
    best = BestEpoch(model, os.path.join(run_dir, CHECKPOINTS, "best"))
    run = ResumableFit(model, str(run_dir), {"lr": 0.01}, STEPS_PER_EPOCH, EPOCHS, every=2)
    run.fit(_epoch_data, callbacks=[*callbacks, _Scores(scores), best], verbose=0)
    return model, best.restore_best()


@pytest.mark.parametrize("best_epoch, scores", [(1, [0.9, 0.7, 0.8]), (2, [0.6, 0.8, 0.8])])
def test_the_best_epoch_s_weights_are_restored(tmp_path, best_epoch, scores):
    reference, _ = _fit(tmp_path / "reference", epochs=best_epoch)
    last, _ = _fit(tmp_path / "last")
    model, record = _fit_keeping_best(tmp_path / "best", scores)
    assert record == {"epoch": best_epoch, "val_auc": max(scores)}  # a tie keeps the first
    for got, want in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=got.name)
    assert not all(
        np.array_equal(got.numpy(), final.numpy())
        for got, final in zip(model.weights, last.weights)
    )
    # Only the best epoch's weights are on disk.
    names = os.listdir(tmp_path / "best" / CHECKPOINTS / "best")
    assert {name.split(".")[0] for name in names} == {f"epoch-{best_epoch}", "best"}


@pytest.mark.parametrize("kill_at", [7, 12])
def test_the_best_epoch_survives_a_restart(tmp_path, kill_at):
    scores = [0.6, 0.8, 0.7]
    reference, _ = _fit(tmp_path / "reference", epochs=2)
    with pytest.raises(KeyboardInterrupt):
        _fit_keeping_best(tmp_path / "best", scores, callbacks=[_Kill(kill_at)])
    model, record = _fit_keeping_best(tmp_path / "best", scores)
    assert record == {"epoch": 2, "val_auc": 0.8}
    for got, want in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=got.name)


def test_keeping_the_best_epoch_without_its_score_names_it(tmp_path):
    model = _model()
    best = BestEpoch(model, str(tmp_path), monitor="val_auc")
    with pytest.raises(ValueError, match="validation metric 'val_auc'.*'loss'"):
        best.on_epoch_end(0, {"loss": 0.5})
    assert best.restore_best() is None


class TestCheckpointedDropout:
    def test_masks_follow_the_counter_so_a_restored_layer_draws_the_same_masks(self):
        layer = CheckpointedDropout(0.5, seed=3)
        x = tf.ones([4, 16])
        layer(x)
        first = layer(x, training=True).numpy()
        second = layer(x, training=True).numpy()
        assert not np.array_equal(first, second)
        layer.noise_seed.assign([3, 1])  # what restoring a checkpoint after one step does
        np.testing.assert_array_equal(layer(x, training=True).numpy(), second)

    def test_keeps_the_expected_fraction_and_scales_kept_units(self):
        layer = CheckpointedDropout(0.25, seed=0)
        y = layer(tf.ones([200, 50]), training=True).numpy()
        assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
        assert abs((y == 0).mean() - 0.25) < 0.02

    def test_identity_outside_training_and_at_rate_zero(self):
        x = tf.random.normal([3, 4])
        np.testing.assert_array_equal(CheckpointedDropout(0.5)(x).numpy(), x.numpy())
        np.testing.assert_array_equal(CheckpointedDropout(0.0)(x, training=True).numpy(), x.numpy())

    def test_config_round_trip_and_weights(self):
        layer = CheckpointedDropout(0.2, seed=7, name="drop")
        clone = CheckpointedDropout.from_config(layer.get_config())
        assert (clone.rate, clone.seed, clone.name) == (0.2, 7, "drop")
        layer(tf.ones([1, 2]))
        assert [w.name for w in layer.weights] == ["drop/noise_seed:0"]
        assert not layer.trainable_weights

    @pytest.mark.parametrize("rate", [-0.1, 1.0, "0.5", True])
    def test_bad_rate(self, rate):
        with pytest.raises(ValueError, match=r"`rate` must be a number in \[0, 1\)"):
            CheckpointedDropout(rate)

    def test_bad_seed(self):
        with pytest.raises(ValueError, match="`seed` must be an integer or None"):
            CheckpointedDropout(0.1, seed=1.5)
