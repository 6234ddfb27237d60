"""Datasets, the feature statistics artifact, lookup layers and input functions.

TensorFlow-side names (`FeatureLookup`, `make_dataset`) are imported lazily so
that Beam workers, which only parse and count, never load TensorFlow (only a
field with hash buckets does, to hash its values with TensorFlow's own op).
"""

from keras_dimsel.data.datasets import DATASETS, make_reader
from keras_dimsel.data.feature_spec import FeatureSpec, FieldSpec, read_vocabulary
from keras_dimsel.data.reader import DataError, FieldDef, Reader

_LAZY = {
    "FeatureLookup": "keras_dimsel.data.lookup",
    "make_dataset": "keras_dimsel.data.input_fn",
    "feature_description": "keras_dimsel.data.input_fn",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_dimsel.data' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "DataError",
    "FeatureLookup",
    "FeatureSpec",
    "FieldDef",
    "FieldSpec",
    "Reader",
    "feature_description",
    "make_dataset",
    "make_reader",
    "read_vocabulary",
]
