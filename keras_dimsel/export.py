"""Compact SavedModel export: raw features in, click probability out.

The exported model carries its lookup tables and only the embedding tables of
the stage it was trained in, so a retrained AutoDim model is physically
smaller than the full-dimension one. It reloads with plain
`tf.saved_model.load`, without this library.
"""

from __future__ import annotations

import os

import tensorflow as tf

from keras_dimsel.data.feature_spec import FeatureSpec

SERVING_OUTPUT = "probability"


def serving_signature(spec: FeatureSpec, fields) -> dict:
    """One `[batch]` input per field: strings for categorical, float32 for numeric."""
    return {
        name: tf.TensorSpec(
            [None], tf.string if spec.field(name).kind == "categorical" else tf.float32, name
        )
        for name in fields
    }


def export_saved_model(model, directory: str) -> str:
    """Saves `model` with a `serving_default` signature over raw feature values.

    The directory is written under a temporary name and renamed, so a killed
    export never leaves a directory that looks complete.

    Args:
        model: a `CTRModel` (any stage).
        directory: str, where the SavedModel goes.

    Returns:
        The directory.
    """
    signature = serving_signature(model.spec, model.field_names)

    @tf.function(input_signature=[signature])
    def serve(features):
        return {SERVING_OUTPUT: model(features, training=False)}

    tmp = f"{directory}.tmp-{os.getpid()}"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    tf.saved_model.save(model, tmp, signatures={"serving_default": serve})
    if tf.io.gfile.exists(directory):
        tf.io.gfile.rmtree(directory)
    tf.io.gfile.rename(tmp, directory)
    return directory


def saved_embedding_params(directory: str) -> int:
    """Numbers held by the embedding tables of an exported model, as reloaded."""
    loaded = tf.saved_model.load(directory)
    tables = [v for v in loaded.variables if _is_embedding_table(v.name)]
    return int(sum(v.shape.num_elements() for v in tables))


def _is_embedding_table(name: str) -> bool:
    return any(key in name for key in ("embedding_table", "candidate_table", "embedding_values"))
