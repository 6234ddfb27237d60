"""Probing a searched supernet: the validation loss of each field at each candidate.

AutoDim derives a field's dimension from its architecture weights (argmax of
alpha). The weights say which candidate the first-order gradient favoured while
the network was still learning, which is not always the candidate the trained
network needs: small candidates fit fast, and on small data sets alpha can
settle on them before larger ones have learned anything. Probing asks the
trained supernet directly, one field at a time:

    L_m(d_n) = validation loss with field m forced to candidate d_n,
               every other field at its searched mixture

and `DimensionPlan.from_losses` then keeps the smallest candidate whose loss is
within a tolerance of the field's best. This is the perturbation-based
architecture selection of Wang et al., "Rethinking Architecture Selection in
Differentiable NAS", ICLR 2021, applied to AutoDim's per-field choice.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np
import tensorflow as tf

from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector

# Logits of a forced candidate: softmax gives the others e^-60 (~1e-26) each, which
# vanishes against the float32 resolution of the chosen candidate's weight.
_FORCED_LOGIT = 60.0


def find_selectors(model: tf.keras.Model) -> Dict[str, DimensionGumbelSelector]:
    """The model's selectors by field: `model.field_embeddings.selectors` when
    the model has them, otherwise every `DimensionGumbelSelector` in the model,
    keyed by layer name.

    Args:
        model: tf.keras.Model, a search-stage model (a ready ranker or any
            Keras model with `DimensionGumbelSelector` layers).

    Returns:
        dict of str to `DimensionGumbelSelector`: field names for the ready
        rankers (`autodim.search_model`), layer names otherwise.

    Examples:

        >>> candidates = tf.keras.Input(shape=(2, 1))
        >>> selector = DimensionGumbelSelector(num_candidates=2, name="selector_user")
        >>> model = tf.keras.Model(candidates, selector(candidates))
        >>> list(find_selectors(model))
        ['selector_user']
    """
    field_embeddings = getattr(model, "field_embeddings", None)
    selectors = getattr(field_embeddings, "selectors", None)
    if selectors:
        return dict(selectors)
    found = {}
    for layer in model.submodules:
        if isinstance(layer, DimensionGumbelSelector):
            found[layer.name] = layer
    return found


@contextlib.contextmanager
def forced_candidate(selector: DimensionGumbelSelector, index: int) -> Iterator[None]:
    """Within the block, the selector's deterministic weights are one-hot on `index`.

    The alpha logits are restored on exit, also when the block raises.

    Args:
        selector: DimensionGumbelSelector, a built selector.
        index: int in [0, N), the candidate to force.

    Raises:
        ValueError: when `index` is out of range.

    Examples:

        >>> selector = DimensionGumbelSelector(num_candidates=2)
        >>> candidates = tf.constant([[[1.0], [3.0]]])  # candidate 0 is 1, candidate 1 is 3
        >>> selector(candidates).numpy().tolist()  # softmax(alpha): equal weights
        [[2.0]]
        >>> with forced_candidate(selector, 1):
        ...     selector(candidates).numpy().tolist()
        [[3.0]]
        >>> selector(candidates).numpy().tolist()
        [[2.0]]
    """
    if not 0 <= index < selector.num_candidates:
        raise ValueError(
            f"`index` must be in [0, {selector.num_candidates}). Received: index={index}"
        )
    saved = tf.identity(selector.alpha_logits)
    selector.alpha_logits.assign(
        np.eye(selector.num_candidates, dtype=np.float32)[index] * _FORCED_LOGIT
    )
    try:
        yield
    finally:
        selector.alpha_logits.assign(saved)


def probe_losses(
    model: tf.keras.Model,
    data: Any,
    selectors: Optional[Mapping[str, DimensionGumbelSelector]] = None,
    steps: Optional[int] = None,
) -> Dict[str, List[float]]:
    """The loss on `data` of the compiled model with each field forced to each candidate.

    Runs `model.evaluate` (deterministic weights: no Gumbel noise, BatchNorm in
    inference mode) once per field and candidate, N * M passes over `data` in
    all, with every other field at its softmax(alpha) mixture.

    Args:
        model: a compiled search-stage model.
        data: what `model.evaluate` takes, normally the validation batches
            (not the test split: the probe is part of the search).
        selectors: dict of str to `DimensionGumbelSelector`, the fields to
            probe; None probes every selector of the model (`find_selectors`).
        steps: int or None, batches per evaluation (None: all of `data`).

    Returns:
        dict of str to list of float: per field, the loss at each candidate,
        in candidate order.

    Raises:
        ValueError: when the model has no selectors to probe.

    Examples:

        A one-field model whose output is the mixture of its two candidates,
        with a label that candidate 0 gives exactly:

        >>> candidates = tf.keras.Input(shape=(2, 1))
        >>> selector = DimensionGumbelSelector(num_candidates=2, name="selector")
        >>> model = tf.keras.Model(candidates, selector(candidates))
        >>> model.compile(loss="mse")
        >>> x, y = tf.constant([[[1.0], [3.0]]]), tf.constant([[1.0]])
        >>> probe_losses(model, tf.data.Dataset.from_tensors((x, y)))  # (1 - 1)^2, (3 - 1)^2
        {'selector': [0.0, 4.0]}
    """
    selectors = dict(selectors) if selectors is not None else find_selectors(model)
    if not selectors:
        raise ValueError("The model has no DimensionGumbelSelector to probe.")
    losses = {}
    for name, selector in selectors.items():
        row = []
        for index in range(selector.num_candidates):
            with forced_candidate(selector, index):
                results = model.evaluate(data, steps=steps, return_dict=True, verbose=0)
            row.append(float(results["loss"]))
        losses[name] = row
    return losses
