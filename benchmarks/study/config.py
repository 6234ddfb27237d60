"""The study's grid, declared as data: datasets x backbones x methods x seeds.

- `quick` (`make bench-quick`): one seed, MovieLens-100K and the Criteo 10k
  sample, one epoch, the core methods, speed on 100,000 synthetic rows; minutes.
- `full` (`make bench`): three seeds, four datasets, three backbones, every
  method, the library's default epochs, speed on 1,000,000 rows; hours.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The public samples live beside the repository and are read in place, never copied.
DEFAULT_DATA_ROOT = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
CANDIDATES = (2, 8, 16, 24, 32)
#: The dimension of the full-dimension model and AMTL's D: the largest candidate.
FULL_DIM = max(CANDIDATES)
#: The popularity exponent of the MDE rule (`mde_dims`).
MDE_ALPHA = 0.3
#: keras-tuner's oracles treat seed 0 as "no seed" (`seed or random.randint(...)`), which
#: would make RaS's trials depend on what ran before in the process: the oracle gets seed + 1.
RAS_ORACLE_SEED_OFFSET = 1


@dataclasses.dataclass(frozen=True)
class Method:
    """How a method trains: `kind` names the pipeline steps of `cells.py` (`baseline`,
    `mde`, `ras`, `autodim`, `amtl`, `transfer`), `options` set the variant apart, and
    `models` limits the backbones it runs on (None: every one)."""

    kind: str
    options: Dict[str, object] = dataclasses.field(default_factory=dict)
    description: str = ""
    models: Optional[Tuple[str, ...]] = None


METHODS: Dict[str, Method] = {
    "fde": Method("baseline", {}, f"full dimension: every field at {FULL_DIM} (run_baseline)"),
    "mde": Method(
        "mde",
        {"alpha": MDE_ALPHA},
        f"mixed dimensions by popularity, d_f ~ (1 / vocab_f)^{MDE_ALPHA} (Ginart et al.)",
    ),
    "ras": Method("ras", {}, "random dims from the candidates, best of N by validation AUC"),
    "autodim_s": Method("autodim", {"mode": "joint"}, "AutoDim-s: W and alpha on the same batch"),
    "autodim": Method("autodim", {}, "AutoDim, default variant: shared storage, linear unify"),
    "autodim_shared_zero_pad": Method(
        "autodim", {"storage": "shared", "unify": "zero_pad"}, "AutoDim, shared + zero-pad"
    ),
    "autodim_separate_linear": Method(
        "autodim", {"storage": "separate", "unify": "linear"}, "AutoDim, separate + linear"
    ),
    "autodim_separate_zero_pad": Method(
        "autodim", {"storage": "separate", "unify": "zero_pad"}, "AutoDim, separate + zero-pad"
    ),
    "amtl_cold": Method("amtl", {}, "AMTL from a random initialisation"),
    "amtl_warm": Method("amtl", {"warm_start": True}, "AMTL warm-started from the fde run"),
    "aml": Method("amtl", {"twins": False}, "AML: AMTL with one branch (ablation), cold"),
    "autodim_fm_plan": Method(
        "transfer",
        {"source_model": "fm", "source_method": "autodim"},
        "AutoDim's plan searched with FM, retrained in this backbone (transferability)",
        models=("wide_deep", "deepfm"),
    ),
}
#: Cells a method reads from on its own backbone: AMTL warm starts from the `fde` run.
DEPENDENCIES: Dict[str, Tuple[str, ...]] = {"amtl_warm": ("fde",)}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training unit of the grid: a method on a dataset and backbone, with a seed."""

    dataset: str
    model: str
    method: str
    seed: int

    @property
    def key(self) -> str:
        """`dataset/model/method/seed<k>`, also the cell's directory."""
        return f"{self.dataset}/{self.model}/{self.method}/seed{self.seed}"


def dependencies(cell: Cell) -> List[Cell]:
    """The cells `cell` reads from: `DEPENDENCIES` of its backbone, and a transfer's source.

    >>> [c.key for c in dependencies(Cell("criteo", "deepfm", "autodim_fm_plan", 1))]
    ['criteo/fm/autodim/seed1']
    """
    needed = [
        Cell(cell.dataset, cell.model, m, cell.seed) for m in DEPENDENCIES.get(cell.method, ())
    ]
    method = METHODS[cell.method]
    if method.kind == "transfer":
        source = (method.options["source_model"], method.options["source_method"])
        needed.append(Cell(cell.dataset, *source, cell.seed))
    return needed


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset (`reader`: the `make_reader` name; `inputs` under the data root), its
    backbones and training settings (None: the library's default; `keep_best`: runs end
    with their epoch of best validation AUC)."""

    name: str
    reader: str
    inputs: Tuple[str, ...]
    models: Tuple[str, ...]
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    min_count: int = 1
    keep_best: bool = False

    def settings(self) -> dict:
        settings = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "min_count": self.min_count,
        }
        if self.keep_best:  # absent when off: cells made before the option still match
            settings["keep_best"] = True
        return settings

    def describe(self) -> str:
        text = (
            f"epochs {self.epochs or 'library default'}, "
            f"batch size {self.batch_size or 'library default'}"
        )
        if self.keep_best:
            text += ", each run ends with its epoch of best validation AUC"
        return text


@dataclasses.dataclass(frozen=True)
class Speed:
    """The options of `benchmarks/study_speed.py`, the speed and memory comparisons on
    `rows` synthetic rows: `repeats` timed epochs (and serving rounds of `calls` calls)
    per model, `memory_repeats` rounds of the memory jobs; `preprocess`: `"committed"`
    reads `results/preprocess_speed.json`, `"run"` runs `preprocess_speed.py` on
    `preprocess_rows` rows.

    >>> Speed(rows=100, repeats=1).argv()[:3]
    ['--rows=100', '--model=deepfm', '--batch-size=2000']
    """

    rows: int
    model: str = "deepfm"
    batch_size: int = 2000
    repeats: int = 3
    calls: int = 10
    preprocess: str = "committed"
    preprocess_rows: int = 1_000_000
    preprocess_repeats: int = 3
    memory_repeats: int = 1

    def argv(self) -> List[str]:
        return [f"--{k.replace('_', '-')}={v}" for k, v in dataclasses.asdict(self).items()]


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A whole study: the grid (methods in report order), RaS's N, the speed comparisons
    and the datasets left out, as (name, reason) pairs."""

    name: str
    datasets: Tuple[Dataset, ...]
    methods: Tuple[str, ...]
    seeds: Tuple[int, ...]
    ras_trials: int
    speed: Optional[Speed]
    not_run: Tuple[Tuple[str, str], ...] = ()

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; known: {sorted(METHODS)}")

    def dataset(self, name: str) -> Dataset:
        return next(d for d in self.datasets if d.name == name)

    def cell_settings(self, cell: Cell) -> dict:
        """What a cell's record must have been made with to be reused."""
        method = METHODS[cell.method]
        settings = {
            **self.dataset(cell.dataset).settings(),
            "candidates": list(CANDIDATES),
            "full_dim": FULL_DIM,
            "method": {"kind": method.kind, **method.options},
        }
        if method.kind == "ras":
            settings["ras_trials"] = self.ras_trials
            settings["oracle_seed"] = cell.seed + RAS_ORACLE_SEED_OFFSET
        return settings


_BACKBONES = ("fm", "wide_deep", "deepfm")
MOVIELENS = Dataset("movielens-100k", "movielens-100k", ("ml-100k",), _BACKBONES)
CRITEO = Dataset("criteo", "criteo", ("criteo/train_head10k.txt",), _BACKBONES)
AVAZU = Dataset(
    "avazu", "avazu", ("avazu/train_first8999.csv", "avazu/extra_1000_noheader.csv"), _BACKBONES
)
#: The NFM authors' validation and test files (their training file is not in the
#: sample); the Beam job splits the two together like any other input.
FRAPPE = Dataset(
    "frappe",
    "frappe",
    ("frappe/frappe.validation.libfm.gz", "frappe/frappe.test.libfm.gz"),
    _BACKBONES,
)

CONFIGS = {
    "quick": StudyConfig(
        name="quick",
        datasets=(
            dataclasses.replace(MOVIELENS, models=("fm", "deepfm"), epochs=1),
            # 39 fields make a Criteo step slow; larger batches keep the run short.
            dataclasses.replace(CRITEO, models=("fm",), epochs=1, batch_size=256),
        ),
        methods=("fde", "mde", "ras", "autodim_s", "autodim", "amtl_cold"),
        seeds=(0,),
        ras_trials=2,
        speed=Speed(rows=100_000, repeats=3, calls=10, preprocess="committed"),
        not_run=(
            ("avazu", "left out of the quick configuration (run by `make bench`)"),
            ("frappe", "left out of the quick configuration"),
        ),
    ),
    # The samples are small: with the default three epochs a model with more
    # parameters overfits more, which would credit a method with what early
    # stopping gives any model. Every method keeps its best epoch.
    "full": StudyConfig(
        name="full",
        datasets=tuple(
            dataclasses.replace(d, keep_best=True) for d in (MOVIELENS, CRITEO, AVAZU, FRAPPE)
        ),
        methods=tuple(METHODS),
        seeds=(0, 1, 2),
        ras_trials=10,
        speed=Speed(rows=1_000_000, repeats=5, calls=20, preprocess="run", memory_repeats=3),
    ),
}


def expand(config: StudyConfig) -> List[Cell]:
    """Every cell of the grid, in run order: datasets, backbones, seeds, then methods in the
    configuration's order, a method's `DEPENDENCIES` first (added when not listed). A
    method with `models` runs on those only; a transfer needs its source backbone.

    >>> cells = expand(CONFIGS["quick"])
    >>> len(cells), cells[0].key  # (2 MovieLens models + 1 Criteo model) x 6 methods
    (18, 'movielens-100k/fm/fde/seed0')
    """
    order: List[str] = []
    for method in config.methods:
        order += [m for m in (*DEPENDENCIES.get(method, ()), method) if m not in order]

    def runs_on(method: Method, model: str, dataset: Dataset) -> bool:
        if method.models is not None and model not in method.models:
            return False
        return method.kind != "transfer" or method.options["source_model"] in dataset.models

    return [
        Cell(dataset.name, model, method, seed)
        for dataset in config.datasets
        for model in dataset.models
        for seed in config.seeds
        for method in order
        if runs_on(METHODS[method], model, dataset)
    ]


def describe(config: StudyConfig, done: Optional[Dict[Cell, float]] = None) -> str:
    """The configuration and its cells in plain text (`--dry-run`); `done` maps the
    finished cells to their training seconds.

    >>> text = describe(CONFIGS["quick"], {Cell("criteo", "fm", "fde", 0): 61.5})
    >>> print(text.splitlines()[0])
    config quick: 18 cells, seeds [0], RaS best of 2; done: 1 of 18 (62 s of training)
    >>> print(text.splitlines()[-6])
      criteo/fm/fde/seed0  done, 62 s
    """
    cells, done = expand(config), done or {}
    header = (
        f"config {config.name}: {len(cells)} cells, seeds {list(config.seeds)}, "
        f"RaS best of {config.ras_trials}"
    )
    if done:
        header += (
            f"; done: {sum(c in done for c in cells)} of {len(cells)} "
            f"({_duration(sum(done.values()))} of training)"
        )
    lines = [header]
    lines += [f"  {d.name}: models {list(d.models)}, {d.describe()}" for d in config.datasets]
    lines += [f"  not run: {name}: {reason}" for name, reason in config.not_run]
    if config.speed:
        speed = config.speed
        lines.append(
            f"  speed: synthetic {speed.rows:,} rows, {speed.model}, batch {speed.batch_size}, "
            f"{speed.repeats} repeats; preprocessing: {speed.preprocess}"
        )
    lines += [
        f"  {cell.key}  done, {_duration(done[cell])}" if cell in done else f"  {cell.key}"
        for cell in cells
    ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def mde_dims(vocab_sizes: Mapping[str, int], candidates: Sequence[int], alpha: float) -> dict:
    """MDE's dimension of every field (Ginart et al., "Mixed Dimension Embeddings", 2021).

    With one block per field, a row of field f has popularity p_f = 1 / V_f (V_f ids),
    and d_f = the candidate nearest to d_max * (p_f / p_max) ^ alpha (ties to the
    smaller), p_max being the smallest field's: larger fields get smaller dims.

    >>> mde_dims({"gender": 2, "age": 7, "user": 1000}, (2, 8, 16, 24, 32), alpha=0.3)
    {'gender': 32, 'age': 24, 'user': 2}

    (32 * (2/7)^0.3 = 21.98, nearest 24; 32 * (2/1000)^0.3 = 4.96, nearest 2.)
    """
    if alpha < 0:
        raise ValueError(f"`alpha` must be >= 0. Received: alpha={alpha!r}")
    if not vocab_sizes or min(vocab_sizes.values()) < 1:
        raise ValueError(f"vocabulary sizes must be >= 1. Received: {dict(vocab_sizes)}")
    p_max = 1.0 / min(vocab_sizes.values())
    return {
        name: round_to_candidate(max(candidates) * ((1.0 / size) / p_max) ** alpha, candidates)
        for name, size in vocab_sizes.items()
    }


def round_to_candidate(value: float, candidates: Sequence[int]) -> int:
    """The candidate nearest to `value`; on a tie, the smaller one."""
    return min(sorted(candidates), key=lambda c: abs(c - value))
