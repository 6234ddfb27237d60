"""The end of an AutoDim run: the plan against the full model, and the alpha plot."""

from __future__ import annotations

from keras_dimsel import _io
from keras_dimsel.autodim.plan import DimensionPlan


def comparison_report(plan: DimensionPlan, baseline: dict, autodim: dict) -> str:
    """The end of `dimsel run`: the plan per field, then both models on the test split.

    Args:
        plan: DimensionPlan, the searched plan.
        baseline: dict, the full-dimension model's metrics (`run_baseline`).
        autodim: dict, the retrained model's metrics (`run_retrain`).

    Returns:
        str, the plan's `summary_table`, a blank line, then the comparison.

    Examples:

        >>> plan = DimensionPlan(
        ...     fields={"user": 8, "genre": 2},
        ...     candidates=(2, 8),
        ...     vocab_sizes={"user": 1000, "genre": 20},
        ... )
        >>> baseline = {"auc": 0.7712, "logloss": 0.4561, "embedding_params": 8160, "dim": 8}
        >>> autodim = {"auc": 0.7705, "logloss": 0.4570, "embedding_params": 8040}
        >>> print(comparison_report(plan, baseline, autodim))
        field  vocab_size  dim  params  full_params  of_full
        ----------------------------------------------------
        user        1,000    8   8,000        8,000   100.0%
        genre          20    2      40          160    25.0%
        ----------------------------------------------------
        total       1,020        8,040        8,160    98.5%
        candidates [2, 8]; full model uses dim 8; saving 1.5% of embedding parameters
        <BLANKLINE>
        model       test AUC  logloss  embedding params  of full
        full dim 8    0.7712   0.4561             8,160   100.0%
        AutoDim       0.7705   0.4570             8,040    98.5%
        AUC difference -0.0007; 1.5% fewer embedding parameters
    """
    full_params = baseline["embedding_params"]
    rows = [
        ("model", "test AUC", "logloss", "embedding params", "of full"),
        (
            f"full dim {baseline.get('dim', plan.max_dim)}",
            f"{baseline['auc']:.4f}",
            f"{baseline['logloss']:.4f}",
            f"{full_params:,}",
            "100.0%",
        ),
        (
            "AutoDim",
            f"{autodim['auc']:.4f}",
            f"{autodim['logloss']:.4f}",
            f"{autodim['embedding_params']:,}",
            f"{autodim['embedding_params'] / full_params:.1%}",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])])
        for row in rows
    ]
    difference = autodim["auc"] - baseline["auc"]
    return "\n".join(
        [
            plan.summary_table(),
            "",
            *lines,
            f"AUC difference {difference:+.4f}; "
            f"{1 - autodim['embedding_params'] / full_params:.1%} fewer embedding parameters",
        ]
    )


def plot_search(rows, plan: DimensionPlan, path: str) -> None:
    """Alpha trajectories per field (probability of each candidate over steps).

    Args:
        rows: list of `(step, field, candidate, probability)` (`AlphaHistory.rows`).
        plan: DimensionPlan, the fields and candidates (the chosen one drawn thicker).
        path: str, the PNG file to write.

    Examples:

        >>> import os, tempfile
        >>> plan = DimensionPlan(fields={"user": 8}, candidates=(2, 8), vocab_sizes={"user": 1000})
        >>> rows = [  # (step, field, candidate, probability)
        ...     (0, "user", 2, 0.5), (0, "user", 8, 0.5), (10, "user", 2, 0.2), (10, "user", 8, 0.8)
        ... ]
        >>> path = os.path.join(tempfile.mkdtemp(), "search.png")
        >>> plot_search(rows, plan, path)
        >>> os.path.getsize(path) > 1000
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = plan.field_names
    columns = min(4, len(fields))
    line_count = -(-len(fields) // columns)
    width, height = 3.2 * columns, 2.4 * line_count
    # Shared axes and margins fixed in inches: `tight_layout` measured every tick
    # label of every panel, seconds for the 39 fields of Criteo.
    figure, axes = plt.subplots(
        line_count, columns, figsize=(width, height), squeeze=False, sharex=True, sharey=True
    )
    figure.subplots_adjust(
        left=0.75 / width,
        right=1 - 0.15 / width,
        bottom=0.6 / height,
        top=1 - 0.35 / height,
        wspace=0.12,
        hspace=0.45,
    )
    for axis, name in zip(axes.flat, fields):
        for dim in plan.candidates:
            points = [(s, p) for s, f, d, p in rows if f == name and d == dim]
            if points:
                steps, values = zip(*points)
                axis.plot(steps, values, label=str(dim), lw=2 if dim == plan.fields[name] else 1)
        axis.set_title(f"{name}: dim {plan.fields[name]}", fontsize=9)
        axis.set_ylim(0, 1)
        axis.tick_params(labelsize=7)
    for index in range(len(fields), axes.size):
        axes.flat[index].axis("off")
        axes.flat[index - columns].xaxis.set_tick_params(labelbottom=True)  # the panel above
    axes.flat[0].legend(title="candidate", fontsize=7, title_fontsize=7)
    figure.supxlabel("training step", fontsize=9)
    figure.supylabel("softmax(alpha)", fontsize=9)
    with _io.open_file(path, "wb") as f:
        figure.savefig(f, format="png", dpi=110)
    plt.close(figure)
