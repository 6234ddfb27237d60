"""The study's grid, declared as data: datasets x models x methods x seeds.

Two configurations:

- `quick` (`make bench-quick`): one seed, MovieLens-100K and the Criteo 10k
  sample, one epoch, the core methods, and the speed comparisons on 100,000
  synthetic rows. It fits in about ten minutes on two cores.
- `full` (`make bench`): three seeds, every dataset with a reader, the three
  backbones, every method, the library's default epochs, and the speed
  comparisons on 1,000,000 synthetic rows. It takes hours.

`expand(config)` turns a configuration into its cells, one per (dataset,
model, method, seed), in the order they run (a method's dependencies first).
Nothing here imports TensorFlow, so `--dry-run` and the tests stay fast.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The public samples live beside the repository and are read in place, never copied.
DEFAULT_DATA_ROOT = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
CANDIDATES = (2, 8, 16, 24, 32)
#: The dimension of the full-dimension model and AMTL's D: the largest candidate.
FULL_DIM = max(CANDIDATES)
#: The popularity exponent of the MDE rule (`study_mde`).
MDE_ALPHA = 0.3


@dataclasses.dataclass(frozen=True)
class Method:
    """How the study trains one method, in terms of the library's functions.

    Args:
        kind: str, one of `METHOD_KINDS`:
            `baseline` (`run_baseline`), `mde` (`run_retrain` of the MDE plan),
            `ras` (`RandomDimensionTuner` + `RandomSearchOracle`), `autodim`
            (`run_search` + `run_retrain`), `amtl` (`run_amtl`), `transfer`
            (`run_retrain` of the plan another backbone's cell searched).
        options: dict, the keyword arguments that set the variant apart
            (`mode`, `storage`, `unify`, `twins`, or `warm_start=True` for
            AMTL started from the cell's `fde` run).
        description: str, one line for the report.
        models: tuple of str or None, the backbones it runs on (None: every one).
    """

    kind: str
    options: Dict[str, object] = dataclasses.field(default_factory=dict)
    description: str = ""
    models: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        if self.kind not in METHOD_KINDS:
            raise ValueError(f"`kind` must be one of {METHOD_KINDS}. Received: kind={self.kind!r}")


METHOD_KINDS = ("baseline", "mde", "ras", "autodim", "amtl", "transfer")

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
#: Cells a method reads from: AMTL warm starts from the same seed's `fde` run.
DEPENDENCIES: Dict[str, Tuple[str, ...]] = {"amtl_warm": ("fde",)}


def dependencies(cell: Cell) -> List[Cell]:
    """The cells `cell` reads from: `DEPENDENCIES` of its backbone, and a transfer's source.

    Examples:

        >>> [c.key for c in dependencies(Cell("criteo", "deepfm", "autodim_fm_plan", 1))]
        ['criteo/fm/autodim/seed1']
        >>> [c.key for c in dependencies(Cell("criteo", "fm", "amtl_warm", 0))]
        ['criteo/fm/fde/seed0']
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
    """One dataset of the study and its training settings.

    Args:
        name: str, the name in records and reports.
        reader: str, the `make_reader` dataset name.
        inputs: tuple of str, input paths relative to the data root.
        models: tuple of str, the backbones run on it.
        epochs: int or None, epochs per training run (None: the library's default).
        batch_size: int or None, batch size (None: the library's default).
        min_count: int, the preprocessing's `min_count`.
        keep_best: bool, runs that train a final model end with their epoch of
            best validation AUC (`TrainSettings.keep_best`).
    """

    name: str
    reader: str
    inputs: Tuple[str, ...]
    models: Tuple[str, ...]
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    min_count: int = 1
    keep_best: bool = False

    def settings(self) -> dict:
        """The settings a cell's cached result must share to be reused."""
        settings = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "min_count": self.min_count,
        }
        if self.keep_best:  # absent when off: results cached before the option still match
            settings["keep_best"] = True
        return settings

    def describe(self) -> str:
        """Its training settings in words, for the dry run and the report."""
        text = (
            f"epochs {self.epochs or 'library default'}, "
            f"batch size {self.batch_size or 'library default'}"
        )
        if self.keep_best:
            text += ", each run ends with its epoch of best validation AUC"
        return text


@dataclasses.dataclass(frozen=True)
class Speed:
    """The speed comparisons: one run per comparison on one synthetic data set.

    Args:
        rows: int, synthetic rows (80% train).
        model: str, the backbone.
        batch_size: int, the batch size of every variant and of the serving call.
        repeats: int, timed epochs (and serving rounds) per variant, round-robin.
        calls: int, `serving_default` calls per serving round.
        preprocess: str, `"committed"` reads `results/preprocess_speed.json`;
            `"run"` runs `preprocess_speed.py` on `preprocess_rows` rows.
        preprocess_rows: int, rows of the preprocessing benchmark when it runs.
        preprocess_repeats: int, its timed runs per variant.
        memory_repeats: int, rounds of the peak-memory jobs (`study_memory.py`),
            each model training and serving in a fresh process.
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


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A whole study: the grid, the speed comparisons and the datasets left out.

    Args:
        name: str, `quick` or `full` (cells are cached per configuration).
        datasets: tuple of Dataset.
        methods: tuple of str, keys of `METHODS`, in report order.
        seeds: tuple of int.
        ras_trials: int, N of RaS's best of N.
        speed: Speed or None.
        not_run: tuple of (dataset, reason) pairs the report lists.
    """

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
        """The dataset called `name`."""
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise KeyError(name)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training unit of the grid: a method on a dataset and backbone, with a seed."""

    dataset: str
    model: str
    method: str
    seed: int

    @property
    def key(self) -> str:
        """`dataset/model/method/seed<k>`, also the cell's directory under the work dir."""
        return f"{self.dataset}/{self.model}/{self.method}/seed{self.seed}"


MOVIELENS = Dataset("movielens-100k", "movielens-100k", ("ml-100k",), ("fm", "wide_deep", "deepfm"))
CRITEO = Dataset("criteo", "criteo", ("criteo/train_head10k.txt",), ("fm", "wide_deep", "deepfm"))
AVAZU = Dataset(
    "avazu",
    "avazu",
    ("avazu/train_first8999.csv", "avazu/extra_1000_noheader.csv"),
    ("fm", "wide_deep", "deepfm"),
)
#: The NFM authors' validation and test files (their training file is not in the
#: sample); the Beam job splits the two together like any other input.
FRAPPE = Dataset(
    "frappe",
    "frappe",
    ("frappe/frappe.validation.libfm.gz", "frappe/frappe.test.libfm.gz"),
    ("fm", "wide_deep", "deepfm"),
)


def frappe_status() -> Tuple[bool, str]:
    """Whether the library reads Frappe, and if not, why the study leaves it out.

    `keras_dimsel.data.frappe.FrappeReader` reads the libFM files (`dimsel
    preprocess --dataset frappe`), so the full configuration runs Frappe; the
    check stays so that a library without the reader still gets a study that
    says why Frappe is missing.
    """
    from keras_dimsel.data.datasets import DATASETS

    if "frappe" in DATASETS:
        return True, ""
    return False, (
        "no reader: keras_dimsel.data.datasets reads "
        f"{', '.join(DATASETS)}; the Frappe sample is libFM text "
        "(`label idx:1` x 10), which the csv reader does not parse"
    )


def _quick() -> StudyConfig:
    return StudyConfig(
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
    )


def _full() -> StudyConfig:
    datasets = [MOVIELENS, CRITEO, AVAZU]
    not_run = []
    has_frappe, reason = frappe_status()
    if has_frappe:
        datasets.append(FRAPPE)
    else:
        not_run.append(("frappe", reason))
    # The samples are small: with the default three epochs a model with more
    # parameters overfits more, which would credit a method with what early
    # stopping gives any model. Every method keeps its best epoch.
    datasets = [dataclasses.replace(dataset, keep_best=True) for dataset in datasets]
    return StudyConfig(
        name="full",
        datasets=tuple(datasets),
        methods=tuple(METHODS),
        seeds=(0, 1, 2),
        ras_trials=10,
        speed=Speed(rows=1_000_000, repeats=5, calls=20, preprocess="run", memory_repeats=3),
        not_run=tuple(not_run),
    )


CONFIGS = {"quick": _quick, "full": _full}


def load_config(name: str) -> StudyConfig:
    """The configuration called `name` (`quick` or `full`).

    Raises:
        ValueError: on an unknown name.
    """
    if name not in CONFIGS:
        raise ValueError(f"`config` must be one of {tuple(CONFIGS)}. Received: config={name!r}")
    return CONFIGS[name]()


def expand(config: StudyConfig) -> List[Cell]:
    """Every cell of the grid, in run order.

    Datasets, then models, then seeds, then methods in the configuration's
    order, except that a method's dependencies (`DEPENDENCIES`) run first and
    are added to the grid when the configuration does not list them. A method
    with `models` runs on those backbones only; a transfer needs its source
    backbone in the dataset's models, before it in the grid (`study.run_cells`
    starts a cell once the cells it reads have finished).

    Examples:

        >>> cells = expand(load_config("quick"))
        >>> len(cells)  # (2 MovieLens models + 1 Criteo model) x 6 methods x 1 seed
        18
        >>> cells[0].key
        'movielens-100k/fm/fde/seed0'
    """
    order: List[str] = []
    for method in config.methods:
        for needed in DEPENDENCIES.get(method, ()):
            if needed not in order:
                order.append(needed)
        if method not in order:
            order.append(method)
    return [
        Cell(dataset.name, model, method, seed)
        for dataset in config.datasets
        for model in dataset.models
        for seed in config.seeds
        for method in order
        if _runs_on(METHODS[method], model, dataset)
    ]


def _runs_on(method: Method, model: str, dataset: Dataset) -> bool:
    """Whether a method has a cell on this backbone (and, for a transfer, a source)."""
    if method.models is not None and model not in method.models:
        return False
    return method.kind != "transfer" or method.options["source_model"] in dataset.models


def describe(config: StudyConfig, done: Optional[Dict[Cell, float]] = None) -> str:
    """A plain-text listing of the configuration and its cells (`--dry-run`).

    Args:
        config: StudyConfig.
        done: dict of the finished cells (a store's) to their training
            seconds; they are marked, and counted in the first line.

    Examples:

        >>> text = describe(load_config("quick"), {Cell("criteo", "fm", "fde", 0): 61.5})
        >>> print(text.splitlines()[0])
        config quick: 18 cells, seeds [0], RaS best of 2; done: 1 of 18 (62 s of training)
        >>> print(text.splitlines()[-6])
          criteo/fm/fde/seed0  done, 62 s
    """
    cells = expand(config)
    done = done or {}
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
    for dataset in config.datasets:
        lines.append(f"  {dataset.name}: models {list(dataset.models)}, {dataset.describe()}")
    for name, reason in config.not_run:
        lines.append(f"  not run: {name}: {reason}")
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
    """`62 s`, `14 min`, `3.2 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
