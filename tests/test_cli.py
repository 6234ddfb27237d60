"""`dimsel preprocess`: the summary on success, one line and exit 2 on bad input."""

import json
import os
import subprocess
import sys

import pytest

from keras_dimsel.cli import EXIT_BAD_INPUT, main


@pytest.fixture
def clicks_csv(tmp_path):
    path = tmp_path / "clicks.csv"
    rows = [f"{i % 2},u{i % 7},{i * 1.5}" for i in range(60)]
    path.write_text("clicked,user,price\n" + "\n".join(rows) + "\n")
    return path


def _error_of(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert len(err.splitlines()) == 1, err
    return err


def test_csv_preprocess_prints_a_summary(tmp_path, clicks_csv, capsys):
    out = tmp_path / "out"
    argv = ["preprocess", "--dataset", "csv", "--input", str(clicks_csv), "--output", str(out)]
    argv += ["--label", "clicked", "--categorical", "user", "--numeric", "price"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    splits = json.loads((out / "feature_spec.json").read_text())["splits"]
    assert sum(splits.values()) == 60 and splits["train"] > 0
    users = [int(line.split()[0]) for line in (out / "vocab" / "user.txt").open()]
    prices = [int(line.split()[0]) for line in (out / "vocab" / "price.txt").open()]
    # Vocabularies count the train rows; the summary adds the OOV id to their sizes.
    assert len(users) == 7 and sum(users) == sum(prices) == splits["train"]
    assert printed[:2] == [
        f"csv: train {splits['train']}, validation {splits['validation']}, "
        f"test {splits['test']} rows; 0 rejected",
        "field                kind             vocab  seen once  transform",
    ]
    assert [line.split() for line in printed[2:4]] == [
        ["user", "categorical", str(len(users) + 1), str(users.count(1))],
        ["price", "numeric", str(len(prices) + 1), str(prices.count(1)), "quantiles"],
    ]
    assert printed[4:] == [f"artifact: {out / 'feature_spec.json'}"]


def test_preprocess_summary_counts_the_values_seen_once(tmp_path, capsys):
    path = tmp_path / "rare.csv"
    # Distinct rows (the unused `row` column): the split is by a hash of the row.
    rows = [f"{i % 2},u{i % 4},{i}" for i in range(80)]
    rows += [f"{i % 2},rare{i},{80 + i}" for i in range(40)]
    path.write_text("clicked,user,row\n" + "\n".join(rows) + "\n")
    argv = ["preprocess", "--dataset", "csv", "--input", str(path), "--label", "clicked"]
    argv += ["--categorical", "user"]

    assert main([*argv, "--output", str(tmp_path / "all")]) == 0
    printed = capsys.readouterr().out.splitlines()
    counts = [int(line.split()[0]) for line in (tmp_path / "all/vocab/user.txt").open()]
    once = counts.count(1)
    assert 0 < once < len(counts)  # the rare values in train, not the four frequent ones
    assert printed[2].split()[:4] == ["user", "categorical", str(len(counts) + 1), str(once)]
    assert printed[3] == (
        f"{once} of {len(counts)} values were seen once in train "
        "(--min-count 2 maps them to the OOV id)"
    )

    assert main([*argv, "--output", str(tmp_path / "frequent"), "--min-count", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[2].split()[:4] == ["user", "categorical", "5", "0"]
    assert not any("seen once in train" in line for line in printed)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--label", "nope", "--categorical", "user"], "no label column 'nope'"),
        (["--label", "clicked", "--categorical", "user,colour"], "no categorical column 'colour'"),
        (["--label", "clicked", "--numeric", "weight"], "no numeric column 'weight'"),
        (["--categorical", "user"], "csv needs --label"),
        (["--label", "clicked"], "csv needs at least one field"),
        (["--label", "clicked", "--categorical", "user", "--min-cont", "2"], "'--min-cont'"),
        (["--label", "clicked", "--categorical", "user", "--split", "8:2"], "--split"),
        (["--label", "clicked", "--categorical", "user", "--sep", ";;"], "--sep"),
    ],
)
def test_bad_csv_options_give_one_line(tmp_path, clicks_csv, capsys, extra, message):
    argv = ["preprocess", "--dataset", "csv", "--input", str(clicks_csv)]
    err = _error_of(capsys, argv + ["--output", str(tmp_path / "o")] + extra)
    assert err.startswith("dimsel preprocess: error: ") and message in err


def test_missing_input_path(tmp_path, capsys):
    argv = ["preprocess", "--dataset", "criteo", "--input", str(tmp_path / "absent.txt")]
    err = _error_of(capsys, argv + ["--output", str(tmp_path / "o")])
    assert f"input path not found: {tmp_path / 'absent.txt'}" in err


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the file is empty"),
        ("y,a\n", "the input has no data rows"),
        ("y,a\n7,x\nz,y\n", "all 2 rows were rejected, see "),
    ],
    ids=["empty", "header-only", "all-rejected"],
)
def test_files_without_usable_rows(tmp_path, capsys, content, message):
    path = tmp_path / "rows.csv"
    path.write_text(content)
    argv = ["preprocess", "--dataset", "csv", "--input", str(path), "--label", "y"]
    err = _error_of(capsys, argv + ["--categorical", "a", "--output", str(tmp_path / "o")])
    assert message in err


def test_unknown_dataset_is_refused_by_the_parser(tmp_path, capsys):
    err = _error_of(capsys, ["preprocess", "--dataset", "imagenet", "--output", str(tmp_path)])
    assert err.startswith(
        "dimsel preprocess: error: argument --dataset: invalid choice: 'imagenet'"
    )


def test_console_script_prints_only_the_reason(tmp_path):
    dimsel = os.path.join(os.path.dirname(sys.executable), "dimsel")
    # As from a user's shell: none of the test session's TensorFlow settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    result = subprocess.run(
        [dimsel, "preprocess", "--dataset", "avazu", "--input", str(tmp_path / "x.csv")]
        + ["--output", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stderr.strip().splitlines() == [
        f"dimsel preprocess: error: input path not found: {tmp_path / 'x.csv'}"
    ]


def test_synthetic_criteo_profile_preprocess(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["preprocess", "--dataset", "synthetic", "--profile", "criteo", "--rows", "2000"]
    assert main([*argv, "--seed", "3", "--output", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    spec = json.loads((out / "feature_spec.json").read_text())
    assert sum(spec["splits"].values()) == 2000 and spec["rejected_rows"] == 0
    fields = {field["name"]: field["kind"] for field in spec["fields"]}
    assert list(fields) == [f"C{i}" for i in range(1, 27)] + [f"I{i}" for i in range(1, 14)]
    assert list(fields.values()) == ["categorical"] * 26 + ["numeric"] * 13
    truth = json.loads((out / "raw" / "ground_truth.json").read_text())
    assert (truth["profile"], truth["rows"], truth["seed"]) == ("criteo", 2000, 3)
    assert printed[0].startswith("synthetic: train ")


def test_unknown_synthetic_profile_is_refused_by_the_parser(tmp_path, capsys):
    argv = ["preprocess", "--dataset", "synthetic", "--profile", "kaggle"]
    err = _error_of(capsys, [*argv, "--output", str(tmp_path / "o")])
    assert err == (
        "dimsel preprocess: error: argument --profile: invalid choice: 'kaggle' "
        "(choose from 'demo', 'criteo')"
    )
    assert not (tmp_path / "o").exists()
    err = _error_of(capsys, ["run", *argv[1:], "--output", str(tmp_path / "r")])
    assert err.startswith("dimsel run: error: argument --profile: invalid choice: 'kaggle'")
