"""`Progress`: a line at most every `every` seconds inside an epoch when not on a terminal."""

import io

from keras_dimsel.training.progress import Progress


def _lines(stream):
    return stream.getvalue().splitlines()


def test_a_line_every_interval_names_the_epoch_step_rate_and_eta():
    stream = io.StringIO()
    progress = Progress(steps_per_epoch=10, epochs=2, batch_size=100, every=0.0, stream=stream)
    progress.on_epoch_begin(0)
    for batch in range(4):
        progress.on_train_batch_end(batch)
    # The first step (which traces the graph) starts the clock: no line, no rate from it.
    first, _, third = _lines(stream)
    assert first.startswith("epoch 1/2 - step 2/10 (20%) - ")
    assert third.startswith("epoch 1/2 - step 4/10 (40%) - ")
    assert third.split(" - ")[2].endswith(" examples/s") and "ETA " in third


def test_no_line_before_the_interval_and_a_resumed_epoch_counts_from_its_step():
    quiet = io.StringIO()
    progress = Progress(steps_per_epoch=10, epochs=1, every=3600.0, stream=quiet)
    progress.on_epoch_begin(0)
    progress.on_train_batch_end(0)
    assert quiet.getvalue() == ""

    stream = io.StringIO()
    progress = Progress(steps_per_epoch=10, epochs=2, first_step=14, every=0.0, stream=stream)
    progress.on_epoch_begin(1)  # the run resumes 4 steps into its second epoch
    progress.on_train_batch_end(0)
    progress.on_train_batch_end(1)
    (line,) = _lines(stream)
    assert line.startswith("epoch 2/2 - step 6/10 (60%) - ") and "steps/s" in line
