"""`CTRModel`: a click-through ranker composed of a lookup, field embeddings and a head.

The shape of TFRS's `Ranking` models: `FeatureLookup` turns raw features into
ids, a `FieldEmbeddings` layer embeds every field (full, planned, compact, a
search supernet or AMTL masks), and a head (FM, Wide & Deep, DeepFM) turns the
field vectors into a click logit. The task is `tfrs.tasks.Ranking` with binary
cross-entropy, reporting AUC and logloss.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from keras_dimsel.data.feature_spec import FeatureSpec
from keras_dimsel.data.lookup import FeatureLookup
from keras_dimsel.models.embeddings import FieldEmbeddings
from keras_dimsel.models.heads import Head


def ranking_task() -> tfrs.tasks.Ranking:
    """Binary cross-entropy on click probabilities, with AUC and logloss metrics.

    The loss of `[batch]` labels is already the batch's mean (Keras averages
    over the last axis), so it is asked for without a further reduction: the
    same number, and one that Keras accepts under a `tf.distribute` strategy
    (it refuses the default reduction outside `compile`).
    """
    return tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(reduction=tf.keras.losses.Reduction.NONE),
        metrics=[
            tf.keras.metrics.AUC(name="auc", num_thresholds=2000),
            tf.keras.metrics.BinaryCrossentropy(name="logloss"),
        ],
    )


def example_features(spec: FeatureSpec, fields) -> dict:
    """One missing value per field, typed as the model takes them: builds a model without data.

    Args:
        spec: FeatureSpec, the artifact (the kind of each field).
        fields: sequence of str, the model's fields.

    Returns:
        dict of field to a `[1]` tensor: `""` for categorical fields, NaN for numeric ones.

    Examples:

        >>> from keras_dimsel.data import FieldSpec
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=(
        ...         FieldSpec("site", "categorical", 3, "vocab/site.txt"),
        ...         FieldSpec("price", "numeric", 5, "vocab/price.txt", transform="log_square"),
        ...     ),
        ...     splits={"train": 100},
        ... )
        >>> features = example_features(spec, ["site", "price"])
        >>> {name: value.dtype.name for name, value in features.items()}
        {'site': 'string', 'price': 'float32'}
    """
    features = {}
    for name in fields:
        if spec.field(name).kind == "categorical":
            features[name] = tf.constant([""])
        else:
            features[name] = tf.constant([float("nan")], tf.float32)
    return features


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class CTRModel(tfrs.models.Model):
    """A click-through ranker: raw features to click probabilities.

    Args:
        lookup: FeatureLookup, raw values to ids for the model's fields.
        embeddings: FieldEmbeddings, one embedding per field, over the same fields.
        head: Head, field ids and vectors to the click logit.
        **kwargs: base `Model` arguments (name).

    Raises:
        ValueError: when the lookup, embeddings and head do not cover the same fields.

    Examples:

        A DeepFM at dimension 4 over three fields of an in-memory artifact:

        >>> from keras_dimsel.data import FieldSpec
        >>> from keras_dimsel.models.embeddings import FullEmbeddings
        >>> from keras_dimsel.models.heads import DeepFMHead
        >>> spec = FeatureSpec(
        ...     label="label",
        ...     fields=tuple(
        ...         FieldSpec(name, "categorical", size, f"vocab/{name}.txt")
        ...         for name, size in {"user": 79, "item": 71, "device": 9}.items()
        ...     ),
        ...     splits={"train": 200},
        ... )
        >>> vocab_sizes = {f.name: f.vocab_size for f in spec.fields}
        >>> model = CTRModel(
        ...     FeatureLookup(spec),
        ...     FullEmbeddings(vocab_sizes, dim=4),
        ...     DeepFMHead(vocab_sizes, hidden_units=(8,)),
        ... )
        >>> model.build_weights()
        >>> model.embedding_params  # (79 + 71 + 9) ids * 4
        636
        >>> model.head.deep.layers[0].kernel.shape  # 3 fields * dim 4 into 8 units
        TensorShape([12, 8])
    """

    def __init__(self, lookup: FeatureLookup, embeddings: FieldEmbeddings, head: Head, **kwargs):
        super().__init__(**kwargs)
        for part, names in (("embeddings", embeddings.field_names), ("head", head.vocab_sizes)):
            if list(names) != list(lookup.fields):
                raise ValueError(
                    f"The {part} cover the fields {list(names)}, the lookup {lookup.fields}."
                )
        self.lookup = lookup
        self.field_embeddings = embeddings
        self.head = head
        self.task = ranking_task()
        # The epoch's mean of the minimised loss: TFRS's step reports the last batch's.
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")

    @property
    def spec(self) -> FeatureSpec:
        return self.lookup.spec

    @property
    def field_names(self) -> list:
        return list(self.lookup.fields)

    @property
    def embedding_params(self) -> int:
        """Numbers in the field embedding tables (first-order weights not included)."""
        return self.field_embeddings.embedding_params

    def build_weights(self) -> None:
        """Creates every weight from the fields alone: no data is read, no lookup is made.

        The embeddings and the head are called once on id 0 of every field,
        in the order a call of the model builds them, so the weights are
        those a first call would create. The lookup has no weights; without
        its vocabularies (a model rebuilt from its config before its assets
        are loaded) it could not be called yet.
        """
        ids = {name: tf.zeros([1], tf.int64) for name in self.field_names}
        vectors, rows = self.field_embeddings(ids, training=False, return_rows=True)
        self.head(ids, vectors, rows, training=False)
        self.built = True

    def call(self, features: dict, training=None) -> tf.Tensor:
        """Raw features to click probabilities, shape [batch]."""
        ids = self.lookup({name: features[name] for name in self.field_names})
        ids = {name: tf.reshape(value, [-1]) for name, value in ids.items()}
        vectors, rows = self.field_embeddings(ids, training=training, return_rows=True)
        return tf.sigmoid(self.head(ids, vectors, rows, training=training))

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        features, labels = inputs[0], inputs[1]
        predictions = self(features, training=training)
        return self.task(labels=tf.reshape(labels, [-1]), predictions=predictions)

    def train_step(self, inputs) -> dict:
        return self.mean_loss_logs(super().train_step(inputs), "total_loss")

    def test_step(self, inputs) -> dict:
        return self.mean_loss_logs(super().test_step(inputs), "total_loss")

    def mean_loss_logs(self, logs: dict, key: str = "loss") -> dict:
        """The step's logs with `loss` the mean over the epoch's steps so far (the
        metrics are means over the epoch already) and without TFRS's per-batch
        `regularization_loss` and `total_loss`."""
        self.loss_tracker.update_state(logs[key])
        logs = {k: v for k, v in logs.items() if k not in ("regularization_loss", "total_loss")}
        logs["loss"] = self.loss_tracker.result()
        return logs

    def network_weights(self) -> tf.train.Checkpoint:
        """The model's weights as a checkpoint object, without optimizer or metrics.

        Its keys (`field_embeddings/...`, `first_order/<field>`, `bias`,
        `deep`) are the same whatever the embeddings, so weights written from
        one model load into another: a full model's into an AMTL model (warm
        start), an AMTL model's into its compact form.

        Returns:
            A `tf.train.Checkpoint`; `write(path)` saves it, `read(path)` restores it.
        """
        return tf.train.Checkpoint(field_embeddings=self.field_embeddings, **self.head.parts())

    def make_train_function(self, force: bool = False):
        """Creates the weights and the optimizer's slots eagerly, then Keras's train function.

        A `tf.function` whose first trace creates variables (the model's
        weights on its first call, the optimizer's slots on the first
        `apply_gradients`) is traced a second time before it runs, and a trace
        of a model of many fields takes as long as its first epoch. Creating them
        first spares that second trace; the weights are the same numbers
        (`build_weights` creates them in the order of a first call). `build`
        does nothing on an optimizer already built; legacy optimizers (no
        `build`) create their slots in the trace.
        """
        self._build_before_tracing()
        self._build_optimizers()
        return super().make_train_function(force)

    def make_test_function(self, force: bool = False):
        """Builds the weights eagerly, then Keras's test function (see `make_train_function`)."""
        self._build_before_tracing()
        return super().make_test_function(force)

    def make_predict_function(self, force: bool = False):
        """Builds the weights eagerly, then Keras's predict function (see `make_train_function`)."""
        self._build_before_tracing()
        return super().make_predict_function(force)

    def _build_before_tracing(self) -> None:
        if not self.built:
            self.build_weights()

    def _build_optimizers(self) -> None:
        """Creates the slots of the optimizer for the variables the step updates."""
        if hasattr(self.optimizer, "build"):
            self.optimizer.build(self.trainable_variables)

    def get_config(self) -> dict:
        """The three parts' configs; the artifact's directory is not part of it."""
        serialize = tf.keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "lookup": serialize(self.lookup),
            "embeddings": serialize(self.field_embeddings),
            "head": serialize(self.head),
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> CTRModel:
        config = dict(config)
        for part in ("lookup", "embeddings", "head"):
            config[part] = tf.keras.saving.deserialize_keras_object(
                config[part], custom_objects=custom_objects
            )
        return cls(**config)

    def get_build_config(self) -> dict:
        return {"from_spec": True}

    def build_from_config(self, config: dict) -> None:
        # Keras would build from input shapes, which say nothing of string features.
        self.build_weights()
