"""`MaskedEmbeddings`: AMTL's value-level dimensions, a mask network per chosen field."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.layers._utils import as_int_array, scope_name
from keras_dimsel.layers.adaptive_mask import AdaptiveMaskTwinsLayer
from keras_dimsel.layers.frequency_features import FrequencyFeatures
from keras_dimsel.layers.planned_embedding import PlannedEmbedding
from keras_dimsel.models import CTRModel, make_model, vocab_sizes
from keras_dimsel.models.embeddings import FieldEmbeddings, check_value_lists


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class MaskedEmbeddings(FieldEmbeddings):
    """Every field at one dimension D; the chosen fields masked value by value.

    Each masked field's table row is multiplied by the prefix mask an
    `AdaptiveMaskTwinsLayer` computes from the `FrequencyFeatures` of its id,
    so every value keeps its own length.

    Args:
        vocab_sizes: dict of str to int, ids per field, in model input order.
        dim: int, D, the dimension of every field.
        value_counts: dict of str to a list or array of int, the train count
            of every id of each masked field (`FeatureSpec.value_counts`); its
            keys are the masked fields. The layer keeps them as int64 arrays.
        mask_options: dict, `AdaptiveMaskTwinsLayer` arguments (hidden_units,
            temperature, straight_through, twins, initial_length) for every
            masked field.
        length_penalty: float >= 0, lambda of the memory term. In training it
            adds, per masked field,

                lambda * mean_f (k_f + 1) / D,   f over the field's ids (see penalty_sample)

            to the loss: the average length over the field's values, each
            value counted once whatever its frequency, which is what the
            compact table stores. 0 is the paper's objective (no memory term).
        penalty_sample: int, the ids that average is taken over: evenly spaced
            over the vocabulary, which is sorted by frequency, so every
            frequency range is represented and no random state is involved.
        **kwargs: base `Layer` arguments.

    Raises:
        ValueError: when `value_counts` names unknown fields or has the wrong
            length, or `length_penalty` is negative.

    Examples:

        >>> embeddings = MaskedEmbeddings({"user": 4, "genre": 3}, 8, {"user": [0, 9, 3, 1]})
        >>> [v.shape.as_list() for v in embeddings({"user": [1, 2], "genre": [0, 2]})]
        [[2, 8], [2, 8]]
        >>> embeddings.value_lengths_now()["user"].shape  # one length in [1, 8] per id
        (4,)
    """

    def __init__(
        self,
        vocab_sizes: dict,
        dim: int,
        value_counts: dict,
        mask_options: Optional[dict] = None,
        length_penalty: float = 0.0,
        penalty_sample: int = 1024,
        **kwargs,
    ):
        super().__init__(vocab_sizes, **kwargs)
        check_value_lists(value_counts, self.vocab_sizes, "value_counts")
        if not (isinstance(length_penalty, (int, float)) and 0 <= length_penalty < float("inf")):
            raise ValueError(
                "`length_penalty` must be a number >= 0. "
                f"Received: length_penalty={length_penalty!r}"
            )
        self.dim = int(dim)
        self.value_counts = {k: as_int_array(v) for k, v in value_counts.items()}
        self.mask_options = dict(mask_options or {})
        self.length_penalty = float(length_penalty)
        self.penalty_sample = int(penalty_sample)
        self.frequencies = {}
        self.masks = {}
        for name, vocab_size in self.vocab_sizes.items():
            self.embeddings[name] = PlannedEmbedding(
                vocab_size, self.dim, name=f"embedding_{scope_name(name)}"
            )
            if name in self.value_counts:
                self.frequencies[name] = FrequencyFeatures(
                    self.value_counts[name], name=f"frequency_{scope_name(name)}"
                )
                self.masks[name] = AdaptiveMaskTwinsLayer(
                    self.dim, name=f"amtl_{scope_name(name)}", **self.mask_options
                )

    @property
    def masked_fields(self) -> list:
        return list(self.value_counts)

    @property
    def output_dims(self) -> dict:
        return {name: self.dim for name in self.vocab_sizes}

    def value_lengths_now(self) -> dict:
        """Per masked field, the length each id gets now: `[V]` int arrays."""
        lengths = {}
        for name, mask in self.masks.items():
            # The mask runs once per distinct frequency row, not once per id.
            rows, index = self.frequencies[name].distinct_features()
            lengths[name] = mask.lengths(rows).numpy().astype(np.int64)[index]
        return lengths

    def log_lengths(self, step: int) -> None:
        """TensorBoard summaries of the lengths now, at `step` (inside a writer's
        `as_default()`): the mean length of each masked field's ids and their histogram."""
        for name, lengths in self.value_lengths_now().items():
            tf.summary.scalar(f"mean_length/{name}", float(lengths.mean()), step=step)
            tf.summary.histogram(f"lengths/{name}", lengths, step=step, buckets=self.dim)

    def call(self, ids: dict, training=None, return_rows: bool = False):
        outputs = []
        for name in self.vocab_sizes:
            embedded = self.embeddings[name](ids[name])
            if name in self.masks:
                features = self.frequencies[name](ids[name])
                embedded = self.masks[name]([embedded, features], training=training)
                if self.length_penalty > 0 and isinstance(training, bool) and training:
                    self.add_loss(self._length_cost(name))
            outputs.append(embedded)
        return (outputs, outputs) if return_rows else outputs

    def _length_cost(self, name: str) -> tf.Tensor:
        """lambda * the average length / D over evenly spaced ids of a masked field."""
        frequencies = self.frequencies[name]
        size = min(self.penalty_sample, frequencies.vocab_size)
        # Deterministic, unlike a random draw a checkpoint could not restore.
        ids = np.round(np.linspace(0, frequencies.vocab_size - 1, size)).astype(np.int64)
        lengths = self.masks[name].soft_lengths(frequencies(ids))
        return self.length_penalty * tf.reduce_mean(lengths) / self.dim

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "dim": self.dim,
                "value_counts": {name: c.tolist() for name, c in self.value_counts.items()},
                "mask_options": _plain(self.mask_options) or None,
                "length_penalty": self.length_penalty,
                "penalty_sample": self.penalty_sample,
            }
        )
        return config


def _plain(value):
    """Keras's tracked containers as the dicts and lists a config holds."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value


def masked_model(
    name: str,
    spec: FeatureSpec,
    fields: Sequence[str],
    dim: int,
    mask_options: Optional[dict] = None,
    length_penalty: float = 0.0,
) -> CTRModel:
    """A ranker over every field of `spec` at `dim`, with `fields` masked value by value.

    Args:
        name: str, `fm`, `wide_deep` or `deepfm`.
        spec: FeatureSpec, the artifact (its vocabulary files give the counts).
        fields: sequence of str, the masked fields.
        dim: int, D.
        mask_options: dict or None, `AdaptiveMaskTwinsLayer` arguments.
        length_penalty: float, see `MaskedEmbeddings`.

    Returns:
        The unbuilt model.

    Raises:
        ValueError: when a field is not in the artifact.

    Examples:

        A spec whose vocabulary files hold the train counts the masks read:

        >>> import os, tempfile
        >>> from keras_dimsel.data import FeatureSpec, FieldSpec
        >>> directory = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(directory, "vocab"))
        >>> with open(os.path.join(directory, "vocab", "user.txt"), "w") as f:
        ...     _ = f.write("9 u1\\n4 u2\\n1 u3\\n")
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(FieldSpec("user", "categorical", 4, "vocab/user.txt"),),
        ...     splits={"train": 14},
        ...     directory=directory,
        ... )
        >>> model = masked_model("fm", spec, ["user"], dim=8)
        >>> model.field_embeddings.value_counts['user'].tolist()
        [0, 9, 4, 1]
    """
    sizes = vocab_sizes(spec)
    unknown = [field for field in fields if field not in sizes]
    if unknown:
        raise ValueError(f"amtl field(s) {unknown} are not among the fields {list(sizes)}")
    # Arrays: Keras checks every item of a list given to a layer's constructor.
    counts = {field: spec.value_count_array(field) for field in fields}
    embeddings = MaskedEmbeddings(sizes, dim, counts, mask_options, length_penalty)
    return make_model(name, spec, embeddings)


def freeze_all_but_masks(model: CTRModel) -> None:
    """Leaves only the AMTL mask networks trainable (tables and network frozen).

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
        >>> model = make_model("fm", spec, MaskedEmbeddings({"user": 79, "device": 9}, 4,
        ...                                                 {"user": [1] * 79}))
        >>> model.build_weights()
        >>> freeze_all_but_masks(model)
        >>> masks = model.field_embeddings.masks["user"].trainable_variables
        >>> {v.ref() for v in model.trainable_variables} == {v.ref() for v in masks}
        True
    """
    for layer in model.layers:
        if layer is not model.field_embeddings:
            layer.trainable = False
    for layer in model.field_embeddings.embeddings.values():
        layer.trainable = False
