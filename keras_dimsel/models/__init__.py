"""Ready rankers: FM, WideDeep and DeepFM (TFRS models with a Ranking task).

`make_model("deepfm", spec, stage="search")` builds the search-stage model:
the ranker combined with `AlternatingSearch`, so `compile` takes an
`arch_optimizer` and `fit` takes `(train, validation)` batch pairs.
"""

from __future__ import annotations

from keras_dimsel.models.base import CTRModel
from keras_dimsel.models.deepfm import DeepFM
from keras_dimsel.models.fm import FM
from keras_dimsel.models.wide_deep import WideDeep
from keras_dimsel.search.alternating import AlternatingSearch

MODELS = {"fm": FM, "wide_deep": WideDeep, "deepfm": DeepFM}
_SEARCH_MODELS = {
    name: type(f"Search{cls.__name__}", (AlternatingSearch, cls), {"__module__": __name__})
    for name, cls in MODELS.items()
}


def make_model(name: str, spec, stage: str = "full", **kwargs) -> CTRModel:
    """Builds a ranker by name (`fm`, `wide_deep`, `deepfm`) for one stage.

    Args:
        name: str, the model name.
        spec: FeatureSpec, the artifact.
        stage: str, `"search"` (with the alternating train step), `"plan"`,
            `"full"`, `"amtl"` or `"compact"` (see `FieldEmbeddings`).
        **kwargs: the `CTRModel` arguments (candidates, storage, unify, plan_dims, dim, ...).

    Returns:
        The `CTRModel`; for `stage="search"` a subclass that also derives from
        `AlternatingSearch`.

    Raises:
        ValueError: on an unknown model name.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_dataset, make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> model = make_model("deepfm", spec, stage="search", candidates=(2, 4))
        >>> type(model).__name__
        'SearchDeepFM'
        >>> features, labels = next(iter(make_dataset(spec, "train", batch_size=4)))
        >>> print(model(features).shape)
        (4,)
        >>> model.field_embeddings.selection_probabilities()["user"]  # alpha before the search
        [0.5, 0.5]
        >>> make_model("lr", spec)
        Traceback (most recent call last):
        ...
        ValueError: `model` must be one of ('fm', 'wide_deep', 'deepfm'). Received: model='lr'
    """
    if name not in MODELS:
        raise ValueError(f"`model` must be one of {tuple(MODELS)}. Received: model={name!r}")
    classes = _SEARCH_MODELS if stage == "search" else MODELS
    return classes[name](spec, stage=stage, **kwargs)


__all__ = ["CTRModel", "DeepFM", "FM", "MODELS", "WideDeep", "make_model"]
