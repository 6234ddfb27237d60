"""The alternating (first-order DARTS) update of AutoDim as a model mixin."""

import contextlib
from typing import Any, Callable, Iterator, List, Optional, Tuple

import tensorflow as tf

SUPPORTED_MODES = ("alternating", "joint")

TemperatureScheduleFn = Callable[[tf.Tensor], tf.Tensor]


class AlternatingSearch:
    """Mixin whose `train_step` updates network weights and architecture weights apart.

    AutoDim searches one embedding dimension per field by putting
    architecture weights alpha over candidate embeddings and solving the
    bilevel problem

        min_alpha L_val(W*(alpha), alpha)  s.t.  W*(alpha) = argmin_W L_train(W, alpha)

    with the first-order DARTS approximation (xi = 0): W descends
    grad_W L_train on training batches, and alpha descends grad_alpha L_val on
    validation batches, once every `arch_every` network steps, after
    `pretrain_steps` steps in which alpha stays frozen at its initial (equal)
    weights so that the candidates compete fairly once alpha starts moving.

    One training step (`fit` feeds `(train_batch, validation_batch)` pairs,
    see `zip_train_validation`):

    1. every architecture layer's `temperature` is set to
       `temperature_schedule(examples_seen)`;
    2. network step: the training loss on the train batch, gradients with
       respect to `network_variables` only, `optimizer.apply_gradients`;
    3. architecture step, when `step >= pretrain_steps` and
       `(step - pretrain_steps) % arch_every == 0`: the validation loss on the
       validation batch (forward pass in training mode, so the Gumbel noise and
       BatchNorm behave as in search), gradients with respect to
       `architecture_variables` only, `arch_optimizer.apply_gradients`;
    4. the step and examples-seen counters advance.

    Algorithm 1 of the paper puts the alpha update before the network update of
    an iteration; here it follows the network update, so that the model is
    built and the metrics exist before the conditional branch is traced. With
    alpha updated once per `arch_every` network updates, this only shifts the
    first alpha update by one network step.

    `mode="joint"` is the AutoDim-s ablation: after the pre-training steps,
    alpha is updated at every step from the same training loss as W, in the
    same tape (`arch_every` does not apply).

    The loss comes from the model's own hook: for `tfrs.models.Model`
    subclasses `compute_loss(inputs, training=True)` plus the regularization
    losses; for other Keras models `compute_loss(x, y, y_pred, sample_weight)`
    after `y_pred = self(x, training=True)`. The validation forward pass does
    not count towards the reported training metrics. `test_step` and `fit` are
    the model's own, so `validation_data` given to `fit` is ordinary data.

    A layer takes part in the search if it has a property
    `architecture_variables` (a list of `tf.Variable`); if it also has a
    `temperature` variable, the train step assigns it before the forward pass.
    A temperature schedule is any callable from the number of training examples
    seen (a float32 scalar tensor) to the temperature.

    Under a `tf.distribute` strategy (build and compile the model in its
    scope) the counters are replica-aware and the architecture update is
    computed at every step and undone exactly when it is not due, because
    synchronisation points cannot run inside a conditional branch there.

    Two optimizers are required: one tf_keras optimizer keeps its slots for
    the variables it was first applied to, so alpha gets its own
    `arch_optimizer`.

    Examples:

        Two branches mixed by softmax(alpha) before a logistic output:

        >>> class Select(tf.keras.layers.Layer):
        ...     def build(self, input_shape):
        ...         self.a = tf.keras.layers.Dense(2)
        ...         self.b = tf.keras.layers.Dense(2)
        ...         self.alpha_logits = self.add_weight(
        ...             name="alpha_logits", shape=(2,), initializer="zeros"
        ...         )
        ...     @property
        ...     def architecture_variables(self):
        ...         return [self.alpha_logits]
        ...     def call(self, x):
        ...         p = tf.nn.softmax(self.alpha_logits)
        ...         return p[0] * self.a(x) + p[1] * self.b(x)
        >>> class Searched(AlternatingSearch, tf.keras.Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.select = Select()
        ...         self.out = tf.keras.layers.Dense(1, activation="sigmoid")
        ...     def call(self, x, training=False):
        ...         return self.out(self.select(x))
        >>> x = tf.reshape(tf.linspace(-1.0, 1.0, 192), (64, 3))
        >>> y = tf.cast(x[:, :1] > 0, tf.float32)
        >>> train = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(8)
        >>> validation = tf.data.Dataset.from_tensor_slices((x[48:], y[48:])).batch(8)
        >>> model = Searched()
        >>> model.compile(
        ...     optimizer=tf.keras.optimizers.Adam(1e-3),
        ...     arch_optimizer=tf.keras.optimizers.Adam(1e-3),
        ...     arch_every=2,
        ...     pretrain_steps=2,
        ...     temperature_schedule=lambda examples_seen: tf.constant(1.0),
        ...     loss="binary_crossentropy",
        ... )
        >>> pairs = zip_train_validation(train, validation, arch_every=2)
        >>> history = model.fit(pairs, epochs=1, verbose=0)
        >>> sorted(history.history)
        ['arch_loss', 'loss', 'temperature']
        >>> int(model.search_step.numpy()), len(model.architecture_variables)  # 48 / 8 steps
        (6, 1)

    References:
        - Zhao et al., "AutoDim: Field-aware Embedding Space Searching in
          Recommender Systems", WWW 2021 (also "Memory-efficient Embedding for
          Recommendations"), §2.3, §2.3.1 and Algorithm 1; §3.7 for
          `arch_every`.
        - Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Model weights, so checkpoints and SavedModels carry the search progress
        # and a resumed search continues the same schedule.
        self.search_step = self.add_weight(
            name="search_step",
            shape=(),
            dtype=tf.int64,
            initializer="zeros",
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        # Summed over replicas: each replica counts its share of the global batch.
        self.examples_seen = self.add_weight(
            name="examples_seen",
            shape=(),
            dtype=tf.int64,
            initializer="zeros",
            trainable=False,
            aggregation=tf.VariableAggregation.SUM,
        )
        self.last_arch_loss = self.add_weight(
            name="last_arch_loss",
            shape=(),
            dtype=tf.float32,
            initializer="zeros",
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.arch_optimizer = None
        self.arch_every = 10
        self.pretrain_steps = 0
        self.search_mode = "alternating"
        self.temperature_schedule = None

    def compile(
        self,
        optimizer: Any = "rmsprop",
        arch_optimizer: Any = None,
        arch_every: int = 10,
        pretrain_steps: int = 0,
        mode: str = "alternating",
        temperature_schedule: Optional[TemperatureScheduleFn] = None,
        **kwargs: Any,
    ) -> None:
        """Configures the search; other arguments go to the model's `compile`.

        Args:
            optimizer: tf.keras optimizer (or its name) for the network weights W.
            arch_optimizer: tf.keras optimizer (or its name) for the
                architecture weights alpha; required, and not the same object
                as `optimizer`.
            arch_every: int, update alpha once every `arch_every` network steps
                (f in the paper, §3.7). Ignored in `"joint"` mode.
            pretrain_steps: int, number of first steps during which alpha stays
                frozen.
            mode: str, one of `SUPPORTED_MODES`: `"alternating"` (AutoDim) or
                `"joint"` (AutoDim-s: alpha and W on the same training batch).
            temperature_schedule: callable from the number of training examples
                seen to the temperature. Defaults to
                `keras_dimsel.autodim.temperature.TemperatureSchedule()`.
            **kwargs: passed to the model's `compile` (loss, metrics, ...).

        Raises:
            ValueError: if an argument is invalid.
        """
        if arch_optimizer is None:
            raise ValueError(
                "`arch_optimizer` is required: the architecture weights need their own "
                "optimizer, e.g. arch_optimizer=tf.keras.optimizers.Adam(1e-3). "
                "Received: arch_optimizer=None"
            )
        if arch_optimizer is optimizer:
            raise ValueError(
                "`arch_optimizer` must be a different object from `optimizer`: one "
                "optimizer cannot update two disjoint variable sets. "
                f"Received the same object for both: {arch_optimizer!r}"
            )
        if isinstance(arch_every, bool) or not isinstance(arch_every, int) or arch_every < 1:
            raise ValueError(
                f"`arch_every` must be an integer >= 1. Received: arch_every={arch_every!r}"
            )
        if (
            isinstance(pretrain_steps, bool)
            or not isinstance(pretrain_steps, int)
            or pretrain_steps < 0
        ):
            raise ValueError(
                "`pretrain_steps` must be an integer >= 0. "
                f"Received: pretrain_steps={pretrain_steps!r}"
            )
        if mode not in SUPPORTED_MODES:
            raise ValueError(f"`mode` must be one of {SUPPORTED_MODES}. Received: mode={mode!r}")
        if temperature_schedule is None:
            from keras_dimsel.autodim.temperature import TemperatureSchedule

            temperature_schedule = TemperatureSchedule()
        if not callable(temperature_schedule):
            raise ValueError(
                "`temperature_schedule` must be callable as schedule(examples_seen). "
                f"Received: temperature_schedule={temperature_schedule!r}"
            )
        super().compile(optimizer=optimizer, **kwargs)
        arch_optimizer = tf.keras.optimizers.get(arch_optimizer)
        if arch_optimizer is self.optimizer:
            raise ValueError(
                "`arch_optimizer` must be a different object from `optimizer`. "
                f"Received the same object for both: {arch_optimizer!r}"
            )
        self.arch_optimizer = arch_optimizer
        self.arch_every = arch_every
        self.pretrain_steps = pretrain_steps
        self.search_mode = mode
        self.temperature_schedule = temperature_schedule
        examples_seen = tf.cast(self.examples_seen, tf.float32)
        for variable in self._temperature_variables():
            variable.assign(tf.cast(temperature_schedule(examples_seen), variable.dtype))

    def make_train_function(self, force: bool = False) -> Callable:
        """Creates both optimizers' slots eagerly, then Keras's train function.

        A `tf.function` whose first trace creates variables (here the
        optimizers' slots, on the first `apply_gradients`) is traced a second
        time before it runs. Creating the slots first, for exactly the
        variables each optimizer updates, spares that second trace of the
        whole search step. A model not built yet is left to its own
        `make_train_function` (a `CTRModel` builds its weights there and comes
        back to `_build_optimizers`); a legacy network optimizer (which has no
        `build`) creates its slots in the trace.
        """
        if self.built:
            self._build_optimizers()
        return super().make_train_function(force)

    def _build_optimizers(self) -> None:
        if self.arch_optimizer is None:
            return
        network, architecture = self._partition_variables()
        if hasattr(self.optimizer, "build"):
            self.optimizer.build(network)
        self.arch_optimizer.build(architecture)

    @property
    def architecture_variables(self) -> List[tf.Variable]:
        """The architecture weights alpha of all sub-layers, deduplicated."""
        return self._partition_variables()[1]

    @property
    def network_variables(self) -> List[tf.Variable]:
        """All trainable variables except the architecture weights."""
        return self._partition_variables()[0]

    def _architecture_layers(self) -> List[tf.keras.layers.Layer]:
        return [
            module
            for module in self.submodules
            if isinstance(module, tf.keras.layers.Layer)
            and not isinstance(module, AlternatingSearch)
            and getattr(module, "architecture_variables", None) is not None
        ]

    def _temperature_variables(self) -> List[tf.Variable]:
        found = {}
        for layer in self._architecture_layers():
            temperature = getattr(layer, "temperature", None)
            if isinstance(temperature, tf.Variable):
                found.setdefault(temperature.ref(), temperature)
        return list(found.values())

    def _partition_variables(self) -> Tuple[List[tf.Variable], List[tf.Variable]]:
        """Splits the trainable variables into (network, architecture); checks both."""
        architecture = {}
        for layer in self._architecture_layers():
            for variable in layer.architecture_variables:
                architecture.setdefault(variable.ref(), variable)
        if not architecture:
            raise ValueError(
                f"Model {self.name!r} has no architecture variables: no sub-layer has a "
                "non-empty `architecture_variables` (e.g. a DimensionGumbelSelector's "
                "`alpha_logits`). Build the model (call it on a batch) before reading "
                "them, or train models without a search with their own `train_step`."
            )
        trainable = {variable.ref(): variable for variable in self.trainable_variables}
        outside = [v.name for ref, v in architecture.items() if ref not in trainable]
        if outside:
            raise ValueError(
                "Every architecture variable must be a trainable variable of the model. "
                f"Not trainable or not tracked: {outside}"
            )
        network = [v for ref, v in trainable.items() if ref not in architecture]
        # Disjoint and complete, as TFRS's CompositeOptimizer requires of its parts.
        if len(network) + len(architecture) != len(trainable):
            raise ValueError(
                "The network and architecture variables must partition the trainable "
                f"variables: {len(network)} + {len(architecture)} != {len(trainable)}."
            )
        return network, list(architecture.values())

    def _uses_tfrs_loss(self) -> bool:
        try:
            import tensorflow_recommenders as tfrs
        except ImportError:  # TFRS is optional for plain Keras models.
            return False
        return isinstance(self, tfrs.models.Model)

    def _batch_loss(self, batch: Any) -> Tuple[tf.Tensor, Any]:
        """Total training-mode loss of one batch through the model's loss hook."""
        if self._uses_tfrs_loss():
            loss = self.compute_loss(batch, training=True)
            regularization = tf.reduce_sum([tf.reduce_sum(term) for term in self.losses])
            return loss + regularization, None
        if not isinstance(batch, (tuple, list)):
            raise ValueError(
                "Each batch of a Keras model must be `(x, y)` or `(x, y, sample_weight)`. "
                f"Received: {batch!r}"
            )
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(batch)
        y_pred = self(x, training=True)
        # Keras's `compute_loss` already adds the regularization losses.
        return self.compute_loss(x, y, y_pred, sample_weight), (x, y, y_pred, sample_weight)

    def _metric_variables(self) -> List[tf.Variable]:
        return [variable for metric in self.metrics for variable in metric.variables]

    def _validation_gradients(
        self, validation_batch: Any, architecture: List[tf.Variable]
    ) -> Tuple[tf.Tensor, List[tf.Tensor]]:
        # The loss hooks also update the loss and task metrics; restoring them keeps
        # the reported metrics about the training batches only.
        metric_variables = self._metric_variables()
        saved = [tf.identity(variable.read_value()) for variable in metric_variables]
        with _tape_watching(architecture) as tape:
            loss, _ = self._batch_loss(validation_batch)
        gradients = tape.gradient(loss, architecture)
        for variable, value in zip(metric_variables, saved):
            variable.assign(value)
        return tf.cast(loss, tf.float32), gradients

    def _update_architecture(
        self,
        due: tf.Tensor,
        loss_and_gradients: Callable[[], Tuple[tf.Tensor, List[tf.Tensor]]],
        architecture: List[tf.Variable],
    ) -> tf.Tensor:
        """Applies the architecture gradients when `due`; returns the last arch loss."""

        def update():
            loss, gradients = loss_and_gradients()
            missing = [v.name for v, g in zip(architecture, gradients) if g is None]
            if missing:
                raise ValueError(
                    f"The architecture variables {missing} get no gradient from the loss; "
                    "they must take part in the model's forward pass."
                )
            self.arch_optimizer.apply_gradients(zip(gradients, architecture))
            return loss

        if not tf.distribute.has_strategy():
            return tf.cond(due, update, self.last_arch_loss.read_value)
        # Under a tf.distribute strategy, synchronisation points (gradient all-reduce,
        # writes to mirrored variables such as BatchNorm statistics) cannot live in a
        # tf.cond branch. The update then runs at every step and is undone, exactly,
        # when it was not due.
        tracked = architecture + list(self.arch_optimizer.variables)
        saved = [tf.identity(variable.read_value()) for variable in tracked]
        loss = update()
        _assign_everywhere(
            [
                (variable, tf.where(due, variable.read_value(), value))
                for variable, value in zip(tracked, saved)
            ]
        )
        return tf.where(due, loss, self.last_arch_loss.read_value())

    def train_step(self, data: Any) -> dict:
        """One search step on a `(train_batch, validation_batch)` pair.

        Args:
            data: `(train_batch, validation_batch)`; each batch is `(x, y)`,
                `(x, y, sample_weight)` or, for TFRS models, whatever the
                model's `compute_loss(inputs, training)` takes.

        Returns:
            The training metrics, plus `arch_loss` (the loss of the last
            architecture update, 0 before the first) and `temperature`.
        """
        if isinstance(data, tuple) and len(data) == 1:  # `train_on_batch` wraps tuples.
            data = data[0]
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError(
                "`train_step` of a search model expects `(train_batch, validation_batch)` "
                "pairs; build them with `zip_train_validation(train, validation)`. "
                f"Received: {data!r}"
            )
        train_batch, validation_batch = data
        step = self.search_step.read_value()
        examples_seen = self.examples_seen.read_value()
        temperature = tf.cast(
            self.temperature_schedule(tf.cast(examples_seen, tf.float32)), tf.float32
        )
        if not tf.distribute.has_strategy():
            # Under a strategy the replicas may trace this line before and after the
            # model is built and would disagree on the variables to synchronise; the
            # assignment at the end of the step (and in `compile`) covers them.
            for variable in self._temperature_variables():
                variable.assign(tf.cast(temperature, variable.dtype))

        joint = self.search_mode == "joint"
        watched = None  # a model whose first call creates its variables: all it reads
        if self.built:
            network, architecture = self._partition_variables()
            watched = network + architecture if joint else network
        with _tape_watching(watched) as tape:
            loss, keras_outputs = self._batch_loss(train_batch)
        network, architecture = self._partition_variables()
        gradients = tape.gradient(loss, network + architecture if joint else network)
        self.optimizer.apply_gradients(zip(gradients[: len(network)], network))
        with tf.init_scope():
            # Slots are created here, not inside the conditional branch below.
            self.arch_optimizer.build(architecture)

        pretrained = step >= self.pretrain_steps
        if joint:
            arch_gradients = gradients[len(network) :]

            def loss_and_gradients():
                return tf.cast(loss, tf.float32), arch_gradients

            due = pretrained
        else:

            def loss_and_gradients():
                return self._validation_gradients(validation_batch, architecture)

            due = tf.logical_and(pretrained, (step - self.pretrain_steps) % self.arch_every == 0)
        arch_loss = self._update_architecture(due, loss_and_gradients, architecture)
        self.last_arch_loss.assign(arch_loss)

        batch_size = tf.shape(tf.nest.flatten(train_batch)[0], out_type=tf.int64)[0]
        # The counters move only once the batch exists. At the end of a dataset of
        # unknown length, Keras calls the step once more and the read of the batch
        # fails; without this dependency the counter would still advance, ending
        # pre-training (and shifting every alpha update) a step early.
        with tf.control_dependencies([batch_size]):
            self.search_step.assign_add(1)
            self.examples_seen.assign_add(batch_size)
        # Assigned for the next step too: layers that create `temperature` in
        # `build` only have it after the first forward pass of the first trace.
        next_temperature = self.temperature_schedule(
            tf.cast(self.examples_seen.read_value(), tf.float32)
        )
        _assign_everywhere(
            [(v, tf.cast(next_temperature, v.dtype)) for v in self._temperature_variables()]
        )

        if keras_outputs is None:
            metrics = {metric.name: metric.result() for metric in self.metrics}
            metrics["loss"] = loss
        else:
            metrics = self.compute_metrics(*keras_outputs)
        if hasattr(self, "mean_loss_logs"):  # a CTRModel: the epoch's mean loss
            metrics = self.mean_loss_logs(metrics)
        # Keras sums per-replica logs: a loss is a per-replica share, the temperature
        # is one value for all replicas.
        metrics["arch_loss"] = arch_loss
        metrics["temperature"] = _replica_mean(temperature)
        return metrics


@contextlib.contextmanager
def _tape_watching(variables: Optional[List[tf.Variable]]) -> Iterator[tf.GradientTape]:
    """A tape that records only what depends on `variables` (all it reads when None).

    A tape that watches every variable it reads holds the backward pass of the
    whole network, and `gradient` traces all of it, even for the few
    variables asked for: the architecture step, which differentiates alpha
    alone, would trace the selectors' and the head's gradients and also every
    table's, BatchNorm's and unify map's, only to drop them.
    """
    with tf.GradientTape(watch_accessed_variables=variables is None) as tape:
        if variables is not None:
            tape.watch(variables)
        yield tape


def _assign_everywhere(pairs: List[Tuple[tf.Variable, tf.Tensor]]) -> None:
    """Assigns values that are equal on all replicas, whatever a variable's aggregation."""
    if not pairs:
        return

    def assign_all(strategy, pairs):
        for variable, value in pairs:
            strategy.extended.update(variable, lambda v, x: v.assign(x), args=(value,))

    context = tf.distribute.get_replica_context()
    if context is None:
        assign_all(tf.distribute.get_strategy(), pairs)
    else:
        context.merge_call(assign_all, args=(pairs,))


def _replica_mean(value: tf.Tensor) -> tf.Tensor:
    """One value for all replicas, so Keras's per-replica "sum" of logs keeps it as is."""
    context = tf.distribute.get_replica_context()
    if context is None or not tf.distribute.has_strategy():
        return value
    return context.merge_call(
        lambda strategy, value: strategy.reduce("MEAN", value, axis=None), args=(value,)
    )


def zip_train_validation(
    train: tf.data.Dataset, validation: tf.data.Dataset, arch_every: int = 1
) -> tf.data.Dataset:
    """Pairs every training batch with a validation batch, for `AlternatingSearch`.

    The validation set is repeated as often as needed, so an epoch is one pass
    over `train`. Both datasets should already be batched (their batch sizes
    may differ); shuffle `validation` with `reshuffle_each_iteration=True` to
    see it in a new order on each repetition.

    With `arch_every=f` (the model's alpha update frequency), each validation
    batch is paired with f consecutive training batches. Alpha is updated once
    in any f consecutive steps, so every update still gets a batch of its own,
    while the input pipeline reads and parses f times fewer validation
    examples.

    Args:
        train: tf.data.Dataset of training batches.
        validation: tf.data.Dataset of validation batches (the data alpha is
            fitted on; keep it apart from the test data).
        arch_every: int >= 1, the number of training batches that share one
            validation batch; give the `arch_every` of `compile`.

    Returns:
        A dataset of `(train_batch, validation_batch)` pairs.

    Raises:
        ValueError: if an argument is invalid or `validation` is empty.

    Examples:

        >>> train = tf.data.Dataset.range(5).batch(2)
        >>> validation = tf.data.Dataset.range(2).batch(1)
        >>> [(t.numpy().tolist(), v.numpy().tolist())
        ...  for t, v in zip_train_validation(train, validation)]
        [([0, 1], [0]), ([2, 3], [1]), ([4], [0])]
        >>> [v.numpy().tolist() for _, v in zip_train_validation(train, validation, arch_every=2)]
        [[0], [0], [1]]
    """
    for name, dataset in (("train", train), ("validation", validation)):
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(f"`{name}` must be a tf.data.Dataset. Received: {name}={dataset!r}")
    if isinstance(arch_every, bool) or not isinstance(arch_every, int) or arch_every < 1:
        raise ValueError(
            f"`arch_every` must be an integer >= 1. Received: arch_every={arch_every!r}"
        )
    if int(validation.cardinality()) == 0:
        raise ValueError("`validation` must not be empty. Received an empty dataset.")
    validation = validation.repeat()
    if arch_every > 1:
        validation = validation.flat_map(
            lambda *batch: tf.data.Dataset.from_tensors(
                batch[0] if len(batch) == 1 else batch
            ).repeat(arch_every)
        )
    return tf.data.Dataset.zip((train, validation))
