"""AMTL: a learnt embedding length for every feature value.

- `MaskedEmbeddings` (`masked_model`): the adaptively-masked twins layer on
  the chosen fields of a ranker;
- `warm_start_from_run`, `warm_start_from_model`: begin from a trained
  full-dimension model;
- `compact_model`: the serving form, whose masked tables keep each value's length;
- `run_amtl`: the run (`dimsel amtl`), with `summary_table` and the plot.

Names are imported lazily: the defaults load no TensorFlow.
"""

from keras_dimsel.amtl.defaults import (
    DEFAULT_HIDDEN_UNITS,
    DEFAULT_LENGTH_PENALTY,
    DEFAULT_MAX_DIM,
    DEFAULT_TABLE_SHARE,
    DEFAULT_TEMPERATURE,
    FREQUENCY_GROUPS,
)

_LAZY = {
    "MaskedEmbeddings": "keras_dimsel.amtl.embeddings",
    "masked_model": "keras_dimsel.amtl.embeddings",
    "freeze_all_but_masks": "keras_dimsel.amtl.embeddings",
    "check_warm_start": "keras_dimsel.amtl.warm_start",
    "warm_start_from_run": "keras_dimsel.amtl.warm_start",
    "warm_start_from_model": "keras_dimsel.amtl.warm_start",
    "trained_tables": "keras_dimsel.amtl.warm_start",
    "compact_model": "keras_dimsel.amtl.compact",
    "dims_by_frequency_group": "keras_dimsel.amtl.report",
    "plot_amtl_dims": "keras_dimsel.amtl.report",
    "summary_table": "keras_dimsel.amtl.report",
    "default_fields": "keras_dimsel.amtl.runs",
    "run_amtl": "keras_dimsel.amtl.runs",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_dimsel.amtl' has no attribute {name!r}")


__all__ = [
    *sorted(_LAZY),
    "DEFAULT_HIDDEN_UNITS",
    "DEFAULT_LENGTH_PENALTY",
    "DEFAULT_MAX_DIM",
    "DEFAULT_TABLE_SHARE",
    "DEFAULT_TEMPERATURE",
    "FREQUENCY_GROUPS",
]
