"""Tests for `DimensionPlan`: derivation, parameter counts, plan.json and errors."""

import json

import numpy as np
import pytest

from keras_dimsel.autodim.plan import PLAN_KEYS, DimensionPlan

CANDIDATES = (2, 4, 8)
VOCAB = {"user": 1000, "genre": 20, "age": 7}
ALPHA = {
    "user": [0.1, 0.7, 0.2],
    "genre": [0.6, 0.3, 0.1],
    "age": [0.4, 0.4, 0.2],
}


@pytest.fixture
def plan() -> DimensionPlan:
    return DimensionPlan.from_alpha(ALPHA, CANDIDATES, VOCAB)


def test_from_alpha_picks_the_candidate_of_the_largest_weight(plan):
    assert plan.fields == {"user": 4, "genre": 2, "age": 2}
    assert plan.field_names == ["user", "genre", "age"]
    assert plan.candidates == (2, 4, 8)
    assert plan.alpha == ALPHA


def test_from_alpha_breaks_ties_toward_the_smaller_dimension():
    alpha = {"a": [0.1, 0.45, 0.45], "b": [0.5, 0.0, 0.5], "c": [1 / 3, 1 / 3, 1 / 3]}
    plan = DimensionPlan.from_alpha(alpha, CANDIDATES, {"a": 3, "b": 3, "c": 3})
    assert plan.fields == {"a": 4, "b": 2, "c": 2}


def test_from_alpha_accepts_arrays_and_ignores_unsearched_vocab_sizes():
    plan = DimensionPlan.from_alpha(
        {"user": np.array([0.2, 0.3, 0.5], dtype=np.float32)},
        [2, 4, 8],
        {"user": np.int64(10), "label_like": 2},
    )
    assert plan.fields == {"user": 8}
    assert plan.vocab_sizes == {"user": 10}
    assert plan.alpha["user"] == pytest.approx([0.2, 0.3, 0.5])


def _two_field_plan():
    return DimensionPlan.from_alpha(
        {"user": [0.2, 0.3, 0.5], "genre": [0.1, 0.2, 0.7]},
        candidates=(2, 4, 8),
        vocab_sizes={"user": 1000, "genre": 20},
    )


@pytest.mark.parametrize(
    "budget, fields",
    [
        # 8,160 numbers at full dimension; the argmax plan (8, 8) is all of it.
        (1.0, {"user": 8, "genre": 8}),
        # 4,896 allowed: user 4 + genre 8 = 4,160 is the most probable fitting plan.
        (0.6, {"user": 4, "genre": 8}),
        # 4,080 allowed: (4, 4) fits exactly, but 0.2 * 0.7 for (2, 8) beats 0.3 * 0.2.
        (0.5, {"user": 2, "genre": 8}),
        # 2,040 allowed: user 2 (2,000) leaves 40, which only buys genre 2.
        (0.25, {"user": 2, "genre": 2}),
    ],
)
def test_within_budget_keeps_the_most_probable_plan_that_fits(budget, fields):
    plan = _two_field_plan()
    fitted = plan.within_budget(budget)
    assert fitted.fields == fields
    assert fitted.embedding_params <= budget * fitted.full_embedding_params
    assert fitted.alpha == plan.alpha
    assert DimensionPlan.from_alpha(plan.alpha, (2, 4, 8), plan.vocab_sizes, budget).fields == (
        fields
    )


def test_within_budget_matches_exhaustive_search_on_random_plans():
    import itertools

    rng = np.random.default_rng(0)
    candidates = (2, 4, 8, 16)
    for _ in range(30):
        names = [f"f{i}" for i in range(4)]
        alpha = {name: rng.dirichlet(np.ones(4)).tolist() for name in names}
        vocab = {name: int(rng.integers(1, 500)) for name in names}
        plan = DimensionPlan.from_alpha(alpha, candidates, vocab)
        budget = float(rng.uniform(0.2, 0.9))
        limit = budget * plan.full_embedding_params
        best = max(
            sum(np.log(alpha[name][n]) for name, n in zip(names, choice))
            for choice in itertools.product(range(4), repeat=4)
            if sum(vocab[name] * candidates[n] for name, n in zip(names, choice)) <= limit
        )
        fitted = plan.within_budget(budget)
        score = sum(np.log(alpha[n][candidates.index(d)]) for n, d in fitted.fields.items())
        assert fitted.embedding_params <= limit
        # Below 100,000 parameters the dynamic programme is exact.
        assert score == pytest.approx(best)


@pytest.mark.parametrize(
    "budget, message",
    [
        (0.0, "`budget` must be in (0, 1]. Received: budget=0.0"),
        (1.5, "`budget` must be in (0, 1]. Received: budget=1.5"),
        ("half", "`budget` must be a number in (0, 1]. Received: budget='half'"),
        (0.2, "No plan fits a budget of 0.2: the smallest candidate 2 in every field already "
              "takes 25.0% of the full model's embedding parameters."),
    ],
)  # fmt: skip
def test_within_budget_rejects_budgets_it_cannot_meet(budget, message):
    with pytest.raises(ValueError) as error:
        _two_field_plan().within_budget(budget)
    assert str(error.value) == message


def test_within_budget_fits_large_tables_in_rounded_units():
    rng = np.random.default_rng(1)
    names = [f"f{i}" for i in range(40)]
    alpha = {name: rng.dirichlet(np.ones(5)).tolist() for name in names}
    vocab = {name: int(rng.integers(1, 10_000_000)) for name in names}
    plan = DimensionPlan.from_alpha(alpha, (2, 8, 16, 24, 32), vocab)
    for budget in (0.07, 0.3, 0.6):
        fitted = plan.within_budget(budget)
        assert fitted.embedding_params <= budget * plan.full_embedding_params
        # Rounding gives up at most one unit (1e-5 of the budget) per field.
        assert fitted.embedding_params >= 0.8 * budget * plan.full_embedding_params


def test_within_budget_needs_alpha_or_probe_losses():
    plan = DimensionPlan(fields={"a": 8}, candidates=(2, 8), vocab_sizes={"a": 10})
    with pytest.raises(ValueError, match="without alpha or probe losses"):
        plan.within_budget(0.5)


LOSSES = {
    # The loss keeps falling: the largest candidate is worth its size.
    "user": [0.630, 0.620, 0.610],
    # Flat within 0.002 of the best: the smallest candidate is enough.
    "genre": [0.6105, 0.6110, 0.6100],
    # 4 is within the tolerance of 8's loss; 2 is not.
    "age": [0.6150, 0.6115, 0.6100],
}


@pytest.mark.parametrize(
    "tolerance, fields",
    [
        (0.002, {"user": 8, "genre": 2, "age": 4}),
        (0.0, {"user": 8, "genre": 8, "age": 8}),
        (0.01, {"user": 4, "genre": 2, "age": 2}),
        (1.0, {"user": 2, "genre": 2, "age": 2}),
    ],
)
def test_from_losses_keeps_the_smallest_candidate_within_the_tolerance(tolerance, fields):
    plan = DimensionPlan.from_losses(LOSSES, CANDIDATES, VOCAB, tolerance=tolerance, alpha=ALPHA)
    assert plan.fields == fields
    assert plan.probe_loss == LOSSES
    assert plan.alpha == ALPHA


def test_from_losses_with_a_budget_minimises_the_summed_loss_that_fits():
    import itertools

    vocab = {"user": 1000, "genre": 900, "age": 800}
    plan = DimensionPlan.from_losses(LOSSES, CANDIDATES, vocab, tolerance=0.0)
    for budget in (0.3, 0.5, 0.7):
        limit = budget * plan.full_embedding_params
        best = min(
            sum(LOSSES[name][n] for name, n in zip(vocab, choice))
            for choice in itertools.product(range(3), repeat=3)
            if sum(vocab[name] * CANDIDATES[n] for name, n in zip(vocab, choice)) <= limit
        )
        fitted = DimensionPlan.from_losses(LOSSES, CANDIDATES, vocab, 0.0, budget=budget)
        total = sum(LOSSES[n][CANDIDATES.index(d)] for n, d in fitted.fields.items())
        assert fitted.embedding_params <= limit
        assert total == pytest.approx(best)
        assert fitted.probe_loss == LOSSES


def test_probe_losses_survive_save_and_load(tmp_path):
    plan = DimensionPlan.from_losses(LOSSES, CANDIDATES, VOCAB)
    loaded = DimensionPlan.load(plan.save(str(tmp_path / "plan.json")))
    assert loaded == plan
    assert loaded.probe_loss == LOSSES


@pytest.mark.parametrize(
    "losses, tolerance, message",
    [
        ({"user": [0.6, 0.5]}, 0.002, "probe_loss of field 'user' must have one value per"),
        ({"user": [0.6, float("nan"), 0.5]}, 0.002, "probe_loss of field 'user' is not finite"),
        ({"user": [0.6, 0.5, 0.4]}, -0.1, "`tolerance` must be a finite number >= 0"),
        ({"user": [0.6, 0.5, 0.4]}, float("inf"), "`tolerance` must be a finite number >= 0"),
        ({"nobody": [0.6, 0.5, 0.4]}, 0.002, "Field 'nobody' has no vocabulary size"),
    ],
)
def test_from_losses_rejects_bad_input(losses, tolerance, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        DimensionPlan.from_losses(losses, CANDIDATES, VOCAB, tolerance=tolerance)


def test_parameter_counts_match_hand_computed_values(plan):
    # user 1000 * 4, genre 20 * 2, age 7 * 2; full model: every field at 8.
    assert plan.params_by_field() == {"user": 4000, "genre": 40, "age": 14}
    assert plan.embedding_params == 4054
    assert plan.full_embedding_params == (1000 + 20 + 7) * 8 == 8216
    assert plan.saving == pytest.approx(1 - 4054 / 8216)


def test_plan_without_alpha_is_valid_and_saving_is_zero_at_full_dimension():
    plan = DimensionPlan(fields={"x": 8}, candidates=(2, 8), vocab_sizes={"x": 5})
    assert plan.alpha == {}
    assert plan.embedding_params == plan.full_embedding_params == 40
    assert plan.saving == 0.0


def test_json_has_exactly_the_plan_json_keys(plan, tmp_path):
    path = plan.save(str(tmp_path / "plan.json"))
    with open(path) as f:
        record = json.load(f)
    assert list(record) == list(PLAN_KEYS)
    assert set(record) == {
        "fields",
        "candidates",
        "embedding_params",
        "full_embedding_params",
        "alpha",
        "probe_loss",
        "vocab_sizes",
    }
    assert record == {
        "fields": {"user": 4, "genre": 2, "age": 2},
        "candidates": [2, 4, 8],
        "embedding_params": 4054,
        "full_embedding_params": 8216,
        "alpha": ALPHA,
        "probe_loss": {},
        "vocab_sizes": {"user": 1000, "genre": 20, "age": 7},
    }
    assert list(record["fields"]) == ["user", "genre", "age"]


def test_save_and_load_round_trip(plan, tmp_path):
    path = plan.save(str(tmp_path / "plan.json"))
    loaded = DimensionPlan.load(path)
    assert loaded == plan
    assert loaded.field_names == plan.field_names
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temporary left


def test_save_and_load_accept_a_directory(plan, tmp_path):
    path = plan.save(str(tmp_path))
    assert path == str(tmp_path / "plan.json")
    assert DimensionPlan.load(str(tmp_path)) == plan


def test_load_recomputes_counts_of_a_hand_edited_plan(plan, tmp_path):
    record = plan.to_json()
    record["fields"]["user"] = 8
    (tmp_path / "plan.json").write_text(json.dumps(record))
    loaded = DimensionPlan.load(str(tmp_path / "plan.json"))
    assert loaded.embedding_params == 8000 + 40 + 14


def test_load_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / "nowhere.json")
    with pytest.raises(FileNotFoundError, match="nowhere.json not found"):
        DimensionPlan.load(path)


def test_load_malformed_json_names_the_path(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"fields": {"user": 4},')
    with pytest.raises(ValueError, match=r"plan\.json is not valid JSON"):
        DimensionPlan.load(str(path))


def test_load_json_that_is_not_a_plan_names_the_path(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text('{"fields": {"user": 4}}')
    with pytest.raises(ValueError, match=r"plan\.json is not a valid plan.*candidates"):
        DimensionPlan.load(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        DimensionPlan.load(str(path))


@pytest.mark.parametrize("candidates", [(), (0, 2), (-2, 4), (4, 2), (2, 2, 4), (2.0, 4), None])
def test_invalid_candidates_are_rejected(candidates):
    with pytest.raises(ValueError, match="`candidates` must be a non-empty sequence of positive"):
        DimensionPlan(fields={"x": 2}, candidates=candidates, vocab_sizes={"x": 3})
    with pytest.raises(ValueError, match="`candidates` must be a non-empty sequence of positive"):
        DimensionPlan.from_alpha({"x": [1.0]}, candidates, {"x": 3})


def test_alpha_of_the_wrong_length_is_rejected():
    with pytest.raises(ValueError, match=r"alpha of field 'genre' must have one value per cand"):
        DimensionPlan.from_alpha({"genre": [0.5, 0.5]}, CANDIDATES, VOCAB)
    with pytest.raises(ValueError, match=r"alpha of field 'x' must have one value per candidate"):
        DimensionPlan(fields={"x": 2}, candidates=(2, 4), vocab_sizes={"x": 3}, alpha={"x": [1]})


def test_alpha_that_is_not_finite_is_rejected():
    with pytest.raises(ValueError, match="alpha of field 'x' is not finite"):
        DimensionPlan.from_alpha({"x": [float("nan"), 0.5]}, (2, 4), {"x": 3})


def test_alpha_not_covering_the_fields_is_rejected():
    with pytest.raises(ValueError, match=r"Not in the plan: \['y'\]; without alpha: \['x'\]"):
        DimensionPlan(
            fields={"x": 2}, candidates=(2, 4), vocab_sizes={"x": 3}, alpha={"y": [0.5, 0.5]}
        )


@pytest.mark.parametrize("dim", [3, 16, 2.0, True])
def test_a_dimension_outside_the_candidates_is_rejected(dim):
    with pytest.raises(ValueError, match=r"dimension of field 'x' must be one of the candidates"):
        DimensionPlan(fields={"x": dim}, candidates=(2, 4), vocab_sizes={"x": 3})


def test_an_empty_plan_is_rejected():
    with pytest.raises(ValueError, match="`fields` must be a non-empty dict"):
        DimensionPlan(fields={}, candidates=(2, 4), vocab_sizes={})


def test_a_field_without_vocab_size_is_rejected():
    with pytest.raises(ValueError, match=r"Field 'age' has no vocabulary size"):
        DimensionPlan.from_alpha(ALPHA, CANDIDATES, {"user": 1000, "genre": 20})
    with pytest.raises(ValueError, match=r"Field 'x' has no vocabulary size"):
        DimensionPlan(fields={"x": 2}, candidates=(2, 4), vocab_sizes={})


def test_vocab_size_of_a_field_not_in_the_plan_is_rejected():
    with pytest.raises(ValueError, match=r"field\(s\) \['y'\] that are not in the plan"):
        DimensionPlan(fields={"x": 2}, candidates=(2, 4), vocab_sizes={"x": 3, "y": 4})


@pytest.mark.parametrize("size", [0, -5, 2.5, "10"])
def test_non_positive_vocab_size_is_rejected(size):
    with pytest.raises(ValueError, match=r"vocabulary size of field 'x' must be a positive integ"):
        DimensionPlan(fields={"x": 2}, candidates=(2, 4), vocab_sizes={"x": size})


def test_check_fields_accepts_the_same_fields_in_any_order(plan):
    plan.check_fields(["age", "user", "genre"])


def test_check_fields_names_unknown_and_missing_fields(plan):
    with pytest.raises(ValueError, match=r"plan field\(s\) \['age'\] are not among the fields"):
        plan.check_fields(["user", "genre"])
    with pytest.raises(ValueError, match=r"field\(s\) \['zip'\] have no dimension in the plan"):
        plan.check_fields(["user", "genre", "age", "zip"])


def test_plan_is_frozen(plan):
    with pytest.raises(AttributeError):
        plan.candidates = (2,)


def test_summary_table_lists_fields_and_totals(plan):
    assert plan.summary_table() == "\n".join(
        [
            "field  vocab_size  dim  params  full_params  of_full",
            "----------------------------------------------------",
            "user        1,000    4   4,000        8,000    50.0%",
            "genre          20    2      40          160    25.0%",
            "age             7    2      14           56    25.0%",
            "----------------------------------------------------",
            "total       1,027        4,054        8,216    49.3%",
            "candidates [2, 4, 8]; full model uses dim 8; saving 50.7% of embedding parameters",
        ]
    )


def test_build_embeddings_gives_one_layer_per_field_at_its_dimension(plan):
    layers = plan.build_embeddings(output_dim=8, unify="zero_pad")
    assert list(layers) == ["user", "genre", "age"]
    assert [(layer.vocab_size, layer.dim, layer.output_dim) for layer in layers.values()] == [
        (1000, 4, 8),
        (20, 2, 8),
        (7, 2, 8),
    ]
    assert layers["genre"].name == "embedding_genre"
    assert sum(layer.embedding_params for layer in layers.values()) == plan.embedding_params
