"""Dimension search: temperature schedules, the alternating update and DimensionPlan.

Names are imported lazily, so that reading a plan (`DimensionPlan.load`) does
not load TensorFlow.
"""

_LAZY = {
    "AlternatingSearch": "keras_dimsel.search.alternating",
    "zip_train_validation": "keras_dimsel.search.alternating",
    "DimensionPlan": "keras_dimsel.search.plan",
    "TemperatureSchedule": "keras_dimsel.search.temperature",
    "TemperatureAnnealing": "keras_dimsel.search.temperature",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_dimsel.search' has no attribute {name!r}")


__all__ = sorted(_LAZY)
