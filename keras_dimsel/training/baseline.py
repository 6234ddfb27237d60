"""`run_baseline`: the full-dimension model, every field at one dimension."""

from __future__ import annotations

from typing import Optional

from keras_dimsel import _io
from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.models import check_model_name, full_model
from keras_dimsel.training.runner import train_and_export
from keras_dimsel.training.settings import TrainSettings, seed_everything


def run_baseline(
    spec: FeatureSpec,
    model_name: str,
    output: str,
    dim: int = 32,
    settings: Optional[TrainSettings] = None,
) -> dict:
    """Trains the full-dimension model (every field at `dim`) and exports it.

    Writes `metrics.json`, `weights/` and `saved_model/` into `output`.

    Args:
        spec: FeatureSpec, the artifact.
        model_name: str, `fm`, `wide_deep` or `deepfm`.
        output: str, the run directory.
        dim: int, the dimension of every field.
        settings: TrainSettings or None (the defaults).

    Returns:
        The metrics written to `metrics.json` (test AUC and logloss,
        embedding parameters, throughputs, `dim` and `model`).

    Examples:

        >>> import os, tempfile
        >>> from keras_dimsel.data import make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))  # doctest: +SKIP
        >>> settings = TrainSettings(epochs=1, batch_size=64)
        >>> output = os.path.join(directory, "baseline")
        >>> metrics = run_baseline(spec, "fm", output, dim=8, settings=settings)  # doctest: +SKIP
        >>> metrics["embedding_params"]  # doctest: +SKIP
        3008
    """
    settings = (settings or TrainSettings()).resolve(spec)
    check_model_name(model_name)
    seed_everything(settings.seed)
    _io.makedirs(output)
    model = full_model(model_name, spec, dim=dim)
    full = {"full_embedding_params": int(model.embedding_params), "dim": dim}
    options = {"command": "baseline", "model": model_name, "dim": dim}
    return train_and_export(model, spec, settings, output, options, {**full, "model": model_name})
