"""The end of an AMTL run: lengths by frequency group, as a table and a plot."""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from keras_dimsel import _io
from keras_dimsel.amtl.defaults import FREQUENCY_GROUPS


def dims_by_frequency_group(
    lengths: Sequence[int], counts: Sequence[int], groups: int = FREQUENCY_GROUPS
) -> List[float]:
    """Average length in `groups` equal-size groups of values, rarest first.

    Values are ordered by train count (ties by id) and split into groups of
    (nearly) equal size, as the paper's G0..G6.

    Args:
        lengths: sequence of int, the length of every id of a field.
        counts: sequence of int, the train count of every id (`value_counts`).
        groups: int, the number of groups.

    Returns:
        list of float, the average length of each group, rarest first.

    Examples:

        >>> counts = [0, 50, 3, 9, 100, 1, 7]
        >>> lengths = [1, 6, 2, 3, 7, 1, 4]
        >>> dims_by_frequency_group(lengths, counts)  # by count: 0, 1, 3, 7, 9, 50, 100
        [1.0, 1.0, 2.0, 4.0, 3.0, 6.0, 7.0]
        >>> [round(d, 2) for d in dims_by_frequency_group(lengths, counts, groups=2)]
        [2.0, 5.33]
    """
    order = np.argsort(np.asarray(counts), kind="stable")
    lengths = np.asarray(lengths, dtype=np.float64)[order]
    return [float(part.mean()) for part in np.array_split(lengths, groups) if part.size]


def plot_amtl_dims(report: Dict[str, List[float]], max_dim: int, path: str) -> None:
    """Average dim against frequency group, one line per masked field.

    Args:
        report: dict of field to its average dims by group (`dims_by_frequency_group`).
        max_dim: int, D (the top of the y axis).
        path: str, the PNG file to write.

    Examples:

        >>> import os, tempfile
        >>> report = {"user": [1.0, 1.0, 2.0, 4.0, 3.0, 6.0, 7.0]}
        >>> path = os.path.join(tempfile.mkdtemp(), "amtl_dims.png")
        >>> plot_amtl_dims(report, max_dim=8, path=path)
        >>> os.path.getsize(path) > 1000
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    for name, dims in report.items():
        axis.plot(range(len(dims)), dims, marker="o", label=name)
    axis.set_xticks(range(FREQUENCY_GROUPS))
    axis.set_xticklabels([f"G{i}" for i in range(FREQUENCY_GROUPS)])
    axis.set_xlabel("frequency group (rarest first, equal numbers of values)")
    axis.set_ylabel("average dim")
    axis.set_ylim(0, max_dim + 1)
    axis.legend(fontsize=7)
    figure.tight_layout()
    with _io.open_file(path, "wb") as f:
        figure.savefig(f, format="png", dpi=110)
    plt.close(figure)


def summary_table(metrics: dict) -> str:
    """Per masked field: average dim, and average dim by frequency group (rarest first).

    Args:
        metrics: dict, the metrics of `run_amtl`.

    Returns:
        str, one line per masked field, then the embedding parameters.

    Examples:

        >>> metrics = {
        ...     "dim_by_frequency_group": {"user": [1.0, 1.0, 2.0, 4.0, 3.0, 6.0, 7.0]},
        ...     "average_dim": {"user": 3.43},
        ...     "max_dim": 8,
        ...     "embedding_params": 24,
        ...     "full_embedding_params": 56,
        ... }
        >>> print(summary_table(metrics))
        field  avg dim     G0     G1     G2     G3     G4     G5     G6
        ---------------------------------------------------------------
        user      3.43    1.0    1.0    2.0    4.0    3.0    6.0    7.0
        max dim 8; embedding parameters 24 of 56 (42.9%)
    """
    groups = metrics["dim_by_frequency_group"]
    width = max(len("field"), *(len(name) for name in groups))
    header = (
        "field".ljust(width)
        + "  avg dim  "
        + "  ".join(f"G{i}".rjust(5) for i in range(FREQUENCY_GROUPS))
    )
    lines = [header, "-" * len(header)]
    for name, dims in groups.items():
        cells = "  ".join(f"{d:5.1f}" for d in dims)
        lines.append(f"{name.ljust(width)}  {metrics['average_dim'][name]:7.2f}  {cells}")
    lines.append(
        f"max dim {metrics['max_dim']}; embedding parameters {metrics['embedding_params']:,} of "
        f"{metrics['full_embedding_params']:,} "
        f"({metrics['embedding_params'] / metrics['full_embedding_params']:.1%})"
    )
    return "\n".join(lines)
