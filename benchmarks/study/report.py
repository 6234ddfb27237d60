"""The study's report: `summary.md` and the PNG plots, from the records of `summary.json`.

Plots (written beside `summary.md`):

- `auc_vs_params_<dataset>.png`: test AUC (mean, ± std over seeds) against
  embedding parameters (log scale), every method, one panel per backbone;
- `alpha_<dataset>_<model>.png`: AutoDim's alpha trajectories, drawn by the
  library's `plot_search` from a search's `alpha_history.csv`;
- `amtl_dims_<dataset>_<model>.png`: AMTL's average dim per frequency group,
  drawn by the library's `plot_amtl_dims` from a run's `dim_by_frequency_group`.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence

from benchmarks.study.config import METHODS, Cell, StudyConfig
from benchmarks.study.records import MET, NOT_MEASURED, rank_agreement

_STATUS_MARK = {MET: "MET", "NOT MET": "**NOT MET**", NOT_MEASURED: "**NOT MEASURED**"}


def _by_kind(records: Sequence[dict], kind: str) -> List[dict]:
    return [r for r in records if r["kind"] == kind]


def _machine_lines(run: dict) -> List[str]:
    machine, code = run["machine"], run.get("code", {})
    versions = ", ".join(
        f"{name} {machine[name]}"
        for name in ("tensorflow", "tf_keras", "tensorflow_recommenders", "apache_beam", "numpy")
        if name in machine
    )
    lines = [
        f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} cores "
        f"({machine['cpus_usable']} usable), {machine['memory_gib']} GiB, {machine['platform']}, "
        f"Python {machine['python']}; {versions}.",
        f"- Code: commit {code.get('commit') or 'unknown'}"
        + (" with uncommitted library changes" if code.get("library_modified") else "")
        + ".",
        f"- Ran {run['started']} for {run['seconds'] / 60:.1f} min; load average (1 min) "
        f"{run['load_before'][0]:.2f} at the start, {run['load_after'][0]:.2f} at the end.",
    ]
    commits = run.get("cell_commits") or {}
    if len(commits) > 1:
        counts = ", ".join(f"{commit} ({n})" for commit, n in sorted(commits.items()))
        lines.append(f"- The cells were trained at more than one commit: {counts} cells.")
    if run.get("report_written"):
        lines.append(f"- Report rewritten from the cached results on {run['report_written']}.")
    if run.get("note"):
        lines.append(f"- Note: {run['note']}")
    return lines


def _quality_table(rows: List[dict]) -> List[str]:
    lines = [
        "| method | seeds | AUC mean ± std | logloss | embedding params | % of FDE "
        "| SavedModel bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = r.get("params_vs_fde")
        extra = f" (avg dim {r['average_dim']:.2f} of {r['max_dim']})" if "average_dim" in r else ""
        lines.append(
            f"| {r['method']}{extra} | {len(r['seeds'])} | {r['auc_mean']:.4f} ± "
            f"{r['auc_std']:.4f} | {r['logloss_mean']:.4f} | {r['embedding_params']:,} | "
            f"{'' if share is None else f'{share:.1%}'} | {r['savedmodel_bytes']:,} |"
        )
    return lines


def _plan_lines(rows: List[dict]) -> List[str]:
    lines = []
    for r in rows:
        if "fields_by_seed" in r:
            dims = ", ".join(f"{n} {d}" for n, d in r["fields_by_seed"][0].items())
            lines.append(f"- {r['method']} (seed {r['seeds'][0]}): {dims}")
    return lines


def _speed_value(value: float, unit: str) -> str:
    """A median in the unit people read it in: examples/s, ms per call, seconds."""
    if unit.startswith("training examples"):
        return f"{value:,.0f} ex/s"
    if unit.startswith("seconds per serving"):
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def _speed_table(throughput: List[dict]) -> List[str]:
    lines = [
        "| comparison | ratio of medians | target | variant median | FDE / baseline median "
        "| source |",
        "|---|---|---|---|---|---|",
    ]
    for r in throughput:
        unit = r.get("unit", "")
        lines.append(
            f"| {r['name']} | {r['ratio']:.3f} | {r.get('target', '')} | "
            f"{_speed_value(r['numerator']['median'], unit)} | "
            f"{_speed_value(r['denominator']['median'], unit)} | {r.get('source', 'this run')} |"
        )
    return lines


def _memory_lines(memory: List[dict]) -> List[str]:
    """The peak-memory section: each model's increase against FDE's, and the whole process."""
    if not memory:
        return []
    settings = memory[0].get("settings", {})
    lines = [
        "## Peak memory",
        "",
        f"{settings.get('model', '')} on {settings.get('train_examples', 0):,} synthetic "
        f"training examples, batch size {settings.get('batch_size', '')}; every model trains "
        "one epoch, or serves "
        f"{settings.get('calls', '')} calls of its SavedModel, in a process of its own, "
        f"{settings.get('repeats', '')} round(s). Increase: peak resident memory minus the "
        "process's memory before the model was built (libraries and data held in memory "
        "excluded); medians over the rounds.",
        "",
        "| comparison | ratio of increases | variant increase | FDE increase "
        "| variant process peak | FDE process peak |",
        "|---|---|---|---|---|---|",
    ]
    for r in memory:
        numerator, denominator = r["numerator"], r["denominator"]
        lines.append(
            f"| {r['name']} | {r['ratio']:.3f} | {numerator['median']:,.0f} MiB | "
            f"{denominator['median']:,.0f} MiB | {numerator['peak_rss_mib']['median']:,.0f} MiB | "
            f"{denominator['peak_rss_mib']['median']:,.0f} MiB |"
        )
    lines.append("")
    return lines


def markdown(records: Sequence[dict], config: StudyConfig, plots: Sequence[str]) -> str:
    """The report: the run, targets, quality per dataset and backbone, speed, memory,
    transfer, field power, and the `plots` (PNG names beside the report). Stability is
    in its target's details."""
    run = _by_kind(records, "run")[0]
    targets = _by_kind(records, "target")
    met = sum(t["status"] == MET for t in targets)
    lines = [
        f"# Benchmark study ({config.name})",
        "",
        f"`python -m benchmarks.study --config {config.name}`: seeds {list(config.seeds)}, "
        f"RaS best of {config.ras_trials}. Every cell trains through the library's own "
        "functions on data preprocessed once by the Beam job (DirectRunner); test-split "
        "metrics; std over seeds with ddof=1 (0.0 with one seed, which says nothing about "
        "noise).",
        "",
        *_machine_lines(run),
        "",
        f"## Targets: {met} of {len(targets)} met",
        "",
    ]
    for t in targets:
        lines.append(f"- {_STATUS_MARK[t['status']]}: {t['description']}.")
        lines += [f"  - {detail}" for detail in t["details"]]
        if t["status"] != MET and t.get("explanation"):
            lines.append(f"  - Why: {t['explanation']}")
    quality = _by_kind(records, "quality")
    lines += ["", "## Quality", ""]
    for dataset in config.datasets:
        settings = dataset.describe()
        for model in dataset.models:
            rows = [r for r in quality if r["dataset"] == dataset.name and r["model"] == model]
            if not rows:
                continue
            lines += [f"### {dataset.name} / {model}", "", f"{settings}.", ""]
            lines += _quality_table(rows)
            plans = _plan_lines(rows)
            if plans:
                lines += ["", "Dims per field:", "", *plans]
            lines.append("")
    failed = _by_kind(records, "failed_cell")
    if failed:
        lines += ["### Cells that failed", ""]
        lines += [f"- {r['cell']}: {r['error']}" for r in failed]
        lines.append("")
    if config.not_run:
        lines += ["### Not run", ""]
        lines += [f"- {name}: {reason}" for name, reason in config.not_run]
        lines.append("")
    lines += ["### Methods", ""]
    lines += [f"- `{name}`: {METHODS[name].description}" for name in config.methods]
    lines.append("")
    throughput = _by_kind(records, "throughput")
    if throughput:
        settings = next((r["settings"] for r in throughput if "calls" in r.get("settings", {})), {})
        lines += [
            "## Speed",
            "",
            f"{settings.get('model', '')} on {settings.get('train_examples', 0):,} synthetic "
            f"training examples, batch size {settings.get('batch_size', '')}, "
            f"{settings.get('repeats', '')} timed epochs per variant round-robin, input held "
            "in memory; serving: median over repeats of the median of "
            f"{settings.get('calls', '') or 'several'} `serving_default` calls on one batch.",
            "",
            *_speed_table(throughput),
            "",
        ]
    lines += _memory_lines(_by_kind(records, "memory"))
    lines += _transfer_lines(_by_kind(records, "quality"))
    lines += _field_power_lines(_by_kind(records, "field_power"))
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{name}]({name})" for name in plots]
        lines.append("")
    return "\n".join(lines)


def plot_auc_vs_params(quality: Sequence[dict], dataset: str, models, path: str) -> bool:
    """AUC against embedding parameters (log x), every method, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [m for m in models if any(r["model"] == m for r in quality)]
    if not panels:
        return False
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for axis, model in zip(axes[0], panels):
        rows = [r for r in quality if r["dataset"] == dataset and r["model"] == model]
        for index, r in enumerate(rows):
            axis.errorbar(
                r["embedding_params"], r["auc_mean"], yerr=r["auc_std"], fmt="o", capsize=3
            )
            axis.annotate(
                r["method"],
                (r["embedding_params"], r["auc_mean"]),
                fontsize=7,
                xytext=(4, 3 - 10 * (index % 2)),  # alternate, so equal points stay legible
                textcoords="offset points",
            )
        axis.set_xscale("log")
        axis.set_title(f"{dataset} / {model}", fontsize=9)
        axis.set_xlabel("embedding parameters")
        axis.set_ylabel("test AUC")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_alpha(search_dir: str, path: str) -> bool:
    """The alpha trajectories of one search run (`plot_search` on its `alpha_history.csv`)."""
    history = os.path.join(search_dir, "alpha_history.csv")
    if not os.path.exists(history):
        return False
    from keras_dimsel.autodim import DimensionPlan, plot_search

    with open(history) as f:
        rows = []
        for line in f.read().splitlines()[1:]:
            step, field, candidate, probability = line.split(",")
            rows.append((int(step), field, int(candidate), float(probability)))
    plot_search(rows, DimensionPlan.load(search_dir), path)
    return True


def plot_amtl(cell: dict, path: str) -> bool:
    """AMTL's average dim per frequency group (`plot_amtl_dims`) of one AMTL cell."""
    if "dim_by_frequency_group" not in cell:
        return False
    from keras_dimsel.amtl import plot_amtl_dims

    plot_amtl_dims(cell["dim_by_frequency_group"], cell["max_dim"], path)
    return True


def _first(cells: Sequence[dict], dataset: str, methods: Sequence[str]) -> Optional[dict]:
    """The first cell of `dataset` whose method is the first of `methods` present."""
    for method in methods:
        for cell in cells:
            if cell["dataset"] == dataset and cell["method"] == method:
                return cell
    return None


def write_plots(
    records: Sequence[dict], cells: Sequence[dict], config: StudyConfig, cell_dir, out: str
) -> List[str]:
    """Writes every plot into `out` (`cell_dir`: a cell to its directory); returns the
    file names written."""
    quality = _by_kind(records, "quality")
    written = []
    for dataset in config.datasets:
        name = f"auc_vs_params_{dataset.name}.png"
        if plot_auc_vs_params(quality, dataset.name, dataset.models, os.path.join(out, name)):
            written.append(name)
        search = _first(cells, dataset.name, ("autodim",))
        if search:
            key = (search["dataset"], search["model"], search["method"], search["seed"])
            name = f"alpha_{dataset.name}_{search['model']}.png"
            search_dir = os.path.join(cell_dir(Cell(*key)), search["search_dir"])
            if plot_alpha(search_dir, os.path.join(out, name)):
                written.append(name)
        masked = _first(cells, dataset.name, ("amtl_warm", "amtl_cold", "aml"))
        if masked:
            name = f"amtl_dims_{dataset.name}_{masked['model']}_{masked['method']}.png"
            if plot_amtl(masked, os.path.join(out, name)):
                written.append(name)
    return written


def _field_power_lines(records: Sequence[dict]) -> List[str]:
    """Per dataset: each field's single-field AUC next to AutoDim's dims (the paper's Table 4)."""
    lines: List[str] = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        rows = sorted(
            (r for r in records if r["dataset"] == dataset), key=lambda r: -r["single_field_auc"]
        )
        models = list(dict.fromkeys(m for r in rows for m in r["dims"]))
        rho = rank_agreement(rows)
        lines += [
            f"## Single-field predictive power and {rows[0]['method']}'s dims: {dataset}",
            "",
            "Single-field AUC: the test AUC of the field alone, each row scored by the "
            "train click rate of its value (no model, no seed). Dims: the plan of each "
            "seed, in seed order.",
            "",
            "| field | vocabulary | single-field AUC | " + " | ".join(models) + " |",
            "|---|---|---|" + "---|" * len(models),
        ]
        for r in rows:
            dims = [", ".join(str(d) for d in r["dims"].get(m, [])) or "-" for m in models]
            lines.append(
                f"| {r['field']} | {r['vocab_size']:,} | {r['single_field_auc']:.4f} | "
                + " | ".join(dims)
                + " |"
            )
        verdict = (
            "n/a (too few fields with dims, or one side constant)" if rho is None else f"{rho:.2f}"
        )
        lines += ["", f"Spearman's rho between single-field AUC and mean dim: {verdict}.", ""]
    return lines


def _transfer_lines(quality: Sequence[dict]) -> List[str]:
    """Per backbone: AutoDim with its own plan against the plan searched with FM."""
    transferred = {}
    for method, spec in METHODS.items():
        if spec.kind == "transfer":
            transferred[method] = spec.options["source_method"]
    by_key = {(r["dataset"], r["model"], r["method"]): r for r in quality}
    rows = []
    for (dataset, model, method), record in by_key.items():
        own = by_key.get((dataset, model, transferred.get(method)))
        if method in transferred and own:
            rows.append(
                f"| {dataset} | {model} | {own['auc_mean']:.4f} ± {own['auc_std']:.4f} "
                f"({own['embedding_params']:,}) | {record['auc_mean']:.4f} ± "
                f"{record['auc_std']:.4f} ({record['embedding_params']:,}) | "
                f"{record['auc_mean'] - own['auc_mean']:+.4f} |"
            )
    if not rows:
        return []
    return [
        "## Transferability: dims searched with FM, retrained in another backbone",
        "",
        "| dataset | backbone | own search: AUC (params) | FM's plan: AUC (params) | difference |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
