"""Row-sparse optimizers: a step touches the batch's rows only, and resumes exactly."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_dimsel.data import FeatureSpec, FieldSpec
from keras_dimsel.data.feature_spec import format_vocabulary_line
from keras_dimsel.training import TrainSettings
from keras_dimsel.training.checkpointing import ResumableFit, epoch_seed
from keras_dimsel.training.optimizers import (
    TABLE_NAMES,
    LazyAdam,
    SplitOptimizer,
    is_table,
    network_optimizer,
)

ROWS, DIM = 50, 4


def _sparse_gradient(rows, seed):
    values = tf.random.stateless_normal([len(rows), DIM], seed=[seed, 1])
    return tf.IndexedSlices(values, tf.constant(rows, tf.int64), tf.constant([ROWS, DIM]))


def _table(name="embeddings"):
    return tf.Variable(tf.random.stateless_normal([ROWS, DIM], seed=[7, 7]), name=name)


def _slots(optimizer, index=0):
    """Adam's first and second moments of the `index`-th variable it was built on.

    Adam's `variables` are its step count, then `m` and `v` of each variable in turn.
    """
    return optimizer.variables[1 + 2 * index].numpy(), optimizer.variables[2 + 2 * index].numpy()


class TestLazyAdam:
    def test_a_step_changes_exactly_the_rows_in_the_batch_values_and_both_slots(self):
        table = _table()
        optimizer = LazyAdam(0.01)
        optimizer.build([table])
        first, second = [3, 17, 17, 40], [5, 17]
        before = table.numpy()
        optimizer.apply_gradients([(_sparse_gradient(first, 0), table)])
        m, v = _slots(optimizer)
        touched = sorted(set(first))
        untouched = [row for row in range(ROWS) if row not in touched]
        assert not np.any(m[untouched]) and not np.any(v[untouched])
        assert np.all(m[touched] != 0) and np.all(v[touched] != 0)
        np.testing.assert_array_equal(table.numpy()[untouched], before[untouched])
        assert np.all(table.numpy()[touched] != before[touched])

        after_first = table.numpy()
        optimizer.apply_gradients([(_sparse_gradient(second, 1), table)])
        m2, v2 = _slots(optimizer)
        kept = [row for row in range(ROWS) if row not in second]
        # Rows read in the first step but not the second keep their value and slots: no decay.
        np.testing.assert_array_equal(m2[kept], m[kept])
        np.testing.assert_array_equal(v2[kept], v[kept])
        np.testing.assert_array_equal(table.numpy()[kept], after_first[kept])

    def test_equals_adam_when_every_row_is_in_every_batch(self):
        lazy_table, dense_table = _table(), _table()
        lazy, dense = LazyAdam(0.01), tf.keras.optimizers.Adam(0.01)
        every_row = list(range(ROWS))
        for step in range(6):
            gradient = _sparse_gradient(every_row, step)
            lazy.apply_gradients([(gradient, lazy_table)])
            dense.apply_gradients([(tf.convert_to_tensor(gradient), dense_table)])
        np.testing.assert_allclose(lazy_table.numpy(), dense_table.numpy(), rtol=1e-6, atol=1e-7)
        for got, want in zip(_slots(lazy), _slots(dense)):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)

    def test_duplicate_rows_are_summed_once(self):
        repeated, summed = _table(), _table()
        first, second = LazyAdam(0.01), LazyAdam(0.01)
        values = tf.random.stateless_normal([3, DIM], seed=[2, 2])
        first.apply_gradients(
            [(tf.IndexedSlices(values, tf.constant([4, 9, 4], tf.int64), [ROWS, DIM]), repeated)]
        )
        once = tf.stack([values[0] + values[2], values[1]])
        second.apply_gradients(
            [(tf.IndexedSlices(once, tf.constant([4, 9], tf.int64), [ROWS, DIM]), summed)]
        )
        np.testing.assert_array_equal(repeated.numpy(), summed.numpy())
        for got, want in zip(_slots(first), _slots(second)):
            np.testing.assert_array_equal(got, want)

    def test_dense_gradients_follow_adam(self):
        lazy_kernel, dense_kernel = _table("kernel"), _table("kernel")
        lazy, dense = LazyAdam(0.01), tf.keras.optimizers.Adam(0.01)
        for step in range(3):
            gradient = tf.random.stateless_normal([ROWS, DIM], seed=[step, 3])
            lazy.apply_gradients([(gradient, lazy_kernel)])
            dense.apply_gradients([(gradient, dense_kernel)])
        np.testing.assert_array_equal(lazy_kernel.numpy(), dense_kernel.numpy())

    @pytest.mark.parametrize("amsgrad", [False, True])
    def test_a_traced_step_computes_the_factors_once_for_all_variables(self, amsgrad):
        # Adam computes lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) for each variable;
        # LazyAdam once per step, with the same numbers.
        def steps(optimizer):
            variables = [_table("kernel") for _ in range(4)] + [_table()]

            @tf.function
            def step(seed):
                gradients = [
                    tf.random.stateless_normal([ROWS, DIM], seed=[seed, i]) for i in range(4)
                ]
                rows = tf.constant([1, 3], tf.int64)
                values = tf.random.stateless_normal([2, DIM], seed=[seed, 9])
                gradients.append(tf.IndexedSlices(values, rows, [ROWS, DIM]))
                optimizer.apply_gradients(zip(gradients, variables))

            for seed in range(3):
                step(seed)
            graph = step.get_concrete_function(0).graph
            powers = sum(node.type == "Pow" for node in graph.get_operations())
            return [v.numpy() for v in variables], powers

        lazy, lazy_powers = steps(LazyAdam(0.01, amsgrad=amsgrad))
        dense, dense_powers = steps(tf.keras.optimizers.Adam(0.01, amsgrad=amsgrad))
        for got, want in zip(lazy[:4], dense[:4]):  # dense gradients: Adam's numbers exactly
            np.testing.assert_array_equal(got, want)
        assert (lazy_powers, dense_powers) == (2, 10)  # beta_1^t and beta_2^t

    def test_amsgrad_keeps_the_maximum_of_the_rows_it_reads(self):
        table = _table()
        optimizer = LazyAdam(0.01, amsgrad=True)
        optimizer.apply_gradients([(_sparse_gradient([1, 2], 0), table)])
        _, v_first = _slots(optimizer)
        zero = tf.IndexedSlices(tf.zeros([1, DIM]), tf.constant([2], tf.int64), [ROWS, DIM])
        optimizer.apply_gradients([(zero, table)])  # v of row 2 decays; its maximum stays
        _, v = _slots(optimizer)
        v_hat = optimizer.variables[3].numpy()  # after the step count, m and v
        assert np.all(v[2] < v_first[2])
        np.testing.assert_array_equal(v_hat[[1, 2]], v_first[[1, 2]])
        assert not np.any(v_hat[[0, 3]])

    def test_config_round_trip(self):
        optimizer = LazyAdam(0.02, beta_2=0.99)
        restored = tf.keras.optimizers.deserialize(tf.keras.optimizers.serialize(optimizer))
        assert type(restored) is LazyAdam
        assert restored.get_config() == optimizer.get_config()


class TestSplitOptimizer:
    def test_tables_and_network_each_get_their_own_optimizer(self):
        table, kernel = _table(), _table("kernel")
        alone = _table("kernel")
        split = SplitOptimizer(tf.keras.optimizers.Adagrad(0.1), tf.keras.optimizers.Adam(0.01))
        adam = tf.keras.optimizers.Adam(0.01)
        before = table.numpy()
        for step in range(3):
            dense = tf.random.stateless_normal([ROWS, DIM], seed=[step, 5])
            split.apply_gradients([(_sparse_gradient([1, 8], step), table), (dense, kernel)])
            adam.apply_gradients([(dense, alone)])
        np.testing.assert_array_equal(kernel.numpy(), alone.numpy())
        untouched = [row for row in range(ROWS) if row not in (1, 8)]
        np.testing.assert_array_equal(table.numpy()[untouched], before[untouched])
        accumulator = split.tables.variables[1].numpy()
        np.testing.assert_array_equal(accumulator[untouched], 0.1)  # Adagrad's initial value
        assert int(split.iterations) == 3 and int(split.tables.iterations) == 3

    def test_build_splits_by_table_name(self):
        names = ["embeddings", "candidate_table", "candidate_table_16", "embedding_table"]
        tables = [_table(name) for name in names]
        others = [_table(name) for name in ("kernel", "unify_kernel", "alpha_logits", "bias")]
        assert all(is_table(v) for v in tables) and not any(is_table(v) for v in others)
        split = SplitOptimizer(tf.keras.optimizers.Adagrad(), tf.keras.optimizers.Adam())
        split.build(tables + others)
        assert len(split.tables.variables) == 1 + len(tables)  # iterations + accumulators
        assert len(split.network.variables) == 1 + 2 * len(others)  # iterations + m, v

    def test_config_round_trip(self):
        split = network_optimizer("adagrad", 0.002, embedding_learning_rate=0.2)
        restored = tf.keras.optimizers.deserialize(tf.keras.optimizers.serialize(split))
        assert type(restored) is SplitOptimizer
        assert restored.get_config() == split.get_config()
        assert restored.table_names == TABLE_NAMES

    def test_one_optimizer_for_both_groups_is_refused(self):
        adam = tf.keras.optimizers.Adam()
        with pytest.raises(ValueError, match="two optimizer objects"):
            SplitOptimizer(adam, adam)


@pytest.mark.parametrize(
    "name, expected", [("lazy_adam", LazyAdam), ("adam", tf.keras.optimizers.Adam)]
)
def test_network_optimizer_by_name(name, expected):
    assert type(network_optimizer(name)) is expected


def test_an_embedding_rate_for_adam_is_refused():
    with pytest.raises(ValueError, match="adagrad tables only"):
        network_optimizer("lazy_adam", embedding_learning_rate=0.1)


def test_settings_refuse_an_unknown_optimizer_and_record_the_chosen_one():
    spec = FeatureSpec(label="label", fields=(), splits={"train": 1000, "test": 100})
    with pytest.raises(ValueError, match="unknown embedding optimizer 'sgd'"):
        TrainSettings(embedding_optimizer="sgd").resolve(spec)
    assert TrainSettings().record()["embedding_optimizer"] == "lazy_adam"
    # Runs made before the choice existed trained with dense Adam and recorded nothing.
    assert "embedding_optimizer" not in TrainSettings(embedding_optimizer="adam").record()


# A table model trained with ResumableFit: a run killed and restarted ends
# with the weights and slots of an uninterrupted one.
STEPS_PER_EPOCH, EPOCHS = 4, 2


def _table_model(embedding_optimizer):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(2,), dtype="int64"),
            tf.keras.layers.Embedding(ROWS, DIM),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=network_optimizer(embedding_optimizer, 0.01), loss="mse")
    model(tf.zeros([1, 2], tf.int64))
    return model


def _epoch_data(epoch):
    ids = tf.random.stateless_uniform(
        [STEPS_PER_EPOCH * 8, 2], seed=[epoch_seed(0, epoch), 0], maxval=ROWS, dtype=tf.int64
    )
    y = tf.cast(tf.reduce_sum(ids, axis=1, keepdims=True) % 3, tf.float32)
    return tf.data.Dataset.from_tensor_slices((ids, y)).batch(8)


class _Kill(tf.keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.steps, self.at_step = 0, at_step

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.at_step:
            raise KeyboardInterrupt


def _fit(run_dir, embedding_optimizer, callbacks=()):
    model = _table_model(embedding_optimizer)
    run = ResumableFit(
        model, str(run_dir), {"optimizer": embedding_optimizer}, STEPS_PER_EPOCH, EPOCHS, every=2
    )
    run.fit(_epoch_data, callbacks=list(callbacks), verbose=0)
    return model


@pytest.mark.parametrize("embedding_optimizer", ["lazy_adam", "adagrad"])
def test_a_killed_run_resumes_to_the_same_weights_and_slots(tmp_path, embedding_optimizer):
    reference = _fit(tmp_path / "reference", embedding_optimizer)
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "resumed", embedding_optimizer, callbacks=[_Kill(5)])
    resumed = _fit(tmp_path / "resumed", embedding_optimizer)
    assert int(resumed.optimizer.iterations) == STEPS_PER_EPOCH * EPOCHS
    for got, want in zip(resumed.weights, reference.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=got.name)
    for got, want in zip(resumed.optimizer.variables, reference.optimizer.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=got.name)


# Every stage of the library: with the default optimizer, a step leaves the
# rows outside the batch (and their slots) exactly as they were.
VOCAB = {"user": 30, "device": 6}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    directory = tmp_path_factory.mktemp("artifact")
    os.makedirs(directory / "vocab")
    fields = []
    for name, size in VOCAB.items():
        with open(directory / "vocab" / f"{name}.txt", "w") as f:
            f.writelines(format_vocabulary_line(100 - i, f"{name}{i}") for i in range(size))
        fields.append(FieldSpec(name, "categorical", size + 1, f"vocab/{name}.txt"))
    return FeatureSpec(
        label="label", fields=tuple(fields), splits={"train": 100}, directory=str(directory)
    )


def _stage_models(spec):
    from keras_dimsel.amtl.embeddings import masked_model
    from keras_dimsel.autodim.model import planned_model, search_model
    from keras_dimsel.autodim.plan import DimensionPlan
    from keras_dimsel.models import full_model

    plan = DimensionPlan.from_alpha(
        {"user": [0.1, 0.9], "device": [0.9, 0.1]},
        candidates=(2, 8),
        vocab_sizes={name: size + 1 for name, size in VOCAB.items()},
    )
    return {
        "baseline": full_model("deepfm", spec, dim=8),
        "search shared": search_model("deepfm", spec, candidates=(2, 8), seed=0),
        "search separate": search_model(
            "deepfm", spec, candidates=(2, 8), storage="separate", seed=0
        ),
        "retrain": planned_model("wide_deep", spec, plan),
        "amtl": masked_model("deepfm", spec, ["user"], dim=8),
    }


@pytest.mark.parametrize(
    "stage", ["baseline", "search shared", "search separate", "retrain", "amtl"]
)
def test_every_stage_updates_only_the_rows_of_its_batch(spec, stage):
    model = _stage_models(spec)[stage]
    model.build_weights()
    optimizer = LazyAdam(0.01)
    variables = [v for v in model.trainable_variables if "alpha_logits" not in v.name]
    optimizer.build(variables)
    ids = {"user": tf.constant([1, 4, 4, 9], tf.int64), "device": tf.constant([2, 2, 3, 5])}
    ids = {name: tf.cast(value, tf.int64) for name, value in ids.items()}
    tables = [v for v in variables if is_table(v)]
    assert tables, [v.name for v in variables]
    before = {v.name: v.numpy() for v in tables}
    with tf.GradientTape() as tape:
        vectors, rows = model.field_embeddings(ids, training=True, return_rows=True)
        loss = tf.reduce_mean(tf.square(model.head(ids, vectors, rows, training=True) - 1.0))
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables))
    for index, (table, gradient) in enumerate(zip(variables, gradients)):
        if not is_table(table):
            continue
        assert isinstance(gradient, tf.IndexedSlices), table.name
        field = "user" if "user" in table.name else "device"
        read = sorted(set(ids[field].numpy().tolist()))
        unread = [row for row in range(table.shape[0]) if row not in read]
        np.testing.assert_array_equal(table.numpy()[unread], before[table.name][unread])
        m, v = _slots(optimizer, index)
        assert not np.any(m[unread]) and not np.any(v[unread]), table.name
        assert np.all(np.any(m[read] != 0, axis=1)), table.name  # AMTL masks zero some dims
