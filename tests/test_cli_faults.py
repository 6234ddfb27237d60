"""The command line under faults: what a person had stays, byte for byte; one line, the
right exit code and no traceback without -v.

Each case runs the real CLI (in process, or as a child where a signal is sent)
on tiny files in temporary directories.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from keras_dimsel import pipeline
from keras_dimsel.cli import EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED, main
from keras_dimsel.cli_outputs import MADE_BY


@pytest.fixture(scope="module")
def data(synthetic_artifact):
    return synthetic_artifact(2000).directory


def _files(directory) -> dict:
    """Every file under `directory` with its bytes."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = f.read()
    return found


def _one_line(capsys, code, argv) -> str:
    """Runs `dimsel ARGV`; asserts the exit code and one line on stderr, no traceback."""
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def _baseline(data, output, *more, dim=2):
    argv = ["baseline", "--data", data, "--output", str(output), "--model", "fm"]
    return argv + ["--dim", str(dim), "--epochs", "1", "--batch-size", "64", *more]


def _search(data, output):
    return ["search", "--data", data, "--model", "fm", "--output", str(output), "--epochs", "1"]


def _users_run_directory(tmp_path):
    """A directory of the user's own files, one named as a run's."""
    directory = tmp_path / "mine"
    (directory / "saved_model").mkdir(parents=True)
    (directory / "saved_model" / "keep.txt").write_text("my notes")
    (directory / "metrics.json").write_text('{"auc": 0.99}')
    (directory / "notes.txt").write_text("other notes")
    return directory


def test_preprocess_refuses_an_output_that_holds_its_input(tmp_path, capsys):
    directory = tmp_path / "project"
    (directory / "train").mkdir(parents=True)
    clicks = directory / "train" / "clicks.csv"
    clicks.write_text("clicked,user\n" + "".join(f"{i % 2},u{i % 5}\n" for i in range(40)))
    before = _files(directory)
    argv = ["preprocess", "--dataset", "csv", "--input", str(clicks), "--output", str(directory)]
    argv += ["--label", "clicked", "--categorical", "user"]
    for more in ([], ["--overwrite"]):
        err = _one_line(capsys, EXIT_BAD_INPUT, argv + more)
        assert err == (
            f"dimsel preprocess: error: --input {clicks} is inside --output {directory}; "
            "give an --output that holds no input"
        )
        assert _files(directory) == before


def test_a_directory_of_the_user_s_files_is_refused_and_kept(data, tmp_path, capsys):
    directory = _users_run_directory(tmp_path)
    before = _files(directory)
    for argv in (_baseline(data, directory), _search(data, directory)):
        err = _one_line(capsys, EXIT_BAD_INPUT, argv)
        assert f"--output {directory} holds files dimsel did not write" in err
        assert "--overwrite" in err
        assert _files(directory) == before


def test_overwrite_writes_into_the_directory_and_keeps_files_of_other_names(data, tmp_path, capsys):
    directory = _users_run_directory(tmp_path)
    assert main(_baseline(data, directory, "--overwrite")) == 0
    capsys.readouterr()
    assert (directory / "notes.txt").read_text() == "other notes"
    metrics = json.loads((directory / "metrics.json").read_text())
    assert metrics["dim"] == 2 and metrics["auc"] != 0.99
    assert json.loads((directory / MADE_BY).read_text())["command"] == "baseline"


def test_a_finished_run_is_reused_with_its_options_and_refused_with_others(data, tmp_path, capsys):
    output = tmp_path / "run"
    assert main(_baseline(data, output)) == 0
    capsys.readouterr()
    finished = _files(output)
    # The same options: the finished run is reused, nothing trains or changes.
    assert main(_baseline(data, output)) == 0
    assert "reused" in capsys.readouterr().out
    assert _files(output) == finished
    # Other options: refused, with the way out.
    err = _one_line(capsys, EXIT_BAD_INPUT, _baseline(data, output, dim=4))
    assert err.startswith(f"dimsel baseline: error: {output} holds a run made with other options")
    assert err.endswith("or --overwrite to start afresh")
    assert _files(output) == finished
    # Another command's output is not this command's to write into.
    err = _one_line(capsys, EXIT_BAD_INPUT, _search(data, output))
    assert err == (
        f"dimsel search: error: --output {output} holds a `dimsel baseline` run; give another "
        "--output, or --overwrite to write this search run into it"
    )
    assert _files(output) == finished
    # --overwrite starts afresh with the new options.
    assert main(_baseline(data, output, "--overwrite", dim=4)) == 0
    assert json.loads((output / "metrics.json").read_text())["dim"] == 4


def test_an_output_that_is_a_file_or_lies_under_one(data, tmp_path, capsys):
    path = tmp_path / "results.txt"
    path.write_text("my results")
    err = _one_line(capsys, EXIT_BAD_INPUT, _baseline(data, path))
    assert err == f"dimsel baseline: error: --output {path} is a file; give a directory"
    err = _one_line(capsys, EXIT_BAD_INPUT, _baseline(data, path / "run"))
    assert err.startswith("dimsel baseline: error: ") and str(path) in err
    assert path.read_text() == "my results"


def test_a_failed_command_leaves_no_directory_behind(tmp_path, capsys):
    output = tmp_path / "run"
    err = _one_line(capsys, EXIT_BAD_INPUT, _baseline(str(tmp_path / "nowhere"), output))
    assert "nowhere" in err
    assert not output.exists()


def test_duplicate_column_names_are_one_line(tmp_path, capsys):
    path = tmp_path / "twice.csv"
    path.write_text("clicked,user,user\n1,a,b\n0,c,d\n")
    argv = ["preprocess", "--dataset", "csv", "--input", str(path), "--label", "clicked"]
    argv += ["--categorical", "user", "--output", str(tmp_path / "out")]
    err = _one_line(capsys, EXIT_BAD_INPUT, argv)
    assert err == (
        f"dimsel preprocess: error: {path}: the header names column(s) more than once: 'user'; "
        "give every column its own name"
    )
    assert not (tmp_path / "out").exists()


def test_a_full_disk_is_one_line(data, tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run"))

    monkeypatch.setattr(pipeline, "baseline", full)
    err = _one_line(capsys, EXIT_BAD_INPUT, _baseline(data, tmp_path / "run"))
    assert err == f"dimsel baseline: error: no space left on the device ({tmp_path / 'run'})"


def test_a_read_only_output_is_one_line(data, tmp_path, capsys, monkeypatch):
    # Run as root, a chmod does not stop the writes: the errors are raised as a
    # read-only directory raises them, from Python's file API and from TensorFlow's.
    output = tmp_path / "run"
    for error, shown in (
        (PermissionError(errno.EACCES, "Permission denied", str(output)), "Permission denied"),
        (tf.errors.PermissionDeniedError(None, None, f"{output}; Permission denied"), "denied"),
    ):

        def denied(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(pipeline, "baseline", denied)
        err = _one_line(capsys, EXIT_BAD_INPUT, _baseline(data, output))
        assert err.startswith(f"dimsel baseline: error: {output}") and shown in err


def test_a_bug_exits_1_with_one_line_and_shows_its_traceback_under_v(
    data, tmp_path, capsys, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("an unexpected state")

    monkeypatch.setattr(pipeline, "baseline", broken)
    err = _one_line(capsys, EXIT_BUG, _baseline(data, tmp_path / "run"))
    assert err.startswith("dimsel baseline: internal error: RuntimeError: an unexpected state.")
    assert "-v" in err and "report" in err
    with pytest.raises(RuntimeError, match="an unexpected state"):
        main(["-v", *_baseline(data, tmp_path / "run")])


_WITH_CTRL_C = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from keras_dimsel.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.e2e
def test_ctrl_c_stops_with_130_and_the_step_and_the_same_command_resumes(data, tmp_path):
    output = tmp_path / "run"
    # Ctrl-C as in a person's shell: a test run started in the background of a
    # non-interactive shell ignores SIGINT, and a child inherits that, so the
    # command gets Python's own handler back before it starts.
    argv = [sys.executable, "-c", _WITH_CTRL_C, *_baseline(data, output)]
    argv[argv.index("--epochs") + 1] = "6"
    argv += ["--checkpoint-every", "5"]
    # The environment a person's shell has: no TensorFlow log level set by the test run.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if (output / "checkpoints" / "checkpoint").exists():
            # Ctrl-C, pressed again every 0.2 s until the command ends, as a person would.
            process.send_signal(signal.SIGINT)
            time.sleep(0.2)
            continue
        time.sleep(0.01)
    _, err = process.communicate()
    assert process.returncode == EXIT_INTERRUPTED, err[-2000:]
    assert "\n" not in err.strip(), err[-2000:]
    line = err.strip()
    assert line.startswith("dimsel baseline: interrupted at step ")
    assert line.endswith("; run the same command again to resume from there")
    saved = int(line.split("latest checkpoint is at step ")[1].split(";")[0])
    assert saved >= 5
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming at step {saved} of " in result.stdout
    assert "Traceback" not in result.stderr


def test_a_label_of_one_class_is_refused_before_training(tmp_path, capsys):
    path = tmp_path / "clicks.csv"
    path.write_text("clicked,user\n" + "".join(f"0,u{i % 7}\n" for i in range(200)))
    data = tmp_path / "data"
    argv = ["preprocess", "--dataset", "csv", "--input", str(path), "--label", "clicked"]
    assert main(argv + ["--categorical", "user", "--output", str(data)]) == 0
    capsys.readouterr()
    spec = json.loads((data / "feature_spec.json").read_text())
    assert spec["label_positives"] == {"train": 0, "validation": 0, "test": 0}
    for command in (_baseline(str(data), tmp_path / "run"), _search(str(data), tmp_path / "run")):
        err = _one_line(capsys, EXIT_BAD_INPUT, command)
        train = spec["splits"]["train"]
        assert err.endswith(
            f"every one of the {train} rows of the train split of {data} has label clicked = 0: "
            "a model learns nothing from one class and its AUC is undefined; check the label "
            "column, or give more rows"
        )
        assert not (tmp_path / "run").exists()


def test_every_record_is_accepted_or_rejected_once_and_rejections_are_told_by_kind(
    tmp_path, capsys
):
    path = tmp_path / "clicks.csv"
    records = [
        "clicked,user,note",
        '1,u1,"first line',  # a quoted value holding a line break: one record
        '0,u2,it2 plain"',
        "0,u3,plain",
        "2,u4,bad label",
        "x,u5,bad label again",
        "1,u6",
        *[f"{i % 2},u{i},n" for i in range(7, 60)],
    ]
    path.write_text("\n".join(records) + "\n")
    data = tmp_path / "data"
    argv = ["preprocess", "--dataset", "csv", "--input", str(path), "--label", "clicked"]
    assert main(argv + ["--categorical", "user,note", "--output", str(data)]) == 0
    out = capsys.readouterr().out
    spec = json.loads((data / "feature_spec.json").read_text())
    assert sum(spec["splits"].values()) == 55 and spec["rejected_rows"] == 3  # 58 records
    assert {kind: r["count"] for kind, r in spec["rejections"].items()} == {
        "bad label": 2,
        "wrong number of columns": 1,
    }
    assert [r["text"] for r in spec["rejections"]["bad label"]["examples"]] == [
        "2,u4,bad label",
        "x,u5,bad label again",
    ]
    assert f"; 3 rejected (every one in {data / 'rejected'}/)" in out
    assert (
        f"  2 bad label, e.g. '2,u4,bad label' (bad label '2': expected 0 or 1) at {path}@0" in out
    )
    notes = set()
    for split in ("train", "validation", "test"):
        for record in tf.data.TFRecordDataset(
            [str(p) for p in (data / split).glob("*.tfrecord.gz")], compression_type="GZIP"
        ):
            example = tf.train.Example.FromString(record.numpy())
            notes.add(example.features.feature["note"].bytes_list.value[0].decode())
    assert "first line\n0,u2,it2 plain" in notes and 'it2 plain"' not in notes


def test_input_takes_a_folder_of_files(tmp_path, capsys):
    folder = tmp_path / "logs"
    folder.mkdir()
    for day in range(2):
        rows = "".join(f"{i % 2},u{i}\n" for i in range(40))
        (folder / f"day_{day}.csv").write_text("clicked,user\n" + rows)
    (folder / "_SUCCESS").write_text("")
    data = tmp_path / "data"
    argv = ["preprocess", "--dataset", "csv", "--input", str(folder), "--label", "clicked"]
    assert main(argv + ["--categorical", "user", "--output", str(data)]) == 0
    capsys.readouterr()
    spec = json.loads((data / "feature_spec.json").read_text())
    assert sum(spec["splits"].values()) == 80 and spec["rejected_rows"] == 0


def test_an_empty_validation_split_is_refused_before_training(tmp_path, capsys):
    path = tmp_path / "clicks.csv"
    path.write_text("clicked,user\n" + "".join(f"{i % 2},u{i % 7}\n" for i in range(200)))
    data = tmp_path / "data"
    argv = ["preprocess", "--dataset", "csv", "--input", str(path), "--label", "clicked"]
    argv += ["--categorical", "user", "--split", "9:0:1", "--output", str(data)]
    assert main(argv) == 0
    capsys.readouterr()
    err = _one_line(capsys, EXIT_BAD_INPUT, _baseline(str(data), tmp_path / "run"))
    assert err.endswith(
        f"the validation split of {data} is empty: every command reports on it and the search "
        "trains alpha on it; give more rows, or a larger validation share with --split"
    )
    assert not (tmp_path / "run").exists()
