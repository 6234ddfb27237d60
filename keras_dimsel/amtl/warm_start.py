"""Warm start: an AMTL model begins from a trained full-dimension model's weights.

Tables, first-order weights, bias and network are read object by object
from the trained model, in memory or from the weights of a `dimsel baseline`
run (`RunDir.weights`); the mask networks keep their initial weights.
"""

from __future__ import annotations

import os
import tempfile
from typing import Dict, Optional

import tensorflow as tf

from keras_dimsel.training import RUN_RECORD, RunDir


def trained_tables(model) -> Dict[str, tuple]:
    """The embedding table shapes `{field: (vocab_size, dim)}` of a built full model.

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
        >>> from keras_dimsel.models import full_model
        >>> model = full_model("fm", spec, dim=4)
        >>> model.build_weights()
        >>> trained_tables(model)
        {'user': (79, 4), 'device': (9, 4)}
    """
    return {
        name: tuple(int(n) for n in layer.embedding_table.shape)
        for name, layer in model.field_embeddings.embeddings.items()
    }


def run_tables(run_dir: str) -> Optional[Dict[str, tuple]]:
    """The table shapes of a baseline run, from the record it keeps (None for older runs)."""
    record = RunDir(run_dir).read_json(RUN_RECORD)
    if not record or "dim" not in record or "data" not in record:
        return None
    return {name: (size, record["dim"]) for name, size in record["data"]["vocab_sizes"].items()}


def check_warm_start(model, tables: Dict[str, tuple], source: str) -> None:
    """Checks a trained model's tables fit `model`: same fields, vocab sizes and dim.

    Args:
        model: the `CTRModel` to warm start (with `MaskedEmbeddings`).
        tables: dict of field to `(vocab_size, dim)` (`trained_tables`).
        source: str, names the trained model in the messages.

    Raises:
        ValueError: naming the mismatch and `source`.

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
        >>> from keras_dimsel.amtl.embeddings import MaskedEmbeddings
        >>> from keras_dimsel.models import make_model
        >>> embeddings = MaskedEmbeddings({"user": 79, "device": 9}, 8, {"user": [1] * 79})
        >>> model = make_model("fm", spec, embeddings)
        >>> check_warm_start(model, {"user": (79, 8), "device": (9, 8)}, "the baseline run")
        >>> check_warm_start(model, {"user": (79, 4), "device": (9, 4)}, "the baseline run")
        Traceback (most recent call last):
        ...
        ValueError: the tables of the baseline run have dim 4, but the masked model uses ...
    """
    embeddings = model.field_embeddings
    if not tables:
        raise ValueError(f"{source} holds no embedding tables to warm start from")
    missing = [name for name in model.field_names if name not in tables]
    extra = [name for name in tables if name not in model.field_names]
    if missing or extra:
        raise ValueError(
            f"the fields of {source} do not match the data: missing {missing}, "
            f"not in the data {extra}"
        )
    for name in model.field_names:
        vocab_size, dim = tables[name]
        if vocab_size != embeddings.vocab_sizes[name]:
            raise ValueError(
                f"field {name!r} has {vocab_size} ids in {source} and "
                f"{embeddings.vocab_sizes[name]} in the data: it was trained on other data"
            )
        if dim != embeddings.dim:
            raise ValueError(
                f"the tables of {source} have dim {dim}, but the masked model uses "
                f"max dim {embeddings.dim} (give --max-dim {dim} or leave it out)"
            )


def _trained_parts(model) -> tf.train.Checkpoint:
    """The parts of an AMTL model a full model's weights fill: not its mask networks.

    The same object paths as `CTRModel.network_weights`, without the masks.
    """
    tables = tf.train.Checkpoint(embeddings=dict(model.field_embeddings.embeddings))
    return tf.train.Checkpoint(field_embeddings=tables, **model.head.parts())


def warm_start_from_run(model, run_dir: str, source: Optional[str] = None) -> None:
    """Loads a `dimsel baseline` run's trained weights into a built AMTL model.

    Args:
        model: a built `CTRModel` with `MaskedEmbeddings`.
        run_dir: str, the baseline run directory (its `weights/model`).
        source: str or None, names the trained model in the messages (default: `run_dir`).

    Raises:
        FileNotFoundError: when the run holds no trained weights.
        ValueError: when the fields, vocabulary sizes or dim do not match.

    Examples:

        The weights of a trained model, written as `dimsel baseline` writes them:

        >>> from keras_dimsel.data import FeatureSpec, FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("user", "categorical", 79, "vocab/user.txt"),
        ...         FieldSpec("device", "categorical", 9, "vocab/device.txt"),
        ...     ),
        ...     splits={"train": 200},
        ... )
        >>> import tempfile
        >>> from keras_dimsel.amtl.embeddings import MaskedEmbeddings
        >>> from keras_dimsel.models import full_model, make_model
        >>> full = full_model("fm", spec, dim=4)
        >>> full.build_weights()
        >>> run_dir = tempfile.mkdtemp()
        >>> _ = full.network_weights().write(RunDir(run_dir).weights)
        >>> embeddings = MaskedEmbeddings({"user": 79, "device": 9}, 4, {"user": [1] * 79})
        >>> model = make_model("fm", spec, embeddings)
        >>> model.build_weights()
        >>> warm_start_from_run(model, run_dir)
        >>> def device_table(m):
        ...     return m.field_embeddings.embeddings["device"].embedding_table.numpy()
        >>> bool((device_table(model) == device_table(full)).all())
        True
    """
    source = source or run_dir
    run = RunDir(run_dir)
    if not run.has_weights():
        raise FileNotFoundError(
            f"{run_dir} holds no trained weights ({run.weights}.index not found): "
            "--warm-start takes a `dimsel baseline` run"
        )
    tables = run_tables(run_dir)
    if tables is not None:
        check_warm_start(model, tables, source)
    try:
        _trained_parts(model).read(run.weights).assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(
            f"the weights of {source} do not fit the masked model ({first_line}): "
            "it was trained on other data or fields"
        ) from None


def warm_start_from_model(model, trained) -> None:
    """Warm start from a trained full-dimension model in memory (a built `CTRModel`).

    Args:
        model: a built `CTRModel` with `MaskedEmbeddings`.
        trained: a built full-dimension `CTRModel` with the same fields and dim.

    Raises:
        ValueError: when the fields, vocabulary sizes or dim do not match.

    Examples:

        >>> from keras_dimsel.data import FeatureSpec, FieldSpec
        >>> from keras_dimsel.amtl.embeddings import MaskedEmbeddings
        >>> from keras_dimsel.models import full_model, make_model
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("user", "categorical", 79, "vocab/user.txt"),
        ...         FieldSpec("device", "categorical", 9, "vocab/device.txt"),
        ...     ),
        ...     splits={"train": 200},
        ... )
        >>> full = full_model("fm", spec, dim=4)
        >>> full.build_weights()
        >>> embeddings = MaskedEmbeddings({"user": 79, "device": 9}, 4, {"user": [1] * 79})
        >>> model = make_model("fm", spec, embeddings)
        >>> model.build_weights()
        >>> warm_start_from_model(model, full)
        >>> def user_table(m):
        ...     return m.field_embeddings.embeddings["user"].embedding_table.numpy()
        >>> bool((user_table(model) == user_table(full)).all())
        True
    """
    source = f"model {trained.name!r}"
    check_warm_start(model, trained_tables(trained), source)
    with tempfile.TemporaryDirectory() as directory:
        path = trained.network_weights().write(os.path.join(directory, "trained"))
        _trained_parts(model).read(path).assert_existing_objects_matched()
