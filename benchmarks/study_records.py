"""The records of `summary.json`: aggregation over seeds, stability, targets, schema.

`summary.json` is a list of records, each with a `kind`:

- `quality`: one (dataset, model, method) over its seeds: `seeds`,
  `auc_mean`, `auc_std`, `logloss_mean`, `embedding_params`,
  `savedmodel_bytes` (means over seeds), and details;
- `throughput`: one speed comparison: `name` and `ratio` (see `study_speed`);
- `memory`: one peak-memory comparison: `name` and `ratio` (see `study_memory`);
- `stability`: Pearson correlation of AutoDim's per-field dims across seeds,
  and the share of fields given the same dim;
- `target`: one target of the study, `MET`, `NOT MET` or `NOT MEASURED`,
  with the numbers behind it and, when not met, what was found about why;
- `run`: the configuration, the machine and the code measured.

Pure Python: the tests check this module by hand-made records.
"""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

REQUIRED_KEYS: Dict[str, Tuple[str, ...]] = {
    "quality": (
        "kind",
        "dataset",
        "model",
        "method",
        "seeds",
        "auc_mean",
        "auc_std",
        "logloss_mean",
        "embedding_params",
        "savedmodel_bytes",
    ),
    "throughput": ("kind", "name", "ratio"),
    "memory": ("kind", "name", "ratio"),
    "stability": ("kind", "dataset", "model", "method", "seeds", "pearson_mean"),
    "target": ("kind", "target", "description", "status", "details"),
    "run": ("kind", "config", "machine"),
    "field_power": ("kind", "dataset", "method", "field", "single_field_auc", "dims"),
}
_NUMBERS = (
    "auc_mean", "auc_std", "logloss_mean", "embedding_params", "savedmodel_bytes", "ratio",
    "single_field_auc",
)  # fmt: skip
MET, NOT_MET, NOT_MEASURED = "MET", "NOT MET", "NOT MEASURED"

#: The study's targets: thresholds of the issue.
PARAMS_SHARE = 0.40
AMTL_DIM_SHARE = 0.40
STABILITY = 0.8
SPEED_TARGETS = (
    # (record name, comparison, threshold, description)
    ("search_vs_fde", ">=", 0.5, "AutoDim search >= 0.5x FDE training examples/s"),
    ("retrain_vs_fde", ">=", 1.0, "AutoDim retrain >= 1.0x FDE training examples/s"),
    ("serving_latency_vs_fde", "<=", 1.0, "compact serving <= 1.0x FDE latency (batch 2000)"),
)
#: The AMTL methods the AMTL target is checked for (`aml` is an ablation).
AMTL_METHODS = ("amtl_cold", "amtl_warm", "amtl")
ONE_SEED_NOTE = "one seed: std with ddof=1 needs two or more, reported as 0.0"


class SchemaError(ValueError):
    """A record of summary.json that lacks a required key or has a wrong type."""


# ---------------------------------------------------------------------------
# Aggregation.


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); the std is 0.0 for one value.

    Examples:

        >>> mean_std([0.70, 0.72, 0.74])
        (0.72, 0.02)
        >>> mean_std([0.7])
        (0.7, 0.0)
    """
    if not values:
        raise ValueError("`values` must not be empty")
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return round(mean, 12), round(std, 12)


def aggregate(cells: Iterable[dict]) -> List[dict]:
    """One `quality` record per (dataset, model, method) from the cells' results.

    Args:
        cells: cell results (`study_cells.CellRunner.run`): each has
            `dataset`, `model`, `method`, `seed`, `auc`, `logloss`,
            `embedding_params`, `full_embedding_params`, `savedmodel_bytes`.

    Returns:
        The records, in the order their first cell appears; each also carries
        `auc_by_seed`, `logloss_std`, `full_embedding_params`,
        `params_vs_fde` (when the group has an `fde` record), per-seed plan
        dims (`fields_by_seed`) or AMTL dims (`average_dim`, `max_dim`) when
        the cells have them, and `std_note` for a single seed.
    """
    groups: Dict[Tuple[str, str, str], List[dict]] = {}
    for cell in cells:
        groups.setdefault((cell["dataset"], cell["model"], cell["method"]), []).append(cell)
    records = []
    for (dataset, model, method), group in groups.items():
        group = sorted(group, key=lambda c: c["seed"])
        auc_mean, auc_std = mean_std([c["auc"] for c in group])
        logloss_mean, logloss_std = mean_std([c["logloss"] for c in group])
        record = {
            "kind": "quality",
            "dataset": dataset,
            "model": model,
            "method": method,
            "seeds": [c["seed"] for c in group],
            "auc_mean": auc_mean,
            "auc_std": auc_std,
            "logloss_mean": logloss_mean,
            "logloss_std": logloss_std,
            "embedding_params": round(statistics.fmean(c["embedding_params"] for c in group)),
            "savedmodel_bytes": round(statistics.fmean(c["savedmodel_bytes"] for c in group)),
            "full_embedding_params": group[0]["full_embedding_params"],
            "auc_by_seed": [c["auc"] for c in group],
        }
        if len(group) == 1:
            record["std_note"] = ONE_SEED_NOTE
        if all("fields" in c for c in group):
            record["fields_by_seed"] = [c["fields"] for c in group]
            record["vocab_sizes"] = group[0].get("vocab_sizes", {})
        if "search" in group[0]:
            record["search_by_seed"] = [c.get("search") for c in group]
        if "settings" in group[0]:
            record["epochs"] = group[0]["settings"].get("epochs")
        if all("average_dim" in c for c in group):
            record["average_dim"] = statistics.fmean(c["average_dim"] for c in group)
            record["max_dim"] = group[0]["max_dim"]
        records.append(record)
    fde = {(r["dataset"], r["model"]): r for r in records if r["method"] == "fde"}
    for record in records:
        base = fde.get((record["dataset"], record["model"]))
        if base:
            record["params_vs_fde"] = record["embedding_params"] / base["embedding_params"]
    return records


# ---------------------------------------------------------------------------
# Stability.


def pearson(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Pearson's r, or None when a side has no variance (r is undefined).

    Examples:

        >>> pearson([2, 8, 16], [2, 8, 32])
        0.9686...
        >>> pearson([8, 8, 8], [2, 8, 16]) is None
        True
    """
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("`x` and `y` need the same length, at least 2")
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def stability(cells: Iterable[dict], method: str = "autodim") -> List[dict]:
    """Per (dataset, model): the mean pairwise Pearson r of `method`'s dims across seeds.

    Each seed's plan is a vector of dims in field order; every pair of seeds
    gives one r. Two identical plans agree completely and count as r = 1,
    even when every field has the same dim. A pair of different plans where
    one gives every field the same dim has no r (no variance): it is left out
    of the mean, and said so. `agreement` is defined for every pair: the
    mean share of fields given the same dim by both plans.

    Returns:
        `stability` records; `pearson_mean` is None with a `note` when fewer
        than two seeds (or no defined pair) exist.

    Examples:

        >>> cells = [
        ...     {"method": "autodim", "dataset": "d", "model": "fm", "seed": s, "fields": f}
        ...     for s, f in enumerate([{"a": 2, "b": 2}, {"a": 2, "b": 2}, {"a": 2, "b": 8}])
        ... ]
        >>> (record,) = stability(cells)
        >>> record["pearson_mean"], round(record["agreement"], 3), record["note"]
        (1.0, 0.667, "2 pair(s) left out: ...")
    """
    groups: Dict[Tuple[str, str], List[dict]] = {}
    for cell in cells:
        if cell["method"] == method and "fields" in cell:
            groups.setdefault((cell["dataset"], cell["model"]), []).append(cell)
    records = []
    for (dataset, model), group in groups.items():
        group = sorted(group, key=lambda c: c["seed"])
        names = list(group[0]["fields"])
        pairs, undefined, shares = [], [], []
        for a, b in itertools.combinations(group, 2):
            x, y = [a["fields"][n] for n in names], [b["fields"][n] for n in names]
            r = 1.0 if x == y else pearson(x, y)
            (pairs if r is not None else undefined).append([a["seed"], b["seed"], r])
            shares.append(sum(u == v for u, v in zip(x, y)) / len(names))
        record = {
            "kind": "stability",
            "dataset": dataset,
            "model": model,
            "method": method,
            "seeds": [c["seed"] for c in group],
            "pearson_mean": statistics.fmean(p[2] for p in pairs) if pairs else None,
            "pairs": pairs,
            "agreement": statistics.fmean(shares) if shares else None,
        }
        if len(group) < 2:
            record["note"] = "one seed: stability needs plans from two or more seeds"
        elif undefined:
            record["note"] = (
                f"{len(undefined)} pair(s) left out: of two different plans, one gives every "
                "field the same dim, so Pearson's r is undefined"
            )
        records.append(record)
    return records


# ---------------------------------------------------------------------------
# Targets.


def _target(name: str, description: str, checks: List[Tuple[bool, str]], why: str = "") -> dict:
    """A target record from its per-case checks: MET when every case passes."""
    if not checks:
        return {
            "kind": "target",
            "target": name,
            "description": description,
            "status": NOT_MEASURED,
            "details": [],
            "explanation": why or "no records to check this target against",
        }
    failed = [text for ok, text in checks if not ok]
    record = {
        "kind": "target",
        "target": name,
        "description": description,
        "status": NOT_MET if failed else MET,
        "details": [f"{'met' if ok else 'NOT met'}: {text}" for ok, text in checks],
    }
    if failed:
        record["explanation"] = why
    return record


def _largest_fields(record: dict, count: int = 3) -> str:
    """The fields of a plan that hold the most parameters (first seed), as text."""
    fields, sizes = record.get("fields_by_seed", [{}])[0], record.get("vocab_sizes", {})
    if not fields or not sizes:
        return ""
    heavy = sorted(fields, key=lambda n: -fields[n] * sizes.get(n, 0))[:count]
    parts = [f"{n} ({sizes[n]:,} ids) at dim {fields[n]}" for n in heavy]
    return "; largest tables of the plan: " + ", ".join(parts)


def _search_facts(record: dict) -> str:
    """What the search of an AutoDim record did (first seed), as text for an explanation."""
    fields = record.get("fields_by_seed", [{}])[0]
    text = ""
    if fields:
        counts = {}
        for dim in fields.values():
            counts[dim] = counts.get(dim, 0) + 1
        text = " (dims chosen: " + ", ".join(f"{dim} x{n}" for dim, n in sorted(counts.items()))
        search = (record.get("search_by_seed") or [None])[0]
        if search:
            text += (
                f"; the search ran {search['steps']} steps, {search['pretrain_steps']} of them "
                f"with alpha frozen, and made {search['alpha_updates']} alpha update(s) at rate "
                f"{search['arch_learning_rate']:.3g}"
            )
        if record.get("epochs"):
            text += f"; {record['epochs']} epoch(s)"
        text += ")"
    return text


def _auc_floor(fde: dict) -> Tuple[float, str]:
    floor = fde["auc_mean"] - fde["auc_std"]
    text = f"FDE {fde['auc_mean']:.4f} - {fde['auc_std']:.4f} = {floor:.4f}"
    return floor, text


def _one_seed_note(records: Sequence[dict]) -> str:
    if any(len(r["seeds"]) < 2 for r in records):
        return (
            " With one seed the FDE std is 0.0, so the AUC margin is zero and a difference "
            "of the size of run-to-run noise counts against the target."
        )
    return ""


def _group(records: Sequence[dict], kind: str) -> Dict[Tuple[str, str], Dict[str, dict]]:
    groups: Dict[Tuple[str, str], Dict[str, dict]] = {}
    for r in records:
        if r["kind"] == kind:
            groups.setdefault((r["dataset"], r["model"]), {})[r["method"]] = r
    return groups


def autodim_target(quality: Sequence[dict]) -> dict:
    """AutoDim <= 40% of FDE's embedding parameters with AUC >= FDE mean - std, everywhere."""
    checks, reasons = [], []
    for (dataset, model), methods in _group(quality, "quality").items():
        if "fde" not in methods or "autodim" not in methods:
            continue
        fde, auto = methods["fde"], methods["autodim"]
        share = auto["embedding_params"] / fde["embedding_params"]
        floor, floor_text = _auc_floor(fde)
        params_ok, auc_ok = share <= PARAMS_SHARE, auto["auc_mean"] >= floor
        checks.append(
            (
                params_ok and auc_ok,
                f"{dataset}/{model}: params {share:.1%} of FDE (<= {PARAMS_SHARE:.0%}); "
                f"AUC {auto['auc_mean']:.4f} vs {floor_text}",
            )
        )
        if not params_ok:
            reasons.append(
                f"{dataset}/{model}: the plan keeps {share:.1%} of FDE's parameters"
                + _largest_fields(auto)
            )
        if not auc_ok:
            reasons.append(
                f"{dataset}/{model}: AUC {auto['auc_mean'] - fde['auc_mean']:+.4f} against FDE"
                + _search_facts(auto)
            )
    why = "; ".join(reasons) + "." + _one_seed_note(quality) if reasons else ""
    return _target(
        "autodim_params_auc",
        f"AutoDim <= {PARAMS_SHARE:.0%} of FDE's embedding parameters with AUC >= FDE mean - "
        "FDE std, on every dataset and backbone",
        checks,
        why,
    )


def autodim_vs_baselines_target(quality: Sequence[dict]) -> dict:
    """AutoDim >= RaS and >= AutoDim-s in AUC, with fewer embedding parameters than each."""
    checks, reasons = [], []
    for (dataset, model), methods in _group(quality, "quality").items():
        auto = methods.get("autodim")
        if auto is None:
            continue
        for rival in ("ras", "autodim_s"):
            if rival not in methods:
                continue
            other = methods[rival]
            auc_ok = auto["auc_mean"] >= other["auc_mean"]
            params_ok = auto["embedding_params"] < other["embedding_params"]
            checks.append(
                (
                    auc_ok and params_ok,
                    f"{dataset}/{model} vs {rival}: AUC {auto['auc_mean']:.4f} vs "
                    f"{other['auc_mean']:.4f}; params {auto['embedding_params']:,} vs "
                    f"{other['embedding_params']:,}",
                )
            )
            if not auc_ok:
                reasons.append(
                    f"{dataset}/{model}: {rival} has the higher AUC "
                    f"({other['auc_mean'] - auto['auc_mean']:+.4f})"
                )
            if not params_ok:
                reasons.append(
                    f"{dataset}/{model}: {rival} uses no more parameters "
                    f"({other['embedding_params']:,} <= {auto['embedding_params']:,})"
                )
    if reasons and any(len(r["seeds"]) < 2 for r in quality):
        reasons.append("one seed, so the AUC comparison has no error bar")
    return _target(
        "autodim_vs_ras_and_autodim_s",
        "AutoDim >= RaS and >= AutoDim-s in AUC, at fewer embedding parameters",
        checks,
        "; ".join(reasons) + "." if reasons else "",
    )


def amtl_targets(quality: Sequence[dict]) -> List[dict]:
    """Per AMTL method: average dim <= 40% of D, with AUC >= FDE mean - std, everywhere."""
    targets = []
    groups = _group(quality, "quality")
    present = [m for m in AMTL_METHODS if any(m in methods for methods in groups.values())]
    for method in present:
        checks, reasons = [], []
        for (dataset, model), methods in groups.items():
            if "fde" not in methods or method not in methods:
                continue
            fde, masked = methods["fde"], methods[method]
            share = masked["average_dim"] / masked["max_dim"]
            floor, floor_text = _auc_floor(fde)
            dim_ok, auc_ok = share <= AMTL_DIM_SHARE, masked["auc_mean"] >= floor
            checks.append(
                (
                    dim_ok and auc_ok,
                    f"{dataset}/{model}: average dim {masked['average_dim']:.2f} of D = "
                    f"{masked['max_dim']} ({share:.1%}, <= {AMTL_DIM_SHARE:.0%}); AUC "
                    f"{masked['auc_mean']:.4f} vs {floor_text}",
                )
            )
            if not dim_ok:
                reasons.append(
                    f"{dataset}/{model}: the masks keep {share:.1%} of D on average over the "
                    "masked fields' values"
                )
            if not auc_ok:
                reasons.append(
                    f"{dataset}/{model}: AUC {masked['auc_mean'] - fde['auc_mean']:+.4f} "
                    "against FDE"
                )
        why = "; ".join(reasons) + "." + _one_seed_note(quality) if reasons else ""
        targets.append(
            _target(
                f"{method}_dim_auc",
                f"{method}: average dim <= {AMTL_DIM_SHARE:.0%} of D with AUC >= FDE mean - "
                "FDE std, on every dataset and backbone",
                checks,
                why,
            )
        )
    return targets


def stability_target(stability_records: Sequence[dict]) -> dict:
    """AutoDim's dims correlate across seeds with Pearson r >= 0.8, everywhere.

    A (dataset, model) with plans from two or more seeds but no pair that has
    an r (see `stability`) is not met: the target cannot be shown there.
    """
    checks, low, undefined = [], [], []
    for record in stability_records:
        r = record["pearson_mean"]
        where = f"{record['dataset']}/{record['model']}"
        if len(record["seeds"]) < 2:
            continue
        agreement = record.get("agreement")
        same = "" if agreement is None else f"; {agreement:.0%} of fields get the same dim"
        if r is None:
            checks.append((False, f"{where}: no pair of seeds has a Pearson r{same}"))
            undefined.append(f"{where}: {record['note']}")
            continue
        total = len(record["seeds"]) * (len(record["seeds"]) - 1) // 2
        checks.append(
            (
                r >= STABILITY,
                f"{where}: mean pairwise r {r:.3f} over {len(record['pairs'])} of {total} "
                f"pairs of seeds{same}",
            )
        )
        if r < STABILITY:
            low.append(f"{where}: r {r:.3f}")
    why = ""
    if not checks:
        notes = sorted({r.get("note", "") for r in stability_records} - {""})
        why = "; ".join(notes) or "no AutoDim plans to compare"
    else:
        parts = []
        if low:
            parts.append("; ".join(low) + ": the argmax of alpha differs between seeds.")
        if undefined:
            parts.append("; ".join(undefined) + ".")
        why = " ".join(parts)
    return _target(
        "dim_stability",
        f"AutoDim's per-field dims across seeds: mean pairwise Pearson r >= {STABILITY}",
        checks,
        why,
    )


SPEED_CAUSES = {
    "search_vs_fde": (
        "The supernet looks up, unifies and batch-normalises every candidate of every field "
        "on each step, and takes an alpha step on a validation batch every 10 steps"
    ),
    "retrain_vs_fde": (
        "With linear unify the retrained model adds a kernel and a bias per field, each with "
        "its own optimizer update, to smaller lookups (autodim_speed.py's notes)"
    ),
    "serving_latency_vs_fde": (
        "The compact model's linear unify adds a matrix product per field to smaller lookups"
    ),
}


def _spread_text(record: dict) -> str:
    """The medians and per-repeat values behind a ratio, as text."""
    parts = []
    for side in ("numerator", "denominator"):
        spread = record.get(side)
        if spread:
            values = ", ".join(f"{v:.4g}" for v in spread["values"])
            parts.append(f"{side} median {spread['median']:.4g} (repeats: {values})")
    return "; ".join(parts) + "." if parts else ""


def speed_targets(throughput: Sequence[dict]) -> List[dict]:
    """The speed targets: search >= 0.5x, retrain >= 1.0x, compact serving <= 1.0x FDE."""
    by_name = {r["name"]: r for r in throughput if r["kind"] == "throughput"}
    targets = []
    for name, comparison, threshold, description in SPEED_TARGETS:
        record = by_name.get(name)
        if record is None:
            targets.append(_target(name, description, [], "the speed comparison did not run"))
            continue
        ratio = record["ratio"]
        ok = ratio >= threshold if comparison == ">=" else ratio <= threshold
        text = f"ratio of medians {ratio:.4f} ({comparison} {threshold})"
        why = ""
        if not ok:
            why = f"{SPEED_CAUSES[name]}. {_spread_text(record)}"
            if name == "retrain_vs_fde" and "retrain_zero_pad_vs_fde" in by_name:
                why += (
                    f" With zero-pad unify the retrained model runs at "
                    f"{by_name['retrain_zero_pad_vs_fde']['ratio']:.2f}x FDE."
                )
        targets.append(_target(name, description, [(ok, text)], why))
    return targets


def evaluate_targets(records: Sequence[dict]) -> List[dict]:
    """Every target of the study, in report order, from the other records."""
    quality = [r for r in records if r["kind"] == "quality"]
    stable = [r for r in records if r["kind"] == "stability"]
    throughput = [r for r in records if r["kind"] == "throughput"]
    return [
        autodim_target(quality),
        autodim_vs_baselines_target(quality),
        *amtl_targets(quality),
        stability_target(stable),
        *speed_targets(throughput),
    ]


# ---------------------------------------------------------------------------
# Schema.


def validate(records: Sequence[dict]) -> None:
    """Checks every record has its kind's required keys, with numbers where numbers belong.

    Raises:
        SchemaError: listing every problem found.
    """
    problems = []
    for index, record in enumerate(records):
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind not in REQUIRED_KEYS:
            problems.append(f"record {index}: unknown kind {kind!r}")
            continue
        missing = [key for key in REQUIRED_KEYS[kind] if key not in record]
        if missing:
            problems.append(f"record {index} ({kind}): missing {missing}")
        for key in _NUMBERS:
            value = record.get(key)
            if key in REQUIRED_KEYS[kind] and key in record:
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    problems.append(f"record {index} ({kind}): {key} must be a number: {value!r}")
        if kind == "quality" and not (
            isinstance(record.get("seeds"), list) and record.get("seeds")
        ):
            problems.append(f"record {index} (quality): seeds must be a non-empty list")
        if kind == "target" and record.get("status") not in (MET, NOT_MET, NOT_MEASURED):
            problems.append(f"record {index} (target): bad status {record.get('status')!r}")
    if problems:
        raise SchemaError("; ".join(problems))


def cell_commits(cells: Sequence[dict]) -> Dict[str, int]:
    """How many cells each commit trained (`unrecorded`: cells cached before commits were kept).

    Examples:

        >>> cell_commits([{"code": {"commit": "abc"}}, {"code": {"commit": "abc"}}, {}])
        {'abc': 2, 'unrecorded': 1}
    """
    counts: Dict[str, int] = {}
    for cell in cells:
        commit = (cell.get("code") or {}).get("commit") or "unrecorded"
        counts[commit] = counts.get(commit, 0) + 1
    return counts
