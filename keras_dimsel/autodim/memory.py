"""How much memory a search supernet takes, checked against a budget before it is built.

The supernet's embedding tables dominate its memory: per field, a `[vocab,
d_N]` table with shared storage or one `[vocab, d_i]` table per candidate with
separate storage, plus the one-number first-order (wide) weight of each
value. Training keeps the optimizer's slots beside every number; the
estimate (`keras_dimsel.training.memory.training_memory`) adds the lookups and
the runtime. The network, the unify projections and alpha are small next to
the tables and are left out.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from keras_dimsel.training.memory import format_size, training_memory


class MemoryBudgetError(ValueError):
    """The supernet would not fit the memory budget (raised before it is built).

    Examples:

        >>> issubclass(MemoryBudgetError, ValueError)
        True
    """


def supernet_numbers(
    vocab_sizes: Mapping[str, int], candidates: Sequence[int], storage: str = "shared"
) -> int:
    """The embedding numbers of a search supernet (tables and first-order weights).

    Args:
        vocab_sizes: dict of field name to vocabulary size.
        candidates: sequence of int, the candidate dimensions.
        storage: str, `"shared"` (one table of the largest dim per field) or
            `"separate"` (one table per candidate).

    Returns:
        int, the number of float32 numbers.

    Raises:
        ValueError: on an unknown `storage`.

    Examples:

        >>> supernet_numbers({"user": 1000, "genre": 20}, (2, 8, 16))  # 1020 * (16 + 1)
        17340
        >>> supernet_numbers({"user": 1000, "genre": 20}, (2, 8, 16), "separate")
        27540
    """
    if storage not in ("shared", "separate"):
        raise ValueError(
            f"`storage` must be one of ('shared', 'separate'). Received: storage={storage!r}"
        )
    per_value = max(candidates) if storage == "shared" else sum(candidates)
    return sum(int(size) * (per_value + 1) for size in vocab_sizes.values())


def search_memory(
    vocab_sizes: Mapping[str, int],
    candidates: Sequence[int],
    storage: str = "shared",
    embedding_optimizer: str = "lazy_adam",
) -> int:
    """Estimated peak resident bytes of training the supernet (`training_memory`).

    Examples:

        >>> format_size(search_memory({"user": 3_000_000}, (2, 8, 16, 24, 32)))
        '2.0 GiB'
    """
    numbers = supernet_numbers(vocab_sizes, candidates, storage)
    return training_memory(numbers, sum(vocab_sizes.values()), embedding_optimizer)


def check_search_memory(
    vocab_sizes: Mapping[str, int],
    candidates: Sequence[int],
    storage: str,
    budget: Optional[int],
    embedding_optimizer: str = "lazy_adam",
) -> str:
    """Estimates the supernet's training memory and refuses one over `budget`.

    Args:
        vocab_sizes: dict of field name to vocabulary size.
        candidates: sequence of int, the candidate dimensions.
        storage: str, `"shared"` or `"separate"`.
        budget: int or None, bytes; None skips the check.
        embedding_optimizer: str, how the tables learn (how many slots they keep).

    Returns:
        str, one line describing the estimate, for the run's log.

    Raises:
        MemoryBudgetError: when the estimate exceeds `budget`, with what to change.

    Examples:

        >>> print(check_search_memory({"user": 10**6}, (2, 8, 16), "shared", budget=2**31))
        search supernet: 17,000,000 embedding numbers, about 990.3 MiB in training with \
lazy_adam's slots (budget 2.0 GiB)
        >>> try:
        ...     check_search_memory({"user": 10**8}, (2, 8, 16), "separate", budget=2**30)
        ... except MemoryBudgetError as error:
        ...     print(str(error)[:65])
        the search supernet needs about 35.4 GiB (2,700,000,000 embedding
    """
    numbers = supernet_numbers(vocab_sizes, candidates, storage)
    estimate = search_memory(vocab_sizes, candidates, storage, embedding_optimizer)
    slots = f"{embedding_optimizer}'s slots"
    if budget is not None and estimate > budget:
        largest = max(vocab_sizes, key=vocab_sizes.get)
        advice = (
            "fewer or smaller candidates, --storage shared"
            if storage == "separate"
            else ("fewer or smaller candidates")
        )
        raise MemoryBudgetError(
            f"the search supernet needs about {format_size(estimate)} ({numbers:,} embedding "
            f"numbers with {slots}), over the memory budget of {format_size(budget)}; "
            f"the largest field is {largest!r} with {vocab_sizes[largest]:,} values. Use "
            f"{advice}, cap the vocabularies (dimsel preprocess --max-vocab-size), or raise "
            "--memory-budget"
        )
    described = f"budget {format_size(budget)}" if budget is not None else "no budget"
    return (
        f"search supernet: {numbers:,} embedding numbers, about {format_size(estimate)} "
        f"in training with {slots} ({described})"
    )
