"""`benchmarks/search_trust.py`: the table of search_quality runs over sizes and settings."""

import json

import numpy as np
import pytest

from benchmarks import search_trust

FIELDS = ["user", "item", "noise"]


def _record(rows, plans, alphas, found):
    runs = [
        {"derive": "alpha", "seed": seed, "plan": dict(zip(FIELDS, plan)), "alpha": alpha,
         "interaction_larger": hit}
        for seed, (plan, alpha, hit) in enumerate(zip(plans, alphas, found))
    ]  # fmt: skip
    runs.append({"derive": "probe", "seed": 0, "plan": {}, "alpha": {}})  # not counted
    return {
        "fields": FIELDS,
        "settings": {"rows": rows},
        "code": {"commit": "0123456789abcdef"},
        "runs": runs,
    }


def test_a_summary_counts_the_seeds_and_correlates_their_plans():
    plans = [(8, 8, 2), (8, 16, 2), (2, 2, 2)]  # the last plan is constant: r undefined
    alpha = {"user": [0.2, 0.7, 0.1], "item": [0.5, 0.4, 0.1], "noise": [0.9, 0.05, 0.05]}
    summary = search_trust.summarize(_record(1000, plans, [alpha] * 3, [True, True, False]))
    assert (summary["rows"], summary["found"], summary["seeds"]) == (1000, 2, 3)
    assert summary["mean_r"] == pytest.approx(np.corrcoef([8, 8, 2], [8, 16, 2])[0, 1])
    assert summary["undefined_pairs"] == 2
    assert summary["median_margin"] == pytest.approx(0.5)  # margins 0.5, 0.1, 0.85
    assert summary["plans"] == ["8 8 2", "8 16 2", "2 2 2"]
    assert summary["commit"] == "0123456"


def test_the_table_has_a_row_per_setting_and_size_in_order(tmp_path):
    alpha = {name: [0.6, 0.4] for name in FIELDS}
    for name, rows in (("paper_f10", 300000), ("paper_f10", 30000), ("anneal05_f1", 30000)):
        record = _record(rows, [(8, 8, 2), (2, 8, 2), (8, 2, 2)], [alpha] * 3, [True] * 3)
        (tmp_path / f"{name}_{rows}.json").write_text(json.dumps(record))
    lines = search_trust.table(str(tmp_path)).splitlines()
    assert [line.split(" | ")[:3] for line in lines[2:]] == [
        ["| anneal05_f1", "30,000", "3 of 3"],
        ["| paper_f10", "30,000", "3 of 3"],
        ["| paper_f10", "300,000", "3 of 3"],
    ]
    with pytest.raises(SystemExit, match="no search_quality results"):
        search_trust.table(str(tmp_path / "empty"))
