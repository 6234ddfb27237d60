"""`DimensionGumbelSelector`: Gumbel-softmax choice among candidate embeddings.

One selector per feature field holds the architecture weights of AutoDim, a
trainable logit per candidate dimension, and mixes the field's (unified)
candidate embeddings with Gumbel-softmax weights during the search.
"""

from __future__ import annotations

import random
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_dimsel.layers._utils import is_int, static_cond

# Keeps log(u) finite: uniform draws start at the smallest normal float32.
_TINY = float(np.finfo(np.float32).tiny)


@tf.keras.utils.register_keras_serializable(package="keras_dimsel")
class DimensionGumbelSelector(tf.keras.layers.Layer):
    """Weighted sum of N candidate embeddings with Gumbel-softmax weights.

    The architecture weights of a field are alpha = softmax(a), with `a` the
    trainable `alpha_logits` (zeros at the start: equal weights). In training,
    each example draws Gumbel noise g_n = -log(-log u_n), u_n ~ U(0, 1), and

        p_n = softmax_n((log alpha_n + g_n) / tau)        (Eq. 6)
        x   = sum_n p_n * xhat_n                          (Eq. 7)

    with tau the `temperature` variable, which a training loop or the
    `TemperatureAnnealing` callback lowers as the search goes on. With
    `hard=True` the forward pass uses one_hot(argmax_n p_n) and the gradient
    flows through p (straight-through Gumbel-softmax). Outside training
    (`training` False or None) the weights are the deterministic
    p = softmax(a), without noise.

    The noise comes from stateless random ops keyed by the non-trainable
    `noise_seed` variable, whose counter moves on every training call, so a
    fixed `seed` gives the same noise sequence, and a restored checkpoint
    continues it.

    Args:
        num_candidates: int, N, the number of candidate dimensions (>= 1).
        hard: bool, whether the forward pass selects exactly one candidate per
            example (straight-through estimator).
        initial_temperature: float, the starting value of `temperature` (> 0).
        seed: int or None, the seed of the Gumbel noise; None draws one.

    Input shape:
        `[batch, num_candidates, dim]`: the candidate embeddings of one field,
        already unified to a common dimension.

    Output shape:
        `[batch, dim]`.

    Examples:

        >>> selector = DimensionGumbelSelector(num_candidates=3, seed=0)
        >>> candidates = tf.ones([4, 3, 8])  # 4 examples, 3 candidates unified to dim 8
        >>> print(selector(candidates, training=True).shape)  # Gumbel-softmax weights
        (4, 8)
        >>> [round(p, 3) for p in selector.probabilities().numpy().tolist()]  # equal at first
        [0.333, 0.333, 0.333]
        >>> _ = selector.temperature.assign(0.5)  # what TemperatureAnnealing does
        >>> # Outside training: the deterministic mixture softmax(alpha) . candidates.
        >>> selector(tf.constant([[[1.0], [2.0], [6.0]]])).numpy().round(4).tolist()
        [[3.0]]

    References:
        Zhao et al., "AutoDim: Field-aware Embedding Space Searching in
        Recommender Systems", WWW 2021, §2.2.3.
        Jang et al., "Categorical Reparameterization with Gumbel-Softmax",
        ICLR 2017.
    """

    def __init__(
        self,
        num_candidates: int,
        hard: bool = False,
        initial_temperature: float = 1.0,
        seed: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not is_int(num_candidates) or num_candidates < 1:
            raise ValueError(
                "`num_candidates` must be a positive integer. "
                f"Received: num_candidates={num_candidates!r}"
            )
        if not isinstance(hard, (bool, np.bool_)):
            raise ValueError(f"`hard` must be a boolean. Received: hard={hard!r}")
        if (
            not isinstance(initial_temperature, (int, float, np.floating, np.integer))
            or isinstance(initial_temperature, bool)
            or not np.isfinite(initial_temperature)
            or initial_temperature <= 0
        ):
            raise ValueError(
                "`initial_temperature` must be a finite positive number. "
                f"Received: initial_temperature={initial_temperature!r}"
            )
        if seed is not None and not is_int(seed):
            raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
        self.num_candidates = int(num_candidates)
        self.hard = bool(hard)
        self.initial_temperature = float(initial_temperature)
        self.seed = None if seed is None else int(seed)
        self.input_spec = tf.keras.layers.InputSpec(ndim=3)

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 3 or input_shape[1] != self.num_candidates:
            raise ValueError(
                "DimensionGumbelSelector expects candidates of shape "
                f"[batch, {self.num_candidates}, dim]. Received: shape={input_shape}"
            )
        self.alpha_logits = self.add_weight(
            name="alpha_logits",
            shape=(self.num_candidates,),
            dtype="float32",
            initializer=tf.keras.initializers.Zeros(),
            trainable=True,
            experimental_autocast=False,
        )
        self.temperature = self.add_weight(
            name="temperature",
            shape=(),
            dtype="float32",
            initializer=tf.keras.initializers.Constant(self.initial_temperature),
            trainable=False,
            experimental_autocast=False,
        )
        seed = self.seed if self.seed is not None else random.randrange(2**31)
        self.noise_seed = self.add_weight(
            name="noise_seed",
            shape=(2,),
            dtype="int64",
            initializer=tf.keras.initializers.Constant([seed, 0]),
            trainable=False,
            # Replicas share the counter; the replica id is folded into the seed.
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        super().build(input_shape)

    @property
    def architecture_variables(self) -> List[tf.Variable]:
        """The variables the architecture optimiser updates: `[alpha_logits]`."""
        return [self.alpha_logits]

    def probabilities(self) -> tf.Tensor:
        """The deterministic selection weights softmax(alpha_logits).

        Returns:
            A float32 tensor of shape `[N]` that sums to 1.
        """
        return tf.nn.softmax(self.alpha_logits)

    def _gumbel_noise(self, batch_size: tf.Tensor) -> tf.Tensor:
        seed = self.noise_seed.assign_add(tf.constant([0, 1], tf.int64))
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Without this every replica would draw the same noise.
            seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
        uniform = tf.random.stateless_uniform(
            [batch_size, self.num_candidates], seed=seed, minval=_TINY, maxval=1.0
        )
        return -tf.math.log(-tf.math.log(uniform))

    def _training_weights(self, batch_size: tf.Tensor) -> tf.Tensor:
        log_alpha = tf.nn.log_softmax(self.alpha_logits)
        noise = self._gumbel_noise(batch_size)
        probs = tf.nn.softmax((log_alpha + noise) / self.temperature, axis=-1)
        if not self.hard:
            return probs
        one_hot = tf.one_hot(tf.argmax(probs, axis=-1), self.num_candidates, dtype=probs.dtype)
        # one_hot + (p - p) is exactly the one-hot forward, with the gradient of p.
        return one_hot + (probs - tf.stop_gradient(probs))

    def call(self, candidates: tf.Tensor, training=None) -> tf.Tensor:
        return select_candidates([self], tf.expand_dims(candidates, 0), training=training)[0]

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        return tf.TensorShape([input_shape[0], input_shape[2]])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_candidates": self.num_candidates,
                "hard": self.hard,
                "initial_temperature": self.initial_temperature,
                "seed": self.seed,
            }
        )
        return config


def select_candidates(
    selectors: Sequence[DimensionGumbelSelector], candidates: tf.Tensor, training=None
) -> tf.Tensor:
    """Mixes the candidates of several fields, each with its own selector, at once.

    The selection weights are each selector's (its own alpha, temperature and
    noise); the weighted sum over the candidates is one op for all fields.
    `DimensionGumbelSelector.call` is this function for one field. As with
    `unify_candidates`, the numbers of a field can differ from those of its
    selector alone in the last bits of float32.

    Args:
        selectors: the built `DimensionGumbelSelector`s of the fields, all with
            the same number N of candidates.
        candidates: `[fields, batch, N, dim]`, the unified candidates of the
            fields in the order of `selectors`.
        training: bool or bool tensor, Gumbel-softmax weights with noise, or
            the deterministic softmax(alpha).

    Returns:
        A tensor `[fields, batch, dim]`.

    Examples:

        >>> selectors = [DimensionGumbelSelector(2, seed=0), DimensionGumbelSelector(2, seed=1)]
        >>> for selector in selectors:
        ...     selector.build((None, 2, 1))
        >>> candidates = tf.constant([[[[1.0], [3.0]]], [[[2.0], [4.0]]]])  # [2, 1, 2, 1]
        >>> select_candidates(selectors, candidates).numpy().tolist()  # equal weights at first
        [[[2.0]], [[3.0]]]
    """
    first = selectors[0]
    if any(selector.num_candidates != first.num_candidates for selector in selectors):
        raise ValueError(
            "Selectors that mix together must have the same number of candidates. "
            f"Received: {[selector.num_candidates for selector in selectors]}"
        )
    candidates = tf.convert_to_tensor(candidates, dtype=first.compute_dtype)

    def noisy():
        batch_size = tf.shape(candidates)[1]
        weights = tf.stack([selector._training_weights(batch_size) for selector in selectors])
        # A broadcast product and a sum: the einsum "fbn,fbnd->fbd" would be a batch of
        # [1, N] x [N, d] matmuls, several times slower on CPU.
        weights = tf.cast(weights, candidates.dtype)[..., None]
        return tf.reduce_sum(weights * candidates, axis=2)

    def deterministic():
        # softmax of each alpha alone: one over the rows of [fields, N] adds in
        # another order than one over a single row.
        weights = tf.stack([selector.probabilities() for selector in selectors])
        return tf.einsum("fn,fbnd->fbd", tf.cast(weights, candidates.dtype), candidates)

    if training is None:
        training = False
    elif tf.is_tensor(training):
        training = tf.cast(training, tf.bool)
    return static_cond(training, noisy, deterministic)
