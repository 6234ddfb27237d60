"""The training memory estimate: what it counts, and that every run records it."""

import pytest
import tensorflow as tf

from keras_dimsel.training.memory import (
    BYTES_PER_ID,
    BYTES_PER_NUMBER,
    DENSE_ADAM_COPIES,
    RUNTIME_BYTES,
    model_training_memory,
    training_memory,
)


def test_each_number_counts_with_the_optimizers_slots_and_each_id_with_its_lookup():
    lazy = training_memory(1_000_000, 10_000, "lazy_adam")
    assert lazy == RUNTIME_BYTES + 1_000_000 * BYTES_PER_NUMBER * 3 + 10_000 * BYTES_PER_ID
    assert lazy - training_memory(1_000_000, 10_000, "adagrad") == 1_000_000 * BYTES_PER_NUMBER


def test_dense_adam_adds_whole_table_temporaries_for_the_tables_only():
    lazy = training_memory(1_000_000, 0, "lazy_adam", table_numbers=900_000)
    dense = training_memory(1_000_000, 0, "adam", table_numbers=900_000)
    assert dense - lazy == DENSE_ADAM_COPIES * BYTES_PER_NUMBER * 900_000


def test_an_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="`embedding_optimizer` must be one of"):
        training_memory(1, 1, "sgd")


def test_frozen_variables_count_once_and_extra_bytes_are_added():
    table = tf.keras.layers.Embedding(1000, 8)
    frozen = tf.keras.layers.Embedding(500, 4, trainable=False)
    inputs = tf.keras.Input([1], dtype="int64")
    model = tf.keras.Model(inputs, [table(inputs), frozen(inputs)])
    estimate, numbers = model_training_memory(model, 1500, "lazy_adam", extra_bytes=77)
    assert numbers == 8000
    expected = training_memory(8000, 1500, "lazy_adam") + 2000 * BYTES_PER_NUMBER + 77
    assert estimate == expected
