"""Single-field predictive power next to AutoDim's chosen dims (the AutoDim paper's Table 4).

The paper explains its MovieLens plans by how much each field predicts on its
own: fields that predict more get larger dims. Here a field's predictive
power is the test AUC of the field alone, predicted by the click rate its
value had in the train split (the best any model of that one field can do on
the train data; values not seen in train get the overall rate). No training
is involved, so the number does not depend on a model or a seed.

`field_power_records` turns it into `field_power` records, one per field of a
dataset, with the dims every AutoDim cell chose for the field; `rank_agreement`
gives Spearman's correlation between the two, the report's one-line summary.
"""

from __future__ import annotations

import statistics
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
from scipy.stats import rankdata
from study_records import pearson

#: The datasets whose table the report shows (the paper's is on MovieLens).
FIELD_POWER_DATASETS = ("movielens-100k",)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The ROC AUC: the chance a random positive scores above a random negative (ties half).

    Examples:

        >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        0.75
        >>> auc(np.array([0, 1]), np.array([0.5, 0.5]))
        0.5
    """
    labels = np.asarray(labels, bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("the AUC needs both positive and negative labels")
    # The Mann-Whitney U statistic, with tied scores at their average rank.
    u = rankdata(scores)[labels].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def single_field_auc(
    train_ids: np.ndarray, train_labels: np.ndarray, test_ids: np.ndarray, test_labels: np.ndarray
) -> float:
    """Test AUC of one field, each test row scored by the train click rate of its value.

    Examples:

        Value 1 clicks 2 times in 3, value 2 never; value 3 is not in train:

        >>> train_ids, train_labels = np.array([1, 1, 1, 2, 2]), np.array([1, 1, 0, 0, 0])
        >>> single_field_auc(train_ids, train_labels, np.array([1, 2, 3]), np.array([1, 0, 0]))
        1.0
    """
    train_ids = np.asarray(train_ids, np.int64)
    size = int(max(train_ids.max(initial=0), np.max(test_ids, initial=0))) + 1
    clicks = np.bincount(train_ids, weights=np.asarray(train_labels, np.float64), minlength=size)
    counts = np.bincount(train_ids, minlength=size).astype(np.float64)
    overall = float(np.mean(train_labels))
    rates = np.where(counts > 0, clicks / np.maximum(counts, 1.0), overall)
    return auc(test_labels, rates[np.asarray(test_ids, np.int64)])


def split_ids(spec, split: str) -> tuple:
    """`({field: [n] int64 ids}, [n] labels)` of a whole split, as the models look them up."""
    import tensorflow as tf

    from keras_dimsel.data.input_fn import make_dataset
    from keras_dimsel.data.lookup import FeatureLookup

    lookup = FeatureLookup(spec)
    ids: Dict[str, List[np.ndarray]] = {field.name: [] for field in spec.fields}
    labels = []
    for features, label in make_dataset(spec, split, batch_size=10_000):
        for name, values in lookup(features).items():
            ids[name].append(tf.reshape(values, [-1]).numpy())
        labels.append(label.numpy())
    return {name: np.concatenate(parts) for name, parts in ids.items()}, np.concatenate(labels)


def field_power(spec) -> Dict[str, float]:
    """Every field's single-field test AUC on an artifact (`single_field_auc`)."""
    train_ids, train_labels = split_ids(spec, "train")
    test_ids, test_labels = split_ids(spec, "test")
    return {
        name: single_field_auc(train_ids[name], train_labels, test_ids[name], test_labels)
        for name in train_ids
    }


def field_power_records(
    dataset: str, spec, power: Dict[str, float], cells: Iterable[dict], method: str = "autodim"
) -> List[dict]:
    """One `field_power` record per field: its vocabulary, single-field AUC and chosen dims.

    Args:
        dataset: str, the dataset name.
        spec: FeatureSpec, for the vocabulary sizes.
        power: dict of field to single-field AUC (`field_power`).
        cells: the cell results; `method`'s cells of `dataset` give the dims.
        method: str, the AutoDim method whose plans are shown.

    Returns:
        Records with `dims` as `{model: [dim of each seed, in seed order]}`.
    """
    plans = sorted(  # stable: the backbones keep the order of `cells` (the grid's)
        (c for c in cells if c["dataset"] == dataset and c["method"] == method and "fields" in c),
        key=lambda c: c["seed"],
    )
    records = []
    for field in spec.fields:
        dims: Dict[str, List[int]] = {}
        for cell in plans:
            dims.setdefault(cell["model"], []).append(int(cell["fields"][field.name]))
        records.append(
            {
                "kind": "field_power",
                "dataset": dataset,
                "method": method,
                "field": field.name,
                "vocab_size": int(field.vocab_size),
                "single_field_auc": float(power[field.name]),
                "dims": dims,
            }
        )
    return records


def rank_agreement(records: Sequence[dict]) -> Optional[float]:
    """Spearman's rho between the fields' single-field AUC and their mean chosen dim.

    None when there are fewer than three fields with dims, or either side is constant.

    Examples:

        >>> rows = [
        ...     {"single_field_auc": 0.70, "dims": {"fm": [16, 8]}},
        ...     {"single_field_auc": 0.55, "dims": {"fm": [2, 2]}},
        ...     {"single_field_auc": 0.60, "dims": {"fm": [8, 8]}},
        ... ]
        >>> rank_agreement(rows)
        1.0
    """
    rows = [r for r in records if any(r["dims"].values())]
    if len(rows) < 3:
        return None
    power = [r["single_field_auc"] for r in rows]
    dims = [statistics.fmean(d for seeds in r["dims"].values() for d in seeds) for r in rows]
    rho = pearson(list(rankdata(power)), list(rankdata(dims)))  # None if a side is constant
    return None if rho is None else float(rho)
