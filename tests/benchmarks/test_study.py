"""The benchmark study's grid, aggregation, targets, schema, MDE rule and report (no training)."""

import doctest
import json
import pathlib

import numpy as np
import pytest

from benchmarks.study import cells as study_cells
from benchmarks.study import config as study_config
from benchmarks.study import records as study_records
from benchmarks.study import report as study_report
from benchmarks.study.config import CONFIGS, Cell, Dataset, StudyConfig, expand
from benchmarks.study.records import MET, NOT_MEASURED, NOT_MET

RESULTS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def quality(dataset, model, method, aucs, params, **extra):
    """A hand-made quality record (seeds 0..n-1)."""
    mean, std = study_records.mean_std(aucs)
    return {
        "kind": "quality",
        "dataset": dataset,
        "model": model,
        "method": method,
        "seeds": list(range(len(aucs))),
        "auc_mean": mean,
        "auc_std": std,
        "logloss_mean": 0.5,
        "embedding_params": params,
        "savedmodel_bytes": 1000,
        **extra,
    }


def cell(method, seed, auc, params, **extra):
    return {
        "dataset": "d",
        "model": "fm",
        "method": method,
        "seed": seed,
        "auc": auc,
        "logloss": 0.5,
        "embedding_params": params,
        "full_embedding_params": 1000,
        "savedmodel_bytes": 2000 + seed,
        **extra,
    }


# ---------------------------------------------------------------------------
# The grid.


def test_quick_config_expands_to_one_seed_of_the_core_methods():
    cells = expand(CONFIGS["quick"])
    assert len(cells) == 18  # (2 MovieLens models + 1 Criteo model) x 6 methods
    assert {c.dataset for c in cells} == {"movielens-100k", "criteo"}
    assert {c.seed for c in cells} == {0}
    assert [c.method for c in cells[:6]] == [
        "fde", "mde", "ras", "autodim_s", "autodim", "amtl_cold",
    ]  # fmt: skip
    assert cells[0] == Cell("movielens-100k", "fm", "fde", 0)
    assert cells[-1].key == "criteo/fm/amtl_cold/seed0"


def test_full_config_runs_every_method_backbone_and_three_seeds():
    config = CONFIGS["full"]
    cells = expand(config)
    assert {d.name for d in config.datasets} >= {"movielens-100k", "criteo", "avazu", "frappe"}
    everywhere = [m for m in study_config.METHODS.values() if m.models is None]
    # methods x models x seeds, and FM's plan retrained in wide_deep and deepfm
    per_dataset = len(everywhere) * 3 * 3 + 2 * 3
    assert len(cells) == per_dataset * len(config.datasets)
    transfers = {(c.model, c.seed) for c in cells if c.method == "autodim_fm_plan"}
    assert transfers == {(m, s) for m in ("wide_deep", "deepfm") for s in (0, 1, 2)}
    assert len(set(cells)) == len(cells)
    assert "frappe" not in dict(config.not_run)
    assert config.dataset("frappe").inputs == (
        "frappe/frappe.validation.libfm.gz",
        "frappe/frappe.test.libfm.gz",
    )


def test_a_dependency_runs_before_the_method_that_needs_it():
    dataset = Dataset("d", "synthetic", (), ("fm",))
    config = StudyConfig("t", (dataset,), ("amtl_warm", "autodim"), (0, 1), 2, None)
    assert [c.method for c in expand(config)] == ["fde", "amtl_warm", "autodim"] * 2


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method"):
        StudyConfig("t", (), ("autodim", "dpq"), (0,), 2, None)


# ---------------------------------------------------------------------------
# Aggregation over seeds.


def test_aggregation_gives_mean_and_sample_std_over_seeds():
    cells = [
        cell("fde", 0, 0.70, 1000),
        cell("fde", 2, 0.74, 1000),
        cell("fde", 1, 0.72, 1000),
        cell("autodim", 0, 0.71, 300, fields={"a": 8}),
        cell("autodim", 1, 0.73, 500, fields={"a": 16}),
    ]
    records = {r["method"]: r for r in study_records.aggregate(cells)}
    fde, auto = records["fde"], records["autodim"]
    assert fde["seeds"] == [0, 1, 2]
    assert fde["auc_mean"] == pytest.approx(0.72)
    assert fde["auc_std"] == pytest.approx(0.02)  # ddof=1
    assert fde["savedmodel_bytes"] == 2001
    assert "std_note" not in fde
    assert auto["embedding_params"] == 400
    assert auto["params_vs_fde"] == pytest.approx(0.4)
    assert auto["fields_by_seed"] == [{"a": 8}, {"a": 16}]


def test_one_seed_reports_a_zero_std_and_says_why():
    (record,) = study_records.aggregate([cell("fde", 3, 0.7, 1000)])
    assert record["auc_std"] == 0.0
    assert record["std_note"] == study_records.ONE_SEED_NOTE


# ---------------------------------------------------------------------------
# Stability.


def test_stability_is_the_mean_pairwise_pearson_r_of_the_dims():
    plans = [{"a": 2, "b": 8, "c": 16}, {"a": 2, "b": 8, "c": 32}, {"a": 2, "b": 8, "c": 16}]
    cells = [cell("autodim", seed, 0.7, 100, fields=plan) for seed, plan in enumerate(plans)]
    (record,) = study_records.stability(cells)
    r = study_records.pearson([2, 8, 16], [2, 8, 32])
    assert r == pytest.approx(216 / (98.667 * 504) ** 0.5, abs=1e-4)  # 0.9686
    assert study_records.pearson([8, 8, 8], [2, 8, 16]) is None  # no variance: no r
    assert record["pearson_mean"] == pytest.approx((r + r + 1.0) / 3)
    assert len(record["pairs"]) == 3


def test_stability_of_one_seed_is_not_measured():
    (record,) = study_records.stability([cell("autodim", 0, 0.7, 100, fields={"a": 2, "b": 8})])
    assert record["pearson_mean"] is None
    target = study_records.stability_target([record])
    assert target["status"] == NOT_MEASURED
    assert "one seed" in target["explanation"]


def test_identical_plans_are_stable_even_with_one_dim_for_every_field():
    plans = [{"a": 2, "b": 2, "c": 2}, {"a": 2, "b": 2, "c": 2}, {"a": 2, "b": 8, "c": 2}]
    cells = [cell("autodim", seed, 0.7, 100, fields=plan) for seed, plan in enumerate(plans)]
    (record,) = study_records.stability(cells)
    assert record["pairs"] == [[0, 1, 1.0]]  # (0, 2) and (1, 2) have no r
    assert record["pearson_mean"] == 1.0
    assert record["agreement"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert record["note"].startswith("2 pair(s) left out")
    assert study_records.stability_target([record])["status"] == MET


def test_stability_without_any_defined_pair_is_not_met():
    plans = [{"a": 2, "b": 2}, {"a": 2, "b": 8}]
    cells = [cell("autodim", seed, 0.7, 100, fields=plan) for seed, plan in enumerate(plans)]
    (record,) = study_records.stability(cells)
    assert record["pearson_mean"] is None and record["agreement"] == 0.5
    target = study_records.stability_target([record])
    assert target["status"] == NOT_MET
    assert target["details"] == [
        "NOT met: d/fm: no pair of seeds has a Pearson r; 50% of fields get the same dim"
    ]
    assert "Pearson's r is undefined" in target["explanation"]


# ---------------------------------------------------------------------------
# Targets.


def test_autodim_target_is_met_within_the_parameter_share_and_the_auc_tolerance():
    records = [
        quality("d", "fm", "fde", [0.70, 0.72, 0.74], 1000),
        quality("d", "fm", "autodim", [0.701, 0.701, 0.701], 400),  # >= 0.72 - 0.02
    ]
    target = study_records.autodim_target(records)
    assert target["status"] == MET
    assert target["details"] == [
        "met: d/fm: params 40.0% of FDE (<= 40%); AUC 0.7010 vs FDE 0.7200 - 0.0200 = 0.7000"
    ]
    assert "explanation" not in target


def test_autodim_target_not_met_says_which_part_failed_and_why():
    fields = {"user": 32, "genre": 2}
    records = [
        quality("d", "fm", "fde", [0.72], 1000),
        quality(
            "d", "fm", "autodim", [0.71], 500,
            fields_by_seed=[fields], vocab_sizes={"user": 15, "genre": 10},
        ),
        quality("e", "fm", "fde", [0.72], 1000),
        quality("e", "fm", "autodim", [0.73], 100),
    ]  # fmt: skip
    target = study_records.autodim_target(records)
    assert target["status"] == NOT_MET
    assert target["details"][0].startswith("NOT met: d/fm: params 50.0% of FDE")
    assert target["details"][1].startswith("met: e/fm")
    assert "d/fm: the plan keeps 50.0% of FDE's parameters" in target["explanation"]
    assert "user (15 ids) at dim 32" in target["explanation"]
    assert "d/fm: AUC -0.0100 against FDE" in target["explanation"]
    assert "With one seed the FDE std is 0.0" in target["explanation"]


def test_autodim_must_beat_ras_and_autodim_s_at_fewer_parameters():
    records = [
        quality("d", "fm", "autodim", [0.72], 300),
        quality("d", "fm", "ras", [0.71], 600),
        quality("d", "fm", "autodim_s", [0.72], 300),  # same params: not fewer
    ]
    target = study_records.autodim_vs_baselines_target(records)
    assert target["status"] == NOT_MET
    assert [d.split(":")[0] for d in target["details"]] == ["met", "NOT met"]
    assert "autodim_s uses no more parameters (300 <= 300)" in target["explanation"]


def test_amtl_target_checks_the_average_dim_and_the_auc():
    records = [
        quality("d", "fm", "fde", [0.72, 0.74], 1000),
        quality("d", "fm", "amtl_cold", [0.73], 200, average_dim=12.0, max_dim=32),
        quality("d", "fm", "amtl_warm", [0.73], 200, average_dim=14.0, max_dim=32),
    ]
    cold, warm = study_records.amtl_targets(records)
    assert cold["status"] == MET  # 37.5% of D; 0.73 >= 0.73 - 0.0141
    assert warm["status"] == NOT_MET  # 43.8% of D
    assert "the masks keep 43.8% of D" in warm["explanation"]


def test_speed_targets_compare_ratios_of_medians_with_their_direction():
    throughput = [
        {"kind": "throughput", "name": "search_vs_fde", "ratio": 0.5},
        {"kind": "throughput", "name": "retrain_vs_fde", "ratio": 0.9},
        {"kind": "throughput", "name": "serving_latency_vs_fde", "ratio": 1.0},
    ]
    statuses = {t["target"]: t["status"] for t in study_records.speed_targets(throughput)}
    assert statuses == {
        "search_vs_fde": MET,
        "retrain_vs_fde": NOT_MET,
        "serving_latency_vs_fde": MET,
    }
    missing = study_records.speed_targets([])
    assert {t["status"] for t in missing} == {NOT_MEASURED}


# ---------------------------------------------------------------------------
# Schema.


def test_generated_records_validate_against_the_schema():
    cells = [cell("fde", 0, 0.7, 1000), cell("autodim", 0, 0.7, 300, fields={"a": 2, "b": 8})]
    records = [{"kind": "run", "config": "quick", "machine": {}}]
    records += study_records.aggregate(cells) + study_records.stability(cells)
    records.append({"kind": "throughput", "name": "search_vs_fde", "ratio": 0.6})
    records += study_records.evaluate_targets(records)
    assert study_records.validate(records) is None
    assert json.loads(json.dumps(records)) == records  # summary.json must be plain JSON
    statuses = {r["target"]: r["status"] for r in records if r["kind"] == "target"}
    assert statuses["autodim_params_auc"] == MET  # 300 of 1000 params, the same AUC
    assert statuses["search_vs_fde"] == MET and statuses["retrain_vs_fde"] == NOT_MEASURED


@pytest.mark.parametrize(
    "record, message",
    [
        ({"kind": "quality", "dataset": "d"}, "missing"),
        ({"kind": "throughput", "name": "x", "ratio": "fast"}, "ratio must be a number"),
        ({"kind": "speed", "name": "x"}, "unknown kind"),
        (
            {"kind": "target", "target": "t", "description": "", "status": "OK", "details": []},
            "bad status",
        ),
    ],
)
def test_invalid_records_are_refused(record, message):
    with pytest.raises(study_records.SchemaError, match=message):
        study_records.validate([record])


def test_committed_summary_validates():
    path = RESULTS / "summary.json"
    if not path.exists():
        pytest.skip("no committed study results")
    records = json.loads(path.read_text())
    study_records.validate([r for r in records if r["kind"] != "failed_cell"])
    kinds = {r["kind"] for r in records}
    assert {"run", "quality", "throughput", "target"} <= kinds


# ---------------------------------------------------------------------------
# The MDE rule.


def test_mde_rule_gives_larger_dims_to_smaller_fields():
    # d_f = nearest candidate to 32 * ((1 / V_f) / (1 / 2)) ^ 0.3
    vocab = {"gender": 2, "age": 7, "zip": 100, "user": 1000}
    dims = study_config.mde_dims(vocab, (2, 8, 16, 24, 32), alpha=0.3)
    # 32, 21.98, 9.90, 4.96
    assert dims == {"gender": 32, "age": 24, "zip": 8, "user": 2}


@pytest.mark.parametrize("module", [study_cells, study_config, study_records])
def test_docstring_examples(module):
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert results.failed == 0


def test_mde_rounds_ties_down_and_alpha_zero_gives_full_dims():
    assert study_config.round_to_candidate(12.0, (16, 8, 2)) == 8
    assert study_config.round_to_candidate(13.0, (2, 8, 16)) == 16
    assert study_config.mde_dims({"a": 3, "b": 3000}, (2, 8), alpha=0.0) == {"a": 8, "b": 8}
    with pytest.raises(ValueError, match="alpha"):
        study_config.mde_dims({"a": 3}, (2, 8), alpha=-1.0)
    with pytest.raises(ValueError, match="vocabulary sizes"):
        study_config.mde_dims({"a": 0}, (2, 8), alpha=0.3)


def test_cells_are_counted_per_commit_and_a_mixed_study_says_so():
    cells = [{"code": {"commit": "abc"}}, {"code": {"commit": "def"}}, {"code": {"commit": "abc"}}]
    commits = study_records.cell_commits(cells + [{"seed": 0}])
    assert commits == {"abc": 2, "def": 1, "unrecorded": 1}
    run = {
        "machine": {"cpu_model": "cpu", "cpu_count": 2, "cpus_usable": 2, "memory_gib": 1,
                    "platform": "linux", "python": "3.10"},
        "code": {"commit": "def"}, "started": "now", "seconds": 60.0,
        "load_before": [0.0], "load_after": [0.0], "cell_commits": commits,
    }  # fmt: skip
    lines = study_report._machine_lines(run)
    assert (
        "- The cells were trained at more than one commit: abc (2), def (1), unrecorded (1) cells."
        in lines
    )
    run["cell_commits"] = {"def": 3}
    assert not any("more than one commit" in line for line in study_report._machine_lines(run))


def test_single_field_auc_scores_each_value_by_its_train_click_rate():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, size=4000)
    rate = np.linspace(0.05, 0.95, 50)  # value k clicks at rate[k]
    labels = (rng.random(4000) < rate[ids]).astype(float)
    train, test = slice(0, 3000), slice(3000, None)
    power = study_records.single_field_auc(ids[train], labels[train], ids[test], labels[test])
    best = study_records.auc(labels[test], rate[ids[test]])  # the true rates
    assert abs(power - best) < 0.02 and power > 0.7
    noise = rng.integers(0, 50, size=4000)  # a field that says nothing about the label
    useless = study_records.single_field_auc(noise[train], labels[train], noise[test], labels[test])
    assert abs(useless - 0.5) < 0.05
    assert study_records.auc(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.1])) == 0.5
    with pytest.raises(ValueError, match="both positive and negative"):
        study_records.auc(np.array([1, 1]), np.array([0.1, 0.2]))


def test_field_power_records_and_report_put_dims_next_to_single_field_auc():
    cells = [
        {"dataset": "ml", "model": "fm", "method": "autodim", "seed": s, "fields": f}
        for s, f in enumerate(
            [{"user": 8, "gender": 2, "item": 16}, {"user": 16, "gender": 2, "item": 16}]
        )
    ] + [{"dataset": "ml", "model": "fm", "method": "fde", "seed": 0}]
    power = {
        "user": {"vocab_size": 900, "single_field_auc": 0.68},
        "gender": {"vocab_size": 3, "single_field_auc": 0.50},
        "item": {"vocab_size": 1600, "single_field_auc": 0.71},
    }
    records = study_records.field_power_records("ml", power, cells)
    study_records.validate(records)
    assert [(r["field"], r["vocab_size"], r["dims"]) for r in records] == [
        ("user", 900, {"fm": [8, 16]}), ("gender", 3, {"fm": [2, 2]}),
        ("item", 1600, {"fm": [16, 16]}),
    ]  # fmt: skip
    assert study_records.rank_agreement(records) == pytest.approx(1.0)
    lines = study_report._field_power_lines(records)
    assert "| item | 1,600 | 0.7100 | 16, 16 |" in lines
    assert lines.index("| item | 1,600 | 0.7100 | 16, 16 |") < lines.index(
        "| gender | 3 | 0.5000 | 2, 2 |"
    )
    assert "Spearman's rho between single-field AUC and mean dim: 1.00." in lines


def test_a_transfer_runs_after_its_source_and_only_where_the_source_backbone_is():
    both = Dataset("d", "synthetic", (), ("fm", "deepfm"))
    config = StudyConfig("t", (both,), ("autodim", "autodim_fm_plan"), (0,), 2, None)
    cells = expand(config)
    assert [c.key for c in cells] == [
        "d/fm/autodim/seed0", "d/deepfm/autodim/seed0", "d/deepfm/autodim_fm_plan/seed0",
    ]  # fmt: skip
    assert study_config.dependencies(cells[-1]) == [cells[0]]
    no_fm = Dataset("e", "synthetic", (), ("deepfm",))
    config = StudyConfig("t", (no_fm,), ("autodim", "autodim_fm_plan"), (0,), 2, None)
    assert [c.method for c in expand(config)] == ["autodim"]


def test_report_compares_each_backbone_s_own_plan_with_fm_s():
    records = [
        quality("ml", "deepfm", "autodim", [0.70, 0.72], 1000),
        quality("ml", "deepfm", "autodim_fm_plan", [0.69, 0.71], 800),
        quality("ml", "fm", "autodim", [0.70], 800),
    ]
    lines = study_report._transfer_lines(records)
    assert lines[0].startswith("## Transferability")
    (row,) = [line for line in lines if line.startswith("| ml |")]
    assert row == ("| ml | deepfm | 0.7100 ± 0.0141 (1,000) | 0.7000 ± 0.0141 (800) | -0.0100 |")
    assert study_report._transfer_lines(records[:1]) == []
