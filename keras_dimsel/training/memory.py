"""How much memory training takes: an estimate from the tables, sizes and budgets.

A training process's resident memory is, to within a few percent at millions
of ids, a fixed part plus parts that grow with the vocabularies:

- the runtime (`RUNTIME_BYTES`): Python, TensorFlow, Keras and the library
  imported, the traced functions, the input pipeline's buffers;
- every trainable number (4 bytes, float32) and the optimizer's slots beside
  it (`OPTIMIZER_SLOTS`: Adam's `m` and `v`, Adagrad's accumulator), almost
  all of them in the embedding tables;
- per vocabulary id (`BYTES_PER_ID`): its entry in the lookup's hash table and
  the id's share of the per-id arrays (counts, frequency features);
- with dense Adam, `DENSE_ADAM_COPIES` tables' worth of temporaries of its update.

The constants are measured with `benchmarks/scale.py` (its `runs` part runs
the command line on 10k and 3M ids and compares this estimate with the peak
RSS).
"""

from __future__ import annotations

import os
import re
from typing import Optional

#: Bytes of a training process besides the tables and the per-id costs.
RUNTIME_BYTES = 750 * 2**20
#: Bytes of one float32 number.
BYTES_PER_NUMBER = 4
#: Optimizer slots beside each trainable number, per `--embedding-optimizer`.
OPTIMIZER_SLOTS = {"lazy_adam": 2, "adagrad": 1, "adam": 2}
#: Whole-table temporaries of tf_keras's dense Adam update (the decayed slots and the
#: step), in tables: 1.4 measured at 3M ids.
DENSE_ADAM_COPIES = 1.5
#: Bytes per vocabulary id: the lookup's hash table entry and the per-id arrays.
BYTES_PER_ID = 48
#: The default budget: this fraction of the machine's physical memory.
DEFAULT_BUDGET_FRACTION = 0.8
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def training_memory(
    numbers: int,
    ids: int,
    embedding_optimizer: str = "lazy_adam",
    table_numbers: Optional[int] = None,
) -> int:
    """Estimated peak resident bytes of training a model.

    Args:
        numbers: int, the model's trainable float32 numbers (tables included).
        ids: int, the ids of all vocabularies (the lookups' entries).
        embedding_optimizer: str, a key of `OPTIMIZER_SLOTS`.
        table_numbers: int or None, how many of `numbers` are in embedding
            tables (None: all); only dense Adam's temporaries depend on it.

    Returns:
        int, bytes.

    Raises:
        ValueError: on an unknown optimizer.

    Examples:

        >>> format_size(training_memory(100_000_000, 3_000_000))
        '2.0 GiB'
        >>> format_size(training_memory(100_000_000, 3_000_000, "adagrad"))
        '1.6 GiB'
    """
    if embedding_optimizer not in OPTIMIZER_SLOTS:
        raise ValueError(
            f"`embedding_optimizer` must be one of {tuple(OPTIMIZER_SLOTS)}. "
            f"Received: embedding_optimizer={embedding_optimizer!r}"
        )
    per_number = BYTES_PER_NUMBER * (1 + OPTIMIZER_SLOTS[embedding_optimizer])
    estimate = RUNTIME_BYTES + numbers * per_number + ids * BYTES_PER_ID
    if embedding_optimizer == "adam":
        tables = numbers if table_numbers is None else table_numbers
        estimate += DENSE_ADAM_COPIES * BYTES_PER_NUMBER * tables
    return int(estimate)


def describe_training_memory(
    estimate: int, numbers: int, embedding_optimizer: str, what: str = "training"
) -> str:
    """One line for a run's log: the estimate and what it counts.

    Examples:

        >>> print(describe_training_memory(2**31, 100_000_000, "lazy_adam"))
        training: about 2.0 GiB of memory (100,000,000 trainable numbers with lazy_adam's 2 \
slots, the lookups and the runtime)
    """
    slots = OPTIMIZER_SLOTS[embedding_optimizer]
    return (
        f"{what}: about {format_size(estimate)} of memory ({numbers:,} trainable numbers with "
        f"{embedding_optimizer}'s {slots} slot{'s' if slots > 1 else ''}, the lookups and the "
        "runtime)"
    )


def model_training_memory(
    model, ids: int, embedding_optimizer: str, extra_bytes: int = 0
) -> tuple[int, int]:
    """The estimate of `training_memory` for a built model.

    Non-trainable variables (AMTL's frequency features) count once, without slots.

    Args:
        model: a built Keras model.
        ids: int, the ids of its vocabularies.
        embedding_optimizer: str, a key of `OPTIMIZER_SLOTS`.
        extra_bytes: int, what the run holds besides (AMTL: its compact copy).

    Returns:
        `(estimate, numbers)`: bytes, and the model's trainable numbers.

    Examples:

        >>> import tensorflow as tf
        >>> model = tf.keras.Sequential([tf.keras.layers.Embedding(1000, 8)])
        >>> model.build([None, 1])
        >>> estimate, numbers = model_training_memory(model, 1000, "lazy_adam")
        >>> numbers, estimate - RUNTIME_BYTES
        (8000, 144000)
    """
    from keras_dimsel.training.optimizers import is_table

    trainable = model.trainable_variables
    numbers = sum(int(v.shape.num_elements()) for v in trainable)
    tables = sum(int(v.shape.num_elements()) for v in trainable if is_table(v))
    frozen = sum(int(v.shape.num_elements()) for v in model.non_trainable_variables)
    estimate = training_memory(numbers, ids, embedding_optimizer, tables)
    return estimate + BYTES_PER_NUMBER * frozen + int(extra_bytes), numbers


def physical_memory() -> Optional[int]:
    """The machine's physical memory in bytes, or None where the OS does not say.

    Examples:

        >>> physical_memory() is None or physical_memory() > 0
        True
    """
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def default_budget() -> Optional[int]:
    """80% of the physical memory, or None (no check) where it is unknown.

    Examples:

        >>> budget = default_budget()
        >>> budget is None or budget == int(0.8 * physical_memory())
        True
    """
    memory = physical_memory()
    return None if memory is None else int(DEFAULT_BUDGET_FRACTION * memory)


def parse_size(text: str) -> int:
    """A size in bytes from text such as `512M`, `8G`, `8GiB` or `1000000`.

    Args:
        text: str, a positive number with an optional unit K, M, G or T
            (powers of 1024; `B`, `iB` suffixes allowed).

    Returns:
        int, bytes.

    Raises:
        ValueError: when the text is not a positive size.

    Examples:

        >>> parse_size("8G"), parse_size("1.5 GiB"), parse_size("4096")
        (8589934592, 1610612736, 4096)
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(text), re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"expected a positive size such as 512M or 8G, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: float) -> str:
    """Bytes as a short human string (powers of 1024).

    Examples:

        >>> format_size(512), format_size(3 * 2**30)
        ('512 B', '3.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
