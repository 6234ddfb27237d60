"""The per-field vocabulary cap and the hash buckets the values beyond it share.

The Beam side (`tokens.hash_buckets`, `write_vocabulary`) and the model side
(`FeatureLookup`, TensorFlow's `to_hash_bucket_fast`) must put every value in
the same bucket, or the frequency features of a hashed value would be the
counts of other values.
"""

from __future__ import annotations

import collections
import json

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from keras_dimsel.cli import EXIT_BAD_INPUT, main
from keras_dimsel.data import tokens
from keras_dimsel.data.csv import CsvReader
from keras_dimsel.data.feature_spec import FeatureSpec, FieldSpec, read_vocabulary
from keras_dimsel.data.lookup import FeatureLookup
from keras_dimsel.data.reader import DataError
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run, summary
from keras_dimsel.preprocessing.statistics import field_hash_buckets, write_vocabulary

# Counts in `MergeValueCounts` order: most frequent first, ties by value.
COUNTS = pa.table(
    {
        "value": ["a", "b", "c", "d", "e", "f", "g"],
        "count": pa.array([9, 5, 5, 3, 2, 1, 1], pa.int64()),
    }
)


def model_buckets(values, num_buckets: int) -> list[int]:
    """The buckets TensorFlow gives the values: what the exported model computes."""
    return tf.strings.to_hash_bucket_fast(list(values), num_buckets).numpy().tolist()


def expected_bucket_counts(values, counts, num_buckets: int) -> list[int]:
    totals = [0] * num_buckets
    for bucket, count in zip(model_buckets(values, num_buckets), counts):
        totals[bucket] += count
    return totals


# ---------------------------------------------------------------------------
# The hash: both sides agree


def test_numpy_side_buckets_equal_tensorflow_buckets_on_awkward_tokens():
    rng = np.random.default_rng(0)
    values = ["", "[MISSING]", "a\x00b", "café", "😀", " 7 ", "-9007199254740992", "x" * 5000]
    values += [f"u{i}" for i in rng.integers(0, 10**9, 3000)]
    for num_buckets in (2, 7, 1000, 2**31 - 1):
        got = tokens.hash_buckets(pa.array(values), num_buckets).tolist()
        assert got == model_buckets(values, num_buckets), num_buckets


def test_hashing_in_slices_gives_the_same_buckets(monkeypatch):
    values = pa.array([f"v{i}" for i in range(50)])
    whole = tokens.hash_buckets(values, 13)
    monkeypatch.setattr(tokens, "_HASH_SLICE", 7)
    np.testing.assert_array_equal(tokens.hash_buckets(values, 13), whole)
    assert tokens.hash_buckets(pa.array([], pa.string()), 13).shape == (0,)


# ---------------------------------------------------------------------------
# write_vocabulary: the cap, min_count and the buckets


def test_cap_keeps_the_most_frequent_values_ties_by_value(tmp_path):
    _, summary_ = write_vocabulary("f", COUNTS, str(tmp_path), 1, max_vocab_size=3, hash_buckets=4)
    assert read_vocabulary(str(tmp_path / "vocab" / "f.txt")) == (["a", "b", "c"], [9, 5, 5])
    assert summary_ == {
        "vocab_size": 1 + 3 + 4, "oov_count": 0, "distinct_values": 7, "hash_buckets": 4
    }  # fmt: skip


def test_overflow_counts_land_in_the_buckets_the_model_computes(tmp_path):
    _, summary_ = write_vocabulary("f", COUNTS, str(tmp_path), 1, max_vocab_size=3, hash_buckets=4)
    assert summary_["hash_buckets"] == 4
    buckets, counts = read_vocabulary(str(tmp_path / "vocab" / "f.buckets.txt"))
    assert buckets == ["0", "1", "2", "3"]
    assert counts == expected_bucket_counts("defg", [3, 2, 1, 1], 4)
    assert sum(counts) == 3 + 2 + 1 + 1


def test_values_below_min_count_share_the_buckets_too(tmp_path):
    # min_count 3 keeps a, b, c, d; the cap of 10 is not reached; e, f, g are hashed.
    _, summary_ = write_vocabulary("f", COUNTS, str(tmp_path), 3, max_vocab_size=10, hash_buckets=2)
    assert read_vocabulary(str(tmp_path / "vocab" / "f.txt"))[0] == ["a", "b", "c", "d"]
    assert summary_["vocab_size"] == 1 + 4 + 2
    counts = read_vocabulary(str(tmp_path / "vocab" / "f.buckets.txt"))[1]
    assert counts == expected_bucket_counts("efg", [2, 1, 1], 2)


def test_cap_without_buckets_leaves_the_rest_on_the_oov_id(tmp_path):
    _, summary_ = write_vocabulary("f", COUNTS, str(tmp_path), 1, max_vocab_size=2, hash_buckets=0)
    assert summary_ == {"vocab_size": 3, "oov_count": 5 + 3 + 2 + 1 + 1, "distinct_values": 7}
    assert not (tmp_path / "vocab" / "f.buckets.txt").exists()


@pytest.mark.parametrize(
    "hash_buckets, max_vocab_size, left_out, expected",
    [
        (None, None, 10**6, 0),  # no cap, no buckets: the OOV id as before
        (None, 10**6, 10**8, 10**6),  # 1% of 10^8, at most the cap
        (None, 10**7, 10**8, 10**6),
        (None, 5, 1000, 5),
        (None, 1000, 101, 2),
        (None, 1000, 100, 0),  # a single bucket is the OOV id
        (50, None, 1000, 50),  # buckets without a cap: for the values below min_count
        (50, 10, 20, 20),  # never more buckets than values left out
        (50, 10, 0, 0),  # a field that keeps every value needs none
        (1, 10, 20, 0),
        (0, 10, 20, 0),
    ],
)
def test_number_of_buckets_of_a_field(hash_buckets, max_vocab_size, left_out, expected):
    assert field_hash_buckets(hash_buckets, max_vocab_size, left_out) == expected


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_vocab_size": 0}, "--max-vocab-size must be a positive integer. Received: 0"),
        ({"max_vocab_size": -3}, "--max-vocab-size must be a positive integer. Received: -3"),
        ({"max_vocab_size": 2.5}, "--max-vocab-size must be a positive integer. Received: 2.5"),
        ({"max_vocab_size": True}, "--max-vocab-size must be a positive integer. Received: True"),
        ({"hash_buckets": -1}, "--hash-buckets must be a non-negative integer. Received: -1"),
        ({"hash_buckets": "8"}, "--hash-buckets must be a non-negative integer. Received: '8'"),
    ],
)
def test_config_rejects_bad_cap_options(options, message):
    with pytest.raises(DataError) as error:
        PreprocessConfig(output_dir="out", **options)
    assert str(error.value) == message


# ---------------------------------------------------------------------------
# The spec


def test_spec_round_trips_and_old_records_mean_no_buckets(tmp_path):
    field = FieldSpec(
        "site", "categorical", 1 + 3 + 4, "vocab/site.txt",
        hash_buckets=4, bucket_file="vocab/site.buckets.txt",
    )  # fmt: skip
    spec = FeatureSpec("y", (field,), {"train": 10}, max_vocab_size=3)
    spec.save(str(tmp_path))
    record = json.loads((tmp_path / "feature_spec.json").read_text())
    assert record["max_vocab_size"] == 3
    assert record["fields"][0]["hash_buckets"] == 4
    assert record["fields"][0]["bucket_file"] == "vocab/site.buckets.txt"
    loaded = FeatureSpec.load(str(tmp_path))
    assert loaded.to_json() == spec.to_json() and loaded.fields == spec.fields
    old = FieldSpec.from_json({"name": "x", "kind": "categorical", "vocab_size": 3,
                               "vocab_file": "vocab/x.txt", "oov_index": 0})  # fmt: skip
    assert old.hash_buckets == 0 and old.bucket_file is None and old.first_bucket_id == 3
    assert "hash_buckets" not in old.to_json()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"vocab_size": 4, "hash_buckets": 4}, "must be in \\[0, vocab_size - 1\\]"),
        ({"vocab_size": 9, "hash_buckets": -1}, "must be in \\[0, vocab_size - 1\\]"),
        ({"vocab_size": 9, "hash_buckets": 4}, "has hash buckets but no `bucket_file`"),
    ],
)
def test_field_spec_checks_its_buckets(options, message):
    with pytest.raises(ValueError, match=message):
        FieldSpec("x", "categorical", vocab_file="vocab/x.txt", **options)


def test_bucket_file_must_hold_one_line_per_bucket(tmp_path):
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "x.txt").write_text("5 a\n")
    (tmp_path / "vocab" / "x.buckets.txt").write_text("1 0\n2 2\n")
    field = FieldSpec("x", "categorical", 4, "vocab/x.txt", hash_buckets=2,
                      bucket_file="vocab/x.buckets.txt")  # fmt: skip
    spec = FeatureSpec("y", (field,), {"train": 8}, directory=str(tmp_path))
    with pytest.raises(ValueError, match="x.buckets.txt: expected one '<count> <bucket>' line"):
        spec.vocabulary("x")


# ---------------------------------------------------------------------------
# The whole job, the lookup and an exported model


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    """A CSV with a 300-value `user` field and a 4-value `device`, capped at 20 values."""
    directory = tmp_path_factory.mktemp("capped")
    rng = np.random.default_rng(7)
    users = rng.zipf(1.3, 3000) % 300
    lines = [f"{i % 2},u{u},d{i % 4}" for i, u in enumerate(users)]
    path = directory / "clicks.csv"
    path.write_text("clicked,user,device\n" + "\n".join(lines) + "\n")
    reader = CsvReader([str(path)], "clicked", ["user", "device"])
    config = PreprocessConfig(output_dir=str(directory / "artifact"), max_vocab_size=20)
    return run(reader, config)


FIELDS = ("user", "device")


def _train_counts(spec, name):
    """An independent count of one field over the written train split."""
    from keras_dimsel.data.input_fn import make_dataset

    counted = collections.Counter()
    for features, _ in make_dataset(spec, "train", batch_size=4096):
        counted.update(v.decode() or tokens.MISSING_TOKEN for v in features[name].numpy())
    return counted


def test_job_keeps_the_top_values_and_hashes_the_rest(capped):
    user = capped.field("user")
    counted = _train_counts(capped, "user")
    left_out = len(counted) - 20
    assert user.hash_buckets == field_hash_buckets(None, 20, left_out) > 1
    assert user.vocab_size == 1 + 20 + user.hash_buckets and user.oov_count == 0
    values, counts = read_vocabulary(f"{capped.directory}/vocab/user.txt")
    ranked = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0].encode()))
    assert list(zip(values, counts)) == ranked[:20]
    rest = ranked[20:]
    assert capped.bucket_counts("user") == expected_bucket_counts(
        [v for v, _ in rest], [c for _, c in rest], user.hash_buckets
    )
    all_values, all_counts = capped.vocabulary("user")
    assert all_values[20:] == [f"[BUCKET {b}]" for b in range(user.hash_buckets)]
    assert sum(all_counts) == capped.splits["train"]
    # `device` keeps its 4 values under the cap: nothing left out, no buckets.
    assert capped.field("device").hash_buckets == 0
    assert capped.field("device").vocab_size == 5
    assert capped.max_vocab_size == 20
    assert f"({user.hash_buckets} hash buckets)" in summary(capped)


def test_lookup_sends_every_value_outside_the_vocabulary_to_its_bucket(capped):
    user = capped.field("user")
    values, _ = read_vocabulary(f"{capped.directory}/vocab/user.txt")
    counted = _train_counts(capped, "user")
    outside = sorted(set(counted) - set(values)) + ["never-seen", "u100000", "[BUCKET 0]"]
    raw = values + outside
    ids = FeatureLookup(capped, ["user"])({"user": tf.constant(raw)})["user"].numpy()
    assert ids[: len(values)].tolist() == list(range(1, 21))
    hashed = user.first_bucket_id + tokens.hash_buckets(pa.array(outside), user.hash_buckets)
    assert ids[len(values) :].tolist() == hashed.tolist()
    assert ids.max() < user.vocab_size and 0 not in ids
    # AMTL's frequency features: a hashed value has its bucket's count.
    counts = capped.value_counts("user")
    assert len(counts) == user.vocab_size and counts[0] == 0
    buckets = capped.bucket_counts("user")
    for value, id_ in zip(outside, ids[len(values) :]):
        assert counts[id_] == buckets[id_ - user.first_bucket_id], value


def test_exported_lookup_maps_unseen_raw_values_to_their_bucket(capped, tmp_path):
    lookup = FeatureLookup(capped, FIELDS)

    class Ids(tf.Module):
        def __init__(self):
            super().__init__()
            self.lookup = lookup

        @tf.function(
            input_signature=[
                {
                    "user": tf.TensorSpec([None], tf.string),
                    "device": tf.TensorSpec([None], tf.string),
                }
            ]
        )
        def __call__(self, features):
            return self.lookup(features)

    tf.saved_model.save(Ids(), str(tmp_path / "model"))
    reloaded = tf.saved_model.load(str(tmp_path / "model"))
    users = ["never-seen", "u99999", ""]
    ids = reloaded({"user": tf.constant(users), "device": tf.constant(["d1", "d9", ""])})
    user = capped.field("user")
    hashed = model_buckets(["never-seen", "u99999", "[MISSING]"], user.hash_buckets)  # the tokens
    expected = user.first_bucket_id + np.array(hashed)
    assert ids["user"].numpy().tolist() == expected.tolist()
    assert ids["device"].numpy()[1:].tolist() == [0, 0]  # no buckets: unseen values get 0


def test_model_built_on_a_capped_artifact_exports_and_serves_raw_values(capped, tmp_path):
    from keras_dimsel.export import export_saved_model
    from keras_dimsel.models import full_model

    model = full_model("fm", capped, dim=4, fields=["user", "device"])
    path = export_saved_model(model, str(tmp_path / "saved_model"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serve(user=tf.constant(["u1", "never-seen", ""]), device=tf.constant(["d0"] * 3))
    probability = outputs["probability"].numpy()
    assert probability.shape == (3,) and np.isfinite(probability).all()


# ---------------------------------------------------------------------------
# dimsel preprocess


@pytest.fixture
def clicks_csv(tmp_path):
    path = tmp_path / "clicks.csv"
    rows = [f"{i % 2},u{i % 37},d{i % 3}" for i in range(400)]
    path.write_text("clicked,user,device\n" + "\n".join(rows) + "\n")
    return path


def _argv(clicks_csv, output, *extra):
    return [
        "preprocess", "--dataset", "csv", "--input", str(clicks_csv), "--output", str(output),
        "--label", "clicked", "--categorical", "user,device", *extra,
    ]  # fmt: skip


def test_preprocess_flags_cap_the_vocabulary(tmp_path, clicks_csv, capsys):
    output = tmp_path / "out"
    assert main(_argv(clicks_csv, output, "--max-vocab-size", "10", "--hash-buckets", "4")) == 0
    assert "(4 hash buckets)" in capsys.readouterr().out
    spec = FeatureSpec.load(str(output))
    assert spec.field("user").vocab_size == 1 + 10 + 4
    assert spec.field("device").vocab_size == 1 + 3  # under the cap: untouched
    assert len(read_vocabulary(str(output / "vocab" / "user.txt"))[0]) == 10


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--max-vocab-size", "0", "a positive integer"),
        ("--max-vocab-size", "-5", "a positive integer"),
        ("--max-vocab-size", "2.5", "a positive integer"),
        ("--max-vocab-size", "many", "a positive integer"),
        ("--hash-buckets", "-1", "a non-negative integer"),
        ("--hash-buckets", "1e3", "a non-negative integer"),
    ],
)
def test_bad_cap_flags_give_one_line(tmp_path, clicks_csv, capsys, flag, value, expected):
    code = main(_argv(clicks_csv, tmp_path / "out", flag, value))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert err == (f"dimsel preprocess: error: argument {flag}: expected {expected}, got {value!r}")
