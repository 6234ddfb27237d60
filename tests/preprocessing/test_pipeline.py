"""The whole Beam job on the DirectRunner: artifact contents, counts, rejects."""

import collections
import json
import shutil

import pytest

from keras_dimsel.data.datasets import make_reader
from keras_dimsel.data.feature_spec import FeatureSpec, read_vocabulary
from keras_dimsel.data.input_fn import make_dataset
from keras_dimsel.data.tokens import MISSING_TOKEN
from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run


def _preprocess(dataset, inputs, output, beam_args=(), **options):
    config_keys = {"min_count", "split_ratios", "num_buckets", "chunk_bytes"}
    config = PreprocessConfig(
        output_dir=str(output), **{k: v for k, v in options.items() if k in config_keys}
    )
    reader_options = {k: v for k, v in options.items() if k not in config_keys}
    reader = make_reader(
        dataset, [str(p) for p in inputs], output_dir=str(output), **reader_options
    )
    return run(reader, config, beam_args)


def _read_split(spec, split):
    columns = collections.defaultdict(list)
    for features, _ in make_dataset(spec, split, batch_size=4096):
        for name, values in features.items():
            columns[name].extend(values.numpy().tolist())
    return columns


def _assert_vocab_matches_independent_count(spec):
    """Every categorical vocabulary equals a plain Counter over the written train split."""
    train = _read_split(spec, "train")
    for field in spec.fields:
        values, counts = spec.vocabulary(field.name)
        assert sum(counts) + field.oov_count == spec.splits["train"], field.name
        if field.kind != "categorical":
            continue
        independent = collections.Counter(
            v.decode() if v else MISSING_TOKEN for v in train[field.name]
        )
        assert dict(zip(values, counts)) == {
            v: c for v, c in independent.items() if c >= spec.min_count
        }, field.name
        ordered = sorted(independent.items(), key=lambda kv: (-kv[1], kv[0].encode()))
        assert values == [v for v, c in ordered if c >= spec.min_count], field.name


def test_synthetic_artifact_is_complete_and_consistent(tmp_path):
    spec = _preprocess("synthetic", [], tmp_path / "out", rows=3000, seed=1, min_count=2)
    assert sum(spec.splits.values()) == 3000
    assert spec.rejected_rows == 0
    assert spec.splits["train"] > 2200 and spec.splits["validation"] > 200
    assert spec.field_names == [
        "user", "item", "category", "device", "noise_high", "noise_mid", "noise_low", "price",
    ]  # fmt: skip
    price = spec.field("price")
    assert price.kind == "numeric" and price.transform == "quantiles"
    assert list(price.boundaries) == sorted(price.boundaries) and len(price.boundaries) > 5
    _assert_vocab_matches_independent_count(spec)
    record = json.loads((tmp_path / "out" / "feature_spec.json").read_text())
    assert set(record) >= {"label", "fields", "splits", "rejected_rows"}
    assert set(record["fields"][0]) >= {"name", "kind", "vocab_size", "vocab_file", "oov_index"}
    assert record["fields"][0]["oov_index"] == 0


def test_rerun_gives_identical_artifact_and_clears_old_outputs(tmp_path):
    first = _preprocess("synthetic", [], tmp_path / "a", rows=2000, seed=3)
    stale = tmp_path / "a" / "train" / "part-99999.tfrecord.gz"
    stale.write_bytes(b"old")
    second = _preprocess("synthetic", [], tmp_path / "a", rows=2000, seed=3)
    assert not stale.exists()
    assert first.to_json() == second.to_json()
    other = _preprocess("synthetic", [], tmp_path / "b", rows=2000, seed=3, chunk_bytes=5000)
    assert other.splits == first.splits  # chunking does not change the split
    for field in first.field_names:
        assert first.vocabulary(field) == other.vocabulary(field)


def test_avazu_vocabulary_counts_agree_with_an_independent_count(tmp_path, shared_data):
    spec = _preprocess("avazu", [shared_data / "avazu/train_first8999.csv"], tmp_path, min_count=1)
    assert sum(spec.splits.values()) == 8999 and spec.rejected_rows == 0
    assert "id" not in spec.field_names and spec.label == "click"
    _assert_vocab_matches_independent_count(spec)


def test_criteo_malformed_line_is_rejected_with_its_reason(tmp_path, shared_data):
    source = tmp_path / "criteo.txt"
    shutil.copy(shared_data / "criteo/train_head10k.txt", source)
    with open(source, "ab") as f:
        f.write(b"1\t2\tnot-a-number\n")
    spec = _preprocess("criteo", [source], tmp_path / "out", min_count=2)
    assert spec.rejected_rows == 1
    assert sum(spec.splits.values()) == 10_000
    (rejected,) = (tmp_path / "out" / "rejected").glob("*.jsonl")
    record = json.loads(rejected.read_text())
    assert record["reason"] == "wrong number of columns: expected 40, got 3"
    assert record["text"] == "1\t2\tnot-a-number"
    assert spec.field("I1").transform == "log_square"
    _assert_vocab_matches_independent_count(spec)


def test_movielens_100k_artifact(tmp_path, shared_data):
    spec = _preprocess("movielens-100k", [shared_data / "ml-100k"], tmp_path, min_count=1)
    assert sum(spec.splits.values()) == 100_000
    assert spec.field_names == [
        "user", "item", "genres", "year", "gender", "age", "occupation", "zip"
    ]  # fmt: skip
    assert spec.field("user").vocab_size == 943 + 1
    assert spec.field("gender").vocab_size == 3


@pytest.mark.e2e
def test_multi_process_direct_runner_matches_in_memory(tmp_path):
    in_memory = _preprocess("synthetic", [], tmp_path / "a", rows=4000, seed=5, chunk_bytes=20_000)
    workers = _preprocess(
        "synthetic",
        [],
        tmp_path / "b",
        beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        rows=4000,
        seed=5,
        chunk_bytes=20_000,
    )
    assert in_memory.to_json()["splits"] == workers.to_json()["splits"]
    for field in in_memory.field_names:
        assert read_vocabulary(str(tmp_path / "a" / "vocab" / f"{field}.txt")) == read_vocabulary(
            str(tmp_path / "b" / "vocab" / f"{field}.txt")
        )
    assert FeatureSpec.load(str(tmp_path / "b")).field("price").boundaries
