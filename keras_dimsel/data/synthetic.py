"""The synthetic CTR generator: data whose right answer is known.

Real logs never say which field matters. This generator plants the structure,
so a dimension search can be checked against it. It has two profiles.

**`demo`** (the default): seven small fields, learnt in minutes.

| field | values | role | how it enters the click logit |
|---|---|---|---|
| `user` | 1,000 | interaction | `<u[user], v[item]>`, rank-8 latent vectors |
| `item` | 500 | interaction | (the other side of the same inner product) |
| `category` | 60 | scalar | one effect per value, N(0, 0.6^2) |
| `device` | 8 | scalar | one effect per value, N(0, 0.3^2) |
| `price` | numeric | scalar | `0.5 * tanh(log price - 3)` |
| `noise_high` | 3,000 | noise | none |
| `noise_mid` | 200 | noise | none |
| `noise_low` | 10 | noise | none |

Every categorical field draws its values from a Zipf law (`p(rank r) ∝
(r + 1)^-1.1`), so a few values are frequent and most are rare, as in real
logs. The label is Bernoulli(sigmoid(logit)) with a bias giving a click rate
near 25%. The expected outcome of a search: `user` and `item` need the largest
dimensions, `category` and `device` small ones, the noise fields the smallest;
within `user` and `item`, frequent values carry more signal than rare ones.
The sizes are chosen so that this answer can be learnt from 100,000 rows (the
demo's size): with five times more users, most of them are seen too rarely
for their rank-8 vectors to be learnt, and no dimension helps them.

**`criteo`**: the shape of the Criteo display-ads log, for runs at production
size (millions of rows and ids): 26 categorical fields `C1..C26` and 13 numeric
fields `I1..I13`, under Criteo's column names. A categorical value is either
missing (an empty cell), one of the field's *head* values, drawn from the same
Zipf law as the demo's and the only values with a planted effect, or a *rare
id*, drawn uniformly from a pool of `rare share x rows` ids (each pool id is
expected once; about 63% of them are seen, 58% of those once). The rare ids
are what make Criteo's largest fields (C3, C4, C12, C16, C21, C24) huge: their
number grows in proportion to the rows, so 10M rows hold about 6.6 million
distinct ids (2.9 million seen twice or more), 95% of them in those six fields,
and 1M rows about 0.9 million (86% in the six fields; the head values do not
grow with the rows).

| field | head values | rare share | missing | role | effect of a head value |
|---|---|---|---|---|---|
| `C1` | 1,400 | | | scalar | N(0, 0.3^2) |
| `C2` | 550 | | | scalar | N(0, 0.2^2) |
| `C3` | 30,000 | 25% | 4% | interaction | `1.2 <u[C3], v[C7]> / sqrt(8)` |
| `C4` | 20,000 | 8% | 4% | noise | none |
| `C5` | 300 | | | noise | none |
| `C6` | 24 | | 12% | scalar | N(0, 0.4^2) |
| `C7` | 10,000 | | | interaction | (the other side of C3's product) |
| `C8` | 630 | | | noise | none |
| `C9` | 3 | | | scalar | N(0, 0.3^2) |
| `C10` | 50,000 | 1% | | noise | none |
| `C11` | 5,000 | | | interaction | `1.0 <u[C11], v[C13]> / sqrt(8)` |
| `C12` | 20,000 | 22% | 4% | scalar | N(0, 0.5^2) |
| `C13` | 3,000 | | | interaction | (the other side of C11's product) |
| `C14` | 27 | | | scalar | N(0, 0.3^2) |
| `C15` | 15,000 | | | noise | none |
| `C16` | 20,000 | 18% | 4% | noise | none |
| `C17` | 10 | | | scalar | N(0, 0.4^2) |
| `C18` | 5,600 | | | noise | none |
| `C19` | 2,200 | | 44% | noise | none |
| `C20` | 4 | | 44% | noise | none |
| `C21` | 20,000 | 20% | 4% | noise | none |
| `C22` | 18 | | 76% | noise | none |
| `C23` | 15 | | | scalar | N(0, 0.3^2) |
| `C24` | 100,000 | 3% | 4% | noise | none |
| `C25` | 105 | | 44% | noise | none |
| `C26` | 20,000 | 2% | 44% | scalar | N(0, 0.3^2) |

Missing values and rare ids have no effect. The numeric fields are counts with
heavy tails, like Criteo's: `x = max(0, floor(exp(m + s z)) - 1)`, z ~ N(0, 1),
so that `log(1 + x)` is about N(m, s^2), with many zeros where m is small.

| field | m | s | missing | role | effect (none when missing) |
|---|---|---|---|---|---|
| `I1` | 0.7 | 1.2 | 45% | scalar | `0.4 tanh(log(1 + I1) - 0.7)` |
| `I2` | 1.5 | 2.5 | | noise | none |
| `I3` | 2.1 | 1.3 | 20% | scalar | `-0.3 tanh(log(1 + I3) - 2.1)` |
| `I4` | 1.7 | 0.9 | 20% | noise | none |
| `I5` | 7.8 | 2.5 | 3% | noise | none |
| `I6` | 3.7 | 1.8 | 22% | scalar | `0.3 tanh(log(1 + I6) - 3.7)` |
| `I7` | 1.4 | 1.6 | 4% | scalar | `0.4 tanh(log(1 + I7) - 1.4)` |
| `I8` | 2.1 | 1.2 | 0.1% | noise | none |
| `I9` | 3.7 | 1.6 | 4% | noise | none |
| `I10` | 0.7 | 0.5 | 45% | noise | none |
| `I11` | 0.9 | 1.0 | 4% | scalar | `-0.3 tanh(log(1 + I11) - 0.9)` |
| `I12` | 0.0 | 1.3 | 76% | noise | none |
| `I13` | 1.9 | 1.1 | 20% | scalar | `0.3 tanh(log(1 + I13) - 1.9)` |

The bias is solved, for each seed, on 2^16 rows of a separate random stream so
that the expected click rate is 25% (Criteo's is 25.6%). The two inner
products carry most of the signal: the true click probabilities have an AUC
of 0.84-0.85 (seeds 0-2); for seed 0, 0.77 without one of the products and
0.833-0.840 without any one scalar field, categorical or numeric. The expected
outcome of a search: the four interaction fields need the largest dimensions
(at 10M rows, the C3 head values seen 100 times or more carry 89% of C3's head
rows; 75% at 1M rows), the scalar fields small ones, the noise fields the
smallest, whatever the size of their tables: C16 and C21 are two of the
largest tables and pure noise.

`generate_csv` writes the rows as CSV (`label`, then the fields in the order
of the tables above) plus `ground_truth.json` next to it, and `SyntheticReader`
reads that CSV through the same generic CSV path a user's own data takes. The
`criteo` profile is generated in chunks of `CHUNK_ROWS` rows, each from its own
random stream, two chunks at a time (NumPy and Arrow release the GIL), so the
memory stays bounded and the output does not depend on the threads.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import json
import os
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from keras_dimsel import _io
from keras_dimsel.data.csv import CsvReader

PROFILES = ("demo", "criteo")


@dataclasses.dataclass(frozen=True)
class SyntheticField:
    """One planted categorical field.

    Attributes:
        name: str, the column name.
        cardinality: int, the number of values drawn from the Zipf law (the
            head values; all the values of a `demo` field).
        role: str, `"interaction"`, `"scalar"` or `"noise"`.
        scale: float, the standard deviation of a scalar field's per-value effect.
        rare_share: float, the share of rows with a rare id (`criteo` only).
        missing: float, the share of rows with an empty cell (`criteo` only).
    """

    name: str
    cardinality: int
    role: str  # "interaction" | "scalar" | "noise"
    scale: float = 0.0
    rare_share: float = 0.0
    missing: float = 0.0


@dataclasses.dataclass(frozen=True)
class NumericField:
    """One numeric field of the `criteo` profile: `log(1 + x)` about N(log_mean, log_std^2).

    Attributes:
        name: str, the column name.
        log_mean: float, m in `x = max(0, floor(exp(m + s z)) - 1)`.
        log_std: float, s in the same formula.
        missing: float, the share of rows with an empty cell.
        effect: float, a in `a tanh(log(1 + x) - m)`; 0 for a noise field.
    """

    name: str
    log_mean: float
    log_std: float
    missing: float = 0.0
    effect: float = 0.0


FIELDS = (
    SyntheticField("user", 1000, "interaction"),
    SyntheticField("item", 500, "interaction"),
    SyntheticField("category", 60, "scalar", 0.6),
    SyntheticField("device", 8, "scalar", 0.3),
    SyntheticField("noise_high", 3000, "noise"),
    SyntheticField("noise_mid", 200, "noise"),
    SyntheticField("noise_low", 10, "noise"),
)
NUMERIC_FIELD = "price"
LATENT_RANK = 8
ZIPF_EXPONENT = 1.1
INTERACTION_SCALE = 1.5
BIAS = -1.4

CRITEO_FIELDS = (
    SyntheticField("C1", 1400, "scalar", 0.3),
    SyntheticField("C2", 550, "scalar", 0.2),
    SyntheticField("C3", 30_000, "interaction", rare_share=0.25, missing=0.04),
    SyntheticField("C4", 20_000, "noise", rare_share=0.08, missing=0.04),
    SyntheticField("C5", 300, "noise"),
    SyntheticField("C6", 24, "scalar", 0.4, missing=0.12),
    SyntheticField("C7", 10_000, "interaction"),
    SyntheticField("C8", 630, "noise"),
    SyntheticField("C9", 3, "scalar", 0.3),
    SyntheticField("C10", 50_000, "noise", rare_share=0.01),
    SyntheticField("C11", 5000, "interaction"),
    SyntheticField("C12", 20_000, "scalar", 0.5, rare_share=0.22, missing=0.04),
    SyntheticField("C13", 3000, "interaction"),
    SyntheticField("C14", 27, "scalar", 0.3),
    SyntheticField("C15", 15_000, "noise"),
    SyntheticField("C16", 20_000, "noise", rare_share=0.18, missing=0.04),
    SyntheticField("C17", 10, "scalar", 0.4),
    SyntheticField("C18", 5600, "noise"),
    SyntheticField("C19", 2200, "noise", missing=0.44),
    SyntheticField("C20", 4, "noise", missing=0.44),
    SyntheticField("C21", 20_000, "noise", rare_share=0.20, missing=0.04),
    SyntheticField("C22", 18, "noise", missing=0.76),
    SyntheticField("C23", 15, "scalar", 0.3),
    SyntheticField("C24", 100_000, "noise", rare_share=0.03, missing=0.04),
    SyntheticField("C25", 105, "noise", missing=0.44),
    SyntheticField("C26", 20_000, "scalar", 0.3, rare_share=0.02, missing=0.44),
)
CRITEO_NUMERIC_FIELDS = (
    NumericField("I1", 0.7, 1.2, 0.45, 0.4),
    NumericField("I2", 1.5, 2.5),
    NumericField("I3", 2.1, 1.3, 0.20, -0.3),
    NumericField("I4", 1.7, 0.9, 0.20),
    NumericField("I5", 7.8, 2.5, 0.03),
    NumericField("I6", 3.7, 1.8, 0.22, 0.3),
    NumericField("I7", 1.4, 1.6, 0.04, 0.4),
    NumericField("I8", 2.1, 1.2, 0.001),
    NumericField("I9", 3.7, 1.6, 0.04),
    NumericField("I10", 0.7, 0.5, 0.45),
    NumericField("I11", 0.9, 1.0, 0.04, -0.3),
    NumericField("I12", 0.0, 1.3, 0.76),
    NumericField("I13", 1.9, 1.1, 0.20, 0.3),
)
# (one side, other side, scale of the inner product of their rank-8 vectors)
CRITEO_INTERACTIONS = (("C3", "C7", 1.2), ("C11", "C13", 1.0))
CRITEO_CLICK_RATE = 0.25
CALIBRATION_ROWS = 1 << 16
CHUNK_ROWS = 1 << 18
# Chunks generated at once; more would not help on two cores and would hold
# more rows in memory.
WORKER_THREADS = 2


def zipf_probabilities(cardinality: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    """p(rank r) proportional to (r + 1)^-exponent, r = 0..cardinality-1."""
    weights = (np.arange(cardinality) + 1.0) ** -exponent
    return weights / weights.sum()


def generate_columns(rows: int, seed: int = 0, profile: str = "demo") -> dict[str, pa.Array]:
    """Draws `rows` examples; returns the label and raw field columns.

    The planted parameters (latent vectors, effects) depend on the seed and the
    profile only, so a larger `rows` extends the same distribution (for
    `criteo`, with a rare-id pool grown in proportion).

    Args:
        rows: int, the number of examples.
        seed: int, the seed of the planted parameters and of the draws.
        profile: str, one of `PROFILES`.

    Returns:
        dict of column name to Arrow array: `label` (int64), then the fields.
    """
    _check_profile(profile)
    if profile == "demo":
        return _demo_columns(rows, seed)
    table = pa.Table.from_batches(list(_criteo_batches(rows, seed)))
    return {name: table.column(name).combine_chunks() for name in table.column_names}


def _demo_columns(rows: int, seed: int) -> dict[str, pa.Array]:
    _check_rows(rows)
    params = np.random.default_rng([seed, 0])
    draws = np.random.default_rng([seed, 1])
    # Value ids are shuffled so that the frequency rank is not the id order.
    ids, logit = {}, np.full(rows, BIAS)
    for field in FIELDS:
        ranks = draws.choice(field.cardinality, size=rows, p=zipf_probabilities(field.cardinality))
        ids[field.name] = params.permutation(field.cardinality)[ranks]
        if field.role == "scalar":
            logit += params.normal(0.0, field.scale, field.cardinality)[ids[field.name]]
    user_vectors = params.normal(0.0, 1.0, (FIELDS[0].cardinality, LATENT_RANK))
    item_vectors = params.normal(0.0, 1.0, (FIELDS[1].cardinality, LATENT_RANK))
    interaction = np.einsum("ij,ij->i", user_vectors[ids["user"]], item_vectors[ids["item"]])
    logit += INTERACTION_SCALE * interaction / np.sqrt(LATENT_RANK)
    price = np.round(np.exp(draws.normal(3.0, 1.0, rows)), 2)
    logit += 0.5 * np.tanh(np.log(price) - 3.0)
    label = (draws.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    columns = {"label": pa.array(label)}
    for field in FIELDS:
        prefix = field.name[0] if not field.name.startswith("noise") else field.name[6]
        digits = pa.array(ids[field.name]).cast(pa.string())
        columns[field.name] = pc.binary_join_element_wise(prefix, digits, "")
    columns[NUMERIC_FIELD] = pa.array(price)
    return columns


def _check_rows(rows: int) -> None:
    if rows <= 0:
        raise ValueError(f"`rows` must be a positive integer. Received: rows={rows}")


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {PROFILES}. Received: profile={profile!r}")


class _CriteoModel:
    """The planted parameters of the `criteo` profile for one seed, and the row sampler.

    Every categorical field samples an index per row from one table: 0 =
    missing, 1 = rare id, 2 + r = the head value of Zipf rank r. Its ids and
    effects are arrays over that index, so a row's id and effect are lookups.
    """

    def __init__(self, seed: int):
        params = np.random.default_rng([seed, 0])
        self.seed = seed
        self.samplers, self.ids, self.effects = {}, {}, {}
        for field in CRITEO_FIELDS:
            head = 1.0 - field.missing - field.rare_share
            cdf = np.concatenate(
                [
                    [field.missing, field.missing + field.rare_share],
                    field.missing
                    + field.rare_share
                    + head * np.cumsum(zipf_probabilities(field.cardinality)),
                ]
            )
            cdf[-1] = 1.0
            self.samplers[field.name] = _InverseCdf(cdf)
            # Head ids are shuffled so that the frequency rank is not the id order.
            self.ids[field.name] = np.concatenate([[0, 0], params.permutation(field.cardinality)])
            if field.role == "scalar":
                effect = params.normal(0.0, field.scale, field.cardinality)
                self.effects[field.name] = np.concatenate([[0.0, 0.0], effect])
        self.vectors = {}
        for one, other, scale in CRITEO_INTERACTIONS:
            for name in (one, other):
                size = _criteo_field(name).cardinality
                vectors = params.normal(0.0, 1.0, (size, LATENT_RANK))
                self.vectors[name] = np.concatenate([np.zeros((2, LATENT_RANK)), vectors])
            # The scale and 1/sqrt(rank) on one side: the product then has std `scale`.
            self.vectors[one] *= scale / np.sqrt(LATENT_RANK)
        self.bias = 0.0
        _, logit = self.draw(CALIBRATION_ROWS, 0, np.random.default_rng([seed, 2]))
        self.bias = _solve_bias(logit, CRITEO_CLICK_RATE)

    def draw(self, rows: int, pool_rows: int, rng: np.random.Generator):
        """Draws `rows` rows: the field columns (ids, missing = -1) and the logit.

        Rare ids are drawn from pools sized for `pool_rows` rows in all.
        """
        columns, logit = {}, np.full(rows, self.bias)
        indices = {}
        for field in CRITEO_FIELDS:
            index = self.samplers[field.name].sample(rng.random(rows))
            indices[field.name] = index
            ids = self.ids[field.name][index]
            if field.rare_share:
                rare = np.flatnonzero(index == 1)
                pool = rare_id_pool(field, pool_rows)
                ids[rare] = field.cardinality + rng.integers(pool, size=len(rare))
            if field.missing:
                ids[index == 0] = -1
            columns[field.name] = ids
            if field.role == "scalar":
                logit += self.effects[field.name][index]
        for one, other, _ in CRITEO_INTERACTIONS:
            u, v = self.vectors[one][indices[one]], self.vectors[other][indices[other]]
            logit += np.einsum("ij,ij->i", u, v)
        for field in CRITEO_NUMERIC_FIELDS:
            values = np.exp(rng.normal(field.log_mean, field.log_std, rows))
            values = np.maximum(np.floor(values) - 1.0, 0.0)
            missing = rng.random(rows) < field.missing
            if field.effect:
                effect = field.effect * np.tanh(np.log1p(values) - field.log_mean)
                logit += np.where(missing, 0.0, effect)
            values = values.astype(np.int64)
            values[missing] = -1
            columns[field.name] = values
        return columns, logit

    def chunk(self, index: int, rows: int, total_rows: int) -> pa.RecordBatch:
        """Chunk `index` (`rows` rows) of a `total_rows`-row file, from its own stream."""
        rng = np.random.default_rng([self.seed, 1, index])
        columns, logit = self.draw(rows, total_rows, rng)
        label = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
        arrays = [pa.array(label)] + [_with_missing(columns[name]) for name in columns]
        return pa.RecordBatch.from_arrays(arrays, ["label", *columns])


class _InverseCdf:
    """Draws indices from a CDF with a guide table (Chen and Asau's indexed search).

    `sample(u)` equals `np.searchsorted(cdf, u, side="right")`, in a few passes
    instead of a binary search per value: the table gives, for each of `cells`
    equal slices of [0, 1), the first index whose CDF exceeds the slice's start,
    and the values step on from there (rarely more than once, with four cells
    per index). `cells` is a power of two, so `u * cells` and the slice starts
    are exact.
    """

    def __init__(self, cdf: np.ndarray):
        self.cdf = cdf
        self.cells = 1 << int(np.ceil(np.log2(4 * len(cdf))))
        self.guide = np.searchsorted(cdf, np.arange(self.cells) / self.cells, side="right")

    def sample(self, u: np.ndarray) -> np.ndarray:
        index = self.guide[(u * self.cells).astype(np.int64)]
        behind = np.flatnonzero(self.cdf[index] <= u)
        while len(behind):
            index[behind] += 1
            behind = behind[self.cdf[index[behind]] <= u[behind]]
        return index


@functools.lru_cache(maxsize=2)
def _criteo_model(seed: int) -> _CriteoModel:
    return _CriteoModel(seed)


def rare_id_pool(field: SyntheticField, rows: int) -> int:
    """The number of rare ids a `criteo` field draws from in a `rows`-row file (0: none)."""
    return max(1, round(field.rare_share * rows)) if field.rare_share else 0


def _criteo_field(name: str) -> SyntheticField:
    return next(field for field in CRITEO_FIELDS if field.name == name)


def _solve_bias(logit: np.ndarray, rate: float) -> float:
    """The b with mean(sigmoid(b + logit)) = rate, by bisection (the mean grows with b)."""
    low, high = -20.0, 20.0
    for _ in range(60):
        middle = (low + high) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(middle + logit)))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _with_missing(values: np.ndarray) -> pa.Array:
    """An int64 Arrow array of `values`, null where a value is -1 (written as an empty cell)."""
    missing = values < 0
    if not missing.any():
        return pa.array(values)
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(
        pa.int64(), len(values), [validity, pa.py_buffer(values)], int(missing.sum())
    )


def _criteo_batches(rows: int, seed: int, convert=None) -> Iterator:
    """The `criteo` rows chunk by chunk, in order, as record batches or `convert(batch)`.

    `WORKER_THREADS` chunks are drawn (and converted) at once; at most twice as
    many are held in memory.
    """
    _check_rows(rows)
    model = _criteo_model(seed)

    def work(index: int):
        batch = model.chunk(index, min(CHUNK_ROWS, rows - index * CHUNK_ROWS), rows)
        return convert(batch) if convert else batch

    with concurrent.futures.ThreadPoolExecutor(WORKER_THREADS) as executor:
        pending = collections.deque()
        for index in range(-(-rows // CHUNK_ROWS)):
            pending.append(executor.submit(work, index))
            if len(pending) >= 2 * WORKER_THREADS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _csv_text(batch: pa.RecordBatch) -> bytes:
    """The rows of an all-integer batch as CSV lines (integers are never quoted)."""
    sink = pa.BufferOutputStream()
    pcsv.write_csv(batch, sink, pcsv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes()


def column_names(profile: str = "demo") -> list[str]:
    """The CSV header of a profile: `label`, the categorical fields, the numeric ones."""
    _check_profile(profile)
    categorical, numeric = _field_names(profile)
    return ["label", *categorical, *numeric]


def _field_names(profile: str) -> tuple[list[str], list[str]]:
    if profile == "demo":
        return [f.name for f in FIELDS], [NUMERIC_FIELD]
    return [f.name for f in CRITEO_FIELDS], [f.name for f in CRITEO_NUMERIC_FIELDS]


def ground_truth(profile: str = "demo", rows: int = 0, seed: int = 0) -> dict:
    """The planted roles of the fields, as written to `ground_truth.json`.

    Both profiles give `fields` (categorical name to `cardinality` and `role`)
    and `numeric` (numeric name to `role`, with its `effect` when it has one).
    For `criteo`, the cardinality of a field with rare ids is its head values
    plus the rare-id pool for `rows` rows, and the seed's `bias` is included.
    """
    _check_profile(profile)
    truth = {"profile": profile}
    if profile == "demo":
        truth["fields"] = {f.name: {"cardinality": f.cardinality, "role": f.role} for f in FIELDS}
        price = {"role": "scalar", "effect": "0.5 * tanh(log(price) - 3)"}
        truth.update({NUMERIC_FIELD: price, "numeric": {NUMERIC_FIELD: price}})
        truth.update(latent_rank=LATENT_RANK, zipf_exponent=ZIPF_EXPONENT)
        return truth
    partners = {}
    for one, other, scale in CRITEO_INTERACTIONS:
        partners[one] = partners[other] = {"fields": [one, other], "scale": scale}
    fields = {}
    for f in CRITEO_FIELDS:
        pool = rare_id_pool(f, rows)
        fields[f.name] = {
            "cardinality": f.cardinality + pool,
            "role": f.role,
            "head_values": f.cardinality,
            "rare_share": f.rare_share,
            "rare_id_pool": pool,
            "missing": f.missing,
        }
        if f.role == "scalar":
            fields[f.name]["effect_std"] = f.scale
        if f.role == "interaction":
            fields[f.name]["interaction"] = partners[f.name]
    numeric = {}
    for f in CRITEO_NUMERIC_FIELDS:
        numeric[f.name] = {"role": "scalar" if f.effect else "noise", "missing": f.missing}
        numeric[f.name]["log1p_mean"], numeric[f.name]["log1p_std"] = f.log_mean, f.log_std
        if f.effect:
            numeric[f.name]["effect"] = f"{f.effect} * tanh(log(1 + {f.name}) - {f.log_mean})"
    truth.update(fields=fields, numeric=numeric, latent_rank=LATENT_RANK)
    truth.update(zipf_exponent=ZIPF_EXPONENT, expected_click_rate=CRITEO_CLICK_RATE)
    truth["bias"] = _criteo_model(seed).bias
    return truth


def generate_csv(path: str, rows: int, seed: int = 0, profile: str = "demo") -> str:
    """Writes `rows` synthetic examples to `path` (CSV) and `ground_truth.json` beside it.

    Args:
        path: str, the CSV file to write (its folder is created).
        rows: int, the number of examples.
        seed: int, the seed of the planted parameters and of the draws.
        profile: str, one of `PROFILES`.

    Returns:
        str, `path`.
    """
    _check_profile(profile)
    _check_rows(rows)
    directory = os.path.dirname(path) or "."
    _io.makedirs(directory)
    with _io.open_file(path, "wb") as f:
        f.write((",".join(column_names(profile)) + "\n").encode())
        if profile == "demo":
            sink = pa.BufferOutputStream()
            table = pa.table(_demo_columns(rows, seed))
            pcsv.write_csv(table, sink, pcsv.WriteOptions(include_header=False))
            # Generated values never contain quotes or commas: drop Arrow's quoting.
            f.write(sink.getvalue().to_pybytes().replace(b'"', b""))
        else:
            for text in _criteo_batches(rows, seed, _csv_text):
                f.write(text)
    truth = dict(ground_truth(profile, rows, seed), rows=rows, seed=seed)
    _io.write_text_atomically(
        os.path.join(directory, "ground_truth.json"), json.dumps(truth, indent=2) + "\n"
    )
    return path


class SyntheticReader(CsvReader):
    """Reads CSV files written by `generate_csv`.

    Args:
        paths: list of str, the generated CSV files.
        profile: str, the profile they were generated with, one of `PROFILES`.
        numeric_transform: str, how numbers become tokens (`"quantiles"` or
            `"log_square"`, see `CsvReader`).

    Examples:

        ```python
        path = generate_csv("/tmp/synthetic/rows.csv", rows=1000, seed=0)
        reader = SyntheticReader([path])
        ```
    """

    name = "synthetic"

    def __init__(
        self, paths: Sequence[str], profile: str = "demo", numeric_transform: str = "quantiles"
    ):
        _check_profile(profile)
        categorical, numeric = _field_names(profile)
        super().__init__(
            paths,
            label="label",
            categorical=categorical,
            numeric=numeric,
            sep=",",
            numeric_transform=numeric_transform,
        )
        self.profile = profile
