"""The synthetic generator and `SyntheticReader`."""

from __future__ import annotations

import collections
import hashlib
import json
import pathlib

import numpy as np
import pyarrow as pa
import pytest

from keras_dimsel.data import datasets, synthetic
from keras_dimsel.data.reader import DataError, FieldDef
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


# The demo profile: the bytes written before profiles existed, for one small file.
DEMO_777_SEED_3_SHA256 = "96f1b92d1a2a5d3dd0b9a5d8d8773e851accd2a68c38b6b8579afa2d23d8a452"


def test_demo_profile_writes_the_same_bytes_as_before_profiles(tmp_path):
    path = synthetic.generate_csv(str(tmp_path / "rows.csv"), rows=777, seed=3, profile="demo")
    assert hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest() == DEMO_777_SEED_3_SHA256
    default = synthetic.generate_csv(str(tmp_path / "default" / "rows.csv"), rows=777, seed=3)
    assert pathlib.Path(default).read_bytes() == pathlib.Path(path).read_bytes()
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert truth["profile"] == "demo"
    assert truth["numeric"] == {"price": truth["price"]}


CRITEO_COLUMNS = ["label"] + [f"C{i}" for i in range(1, 27)] + [f"I{i}" for i in range(1, 14)]


def test_criteo_profile_has_criteo_columns():
    columns = synthetic.generate_columns(3000, seed=0, profile="criteo")
    assert list(columns) == CRITEO_COLUMNS
    assert synthetic.column_names("criteo") == CRITEO_COLUMNS
    assert {len(c) for c in columns.values()} == {3000}
    assert {c.type for c in columns.values()} == {pa.int64()}
    assert set(np.unique(np.asarray(columns["label"]))) == {0, 1}
    for field in synthetic.CRITEO_FIELDS:
        ids = columns[field.name].drop_null().to_numpy()
        assert ids.min() >= 0, field.name
        assert ids.max() < field.cardinality + synthetic.rare_id_pool(field, 3000), field.name
        assert (columns[field.name].null_count > 0) == (field.missing > 0), field.name
    for field in synthetic.CRITEO_NUMERIC_FIELDS:
        assert columns[field.name].drop_null().to_numpy().min() == 0, field.name
        if field.missing == 0:
            assert columns[field.name].null_count == 0, field.name
        if field.missing >= 0.01:  # I8's 0.1% may give no empty cell in 3,000 rows
            assert columns[field.name].null_count > 0, field.name


def test_criteo_ground_truth_lists_every_field_with_its_role(tmp_path):
    synthetic.generate_csv(str(tmp_path / "rows.csv"), rows=2000, seed=4, profile="criteo")
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert truth["profile"] == "criteo"
    assert truth["rows"] == 2000 and truth["seed"] == 4
    roles = {name: field["role"] for name, field in truth["fields"].items()}
    assert list(roles) == CRITEO_COLUMNS[1:27]
    assert sorted(name for name, role in roles.items() if role == "interaction") == [
        "C11",
        "C13",
        "C3",
        "C7",
    ]
    assert collections.Counter(roles.values()) == {"interaction": 4, "scalar": 9, "noise": 13}
    assert truth["fields"]["C3"]["interaction"] == {"fields": ["C3", "C7"], "scale": 1.2}
    assert truth["fields"]["C3"]["rare_id_pool"] == 500  # 25% of 2,000 rows
    assert truth["fields"]["C3"]["cardinality"] == 30_000 + 500
    assert truth["fields"]["C5"]["cardinality"] == 300
    numeric = {name: field["role"] for name, field in truth["numeric"].items()}
    assert list(numeric) == CRITEO_COLUMNS[27:]
    assert collections.Counter(numeric.values()) == {"scalar": 6, "noise": 7}
    assert truth["numeric"]["I1"]["effect"] == "0.4 * tanh(log(1 + I1) - 0.7)"
    assert truth["expected_click_rate"] == 0.25
    assert truth["bias"] == synthetic.ground_truth("criteo", 2000, seed=4)["bias"]


def test_criteo_profile_is_deterministic_for_a_seed_whatever_the_threads(monkeypatch):
    first = synthetic.generate_columns(5000, seed=7, profile="criteo")
    monkeypatch.setattr(synthetic, "WORKER_THREADS", 1)
    again = synthetic.generate_columns(5000, seed=7, profile="criteo")
    other = synthetic.generate_columns(5000, seed=8, profile="criteo")
    for name in CRITEO_COLUMNS:
        assert first[name].equals(again[name]), name
    for name in ("label", "C3", "C12", "I5"):
        assert not first[name].equals(other[name]), name


def test_criteo_chunks_are_independent_streams(monkeypatch):
    # Small chunks: several chunks, drawn two at a time, must come back in order.
    monkeypatch.setattr(synthetic, "CHUNK_ROWS", 1000)
    columns = synthetic.generate_columns(4500, seed=7, profile="criteo")
    model = synthetic._criteo_model(7)
    for index in range(5):
        batch = model.chunk(index, 500 if index == 4 else 1000, 4500)
        for name in ("label", "C3", "I1"):
            assert (
                columns[name]
                .slice(1000 * index, batch.num_rows)
                .equals(batch.column(batch.schema.get_field_index(name)))
            ), (index, name)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_criteo_click_rate_is_the_planted_rate(seed):
    # The bias is solved on CALIBRATION_ROWS rows, so the generator's expected rate
    # is 25% up to that sample's error (std below 0.5 / sqrt(CALIBRATION_ROWS));
    # the band is 3 sigma of the rate of n rows and of that error together.
    n = 40_000
    labels = np.asarray(synthetic.generate_columns(n, seed=seed, profile="criteo")["label"])
    sigma = np.sqrt(0.25 * 0.75 / n + 0.25 / synthetic.CALIBRATION_ROWS)
    assert abs(labels.mean() - 0.25) <= 3 * sigma


@pytest.mark.parametrize("rows", [10_000, 40_000])
def test_criteo_rare_ids_grow_with_the_rows(rows):
    # A field with rare share q draws q * rows rare ids from a pool of q * rows ids:
    # 1 - 1/e of the pool is seen, so the distinct ids grow in proportion to the rows;
    # a field without rare ids never exceeds its head values.
    columns = synthetic.generate_columns(rows, seed=0, profile="criteo")
    for field in synthetic.CRITEO_FIELDS:
        ids = np.unique(columns[field.name].drop_null().to_numpy())
        rare = int((ids >= field.cardinality).sum())
        if not field.rare_share:
            assert rare == 0 and len(ids) <= field.cardinality, field.name
            continue
        expected = field.rare_share * rows * (1 - np.exp(-1))
        assert abs(rare - expected) <= 5 * np.sqrt(expected) + 0.02 * expected, field.name
    distinct = {
        f.name: len(np.unique(columns[f.name].drop_null().to_numpy()))
        for f in synthetic.CRITEO_FIELDS
    }
    assert distinct["C9"] == 3 and distinct["C20"] == 4
    assert max(distinct, key=distinct.get) == "C3"


@pytest.mark.parametrize("name, share", [("C22", 0.76), ("C19", 0.44), ("I12", 0.76), ("I1", 0.45)])
def test_criteo_missing_shares(name, share):
    n = 20_000
    column = synthetic.generate_columns(n, seed=1, profile="criteo")[name]
    assert abs(column.null_count / n - share) <= 4 * np.sqrt(share * (1 - share) / n)


def test_criteo_head_values_follow_the_zipf_law():
    # C9 has three head values and nothing else: p = (1, 2^-1.1, 3^-1.1) / sum.
    n = 20_000
    ids = synthetic.generate_columns(n, seed=0, profile="criteo")["C9"].to_numpy()
    shares = np.sort(np.bincount(ids, minlength=3))[::-1] / n
    expected = synthetic.zipf_probabilities(3)
    np.testing.assert_allclose(shares, expected, atol=4 * np.sqrt(0.25 / n))


def test_inverse_cdf_sampler_equals_searchsorted():
    rng = np.random.default_rng(0)
    cdf = np.cumsum(np.concatenate([[0.0, 0.1], 0.9 * synthetic.zipf_probabilities(5000)]))
    cdf[-1] = 1.0
    u = np.concatenate(
        [
            rng.random(200_000),
            cdf[:-1],  # exactly on the steps
            np.nextafter(cdf[:-1], 0.0),  # just before them
            [0.0, np.nextafter(1.0, 0.0)],
        ]
    )
    sampled = synthetic._InverseCdf(cdf).sample(u)
    np.testing.assert_array_equal(sampled, np.searchsorted(cdf, u, side="right"))


def test_criteo_csv_then_synthetic_reader_round_trip(tmp_path):
    path = synthetic.generate_csv(str(tmp_path / "rows.csv"), rows=500, seed=2, profile="criteo")
    lines = (tmp_path / "rows.csv").read_text().splitlines()
    assert lines[0] == ",".join(CRITEO_COLUMNS)
    assert len(lines) == 501
    assert '"' not in "".join(lines)

    reader = synthetic.SyntheticReader([path], profile="criteo")
    assert reader.fields == tuple(
        [FieldDef(f"C{i}", "categorical") for i in range(1, 27)]
        + [FieldDef(f"I{i}", "numeric", "quantiles") for i in range(1, 14)]
    )
    table, rejected, _ = parse_files(reader)
    assert rejected == []
    expected = synthetic.generate_columns(500, seed=2, profile="criteo")
    assert table.column("label").to_pylist() == [float(v) for v in expected["label"].to_pylist()]
    for field in synthetic.CRITEO_FIELDS:
        written = ["" if v is None else str(v) for v in expected[field.name].to_pylist()]
        assert table.column(field.name).to_pylist() == written, field.name
    for field in synthetic.CRITEO_NUMERIC_FIELDS:
        written = np.asarray(expected[field.name].to_pandas(), dtype=np.float32)
        np.testing.assert_array_equal(np.asarray(table.column(field.name)), written)


def test_make_reader_generates_the_criteo_profile(tmp_path):
    reader = datasets.make_reader(
        "synthetic",
        output_dir=str(tmp_path),
        rows=300,
        seed=1,
        profile="criteo",
        numeric_transform="log_square",
    )
    assert [field.name for field in reader.fields] == CRITEO_COLUMNS[1:]
    assert {f.transform for f in reader.fields if f.kind == "numeric"} == {"log_square"}
    truth = json.loads((tmp_path / "raw" / "ground_truth.json").read_text())
    assert truth["profile"] == "criteo" and truth["rows"] == 300
    table, rejected, _ = parse_files(reader)
    assert table.num_rows == 300 and rejected == []


def test_unknown_profiles_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"unknown profile 'kaggle': choose one of demo, criteo"):
        datasets.make_reader("synthetic", output_dir=str(tmp_path), profile="kaggle")
    with pytest.raises(ValueError, match=r"`profile` must be one of \('demo', 'criteo'\)"):
        synthetic.generate_columns(10, profile="kaggle")
    assert not (tmp_path / "raw").exists()
