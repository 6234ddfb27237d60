"""The compact model: the serving form of a trained AMTL model."""

from __future__ import annotations

from keras_dimsel.models import CTRModel
from keras_dimsel.models.embeddings import CompactEmbeddings


def compact_model(model) -> tuple:
    """The serving model of a trained AMTL model: each masked row keeps its length.

    Args:
        model: a built `CTRModel` with `MaskedEmbeddings`.

    Returns:
        `(compact, lengths)`: the compact model, with every weight copied, and
        the length of every id of each masked field.

    Examples:

        >>> from keras_dimsel.data import FeatureSpec, FieldSpec
        >>> from keras_dimsel.amtl.embeddings import MaskedEmbeddings
        >>> from keras_dimsel.models import make_model
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("user", "categorical", 79, "vocab/user.txt"),
        ...         FieldSpec("device", "categorical", 9, "vocab/device.txt"),
        ...     ),
        ...     splits={"train": 200},
        ... )
        >>> embeddings = MaskedEmbeddings({"user": 79, "device": 9}, 8, {"user": [1] * 79})
        >>> model = make_model("fm", spec, embeddings)
        >>> model.build_weights()
        >>> compact, lengths = compact_model(model)
        >>> lengths["user"].shape  # one length in [1, 8] per id of `user`
        (79,)
        >>> compact.embedding_params == int(lengths["user"].sum()) + 9 * 8
        True
        >>> import numpy as np
        >>> import tensorflow as tf
        >>> ids = {"user": tf.range(79), "device": tf.range(79) % 9}
        >>> def logits(m):
        ...     vectors, rows = m.field_embeddings(ids, return_rows=True)
        ...     return m.head(ids, vectors, rows)
        >>> np.allclose(logits(compact), logits(model))
        True
    """
    embeddings = model.field_embeddings
    lengths = embeddings.value_lengths_now()
    compact_embeddings = CompactEmbeddings(
        embeddings.vocab_sizes,
        embeddings.dim,
        lengths,
    )
    head = type(model.head).from_config(model.head.get_config())
    # The lookup is shared: it has no weights, and its tables are built once.
    compact = CTRModel(model.lookup, compact_embeddings, head)
    compact.build_weights()
    for source, target in zip(model.head.variables, compact.head.variables):
        target.assign(source)
    for name, layer in embeddings.embeddings.items():
        table = layer.embedding_table.numpy()
        if name in lengths:
            compact_embeddings.embeddings[name].assign_table(table)
        else:
            compact_embeddings.embeddings[name].embedding_table.assign(table)
    return compact, lengths
