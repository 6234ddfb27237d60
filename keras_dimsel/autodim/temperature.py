"""`TemperatureSchedule`: the Gumbel-softmax temperature annealing of AutoDim.

The paper anneals tau = max(0.01, 1 - 0.00005 * t) with t the training step at
batch size 2000. A step count means different things at different batch sizes,
so the schedule here is a function of examples seen: t = examples_seen / 2000.
`TemperatureAnnealing` applies it inside a plain `model.fit`.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Union

import tensorflow as tf

#: The paper's schedule, tau = max(0.01, 1 - 0.00005 * t) at batch size 2000.
DEFAULT_FLOOR = 0.01
DEFAULT_RATE = 0.00005


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_unit_fraction(name: str, value) -> None:
    if not _is_number(value) or not 0.0 < value <= 1.0:
        raise ValueError(f"`{name}` must be a number in (0, 1]. Received: {name}={value!r}")


def _check_count(name: str, value, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"`{name}` must be a {kind} integer. Received: {name}={value!r}")


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class TemperatureSchedule:
    """Linear temperature decay with a floor, measured in examples seen.

    With s the number of training examples seen so far and B_ref the reference
    batch size,

        tau(s) = max(floor, 1 - rate * s / B_ref)

    which is the AutoDim schedule tau = max(0.01, 1 - 0.00005 * t) with
    t = s / B_ref the step count at batch size B_ref = 2000. Ten steps of 2000
    examples and twenty steps of 1000 examples give the same temperature.

    Args:
        floor: float, the lowest temperature, in (0, 1].
        rate: float, the decrease of tau per reference step, >= 0.
        reference_batch_size: int, the batch size at which `rate` is a per-step
            rate.

    Raises:
        ValueError: when an argument is out of its range.

    Examples:

        >>> schedule = TemperatureSchedule()
        >>> float(schedule(0))
        1.0
        >>> float(schedule(10_000 * 2000))  # 10,000 steps of 2000 examples
        0.5
        >>> round(float(schedule(10**9)), 4)  # the floor
        0.01

    References:
        Zhao et al., "AutoDim: Field-aware Embedding Space Searching in
        Recommender Systems", WWW 2021, §3.2.
    """

    def __init__(
        self,
        floor: float = DEFAULT_FLOOR,
        rate: float = DEFAULT_RATE,
        reference_batch_size: int = 2000,
    ):
        _check_unit_fraction("floor", floor)
        if not _is_number(rate) or not math.isfinite(rate) or rate < 0:
            raise ValueError(
                f"`rate` must be a finite non-negative number. Received: rate={rate!r}"
            )
        _check_count("reference_batch_size", reference_batch_size)
        self.floor = float(floor)
        self.rate = float(rate)
        self.reference_batch_size = reference_batch_size

    @classmethod
    def relative(
        cls,
        total_examples: int,
        anneal_fraction: float = 0.5,
        floor: float = DEFAULT_FLOOR,
        reference_batch_size: int = 2000,
    ) -> TemperatureSchedule:
        """The schedule that reaches `floor` after a fraction of the run, whatever its length.

        The paper's rate is absolute: written for Criteo's 45 million rows, it
        leaves the temperature near 1 for a run of a few hundred thousand
        examples, so the selection is never annealed. This one falls linearly
        from 1 to `floor` over the first `anneal_fraction * total_examples`
        examples and stays there, for any run length:

            rate = (1 - floor) * B_ref / (anneal_fraction * total_examples)

        A low temperature is not by itself better: on the planted synthetic
        data, annealing to 0.01 by half the run found the interaction less
        often than the paper's schedule at every size from 30k to 300k rows
        (`benchmarks/results/search_trust/`).

        Args:
            total_examples: int, the training examples the run will see
                (epochs times the examples of an epoch), > 0.
            anneal_fraction: float in (0, 1], the part of the run by whose
                end the temperature is at its floor.
            floor: float in (0, 1], the lowest temperature.
            reference_batch_size: int, as in the constructor.

        Returns:
            A TemperatureSchedule.

        Raises:
            ValueError: when an argument is out of its range.

        Examples:

            >>> schedule = TemperatureSchedule.relative(300_000, anneal_fraction=0.5)
            >>> [round(float(schedule(seen)), 3) for seen in (0, 75_000, 150_000, 300_000)]
            [1.0, 0.505, 0.01, 0.01]
        """
        _check_count("total_examples", total_examples)
        _check_unit_fraction("anneal_fraction", anneal_fraction)
        _check_unit_fraction("floor", floor)  # before the rate is computed from it
        rate = (1.0 - floor) * reference_batch_size / (anneal_fraction * total_examples)
        return cls(floor=floor, rate=rate, reference_batch_size=reference_batch_size)

    def examples_to_floor(self) -> float:
        """The training examples after which the temperature is at its floor (inf at rate 0).

        Examples:

            >>> TemperatureSchedule().examples_to_floor()  # the paper: 19,800 steps of 2000
            39600000.0
        """
        if self.rate == 0:
            return math.inf
        return (1.0 - self.floor) * self.reference_batch_size / self.rate

    def __call__(self, examples_seen: Union[int, float, tf.Tensor]) -> tf.Tensor:
        """The temperature after `examples_seen` training examples.

        Args:
            examples_seen: int, float or scalar tensor, the number of training
                examples seen so far.

        Returns:
            A float32 scalar tensor.
        """
        # float64 keeps example counts beyond 2**24 exact.
        seen = tf.cast(examples_seen, tf.float64)
        steps = seen / float(self.reference_batch_size)
        tau = tf.maximum(tf.constant(self.floor, tf.float64), 1.0 - self.rate * steps)
        return tf.cast(tau, tf.float32)

    def get_config(self) -> dict:
        """The constructor arguments, for `from_config` and Keras serialization."""
        return {
            "floor": self.floor,
            "rate": self.rate,
            "reference_batch_size": self.reference_batch_size,
        }

    @classmethod
    def from_config(cls, config: dict) -> TemperatureSchedule:
        """Rebuilds a schedule from `get_config()`.

        Args:
            config: dict, the output of `get_config()`.

        Returns:
            The TemperatureSchedule.
        """
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"TemperatureSchedule(floor={self.floor}, rate={self.rate}, "
            f"reference_batch_size={self.reference_batch_size})"
        )


class TemperatureAnnealing(tf.keras.callbacks.Callback):
    """Anneals the `temperature` variable of every selector during `model.fit`.

    Before each training batch it assigns tau(s), s = examples seen before that
    batch, to every layer of the model that has a `temperature` `tf.Variable`
    (such as `DimensionGumbelSelector`). The count runs across epochs and
    across `fit` calls on the same callback; when training ends the variables
    hold tau(total examples seen), the temperature of the next batch.

    Keras does not pass the batch size to callbacks, so examples are counted as
    `batch_size` per step: a smaller last batch of an epoch counts as a full
    one. With `steps_per_execution = k` the temperature changes once every k
    steps.

    Args:
        schedule: TemperatureSchedule or callable, maps examples seen to the
            temperature (default `TemperatureSchedule()`).
        batch_size: int, the training batch size.
        initial_examples_seen: int, examples already seen, for resuming a
            search.

    Raises:
        ValueError: when `schedule` is not callable or a count is invalid.

    Examples:

        >>> from keras_dimsel.layers import DimensionGumbelSelector
        >>> selector = DimensionGumbelSelector(num_candidates=2, seed=0)
        >>> candidates = tf.keras.Input(shape=(2, 1))
        >>> model = tf.keras.Model(candidates, selector(candidates))
        >>> model.compile(loss="mse")
        >>> annealing = TemperatureAnnealing(
        ...     TemperatureSchedule(rate=0.1, reference_batch_size=4), batch_size=4
        ... )
        >>> x, y = tf.ones([8, 2, 1]), tf.ones([8, 1])
        >>> _ = model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[annealing])
        >>> annealing.examples_seen
        8
        >>> round(float(selector.temperature.numpy()), 4)  # 1 - 0.1 * 8 / 4
        0.8

    References:
        Zhao et al., "AutoDim: Field-aware Embedding Space Searching in
        Recommender Systems", WWW 2021, §3.2.
    """

    def __init__(
        self,
        schedule: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
        *,
        batch_size: int,
        initial_examples_seen: int = 0,
    ):
        super().__init__()
        if schedule is None:
            schedule = TemperatureSchedule()
        if not callable(schedule):
            raise ValueError(
                "`schedule` must be a TemperatureSchedule or a callable. "
                f"Received: schedule={schedule!r}"
            )
        _check_count("batch_size", batch_size)
        _check_count("initial_examples_seen", initial_examples_seen, minimum=0)
        self.schedule = schedule
        self.batch_size = batch_size
        self.examples_seen = initial_examples_seen
        self._epoch_start = initial_examples_seen
        self._temperatures: List[tf.Variable] = []

    def _find_temperatures(self) -> List[tf.Variable]:
        found = {}
        for module in [self.model, *self.model.submodules]:
            variable = getattr(module, "temperature", None)
            if isinstance(variable, tf.Variable):
                found[id(variable)] = variable
        return list(found.values())

    def _assign(self) -> None:
        tau = self.schedule(self.examples_seen)
        for variable in self._temperatures:
            variable.assign(tf.cast(tau, variable.dtype))

    def on_train_begin(self, logs=None):
        self._temperatures = self._find_temperatures()
        if not self._temperatures:
            raise ValueError(
                "TemperatureAnnealing found no layer with a `temperature` variable in "
                f"model {self.model.name!r}; it has nothing to anneal."
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.examples_seen

    def on_train_batch_begin(self, batch, logs=None):
        self._assign()

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the last step run, which stays right when
        # several steps run per call (`steps_per_execution`).
        self.examples_seen = self._epoch_start + (int(batch) + 1) * self.batch_size

    def on_train_end(self, logs=None):
        self._assign()
