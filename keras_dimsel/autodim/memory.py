"""How much memory a search supernet takes, checked against a budget before it is built.

The supernet's embedding tables dominate its memory: per field, a `[vocab,
d_N]` table with shared storage or one `[vocab, d_i]` table per candidate with
separate storage, plus the one-number first-order (wide) weight of each
value. Training keeps two Adam slots beside every number, so each takes 12
bytes. The network, the unify projections and alpha are small next to the
tables and are left out of the estimate.
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional, Sequence

#: Bytes per trained number: float32 weight plus Adam's two float32 slots.
BYTES_PER_NUMBER = 4 * 3
#: The default budget: this fraction of the machine's physical memory.
DEFAULT_BUDGET_FRACTION = 0.8
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


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


def check_search_memory(
    vocab_sizes: Mapping[str, int],
    candidates: Sequence[int],
    storage: str,
    budget: Optional[int],
) -> str:
    """Estimates the supernet's training memory and refuses one over `budget`.

    Args:
        vocab_sizes: dict of field name to vocabulary size.
        candidates: sequence of int, the candidate dimensions.
        storage: str, `"shared"` or `"separate"`.
        budget: int or None, bytes; None skips the check.

    Returns:
        str, one line describing the estimate, for the run's log.

    Raises:
        MemoryBudgetError: when the estimate exceeds `budget`, with what to change.

    Examples:

        >>> print(check_search_memory({"user": 10**6}, (2, 8, 16), "shared", budget=2**30))
        search supernet: 17,000,000 embedding numbers, about 194.5 MiB with Adam's slots \
(budget 1.0 GiB)
        >>> try:
        ...     check_search_memory({"user": 10**8}, (2, 8, 16), "separate", budget=2**30)
        ... except MemoryBudgetError as error:
        ...     print(str(error)[:65])
        the search supernet needs about 30.2 GiB (2,700,000,000 embedding
    """
    numbers = supernet_numbers(vocab_sizes, candidates, storage)
    estimate = numbers * BYTES_PER_NUMBER
    if budget is not None and estimate > budget:
        largest = max(vocab_sizes, key=vocab_sizes.get)
        advice = (
            "fewer or smaller candidates, --storage shared"
            if storage == "separate"
            else ("fewer or smaller candidates")
        )
        raise MemoryBudgetError(
            f"the search supernet needs about {format_size(estimate)} ({numbers:,} embedding "
            f"numbers with Adam's slots), over the memory budget of {format_size(budget)}; "
            f"the largest field is {largest!r} with {vocab_sizes[largest]:,} values. Use "
            f"{advice}, cap the vocabularies (dimsel preprocess --max-vocab-size), or raise "
            "--memory-budget"
        )
    described = f"budget {format_size(budget)}" if budget is not None else "no budget"
    return (
        f"search supernet: {numbers:,} embedding numbers, about {format_size(estimate)} "
        f"with Adam's slots ({described})"
    )
