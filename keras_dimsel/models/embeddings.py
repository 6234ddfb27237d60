"""Field embeddings: one embedding layer per feature field, in one of several forms.

A `CTRModel` reads its fields through one `FieldEmbeddings` layer; the
methods differ only in which one it holds:

- `FullEmbeddings`: every field at one dimension (the full-dimension baseline);
- `PlannedEmbeddings`: the dimension a `DimensionPlan` chose per field (the
  retrain after an AutoDim search), a physically smaller table per field;
- `CompactEmbeddings`: the serving form of an AMTL model, in which the
  masked fields keep only each value's learnt length;
- `keras_dimsel.autodim.SearchEmbeddings`: AutoDim's supernet;
- `keras_dimsel.amtl.MaskedEmbeddings`: AMTL's value-level masks.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from keras_dimsel.layers._utils import as_int_array, scope_name
from keras_dimsel.layers.compact_embedding import CompactMaskedEmbedding
from keras_dimsel.layers.planned_embedding import PlannedEmbedding


class FieldEmbeddings(tf.keras.layers.Layer):
    """Base of the field embeddings: a dict `embeddings` of one layer per field.

    Subclasses fill `self.embeddings` (field name to layer, in model input
    order) in `__init__` and say at which dimension each field comes out.

    Args:
        vocab_sizes: dict of str to int, ids per field (OOV included), in
            model input order.
        **kwargs: base `Layer` arguments.

    Input shape:
        A dict `{field: int ids of shape [batch]}`.

    Output shape:
        A list of `[batch, d_field]` tensors in field order; with
        `return_rows=True` a pair of such lists (see `call`).

    Examples:

        Hashed embeddings of one's own, every field in 16 rows of dimension 4:

        >>> class Hashed(FieldEmbeddings):
        ...     def __init__(self, vocab_sizes, **kwargs):
        ...         super().__init__(vocab_sizes, **kwargs)
        ...         for name in self.vocab_sizes:
        ...             self.embeddings[name] = HashedTable(name=f"hashed_{name}")
        ...     @property
        ...     def output_dims(self):
        ...         return {name: 4 for name in self.vocab_sizes}
        >>> class HashedTable(tf.keras.layers.Layer):
        ...     embedding_params = 16 * 4
        ...     def build(self, input_shape):
        ...         self.table = self.add_weight(name="table", shape=(16, 4))
        ...     def call(self, ids):
        ...         return tf.gather(self.table, ids % 16)
        >>> embeddings = Hashed({"user": 1000, "genre": 20})
        >>> ids = {"user": tf.constant([999]), "genre": tf.constant([3])}
        >>> [v.shape.as_list() for v in embeddings(ids)]
        [[1, 4], [1, 4]]
        >>> embeddings.embedding_params
        128
    """

    def __init__(self, vocab_sizes: dict, **kwargs):
        super().__init__(**kwargs)
        self.vocab_sizes = {str(name): int(size) for name, size in vocab_sizes.items()}
        self.embeddings = {}

    @property
    def field_names(self) -> list:
        return list(self.vocab_sizes)

    @property
    def output_dims(self) -> dict:
        """The dimension each field comes out at."""
        raise NotImplementedError

    @property
    def embedding_params(self) -> int:
        """Numbers held by the embedding tables (not the unify maps)."""
        return sum(int(layer.embedding_params) for layer in self.embeddings.values())

    def call(self, ids: dict, training=None, return_rows: bool = False):
        """Embeds every field.

        Returns the list of field vectors. With `return_rows=True` returns
        `(vectors, rows)`: `rows` are the same fields before any unify step
        (what an MLP over their concatenation reads); here they are the vectors.
        """
        outputs = [self.embeddings[name](ids[name]) for name in self.vocab_sizes]
        return (outputs, outputs) if return_rows else outputs

    def get_config(self) -> dict:
        config = super().get_config()
        config["vocab_sizes"] = dict(self.vocab_sizes)
        return config


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class FullEmbeddings(FieldEmbeddings):
    """Every field at the same dimension: the full-dimension model.

    Args:
        vocab_sizes: dict of str to int, ids per field, in model input order.
        dim: int, the dimension of every field.
        **kwargs: base `Layer` arguments.

    Examples:

        >>> embeddings = FullEmbeddings({"user": 10, "genre": 3}, dim=4)
        >>> [v.shape.as_list() for v in embeddings({"user": [1, 2], "genre": [0, 2]})]
        [[2, 4], [2, 4]]
        >>> embeddings.embedding_params  # (10 + 3) ids * 4
        52
    """

    def __init__(self, vocab_sizes: dict, dim: int = 32, **kwargs):
        super().__init__(vocab_sizes, **kwargs)
        self.dim = int(dim)
        for name, vocab_size in self.vocab_sizes.items():
            self.embeddings[name] = PlannedEmbedding(
                vocab_size, self.dim, name=f"embedding_{scope_name(name)}"
            )

    @property
    def output_dims(self) -> dict:
        return {name: self.dim for name in self.vocab_sizes}

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim}


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class PlannedEmbeddings(FieldEmbeddings):
    """The retrain stage of AutoDim: one table [vocab, chosen dim] per field.

    Each field is a `PlannedEmbedding` of the dimension a plan chose (a
    physically smaller table), unified to `output_dim` only when the model
    needs equal dimensions (FM and DeepFM interactions).

    Args:
        vocab_sizes: dict of str to int, ids per field, in model input order.
        dims: dict of str to int, the chosen dimension per field.
        output_dim: int or None, the common dimension the fields are unified
            to (d_N), or None for models that read each field at its own.
        unify: str, `"linear"` or `"zero_pad"` (see `PlannedEmbedding`).
        **kwargs: base `Layer` arguments.

    Raises:
        ValueError: when `dims` lacks a field of `vocab_sizes`.

    Examples:

        >>> embeddings = PlannedEmbeddings({"user": 10, "genre": 3}, {"user": 4, "genre": 2}, 4)
        >>> vectors, rows = embeddings({"user": [1], "genre": [2]}, return_rows=True)
        >>> [v.shape.as_list() for v in vectors], [r.shape.as_list() for r in rows]
        ([[1, 4], [1, 4]], [[1, 4], [1, 2]])
        >>> embeddings.embedding_params  # 10 * 4 + 3 * 2
        46
    """

    def __init__(
        self,
        vocab_sizes: dict,
        dims: dict,
        output_dim: Optional[int] = None,
        unify: str = "linear",
        **kwargs,
    ):
        super().__init__(vocab_sizes, **kwargs)
        missing = [name for name in self.vocab_sizes if name not in dims]
        if missing:
            raise ValueError(f"The plan has no dimension for field(s) {missing}.")
        self.dims = {name: int(dims[name]) for name in self.vocab_sizes}
        self.output_dim = None if output_dim is None else int(output_dim)
        self.unify = unify
        for name, vocab_size in self.vocab_sizes.items():
            self.embeddings[name] = PlannedEmbedding(
                vocab_size,
                self.dims[name],
                output_dim=self.output_dim,
                unify=unify,
                name=f"embedding_{scope_name(name)}",
            )

    @property
    def output_dims(self) -> dict:
        if self.output_dim is not None:
            return {name: self.output_dim for name in self.vocab_sizes}
        return dict(self.dims)

    def call(self, ids: dict, training=None, return_rows: bool = False):
        """Embeds every field; the rows are each field at its planned dimension.

        An MLP over the concatenation reads the rows: the linear unify would
        add only a linear map before its first layer, and the zero padding
        only zeros.
        """
        outputs, rows = [], []
        for name in self.vocab_sizes:
            embedded, row = self.embeddings[name](ids[name], return_rows=True)
            outputs.append(embedded)
            rows.append(row)
        return (outputs, rows) if return_rows else outputs

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"dims": dict(self.dims), "output_dim": self.output_dim, "unify": self.unify})
        return config


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class CompactEmbeddings(FieldEmbeddings):
    """The serving form of an AMTL model: masked fields keep each row's chosen length.

    Args:
        vocab_sizes: dict of str to int, ids per field, in model input order.
        dim: int, D, the dimension of every field (and the longest row).
        value_lengths: dict of str to a list or array of int, the kept
            length of every id of each masked field (`CompactMaskedEmbedding`),
            kept as int64 arrays; the other fields are plain tables at `dim`.
        **kwargs: base `Layer` arguments.

    Raises:
        ValueError: when `value_lengths` names an unknown field or has the
            wrong number of entries.

    Examples:

        >>> embeddings = CompactEmbeddings({"user": 3, "genre": 2}, 4, {"user": [1, 4, 2]})
        >>> [v.shape.as_list() for v in embeddings({"user": [0, 1], "genre": [1, 1]})]
        [[2, 4], [2, 4]]
        >>> embeddings.embedding_params  # 1 + 4 + 2 for user, 2 * 4 for genre
        15
    """

    def __init__(self, vocab_sizes: dict, dim: int, value_lengths: dict, **kwargs):
        super().__init__(vocab_sizes, **kwargs)
        check_value_lists(value_lengths, self.vocab_sizes, "value_lengths")
        self.dim = int(dim)
        self.value_lengths = {k: as_int_array(v) for k, v in value_lengths.items()}
        for name, vocab_size in self.vocab_sizes.items():
            if name in self.value_lengths:
                self.embeddings[name] = CompactMaskedEmbedding(
                    self.value_lengths[name], self.dim, name=f"compact_{scope_name(name)}"
                )
            else:
                self.embeddings[name] = PlannedEmbedding(
                    vocab_size, self.dim, name=f"embedding_{scope_name(name)}"
                )

    @property
    def masked_fields(self) -> list:
        return list(self.value_lengths)

    @property
    def output_dims(self) -> dict:
        return {name: self.dim for name in self.vocab_sizes}

    def get_config(self) -> dict:
        value_lengths = {name: values.tolist() for name, values in self.value_lengths.items()}
        return {**super().get_config(), "dim": self.dim, "value_lengths": value_lengths}


def check_value_lists(values: dict, vocab_sizes: dict, argument: str) -> None:
    """Checks a dict of per-id lists: known fields, one entry per id, not empty.

    Args:
        values: dict of field to a sequence with one entry per id.
        vocab_sizes: dict of field to its number of ids.
        argument: str, the argument's name in the messages.

    Raises:
        ValueError: naming the argument and what is wrong.

    Examples:

        >>> check_value_lists({"user": [1, 2]}, {"user": 3}, "value_lengths")
        Traceback (most recent call last):
        ...
        ValueError: `value_lengths` of field 'user' has 2 entries for 3 ids.
    """
    if not values:
        raise ValueError(f"`{argument}` must name at least one field.")
    unknown = [name for name in values if name not in vocab_sizes]
    if unknown:
        raise ValueError(
            f"`{argument}` names field(s) {unknown} that are not among the fields "
            f"{list(vocab_sizes)}."
        )
    for name, entries in values.items():
        if len(entries) != vocab_sizes[name]:
            raise ValueError(
                f"`{argument}` of field {name!r} has {len(entries)} entries for "
                f"{vocab_sizes[name]} ids."
            )
