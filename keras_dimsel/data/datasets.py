"""The dataset names of `dimsel preprocess --dataset` and their readers."""

from __future__ import annotations

import os
from typing import Optional, Sequence

from keras_dimsel.data.avazu import AvazuReader
from keras_dimsel.data.criteo import CriteoReader
from keras_dimsel.data.csv import CsvReader
from keras_dimsel.data.frappe import FrappeReader
from keras_dimsel.data.movielens import MovieLensReader
from keras_dimsel.data.reader import DataError, Reader
from keras_dimsel.data.synthetic import PROFILES, SyntheticReader, generate_csv

DATASETS = ("criteo", "avazu", "movielens-100k", "movielens-1m", "frappe", "csv", "synthetic")
DEFAULT_SYNTHETIC_ROWS = 100_000


def make_reader(
    dataset: str,
    inputs: Sequence[str] = (),
    *,
    output_dir: Optional[str] = None,
    label: Optional[str] = None,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    sep: str = ",",
    numeric_transform: Optional[str] = None,
    rows: int = DEFAULT_SYNTHETIC_ROWS,
    seed: int = 0,
    profile: str = "demo",
) -> Reader:
    """Builds the reader for a dataset name, checking its inputs.

    For `synthetic`, rows are generated first into `--input` (a CSV path) or,
    without it, into `<output_dir>/raw/synthetic.csv`.

    Args:
        dataset: str, one of `DATASETS`.
        inputs: sequence of str, the input files or glob patterns (for
            `synthetic`, at most one: the CSV file to generate).
        output_dir: str or None, the artifact directory (where `synthetic`
            writes its rows when `inputs` is empty).
        label: str or None, the label column (`csv` only).
        categorical: sequence of str, the categorical columns (`csv` only).
        numeric: sequence of str, the numeric columns (`csv` only).
        sep: str, the one-character delimiter (`csv` only).
        numeric_transform: str or None, `"quantiles"` or `"log_square"`; None
            takes the dataset's default (`criteo`: `log_square`, `csv` and
            `synthetic`: `quantiles`).
        rows: int, rows to generate (`synthetic` only).
        seed: int, the generator's seed (`synthetic` only).
        profile: str, the generator's profile, one of `synthetic.PROFILES`
            (`synthetic` only).

    Returns:
        The `Reader`.

    Raises:
        DataError: unknown dataset, missing input, or options that do not fit.

    Examples:

        >>> import tempfile
        >>> reader = make_reader("synthetic", output_dir=tempfile.mkdtemp(), rows=100)
        >>> reader.name, reader.label
        ('synthetic', 'label')
        >>> [field.name for field in reader.fields]
        ['user', 'item', 'category', 'device', 'noise_high', 'noise_mid', 'noise_low', 'price']
        >>> make_reader("csv", ["clicks.csv"])
        Traceback (most recent call last):
        ...
        keras_dimsel.data.reader.DataError: csv needs --label (the 0/1 label column)
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    if dataset == "synthetic":
        if len(inputs) > 1:
            raise DataError("synthetic takes at most one --input: the CSV file to generate")
        if inputs:
            path = inputs[0]
        elif output_dir:
            path = os.path.join(output_dir, "raw", "synthetic.csv")
        else:
            raise DataError("synthetic needs --input (CSV to write) or --output")
        if profile not in PROFILES:
            raise DataError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
        path = generate_csv(path, rows=rows, seed=seed, profile=profile)
        return SyntheticReader([path], profile, numeric_transform or "quantiles")
    if not inputs:
        raise DataError(f"{dataset} needs --input")
    if dataset == "csv":
        if not label:
            raise DataError("csv needs --label (the 0/1 label column)")
        return CsvReader(inputs, label, categorical, numeric, sep, numeric_transform or "quantiles")
    if dataset == "criteo":
        return CriteoReader(inputs, numeric_transform or "log_square")
    if numeric_transform:
        raise DataError(f"{dataset} has no numeric fields: drop --numeric-transform")
    if dataset == "avazu":
        return AvazuReader(inputs)
    if dataset == "frappe":
        return FrappeReader(inputs)
    return MovieLensReader(inputs, dataset)
