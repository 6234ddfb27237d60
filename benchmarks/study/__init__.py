"""The benchmark study: every method on real data, the speed comparisons and the targets.

`python -m benchmarks.study --config quick|full` (`make bench-quick`, `make bench`):

- `config`: the grid as data (datasets x backbones x methods x seeds) and the MDE rule;
- `cells`: one cell = the `keras_dimsel.pipeline` steps of one method, in run directories;
- `records`: the records of `summary.json` (aggregation, stability, field power, targets);
- `report`: `summary.md` and the plots;
- `__main__`: the command; it runs `benchmarks/study_speed.py` (training and serving speed,
  and peak memory, against the full-dimension model) when its records are missing.
"""

import os

# Before TensorFlow is imported anywhere: TFRS needs Keras 2.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
