"""The models of an AutoDim run: the search supernet and the retrained model of a plan."""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

# The embeddings module, not its class: `keras_dimsel.models` imports this module
# while `autodim.embeddings` may still be loading (see the end of models/__init__.py).
from keras_dimsel.autodim import DEFAULT_CANDIDATES
from keras_dimsel.autodim import embeddings as search_embeddings
from keras_dimsel.autodim.alternating import AlternatingSearch
from keras_dimsel.autodim.plan import DimensionPlan
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.models import CTRModel, make_model, needs_equal_dims, vocab_sizes
from keras_dimsel.models.embeddings import PlannedEmbeddings


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class SearchModel(AlternatingSearch, CTRModel):
    """A ranker whose `train_step` is AutoDim's alternating update.

    `compile` takes an `arch_optimizer` for alpha, and `fit` takes
    `(train_batch, validation_batch)` pairs (`zip_train_validation`); see
    `AlternatingSearch`. Build it with `search_model`.

    Examples:

        >>> from keras_dimsel.data import FeatureSpec, FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 200},
        ... )
        >>> model = search_model("fm", spec, candidates=(2, 4))
        >>> model.build_weights()
        >>> [v.shape.as_list() for v in model.architecture_variables]  # alpha of the one field
        [[2]]
    """


def search_model(
    name: str,
    spec: FeatureSpec,
    candidates: Sequence[int] = DEFAULT_CANDIDATES,
    storage: str = "shared",
    unify: str = "linear",
    rank_scaling: bool = True,
    hard: bool = False,
    seed: Optional[int] = None,
    fields: Optional[Sequence[str]] = None,
) -> SearchModel:
    """The search supernet of a ranker: `SearchEmbeddings` under the named head.

    Args:
        name: str, `fm`, `wide_deep` or `deepfm`.
        spec: FeatureSpec, the artifact.
        candidates: tuple of int, the candidate dimensions (see `SearchEmbeddings`).
        storage: str, `"shared"` or `"separate"` candidate tables.
        unify: str, `"linear"` or `"zero_pad"`.
        rank_scaling: bool, scale each linear candidate by sqrt(d_n / d_N).
        hard: bool, straight-through one-hot selection.
        seed: int or None, the Gumbel noise seed.
        fields: sequence of str or None, the fields to use (default: all).

    Returns:
        The unbuilt `SearchModel`.

    Examples:

        >>> from keras_dimsel.data import FeatureSpec, FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 79, "vocab/user.txt"),),
        ...     splits={"train": 200},
        ... )
        >>> model = search_model("deepfm", spec, candidates=(2, 4))
        >>> model.build_weights()
        >>> type(model).__name__, model.field_embeddings.selection_probabilities()
        ('SearchModel', {'user': [0.5, 0.5]})
    """
    embeddings = search_embeddings.SearchEmbeddings(
        vocab_sizes(spec, fields),
        candidates,
        storage=storage,
        unify=unify,
        rank_scaling=rank_scaling,
        hard=hard,
        seed=seed,
    )
    return make_model(name, spec, embeddings, model_class=SearchModel)


def planned_model(
    name: str, spec: FeatureSpec, plan: DimensionPlan, unify: str = "linear"
) -> CTRModel:
    """The retrain-stage ranker of a plan: one table [vocab, chosen dim] per field.

    The fields are unified to the largest candidate only when the head needs
    equal dimensions (FM and DeepFM interactions).

    Examples:

        >>> from keras_dimsel.data import FeatureSpec, FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("user", "categorical", 79, "vocab/user.txt"),
        ...         FieldSpec("device", "categorical", 9, "vocab/device.txt"),
        ...     ),
        ...     splits={"train": 200},
        ... )
        >>> plan = DimensionPlan(
        ...     fields={"user": 8, "device": 2},
        ...     candidates=(2, 8),
        ...     vocab_sizes={"user": 79, "device": 9},
        ... )
        >>> model = planned_model("wide_deep", spec, plan)
        >>> model.build_weights()
        >>> model.embedding_params, model.head.deep.layers[0].kernel.shape  # the MLP reads 8 + 2
        (650, TensorShape([10, 128]))
    """
    output_dim = max(plan.candidates) if needs_equal_dims(name) else None
    embeddings = PlannedEmbeddings(
        vocab_sizes(spec, plan.field_names), plan.fields, output_dim=output_dim, unify=unify
    )
    return make_model(name, spec, embeddings)
