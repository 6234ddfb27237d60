"""One table from `search_quality.py` runs at several sizes and settings: how often, how stably.

Reads `<settings>_<rows>.json` files written by `search_quality.py --derive alpha`
(one file per data size and search setting, seeds 0-2 each) and prints, per
setting and size:

- how many seeds give both interaction fields a larger dim than every noise
  field (`interaction_larger`);
- the mean pairwise Pearson r of the per-field dims across seeds ("n/a" for a
  pair in which a plan gives every field the same dim: r is undefined);
- the median, over fields and seeds, of alpha's margin: the probability of the
  most likely candidate minus that of the next;
- each seed's plan, in the field order of the file.

Usage (from the repository root):

    .venv/bin/python benchmarks/search_trust.py benchmarks/results/search_trust
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import statistics
import sys
from typing import Optional, Sequence

import numpy as np


def pearson(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def summarize(record: dict) -> dict:
    fields = record["fields"]
    runs = [run for run in record["runs"] if run["derive"] == "alpha"]
    dims = [[run["plan"][name] for name in fields] for run in runs]
    pairs = [pearson(a, b) for a, b in itertools.combinations(dims, 2)]
    defined = [r for r in pairs if r is not None]
    margins = []
    for run in runs:
        for weights in run["alpha"].values():
            first, second = sorted(weights, reverse=True)[:2]
            margins.append(first - second)
    return {
        "rows": record["settings"]["rows"],
        "found": sum(run["interaction_larger"] for run in runs),
        "seeds": len(runs),
        "mean_r": statistics.mean(defined) if defined else None,
        "undefined_pairs": len(pairs) - len(defined),
        "median_margin": statistics.median(margins),
        "plans": [" ".join(str(d) for d in plan) for plan in dims],
        "commit": (record["code"].get("commit") or "unknown")[:7],
        "fields": fields,
    }


def table(directory: str) -> str:
    rows = []
    for path in glob.glob(os.path.join(directory, "*_*.json")):
        setting = os.path.basename(path).rsplit("_", 1)[0]
        with open(path) as f:
            rows.append((setting, summarize(json.load(f))))
    if not rows:
        raise SystemExit(f"no search_quality results (<setting>_<rows>.json) in {directory}")
    rows.sort(key=lambda row: (row[0], row[1]["rows"]))
    fields = " ".join(rows[0][1]["fields"])
    lines = [
        f"| setting | rows | interaction larger | mean r over seed pairs | median alpha margin "
        f"| plans ({fields}) | commit |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting, s in rows:
        r = "n/a" if s["mean_r"] is None else f"{s['mean_r']:.2f}"
        if s["undefined_pairs"]:
            r += f" ({s['undefined_pairs']} pair(s) n/a)"
        lines.append(
            f"| {setting} | {s['rows']:,} | {s['found']} of {s['seeds']} | {r} | "
            f"{s['median_margin']:.3f} | {'; '.join(s['plans'])} | {s['commit']} |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    args = parser.parse_args(argv)
    print(table(args.directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
