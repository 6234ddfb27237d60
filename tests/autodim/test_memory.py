"""The supernet memory estimate and the budget checked before a search."""

import pytest

from keras_dimsel.autodim.memory import (
    MemoryBudgetError,
    check_search_memory,
    search_memory,
    supernet_numbers,
)
from keras_dimsel.training.memory import format_size, parse_size

VOCAB = {"user": 1000, "item": 500, "genre": 20}


def test_shared_storage_holds_the_largest_candidate_and_the_wide_weight_per_value():
    assert supernet_numbers(VOCAB, (2, 8, 16)) == 1520 * (16 + 1)


def test_separate_storage_holds_every_candidate():
    assert supernet_numbers(VOCAB, (2, 8, 16), "separate") == 1520 * (2 + 8 + 16 + 1)


def test_within_the_budget_the_estimate_is_described():
    numbers = 1520 * 17
    budget = search_memory(VOCAB, (2, 8, 16), "shared")
    line = check_search_memory(VOCAB, (2, 8, 16), "shared", budget=budget)
    assert line.startswith(f"search supernet: {numbers:,} embedding numbers")


def test_over_the_budget_the_error_names_the_largest_field_and_what_to_change():
    budget = search_memory(VOCAB, (2, 8, 16), "separate") - 1
    with pytest.raises(MemoryBudgetError) as caught:
        check_search_memory(VOCAB, (2, 8, 16), "separate", budget=budget)
    message = str(caught.value)
    assert "'user' with 1,000 values" in message
    assert "--storage shared" in message and "--memory-budget" in message
    assert len(message.splitlines()) == 1


def test_no_budget_skips_the_check():
    assert "no budget" in check_search_memory({"user": 10**9}, (2, 64), "shared", budget=None)


@pytest.mark.parametrize(
    "text, size",
    [("4096", 4096), ("512M", 512 * 2**20), ("8g", 8 * 2**30), ("1.5GiB", 3 * 2**29)],
)
def test_sizes_parse_with_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "-1G", "8X", "G", "eight"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError, match="expected a positive size"):
        parse_size(text)


def test_format_size():
    assert [format_size(s) for s in (10, 2048, 5 * 2**20)] == ["10 B", "2.0 KiB", "5.0 MiB"]


def test_bad_storage():
    with pytest.raises(ValueError, match="`storage` must be one of"):
        supernet_numbers(VOCAB, (2, 8), "dense")
