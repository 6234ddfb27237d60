"""The synthetic generator and `SyntheticReader`."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from keras_dimsel.data import datasets, synthetic
from keras_dimsel.data.reader import FieldDef
from tests.data.test_readers import parse_files

COLUMN_NAMES = [
    "label",
    "user",
    "item",
    "category",
    "device",
    "noise_high",
    "noise_mid",
    "noise_low",
    "price",
]


def test_generate_columns_names_and_lengths():
    columns = synthetic.generate_columns(100, seed=0)
    assert list(columns) == COLUMN_NAMES
    assert {len(c) for c in columns.values()} == {100}


def test_generate_columns_is_deterministic_for_a_seed():
    first = synthetic.generate_columns(2000, seed=7)
    again = synthetic.generate_columns(2000, seed=7)
    for name in COLUMN_NAMES:
        assert first[name].equals(again[name]), name


def test_generate_columns_differs_across_seeds():
    first = synthetic.generate_columns(2000, seed=0)
    other = synthetic.generate_columns(2000, seed=1)
    for name in ("label", "user", "item", "price"):
        assert not first[name].equals(other[name]), name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_click_rate_is_the_expected_rate_of_the_seed(seed):
    # The seed also draws the planted effects, so each seed has its own expected
    # rate (0.34, 0.33, 0.24 for seeds 0-2), estimated here from 200,000 rows of
    # the same seed; the band is 3 sigma of the difference of the two rates.
    n, large = 5000, 200_000
    labels = np.asarray(synthetic.generate_columns(n, seed=seed)["label"])
    assert set(np.unique(labels)) <= {0, 1}
    p = np.asarray(synthetic.generate_columns(large, seed=seed)["label"]).mean()
    assert abs(labels.mean() - p) <= 3 * np.sqrt(p * (1 - p) * (1 / n + 1 / large))


def test_values_follow_a_zipf_skew():
    users = synthetic.generate_columns(5000, seed=0)["user"].to_pylist()
    counts = sorted(collections.Counter(users).values(), reverse=True)
    assert counts[0] >= 50 * np.median(counts)
    assert counts[0] >= 0.05 * len(users)


def test_values_are_prefixed_ids_within_cardinality():
    columns = synthetic.generate_columns(3000, seed=0)
    for field, prefix in zip(synthetic.FIELDS, ["u", "i", "c", "d", "h", "m", "l"]):
        values = columns[field.name].to_pylist()
        assert all(v.startswith(prefix) for v in values), field.name
        ids = {int(v[1:]) for v in values}
        assert min(ids) >= 0 and max(ids) < field.cardinality, field.name
    assert {int(v[1:]) for v in columns["noise_low"].to_pylist()} == set(range(10))
    assert min(columns["price"].to_pylist()) > 0


def test_zipf_probabilities():
    p = synthetic.zipf_probabilities(4, exponent=1.0)
    np.testing.assert_allclose(p, np.array([1, 1 / 2, 1 / 3, 1 / 4]) / (25 / 12))
    assert synthetic.zipf_probabilities(60).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("rows", [0, -5])
def test_generate_columns_rejects_non_positive_rows(rows):
    with pytest.raises(ValueError, match=r"`rows` must be a positive integer"):
        synthetic.generate_columns(rows)


def test_generate_csv_then_synthetic_reader_round_trip(tmp_path):
    path = synthetic.generate_csv(str(tmp_path / "raw" / "rows.csv"), rows=300, seed=3)
    assert path == str(tmp_path / "raw" / "rows.csv")
    lines = (tmp_path / "raw" / "rows.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMN_NAMES)
    assert len(lines) == 301
    assert '"' not in "".join(lines)

    reader = synthetic.SyntheticReader([path])
    assert reader.name == "synthetic"
    assert reader.data_files() == [(path, True)]
    assert reader.fields == tuple(
        [FieldDef(f.name, "categorical") for f in synthetic.FIELDS]
        + [FieldDef("price", "numeric", "quantiles")]
    )
    table, rejected, _ = parse_files(reader)
    assert rejected == []
    expected = synthetic.generate_columns(300, seed=3)
    assert table.column("label").to_pylist() == [float(v) for v in expected["label"].to_pylist()]
    for field in synthetic.FIELDS:
        assert table.column(field.name).to_pylist() == expected[field.name].to_pylist()
    np.testing.assert_array_equal(
        np.asarray(table.column("price")), np.asarray(expected["price"]).astype(np.float32)
    )


def test_ground_truth_json_is_written_with_roles(tmp_path):
    synthetic.generate_csv(str(tmp_path / "rows.csv"), rows=50, seed=5)
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert {name: f["role"] for name, f in truth["fields"].items()} == {
        "user": "interaction",
        "item": "interaction",
        "category": "scalar",
        "device": "scalar",
        "noise_high": "noise",
        "noise_mid": "noise",
        "noise_low": "noise",
    }
    assert truth["fields"]["user"]["cardinality"] == 1000
    assert truth["price"]["role"] == "scalar"
    assert truth["rows"] == 50 and truth["seed"] == 5
    assert truth["latent_rank"] == synthetic.LATENT_RANK
    assert truth["zipf_exponent"] == synthetic.ZIPF_EXPONENT


def test_make_reader_generates_into_the_output_folder(tmp_path):
    reader = datasets.make_reader("synthetic", output_dir=str(tmp_path), rows=40, seed=1)
    path = tmp_path / "raw" / "synthetic.csv"
    assert reader.data_files() == [(str(path), True)]
    assert (tmp_path / "raw" / "ground_truth.json").is_file()
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 40
    assert rejected == []
