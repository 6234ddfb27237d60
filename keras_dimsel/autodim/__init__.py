"""AutoDim: one embedding dimension per field, searched, then retrained.

- `SearchEmbeddings` and `SearchModel` (`search_model`): the supernet, with
  the alternating update of `AlternatingSearch` and its temperature schedules;
- `DimensionPlan`: the dimensions a search derives (alpha argmax, a memory
  budget, or probing), saved as `plan.json`; `planned_model` is its ranker;
- `run_search`, `run_retrain`: the runs, with their report and plots.

Names are imported lazily, so that reading a plan (`DimensionPlan.load`) does
not load TensorFlow.
"""

#: The candidate dimensions of the paper's Criteo setting (the only place they are set).
DEFAULT_CANDIDATES = (2, 8, 16, 24, 32)

_LAZY = {
    "AlternatingSearch": "keras_dimsel.autodim.alternating",
    "zip_train_validation": "keras_dimsel.autodim.alternating",
    "AlphaHistory": "keras_dimsel.autodim.alpha_history",
    "DimensionPlan": "keras_dimsel.autodim.plan",
    "SearchEmbeddings": "keras_dimsel.autodim.embeddings",
    "SearchModel": "keras_dimsel.autodim.model",
    "search_model": "keras_dimsel.autodim.model",
    "planned_model": "keras_dimsel.autodim.model",
    "run_search": "keras_dimsel.autodim.runs",
    "run_retrain": "keras_dimsel.autodim.runs",
    "comparison_report": "keras_dimsel.autodim.report",
    "plot_search": "keras_dimsel.autodim.report",
    "TemperatureSchedule": "keras_dimsel.autodim.temperature",
    "TemperatureAnnealing": "keras_dimsel.autodim.temperature",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_dimsel.autodim' has no attribute {name!r}")


__all__ = sorted([*_LAZY, "DEFAULT_CANDIDATES"])
