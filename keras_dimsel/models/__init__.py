"""Rankers composed of parts: `CTRModel(lookup, embeddings, head)`.

The heads are FM, Wide & Deep and DeepFM (`HEADS`, by model name); the
field embeddings are full, planned or compact here, the search supernet in
`keras_dimsel.autodim` and the value-level masks in `keras_dimsel.amtl`.
`make_model` puts a head by name around any field embeddings;
`full_model` is the full-dimension baseline.
"""

from __future__ import annotations

from typing import Optional, Sequence

from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.lookup import FeatureLookup
from keras_dimsel.models.ctr_model import CTRModel, example_features
from keras_dimsel.models.embeddings import (
    CompactEmbeddings,
    FieldEmbeddings,
    FullEmbeddings,
    PlannedEmbeddings,
)
from keras_dimsel.models.heads import (
    DEFAULT_DROPOUT,
    DEFAULT_HIDDEN_UNITS,
    HEADS,
    DeepFMHead,
    FMHead,
    Head,
    WideDeepHead,
)

#: The model names the command line and the runs take.
MODELS = tuple(HEADS)


def check_model_name(name: str) -> None:
    """Raises a ValueError naming the known models when `name` is not one of them.

    Examples:

        >>> check_model_name("lr")
        Traceback (most recent call last):
        ...
        ValueError: `model` must be one of ('fm', 'wide_deep', 'deepfm'). Received: model='lr'
    """
    if name not in HEADS:
        raise ValueError(f"`model` must be one of {MODELS}. Received: model={name!r}")


def needs_equal_dims(name: str) -> bool:
    """Whether the head of a model needs every field at the same dimension (interactions).

    Examples:

        >>> needs_equal_dims("deepfm"), needs_equal_dims("wide_deep")
        (True, False)
    """
    check_model_name(name)
    return HEADS[name].equal_dims


def vocab_sizes(spec: FeatureSpec, fields: Optional[Sequence[str]] = None) -> dict:
    """The number of ids of each field (all fields by default), in the artifact's order.

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("user", "categorical", 79, "vocab/user.txt"),
        ...         FieldSpec("device", "categorical", 9, "vocab/device.txt"),
        ...     ),
        ...     splits={"train": 200},
        ... )
        >>> vocab_sizes(spec), vocab_sizes(spec, ["device"])
        ({'user': 79, 'device': 9}, {'device': 9})
    """
    names = spec.field_names if fields is None else list(fields)
    return {name: spec.field(name).vocab_size for name in names}


def make_model(
    name: str,
    spec: FeatureSpec,
    embeddings: FieldEmbeddings,
    model_class: type = CTRModel,
    hidden_units: Sequence[int] = DEFAULT_HIDDEN_UNITS,
    dropout: float = DEFAULT_DROPOUT,
) -> CTRModel:
    """A ranker by name (`fm`, `wide_deep`, `deepfm`) around the given field embeddings.

    Args:
        name: str, the model name (its head).
        spec: FeatureSpec, the artifact the lookup is built from.
        embeddings: FieldEmbeddings, over the fields the model uses.
        model_class: the `CTRModel` class to build (e.g. `autodim.SearchModel`).
        hidden_units: sequence of int, the MLP of the deep heads.
        dropout: float, the MLP's dropout rate.

    Returns:
        The unbuilt model; `model.build_weights()` creates its weights.

    Raises:
        ValueError: on an unknown model name.

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("user", "categorical", 79, "vocab/user.txt"),
        ...         FieldSpec("device", "categorical", 9, "vocab/device.txt"),
        ...     ),
        ...     splits={"train": 200},
        ... )
        >>> model = make_model("wide_deep", spec, FullEmbeddings(vocab_sizes(spec), dim=8))
        >>> model.build_weights()
        >>> model.head.deep.layers[0].kernel.shape  # 2 fields * dim 8 into 128 units
        TensorShape([16, 128])
    """
    check_model_name(name)
    lookup = FeatureLookup(spec, embeddings.field_names)
    head_class = HEADS[name]
    if head_class is FMHead:
        head = head_class(embeddings.vocab_sizes)
    else:
        head = head_class(embeddings.vocab_sizes, hidden_units=hidden_units, dropout=dropout)
    return model_class(lookup, embeddings, head)


def full_model(
    name: str, spec: FeatureSpec, dim: int = 32, fields: Optional[Sequence[str]] = None
) -> CTRModel:
    """The full-dimension ranker: every field at `dim` (the baseline the methods compare with).

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 200},
        ... )
        >>> full_model("fm", spec, dim=16).embedding_params  # 79 ids, 16 numbers each
        1264
    """
    return make_model(name, spec, FullEmbeddings(vocab_sizes(spec, fields), dim))


# The search and AMTL parts register with Keras on this import too, so that after
# `import keras_dimsel.models` a `.keras` file of any library model loads with
# `tf.keras.models.load_model` and no `custom_objects`. (tf_keras 2.16 cannot import
# them by the module names in the file itself: it rewrites every module name that
# starts with "keras" to "tf_keras...".) Imported last: they build on the names above.
from keras_dimsel.amtl import embeddings as _amtl_embeddings  # noqa: E402, F401
from keras_dimsel.autodim import embeddings as _search_embeddings  # noqa: E402, F401
from keras_dimsel.autodim import model as _autodim_model  # noqa: E402, F401

__all__ = [
    "MODELS",
    "HEADS",
    "CTRModel",
    "CompactEmbeddings",
    "DeepFMHead",
    "FMHead",
    "FieldEmbeddings",
    "FullEmbeddings",
    "Head",
    "PlannedEmbeddings",
    "WideDeepHead",
    "check_model_name",
    "example_features",
    "full_model",
    "make_model",
    "needs_equal_dims",
    "vocab_sizes",
]
