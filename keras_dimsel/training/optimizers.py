"""Optimizers whose cost per step does not grow with the embedding tables.

A batch of 2000 examples reads a few thousand rows of a table of millions.
The gradient of such a table is row-sparse (`tf.IndexedSlices`), but
tf_keras's `Adam` decays both its slots and moves the variable over the
whole table at every step, so a step costs time in proportion to the
vocabulary (about 40x slower at 3M ids than at 10k, measured in
`benchmarks/scale.py`). Two row-sparse choices keep the cost flat:

- `LazyAdam`: Adam whose sparse update touches only the rows in the batch.
  A row's value and both of its slots change only when the row is read; a
  row read at every step follows Adam exactly. Dense gradients (the network
  above the tables) get Adam unchanged.
- `SplitOptimizer(tables=Adagrad, network=Adam)`: tf_keras's `Adagrad` is
  already row-sparse; the split gives it the tables and Adam the rest (the
  per-variable-group split of TFRS's `CompositeOptimizer`).

`network_optimizer(name, learning_rate)` builds the optimizer of a model's
network weights for an `--embedding-optimizer` name; `"adam"` is tf_keras's
dense Adam, the library's behaviour before these optimizers existed.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import tensorflow as tf

from keras_dimsel._compat import adam_slots

#: The `--embedding-optimizer` choices.
EMBEDDING_OPTIMIZERS = ("lazy_adam", "adagrad", "adam")
#: The default: row-sparse Adam on the tables, Adam on the network.
DEFAULT_EMBEDDING_OPTIMIZER = "lazy_adam"
#: Adagrad on the tables (`embedding_optimizer="adagrad"`): a rate of 0.05 and
#: an initial accumulator of 1e-6 instead of tf_keras's 0.001 and 0.1. A row's
#: gradient under a batch-mean loss is small (~1e-3), so an accumulator
#: starting at 0.1 turns Adagrad into a very slow SGD (MovieLens-100K FM, three
#: epochs: test AUC 0.684 with rate 0.1 and accumulator 0.1; 0.766 / 0.779
#: with rate 0.01 / 0.05 and accumulator 1e-6; lazy Adam 0.770).
DEFAULT_ADAGRAD_LEARNING_RATE = 0.05
DEFAULT_ADAGRAD_INITIAL_ACCUMULATOR = 1e-6
#: The names of the embedding tables' weights (the last part of
#: `variable.name`, without `:0`): Keras `Embedding` layers (`embeddings`) and
#: the library's candidate and planned tables.
TABLE_NAMES = (r"embeddings", r"embedding_table", r"candidate_table(_\d+)?")


@tf.keras.saving.register_keras_serializable(package="keras_dimsel")
class LazyAdam(tf.keras.optimizers.Adam):
    """Adam that updates only the rows of a table read in the batch.

    On a dense gradient it is tf_keras's `Adam`. On a row-sparse gradient
    (`tf.IndexedSlices`, what a gather from a table gives) it applies Adam's
    rule to the rows in the batch only: their first and second moments and
    their values change, every other row, with its moments, stays as it is.
    Duplicate rows in a batch are summed once before the update (as
    `apply_gradients` does for every tf_keras optimizer). When every row is
    read at every step, the result is Adam's.

    This is the "lazy" Adam of TensorFlow Addons, on the tf_keras optimizer
    API. Unlike Adam, a rare row's moments do not decay while it is unread,
    so its first step after a pause is larger: on CTR data this is usually
    harmless (`benchmarks/results/optimizer_quality.md` measures it).

    Args:
        learning_rate: float or schedule, Adam's step size.
        name: str, the optimizer's name.
        **kwargs: the other arguments of `tf.keras.optimizers.Adam`
            (`beta_1`, `beta_2`, `epsilon`, `amsgrad`, ...). `weight_decay` and
            `use_ema` act on whole variables, tables included, and so make a
            step as costly as dense Adam's.

    Examples:

        >>> table = tf.Variable(tf.ones([4, 2]))
        >>> optimizer = LazyAdam(learning_rate=0.1)
        >>> with tf.GradientTape() as tape:
        ...     loss = tf.reduce_sum(tf.gather(table, [1, 1, 3]))
        >>> _ = optimizer.apply_gradients([(tape.gradient(loss, table), table)])
        >>> table.numpy().astype(float).round(2).tolist()  # rows 0 and 2 were not read
        [[1.0, 1.0], [0.9, 0.9], [1.0, 1.0], [0.9, 0.9]]
        >>> optimizer.variables[1].numpy().astype(float).round(2).tolist()  # m: row 1 read twice
        [[0.0, 0.0], [0.2, 0.2], [0.0, 0.0], [0.1, 0.1]]
    """

    def __init__(self, learning_rate=0.001, name: str = "LazyAdam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._step_factors = _StepFactors()

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        # The factors of this step are computed once, in the graph of this call.
        self._step_factors.clear()
        try:
            return super().apply_gradients(grads_and_vars, *args, **kwargs)
        finally:
            self._step_factors.clear()

    def _factors(self, dtype: tf.DType):
        """`(alpha, epsilon)` of this step, Adam's expressions, once per graph and dtype.

        tf_keras's Adam computes them again for every variable: some twenty
        ops each, a sizeable part of a traced step of a model with many
        fields. Every variable of a step shares them (the step count moves
        after all the updates), so computing them once gives the same numbers.
        """
        key = (tf.compat.v1.get_default_graph(), dtype)
        if key not in self._step_factors:
            lr = tf.cast(self.learning_rate, dtype)
            step = tf.cast(self.iterations + 1, dtype)
            beta_1_power = tf.pow(tf.cast(self.beta_1, dtype), step)
            beta_2_power = tf.pow(tf.cast(self.beta_2, dtype), step)
            alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            epsilon = self.epsilon
            if self.adaptive_epsilon:
                epsilon = epsilon * tf.sqrt(1 - beta_2_power)
            self._step_factors[key] = alpha, epsilon
        return self._step_factors[key]

    def update_step(self, gradient, variable):
        slots = adam_slots(self, variable)
        if slots is None:
            return super().update_step(gradient, variable)
        m, v, v_hat = slots
        # The same expressions, in the same precision, as Adam's dense update.
        alpha, epsilon = self._factors(variable.dtype)
        if not isinstance(gradient, tf.IndexedSlices):
            m.assign_add((gradient - m) * (1 - self.beta_1))
            v.assign_add((tf.square(gradient) - v) * (1 - self.beta_2))
            if v_hat is not None:
                v_hat.assign(tf.maximum(v_hat, v))
                v = v_hat
            variable.assign_sub((m * alpha) / (tf.sqrt(v) + epsilon))
            return

        rows, values = gradient.indices, gradient.values
        m_rows = tf.gather(m, rows)
        m_rows = m_rows + (values - m_rows) * (1 - self.beta_1)
        v_rows = tf.gather(v, rows)
        v_rows = v_rows + (tf.square(values) - v_rows) * (1 - self.beta_2)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        if v_hat is not None:
            v_rows = tf.maximum(tf.gather(v_hat, rows), v_rows)
            v_hat.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices((m_rows * alpha) / (tf.sqrt(v_rows) + epsilon), rows))


class _StepFactors(dict):
    """The factors of one `apply_gradients` call (a dict subclass: not tracked nor saved)."""


def is_table(variable: tf.Variable, names: Sequence[str] = TABLE_NAMES) -> bool:
    """Whether `variable` is an embedding table: its own name matches one of `names`.

    A shard of a table split over parameter servers (`ShardedVariable`,
    named `<table>/part_<i>`) is a table when its table is.

    Examples:

        >>> is_table(tf.Variable(tf.zeros([3, 2]), name="embeddings"))
        True
        >>> is_table(tf.Variable(tf.zeros([3, 2]), name="unify_kernel"))
        False
        >>> is_table(tf.Variable(tf.zeros([3, 2]), name="user/embedding_table/part_1"))
        True
    """
    parts = variable.name.split(":")[0].split("/")
    if len(parts) > 1 and re.fullmatch(r"part_\d+", parts[-1]):
        parts.pop()
    return any(re.fullmatch(name, parts[-1]) for name in names)


@tf.keras.saving.register_keras_serializable(package="keras_dimsel")
class SplitOptimizer(tf.keras.optimizers.Optimizer):
    """One optimizer for the embedding tables, another for every other variable.

    Each variable goes to `tables` when `is_table(variable, table_names)`
    and to `network` otherwise; each optimizer keeps its own slots and step
    count (both count the same steps: every step has gradients for both
    groups). `iterations` and `learning_rate` are the network optimizer's.

    Args:
        tables: a tf_keras optimizer (or its config) for the tables.
        network: a tf_keras optimizer (or its config) for the rest.
        table_names: sequence of str, regular expressions matched against the
            last part of each variable's name (`TABLE_NAMES` by default).
        name: str, the optimizer's name.

    Examples:

        >>> table = tf.Variable(tf.ones([4, 2]), name="embeddings")
        >>> kernel = tf.Variable(tf.ones([2, 1]), name="kernel")
        >>> optimizer = SplitOptimizer(tf.keras.optimizers.Adagrad(0.1), LazyAdam(0.1))
        >>> optimizer.build([table, kernel])
        >>> [len(optimizer.tables.variables), len(optimizer.network.variables)]
        [2, 3]
    """

    def __init__(
        self,
        tables,
        network,
        table_names: Sequence[str] = TABLE_NAMES,
        name: str = "SplitOptimizer",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.tables = tf.keras.optimizers.get(tables)
        self.network = tf.keras.optimizers.get(network)
        if self.tables is self.network:
            raise ValueError("`tables` and `network` must be two optimizer objects")
        self.table_names = tuple(table_names)

    def _split(self, pairs):
        tables, network = [], []
        for pair in pairs:
            (tables if is_table(pair[-1], self.table_names) else network).append(pair)
        return tables, network

    def build(self, var_list):
        tables, network = self._split([(variable,) for variable in var_list])
        self.tables.build([variable for (variable,) in tables])
        self.network.build([variable for (variable,) in network])
        self._built = True

    def apply_gradients(self, grads_and_vars, name: Optional[str] = None, **kwargs):
        tables, network = self._split(list(grads_and_vars))
        if tables:
            self.tables.apply_gradients(tables, name=name, **kwargs)
        return self.network.apply_gradients(network, name=name, **kwargs)

    def update_step(self, gradient, variable):
        raise NotImplementedError("SplitOptimizer updates through its two optimizers")

    @property
    def iterations(self):
        return self.network.iterations

    @property
    def learning_rate(self):
        return self.network.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.network.learning_rate = learning_rate

    @property
    def variables(self):
        return [*self.tables.variables, *self.network.variables]

    def get_config(self) -> dict:
        serialize = tf.keras.optimizers.serialize
        return {
            "name": self.name,
            "tables": serialize(self.tables),
            "network": serialize(self.network),
            "table_names": list(self.table_names),
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        config = dict(config)
        for part in ("tables", "network"):
            config[part] = tf.keras.optimizers.deserialize(
                config[part], custom_objects=custom_objects
            )
        return cls(**config)


def network_optimizer(
    embedding_optimizer: str = DEFAULT_EMBEDDING_OPTIMIZER,
    learning_rate: float = 1e-3,
    embedding_learning_rate: Optional[float] = None,
) -> tf.keras.optimizers.Optimizer:
    """The optimizer of a model's network weights, tables included.

    Args:
        embedding_optimizer: str, one of `EMBEDDING_OPTIMIZERS`:
            `"lazy_adam"` (row-sparse Adam on the tables, Adam elsewhere),
            `"adagrad"` (Adagrad on the tables, Adam elsewhere) or `"adam"`
            (tf_keras's Adam everywhere, dense on the tables).
        learning_rate: float, the rate of Adam (and of lazy Adam on the tables).
        embedding_learning_rate: float or None, Adagrad's rate on the tables
            (`DEFAULT_ADAGRAD_LEARNING_RATE` when None); only with `"adagrad"`.

    Returns:
        An optimizer for `model.compile`.

    Raises:
        ValueError: on an unknown name, or an embedding rate given for another choice.

    Examples:

        >>> type(network_optimizer("lazy_adam")).__name__
        'LazyAdam'
        >>> network_optimizer("adagrad").tables.learning_rate.numpy().round(3)
        0.05
        >>> network_optimizer("sgd")
        Traceback (most recent call last):
        ...
        ValueError: unknown embedding optimizer 'sgd'; choose one of lazy_adam, adagrad, adam
    """
    if embedding_optimizer not in EMBEDDING_OPTIMIZERS:
        raise ValueError(
            f"unknown embedding optimizer {embedding_optimizer!r}; "
            f"choose one of {', '.join(EMBEDDING_OPTIMIZERS)}"
        )
    if embedding_learning_rate is not None and embedding_optimizer != "adagrad":
        raise ValueError(
            "an embedding learning rate applies to the adagrad tables only; "
            f"{embedding_optimizer} uses the network's rate"
        )
    if embedding_optimizer == "lazy_adam":
        return LazyAdam(learning_rate)
    if embedding_optimizer == "adam":
        return tf.keras.optimizers.Adam(learning_rate)
    tables = tf.keras.optimizers.Adagrad(
        embedding_learning_rate or DEFAULT_ADAGRAD_LEARNING_RATE,
        initial_accumulator_value=DEFAULT_ADAGRAD_INITIAL_ACCUMULATOR,
    )
    return SplitOptimizer(tables, tf.keras.optimizers.Adam(learning_rate))
