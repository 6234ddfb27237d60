"""`CTRModel`: the shared body of the FM, Wide&Deep and DeepFM rankers.

A TFRS model over raw features: `FeatureLookup` turns raw values into ids,
`FieldEmbeddings` embeds every field for the stage at hand (search supernet,
planned retrain, or full dimension), and a subclass turns the field vectors
into a click logit. The task is `tfrs.tasks.Ranking` with binary cross-entropy,
reporting AUC and logloss.
"""

from __future__ import annotations

import collections.abc
from typing import Optional, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.lookup import FeatureLookup
from keras_dimsel.models.dropout import CheckpointedDropout
from keras_dimsel.models.field_embeddings import FieldEmbeddings


def ranking_task() -> tfrs.tasks.Ranking:
    """Binary cross-entropy on click probabilities, with AUC and logloss metrics."""
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(),
        metrics=[
            tf.keras.metrics.AUC(name="auc", num_thresholds=2000),
            tf.keras.metrics.BinaryCrossentropy(name="logloss"),
        ],
    )


def mlp(hidden_units: Sequence[int], dropout: float, name: str) -> tf.keras.Sequential:
    """The papers' tower: Dense, BatchNorm, ReLU, Dropout per layer, then one logit."""
    layers = []
    for units in hidden_units:
        layers += [
            tf.keras.layers.Dense(units, use_bias=False),
            tf.keras.layers.BatchNormalization(),
            tf.keras.layers.ReLU(),
            CheckpointedDropout(dropout),
        ]
    layers.append(tf.keras.layers.Dense(1))
    return tf.keras.Sequential(layers, name=name)


def pairwise_interaction(vectors: Sequence[tf.Tensor]) -> tf.Tensor:
    """FM's second-order term, sum_{i<j} <v_i, v_j>, in O(M * d): [batch]."""
    stacked = tf.stack(vectors, axis=1)
    square_of_sum = tf.square(tf.reduce_sum(stacked, axis=1))
    sum_of_squares = tf.reduce_sum(tf.square(stacked), axis=1)
    return 0.5 * tf.reduce_sum(square_of_sum - sum_of_squares, axis=1)


class LogitBias(tf.keras.layers.Layer):
    """Adds one learned scalar to the logits (a layer, so it can be frozen like the rest)."""

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")
        super().build(input_shape)

    def call(self, logits: tf.Tensor) -> tf.Tensor:
        return logits + self.bias


def value_counts(spec: FeatureSpec, name: str) -> list:
    """The train count of every id of a field: 0 for the OOV id 0 (unseen values
    get zero-count features), then the vocabulary counts in id order."""
    _, counts = spec.vocabulary(name)
    return [0] + [int(c) for c in counts]


class CTRModel(tfrs.models.Model):
    """Base of the click-through rankers; subclasses implement `logit`.

    Args:
        spec: FeatureSpec, the artifact the lookup layers are built from.
        stage: str, `"search"`, `"plan"`, `"full"`, `"amtl"` or `"compact"`
            (see `FieldEmbeddings`).
        fields: list of str or None, the fields to use (default: all).
        candidates: tuple of int, candidate dimensions (search, and d_N for plan).
        storage: str, `"shared"` or `"separate"` (search).
        unify: str, `"linear"` or `"zero_pad"` (search and plan).
        plan_dims: dict, chosen dimension per field (plan).
        dim: int, dimension of every field (full).
        hidden_units: tuple of int, MLP layers (deep models).
        dropout: float, MLP dropout rate.
        rank_scaling: bool, equal variance per direction for linear candidates
            (search; see `CandidateEmbedding`).
        hard: bool, straight-through selection during search.
        seed: int or None, the Gumbel noise seed.
        amtl_fields: list of str, the fields masked value by value (amtl);
            their train counts come from the artifact's vocabulary files.
        amtl_options: dict, `AdaptiveMaskTwinsLayer` arguments (amtl).
        value_lengths: dict of str to list of int, the kept length of every
            id of each masked field (compact).
        length_penalty: float, the memory term of the masks (amtl; see
            `FieldEmbeddings`).

    Raises:
        ValueError: when `amtl_fields` names a field the model does not use,
            or the stage arguments do not fit (see `FieldEmbeddings`).

    Examples:

        A subclass only writes the logit; lookup, embeddings, task and metrics
        are shared. Logistic regression on the first-order weights:

        >>> import tempfile
        >>> from keras_dimsel.data import make_dataset, make_reader
        >>> from keras_dimsel.preprocessing.pipeline import PreprocessConfig, run
        >>> directory = tempfile.mkdtemp()
        >>> reader = make_reader("synthetic", output_dir=directory, rows=200)
        >>> spec = run(reader, PreprocessConfig(output_dir=directory))
        >>> class FirstOrder(CTRModel):
        ...     def logit(self, ids, vectors, rows, training=None):
        ...         return self.linear_logit(ids)
        >>> model = FirstOrder(spec, fields=["user", "item", "device"], dim=4)
        >>> model.embedding_params  # (79 + 71 + 9) ids * 4
        636
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
        >>> history = model.fit(make_dataset(spec, "train", batch_size=64), epochs=1, verbose=0)
        >>> sorted(history.history)
        ['auc', 'logloss', 'loss', 'regularization_loss', 'total_loss']
    """

    #: whether the interaction needs every field at the same dimension
    equal_dims = True

    def __init__(
        self,
        spec: FeatureSpec,
        stage: str = "full",
        fields: Optional[Sequence[str]] = None,
        candidates: Sequence[int] = (2, 8, 16, 24, 32),
        storage: str = "shared",
        unify: str = "linear",
        plan_dims: Optional[dict] = None,
        dim: int = 32,
        hidden_units: Sequence[int] = (128, 128),
        dropout: float = 0.2,
        rank_scaling: bool = True,
        hard: bool = False,
        seed: Optional[int] = None,
        amtl_fields: Optional[Sequence[str]] = None,
        amtl_options: Optional[dict] = None,
        value_lengths: Optional[dict] = None,
        length_penalty: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.spec = spec
        self.stage = stage
        self.field_names = list(fields) if fields is not None else spec.field_names
        self.lookup = FeatureLookup(spec, self.field_names)
        vocab_sizes = {name: spec.field(name).vocab_size for name in self.field_names}
        self.amtl_fields = list(amtl_fields or [])
        unknown = [name for name in self.amtl_fields if name not in self.field_names]
        if unknown:
            raise ValueError(f"amtl field(s) {unknown} are not among the fields {self.field_names}")
        self.field_embeddings = FieldEmbeddings(
            vocab_sizes,
            stage=stage,
            candidates=candidates,
            storage=storage,
            unify=unify,
            plan_dims=plan_dims,
            dim=dim,
            equal_dims=self.equal_dims,
            rank_scaling=rank_scaling,
            hard=hard,
            seed=seed,
            value_counts={name: value_counts(spec, name) for name in self.amtl_fields},
            amtl_options=amtl_options,
            value_lengths=value_lengths,
            length_penalty=length_penalty,
        )
        self.first_order = {
            name: tf.keras.layers.Embedding(
                size, 1, embeddings_initializer="zeros", name=f"linear_{name}"
            )
            for name, size in vocab_sizes.items()
        }
        self.hidden_units = tuple(hidden_units)
        self.dropout = dropout
        self.task = ranking_task()

    def network_weights(self) -> tf.train.Checkpoint:
        """The model's weights as a checkpoint object, without optimizer or metrics.

        Its keys are the model's attribute paths (`field_embeddings/...`,
        `first_order/<field>`, `bias`, `deep`, ...), the same in every stage,
        so weights written from one stage load into another: a full model's
        into an AMTL model (warm start), an AMTL model's into its compact form.

        Returns:
            A `tf.train.Checkpoint`; `write(path)` saves it, `read(path)` restores it.
        """
        parts = {}
        for attribute, value in vars(self).items():
            if attribute.startswith("_") or attribute in ("task", "lookup"):
                continue
            # Keras wraps dict attributes in a proxy that `typing.Mapping` does not
            # recognise; `collections.abc.Mapping` does.
            if isinstance(value, tf.keras.layers.Layer) or (
                isinstance(value, collections.abc.Mapping)
                and value
                and all(isinstance(v, tf.keras.layers.Layer) for v in value.values())
            ):
                parts[attribute] = value
        return tf.train.Checkpoint(**parts)

    def make_train_function(self, force: bool = False):
        """Creates the optimizer's slots eagerly, then Keras's train function.

        A `tf.function` whose first trace creates variables (the optimizer's
        slots, on the first `apply_gradients`) is traced a second time before
        it runs; creating them first for the variables the step updates (the
        trainable ones) spares that second trace. `build` does nothing on an
        optimizer already built, such as a search model's network optimizer;
        legacy optimizers (no `build`) create their slots in the trace.
        """
        if self.built and hasattr(self.optimizer, "build"):
            self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force)

    def freeze_all_but_masks(self) -> None:
        """Leaves only the AMTL mask networks trainable (tables and network frozen)."""
        for layer in self._flatten_layers(include_self=False, recursive=False):
            if layer is not self.field_embeddings:
                layer.trainable = False
        for layer in self.field_embeddings.embeddings.values():
            layer.trainable = False

    def linear_logit(self, ids: dict) -> tf.Tensor:
        """The first-order (wide) term: one learned weight per field value, summed.

        Args:
            ids: dict of field to `[batch]` ids.

        Returns:
            A `[batch]` tensor.
        """
        terms = [tf.reshape(self.first_order[n](ids[n]), [-1]) for n in self.field_names]
        return tf.add_n(terms)

    def logit(self, ids: dict, vectors: list, rows: list, training=None) -> tf.Tensor:
        """The click logit, shape [batch].

        Args:
            ids: dict of field to [batch] ids (for the first-order term).
            vectors: list of [batch, d] field vectors at the common dimension
                where the model needs equal dimensions (interactions).
            rows: list of field vectors at each field's own dimension, for
                layers over the concatenation (an MLP). The same as `vectors`
                except in the plan stage.
            training: bool or None.

        Returns:
            A `[batch]` tensor of logits (the model applies the sigmoid).
        """
        raise NotImplementedError

    def call(self, features: dict, training=None) -> tf.Tensor:
        """Raw features to click probabilities, shape [batch]."""
        ids = self.lookup({name: features[name] for name in self.field_names})
        ids = {name: tf.reshape(value, [-1]) for name, value in ids.items()}
        vectors, rows = self.field_embeddings(ids, training=training, return_rows=True)
        return tf.sigmoid(self.logit(ids, vectors, rows, training=training))

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs[0], inputs[1]
        predictions = self(features, training=training)
        return self.task(labels=tf.reshape(labels, [-1]), predictions=predictions)

    def get_config(self) -> dict:
        """The constructor arguments; the spec is named by its artifact directory."""
        embeddings = self.field_embeddings
        return {
            "name": self.name,
            "spec": self.spec.directory,
            "stage": self.stage,
            "fields": list(self.field_names),
            "candidates": list(embeddings.candidates),
            "storage": embeddings.storage,
            "unify": embeddings.unify,
            "plan_dims": dict(embeddings.plan_dims) or None,
            "dim": embeddings.dim,
            "hidden_units": list(self.hidden_units),
            "dropout": self.dropout,
            "rank_scaling": embeddings.rank_scaling,
            "hard": embeddings.hard,
            "seed": embeddings.seed,
            "amtl_fields": list(self.amtl_fields) or None,
            "amtl_options": dict(embeddings.amtl_options) or None,
            "value_lengths": dict(embeddings.value_lengths) or None,
            "length_penalty": embeddings.length_penalty,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> CTRModel:
        """Rebuilds the model from `get_config()`, reading the spec from its directory.

        Args:
            config: dict, the output of `get_config()`.
            custom_objects: unused, for Keras' signature.

        Returns:
            A new, unbuilt model of the same class and stage.
        """
        config = dict(config)
        return cls(FeatureSpec.load(config.pop("spec")), **config)

    @property
    def embedding_params(self) -> int:
        """Numbers in the field embedding tables (first-order weights not included)."""
        return self.field_embeddings.embedding_params
