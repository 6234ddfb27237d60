"""The records of `summary.json`: aggregation over seeds, stability, field power, targets.

`summary.json` is a list of records, each with a `kind`: `quality` (a method on a
dataset and backbone over its seeds), `throughput` and `memory` (a comparison with
FDE, `benchmarks/study_speed.py`), `stability` (Pearson r of AutoDim's dims across seeds),
`field_power` (a field's single-field AUC next to its dims), `target` (`MET`, `NOT
MET` or `NOT MEASURED`, with the numbers and why), `run` (configuration, machine,
commit), `failed_cell`.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

REQUIRED_KEYS = {
    kind: ("kind", *keys.split())
    for kind, keys in {
        "quality": "dataset model method seeds auc_mean auc_std logloss_mean embedding_params "
        "savedmodel_bytes",
        "throughput": "name ratio",
        "memory": "name ratio",
        "stability": "dataset model method seeds pearson_mean",
        "target": "target description status details",
        "run": "config machine",
        "field_power": "dataset method field single_field_auc dims",
    }.items()
}
NUMBERS = "auc_mean auc_std logloss_mean embedding_params savedmodel_bytes ratio single_field_auc"
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
AMTL_METHODS = ("amtl_cold", "amtl_warm")
ONE_SEED_NOTE = "one seed: std with ddof=1 needs two or more, reported as 0.0"
ONE_SEED_WHY = (
    " With one seed the FDE std is 0.0, so the AUC margin is zero and a difference "
    "of the size of run-to-run noise counts against the target."
)


class SchemaError(ValueError):
    """A record of summary.json that lacks a required key or has a wrong type."""


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); the std is 0.0 for one value.

    >>> mean_std([0.70, 0.72, 0.74]), mean_std([0.7])
    ((0.72, 0.02), (0.7, 0.0))
    """
    if not values:
        raise ValueError("`values` must not be empty")
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return round(mean, 12), round(std, 12)


def aggregate(cells: Iterable[dict]) -> List[dict]:
    """One `quality` record per (dataset, model, method) of the cells' records, in the
    order of their first cell: means over seeds, `params_vs_fde` beside an `fde` record,
    per-seed plan dims (`fields_by_seed`) or AMTL's `average_dim`, a `std_note` for one seed.
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


def pearson(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Pearson's r, or None when a side has no variance (r is undefined)."""
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

    Each pair of seeds' plans (dims in field order) gives one r; identical plans count
    as r = 1. A pair of different plans where one gives every field the same dim has no
    r: it is left out, with a `note`. `agreement`: the mean share of fields both give
    the same dim.
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


def _target(name: str, description: str, checks: List[Tuple[bool, str]], why: str = "") -> dict:
    """A target record from its per-case checks: MET when every case passes."""
    record = {"kind": "target", "target": name, "description": description}
    if not checks:
        why = why or "no records to check this target against"
        return {**record, "status": NOT_MEASURED, "details": [], "explanation": why}
    failed = not all(ok for ok, _ in checks)
    record["status"] = NOT_MET if failed else MET
    record["details"] = [f"{'met' if ok else 'NOT met'}: {text}" for ok, text in checks]
    return {**record, "explanation": why} if failed else record


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
    if not fields:
        return ""
    counts = sorted(Counter(fields.values()).items())
    text = " (dims chosen: " + ", ".join(f"{dim} x{n}" for dim, n in counts)
    search = (record.get("search_by_seed") or [None])[0]
    if search:
        text += (
            f"; the search ran {search['steps']} steps, {search['pretrain_steps']} of them "
            f"with alpha frozen, and made {search['alpha_updates']} alpha update(s) at rate "
            f"{search['arch_learning_rate']:.3g}"
        )
    return text + (f"; {record['epochs']} epoch(s)" if record.get("epochs") else "") + ")"


def _why(reasons: List[str], quality: Sequence[dict]) -> str:
    if not reasons:
        return ""
    one_seed = any(len(r["seeds"]) < 2 for r in quality)
    return "; ".join(reasons) + "." + (ONE_SEED_WHY if one_seed else "")


def _groups(quality: Sequence[dict]) -> Dict[Tuple[str, str], Dict[str, dict]]:
    groups: Dict[Tuple[str, str], Dict[str, dict]] = {}
    for r in quality:
        groups.setdefault((r["dataset"], r["model"]), {})[r["method"]] = r
    return groups


def _against_fde(quality: Sequence[dict], method: str):
    """(where, FDE, `method`'s record, FDE's AUC floor and as text) where both are."""
    for (dataset, model), methods in _groups(quality).items():
        if "fde" in methods and method in methods:
            fde = methods["fde"]
            floor = fde["auc_mean"] - fde["auc_std"]
            text = f"FDE {fde['auc_mean']:.4f} - {fde['auc_std']:.4f} = {floor:.4f}"
            yield f"{dataset}/{model}", fde, methods[method], floor, text


def autodim_target(quality: Sequence[dict]) -> dict:
    """AutoDim <= 40% of FDE's embedding parameters with AUC >= FDE mean - std, everywhere."""
    checks, reasons = [], []
    for where, fde, auto, floor, floor_text in _against_fde(quality, "autodim"):
        share = auto["embedding_params"] / fde["embedding_params"]
        params_ok, auc_ok = share <= PARAMS_SHARE, auto["auc_mean"] >= floor
        text = f"{where}: params {share:.1%} of FDE (<= {PARAMS_SHARE:.0%}); AUC "
        checks.append((params_ok and auc_ok, text + f"{auto['auc_mean']:.4f} vs {floor_text}"))
        if not params_ok:
            kept = f"{where}: the plan keeps {share:.1%} of FDE's parameters"
            reasons.append(kept + _largest_fields(auto))
        if not auc_ok:
            lost = f"{where}: AUC {auto['auc_mean'] - fde['auc_mean']:+.4f} against FDE"
            reasons.append(lost + _search_facts(auto))
    description = (
        f"AutoDim <= {PARAMS_SHARE:.0%} of FDE's embedding parameters with AUC >= FDE mean - "
        "FDE std, on every dataset and backbone"
    )
    return _target("autodim_params_auc", description, checks, _why(reasons, quality))


def autodim_vs_baselines_target(quality: Sequence[dict]) -> dict:
    """AutoDim >= RaS and >= AutoDim-s in AUC, with fewer embedding parameters than each."""
    checks, reasons = [], []
    for (dataset, model), methods in _groups(quality).items():
        auto, where = methods.get("autodim"), f"{dataset}/{model}"
        for rival in [m for m in ("ras", "autodim_s") if auto and m in methods]:
            other = methods[rival]
            auc_ok = auto["auc_mean"] >= other["auc_mean"]
            params_ok = auto["embedding_params"] < other["embedding_params"]
            text = (
                f"{where} vs {rival}: AUC {auto['auc_mean']:.4f} vs {other['auc_mean']:.4f}; "
                f"params {auto['embedding_params']:,} vs {other['embedding_params']:,}"
            )
            checks.append((auc_ok and params_ok, text))
            if not auc_ok:
                gap = other["auc_mean"] - auto["auc_mean"]
                reasons.append(f"{where}: {rival} has the higher AUC ({gap:+.4f})")
            if not params_ok:
                reasons.append(
                    f"{where}: {rival} uses no more parameters "
                    f"({other['embedding_params']:,} <= {auto['embedding_params']:,})"
                )
    if reasons and any(len(r["seeds"]) < 2 for r in quality):
        reasons.append("one seed, so the AUC comparison has no error bar")
    description = "AutoDim >= RaS and >= AutoDim-s in AUC, at fewer embedding parameters"
    why = "; ".join(reasons) + "." if reasons else ""
    return _target("autodim_vs_ras_and_autodim_s", description, checks, why)


def amtl_targets(quality: Sequence[dict]) -> List[dict]:
    """Per AMTL method: average dim <= 40% of D, with AUC >= FDE mean - std, everywhere."""
    targets = []
    for method in [m for m in AMTL_METHODS if any(r["method"] == m for r in quality)]:
        checks, reasons = [], []
        for where, fde, masked, floor, floor_text in _against_fde(quality, method):
            share = masked["average_dim"] / masked["max_dim"]
            dim_ok, auc_ok = share <= AMTL_DIM_SHARE, masked["auc_mean"] >= floor
            text = (
                f"{where}: average dim {masked['average_dim']:.2f} of D = {masked['max_dim']} "
                f"({share:.1%}, <= {AMTL_DIM_SHARE:.0%}); AUC {masked['auc_mean']:.4f} vs "
            )
            checks.append((dim_ok and auc_ok, text + floor_text))
            if not dim_ok:
                reasons.append(
                    f"{where}: the masks keep {share:.1%} of D on average over the masked "
                    "fields' values"
                )
            if not auc_ok:
                reasons.append(
                    f"{where}: AUC {masked['auc_mean'] - fde['auc_mean']:+.4f} against FDE"
                )
        description = (
            f"{method}: average dim <= {AMTL_DIM_SHARE:.0%} of D with AUC >= FDE mean - FDE "
            "std, on every dataset and backbone"
        )
        targets.append(_target(f"{method}_dim_auc", description, checks, _why(reasons, quality)))
    return targets


def stability_target(stability_records: Sequence[dict]) -> dict:
    """AutoDim's dims correlate across seeds with Pearson r >= 0.8, everywhere (a backbone
    whose pairs of seeds have no r at all does not meet it)."""
    checks, low, undefined = [], [], []
    for record in [r for r in stability_records if len(r["seeds"]) >= 2]:
        r, where, agreement = record["pearson_mean"], record["dataset"], record.get("agreement")
        where += f"/{record['model']}"
        same = "" if agreement is None else f"; {agreement:.0%} of fields get the same dim"
        if r is None:
            checks.append((False, f"{where}: no pair of seeds has a Pearson r{same}"))
            undefined.append(f"{where}: {record['note']}")
            continue
        pairs, total = len(record["pairs"]), len(record["seeds"]) * (len(record["seeds"]) - 1) // 2
        text = f"{where}: mean pairwise r {r:.3f} over {pairs} of {total} pairs of seeds{same}"
        checks.append((r >= STABILITY, text))
        if r < STABILITY:
            low.append(f"{where}: r {r:.3f}")
    if not checks:
        notes = sorted({r.get("note", "") for r in stability_records} - {""})
        why = "; ".join(notes) or "no AutoDim plans to compare"
    else:
        parts = ["; ".join(low) + ": the argmax of alpha differs between seeds."] if low else []
        why = " ".join(parts + (["; ".join(undefined) + "."] if undefined else []))
    description = f"AutoDim's per-field dims across seeds: mean pairwise Pearson r >= {STABILITY}"
    return _target("dim_stability", description, checks, why)


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
        why = "" if ok else SPEED_CAUSES[name] + " (the speed table has the medians)."
        text = f"ratio of medians {ratio:.4f} ({comparison} {threshold})"
        targets.append(_target(name, description, [(ok, text)], why))
    return targets


def evaluate_targets(records: Sequence[dict]) -> List[dict]:
    """Every target of the study, in report order, from the other records."""
    quality = [r for r in records if r["kind"] == "quality"]
    return [
        autodim_target(quality),
        autodim_vs_baselines_target(quality),
        *amtl_targets(quality),
        stability_target([r for r in records if r["kind"] == "stability"]),
        *speed_targets([r for r in records if r["kind"] == "throughput"]),
    ]


def validate(records: Sequence[dict]) -> None:
    """Raises `SchemaError` listing every record without its kind's keys or numbers."""
    problems = []
    for index, record in enumerate(records):
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind not in REQUIRED_KEYS:
            problems.append(f"record {index}: unknown kind {kind!r}")
            continue
        missing = [key for key in REQUIRED_KEYS[kind] if key not in record]
        if missing:
            problems.append(f"record {index} ({kind}): missing {missing}")
        for key in set(NUMBERS.split()) & set(REQUIRED_KEYS[kind]) & set(record):
            if not isinstance(record[key], (int, float)) or isinstance(record[key], bool):
                problems.append(f"record {index} ({kind}): {key} must be a number: {record[key]!r}")
        if kind == "quality" and not (
            isinstance(record.get("seeds"), list) and record.get("seeds")
        ):
            problems.append(f"record {index} (quality): seeds must be a non-empty list")
        if kind == "target" and record.get("status") not in (MET, NOT_MET, NOT_MEASURED):
            problems.append(f"record {index} (target): bad status {record.get('status')!r}")
    if problems:
        raise SchemaError("; ".join(problems))


def cell_commits(cells: Sequence[dict]) -> Dict[str, int]:
    """How many cells each commit trained (`unrecorded`: cells made before commits were kept)."""
    counts: Dict[str, int] = {}
    for cell in cells:
        commit = (cell.get("code") or {}).get("commit") or "unrecorded"
        counts[commit] = counts.get(commit, 0) + 1
    return counts


#: The datasets whose single-field table the report shows (the AutoDim paper's Table 4).
FIELD_POWER_DATASETS = ("movielens-100k",)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The ROC AUC: the chance a random positive scores above a random negative (ties half).

    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    from scipy.stats import rankdata

    labels = np.asarray(labels, bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("the AUC needs both positive and negative labels")
    # The Mann-Whitney U statistic, with tied scores at their average rank.
    u = rankdata(scores)[labels].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def single_field_auc(train_ids, train_labels, test_ids, test_labels) -> float:
    """Test AUC of one field, each test row scored by the train click rate of its value
    (the overall rate for values not seen in train): no model, no seed."""
    train_ids = np.asarray(train_ids, np.int64)
    size = int(max(train_ids.max(initial=0), np.max(test_ids, initial=0))) + 1
    clicks = np.bincount(train_ids, weights=np.asarray(train_labels, np.float64), minlength=size)
    counts = np.bincount(train_ids, minlength=size).astype(np.float64)
    rates = np.where(counts > 0, clicks / np.maximum(counts, 1.0), float(np.mean(train_labels)))
    return auc(test_labels, rates[np.asarray(test_ids, np.int64)])


def field_power(spec) -> Dict[str, dict]:
    """Every field's `vocab_size` and `single_field_auc` (test split) on an artifact, its
    splits looked up as the models look them up."""
    import tensorflow as tf

    from keras_dimsel.data.input_fn import make_dataset
    from keras_dimsel.data.lookup import FeatureLookup

    lookup = FeatureLookup(spec)

    def split(name):
        ids, labels = {f.name: [] for f in spec.fields}, []
        for features, label in make_dataset(spec, name, batch_size=10_000):
            for field, values in lookup(features).items():
                ids[field].append(tf.reshape(values, [-1]).numpy())
            labels.append(label.numpy())
        return {f: np.concatenate(parts) for f, parts in ids.items()}, np.concatenate(labels)

    (train, train_labels), (test, test_labels) = split("train"), split("test")
    return {
        f.name: {
            "vocab_size": int(f.vocab_size),
            "single_field_auc": single_field_auc(
                train[f.name], train_labels, test[f.name], test_labels
            ),
        }
        for f in spec.fields
    }


def field_power_records(
    dataset: str, power: Dict[str, dict], cells: Iterable[dict], method: str = "autodim"
) -> List[dict]:
    """One `field_power` record per field of `power` (`field_power`'s): vocabulary,
    single-field AUC and the dims `method`'s cells of `dataset` chose, as `{model: [dim
    of each seed]}`."""
    plans = sorted(  # stable: the backbones keep the order of `cells` (the grid's)
        (c for c in cells if c["dataset"] == dataset and c["method"] == method and "fields" in c),
        key=lambda c: c["seed"],
    )
    records = []
    for field, measured in power.items():
        dims: Dict[str, List[int]] = {}
        for cell in plans:
            dims.setdefault(cell["model"], []).append(int(cell["fields"][field]))
        records.append(
            {
                "kind": "field_power",
                "dataset": dataset,
                "method": method,
                "field": field,
                "vocab_size": measured["vocab_size"],
                "single_field_auc": float(measured["single_field_auc"]),
                "dims": dims,
            }
        )
    return records


def rank_agreement(records: Sequence[dict]) -> Optional[float]:
    """Spearman's rho between the fields' single-field AUC and their mean chosen dim; None
    with fewer than three fields with dims, or when a side is constant."""
    from scipy.stats import rankdata

    rows = [r for r in records if any(r["dims"].values())]
    if len(rows) < 3:
        return None
    power = [r["single_field_auc"] for r in rows]
    dims = [statistics.fmean(d for seeds in r["dims"].values() for d in seeds) for r in rows]
    rho = pearson(list(rankdata(power)), list(rankdata(dims)))
    return None if rho is None else float(rho)
