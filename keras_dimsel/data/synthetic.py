"""The synthetic CTR generator: data whose right answer is known.

Real logs never say which field matters. This generator plants the structure,
so a dimension search can be checked against it:

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

`generate_csv` writes the rows as CSV (`label, user, ..., price`) plus
`ground_truth.json` next to it, and `SyntheticReader` reads that CSV through
the same generic CSV path a user's own data takes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from keras_dimsel import _io
from keras_dimsel.data.csv import CsvReader


@dataclasses.dataclass(frozen=True)
class SyntheticField:
    """One planted categorical field: name, number of values, role, effect scale."""

    name: str
    cardinality: int
    role: str  # "interaction" | "scalar" | "noise"
    scale: float = 0.0


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


def zipf_probabilities(cardinality: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    """p(rank r) proportional to (r + 1)^-exponent, r = 0..cardinality-1."""
    weights = (np.arange(cardinality) + 1.0) ** -exponent
    return weights / weights.sum()


def generate_columns(rows: int, seed: int = 0) -> dict[str, pa.Array]:
    """Draws `rows` examples; returns the label and raw field columns.

    The planted parameters (latent vectors, scalar effects) depend on the seed
    only, so a larger `rows` extends the same distribution.
    """
    if rows <= 0:
        raise ValueError(f"`rows` must be a positive integer. Received: rows={rows}")
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


def ground_truth() -> dict:
    """The planted roles of the fields, as written to `ground_truth.json`."""
    return {
        "fields": {f.name: {"cardinality": f.cardinality, "role": f.role} for f in FIELDS},
        NUMERIC_FIELD: {"role": "scalar", "effect": "0.5 * tanh(log(price) - 3)"},
        "latent_rank": LATENT_RANK,
        "zipf_exponent": ZIPF_EXPONENT,
    }


def generate_csv(path: str, rows: int, seed: int = 0) -> str:
    """Writes `rows` synthetic examples to `path` (CSV) and `ground_truth.json` beside it."""
    columns = generate_columns(rows, seed)
    directory = os.path.dirname(path) or "."
    _io.makedirs(directory)
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    pcsv.write_csv(table, sink)
    with _io.open_file(path, "wb") as f:
        # Generated values never contain quotes or commas: drop Arrow's quoting.
        f.write(sink.getvalue().to_pybytes().replace(b'"', b""))
    truth = dict(ground_truth(), rows=rows, seed=seed)
    _io.write_text_atomically(
        os.path.join(directory, "ground_truth.json"), json.dumps(truth, indent=2) + "\n"
    )
    return path


class SyntheticReader(CsvReader):
    """Reads CSV files written by `generate_csv`.

    Args:
        paths: list of str, the generated CSV files.

    Examples:

        ```python
        path = generate_csv("/tmp/synthetic/rows.csv", rows=1000, seed=0)
        reader = SyntheticReader([path])
        ```
    """

    name = "synthetic"

    def __init__(self, paths: Sequence[str]):
        super().__init__(
            paths,
            label="label",
            categorical=[f.name for f in FIELDS],
            numeric=[NUMERIC_FIELD],
            sep=",",
            numeric_transform="quantiles",
        )
