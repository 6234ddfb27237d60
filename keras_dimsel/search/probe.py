"""Deriving dimensions by probing the trained supernet on validation data."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from keras_dimsel.layers.dimension_selector import DimensionGumbelSelector

#: A logit gap after which softmax puts all but ~1e-13 of the weight on one candidate.
_FORCE_LOGIT = 30.0


def find_selectors(model: tf.keras.Model) -> Dict[str, DimensionGumbelSelector]:
    """The model's `DimensionGumbelSelector` layers by name, in tracking order."""
    return {
        module.name: module
        for module in model.submodules
        if isinstance(module, DimensionGumbelSelector)
    }


def probe_candidates(
    model: tf.keras.Model,
    validation: tf.data.Dataset,
    selectors: Optional[Dict[str, DimensionGumbelSelector]] = None,
) -> Dict[str, List[float]]:
    """Validation loss of the supernet with one field forced onto each candidate.

    For every selector in turn, and every candidate n of it, the selector's
    logits are set so that softmax puts all the weight on candidate n; the
    other selectors keep their learned weights softmax(alpha). The model is
    evaluated on `validation` (inference mode: no Gumbel noise, BatchNorm
    moving statistics), and the logits are restored afterwards.

    This is the perturbation-based selection of Wang et al. (2021): it asks
    the trained supernet which candidate it does best with, instead of reading
    the magnitude of alpha. Magnitudes can mislead with first-order updates of
    a softmax mixture: the gradient of the validation loss in alpha measures
    whether scaling a candidate's (normalized) output up helps, which favours a
    low-rank candidate whose variance is concentrated in a few useful
    directions over a richer one (see `DimensionPlan.from_probe`).

    Args:
        model: a compiled model containing `DimensionGumbelSelector` layers;
            `model.evaluate(validation)` must report a `"loss"`.
        validation: tf.data.Dataset of validation batches (the data the search
            fitted alpha on, not the test data).
        selectors: dict of key to selector; defaults to `find_selectors(model)`
            keyed by layer name.

    Returns:
        A dict with the same keys: the validation loss per candidate.

    Raises:
        ValueError: if the model has no selectors or does not report a loss.

    Example:

    ```python
    losses = probe_candidates(search_model, validation_batches)
    # {"selector_user": [0.534, 0.537, 0.527, 0.532, 0.534], ...}
    ```

    References:
        Wang et al., "Rethinking Architecture Selection in Differentiable
        NAS", ICLR 2021.
    """
    if selectors is None:
        selectors = find_selectors(model)
    if not selectors:
        raise ValueError(f"Model {model.name!r} has no DimensionGumbelSelector to probe.")

    def validation_loss() -> float:
        results = model.evaluate(validation, return_dict=True, verbose=0)
        if "loss" not in results:
            raise ValueError(
                "`model.evaluate` must report a 'loss' to probe candidates; compile the "
                f"model with a loss. Reported: {sorted(results)}"
            )
        return float(results["loss"])

    losses = {}
    for key, selector in selectors.items():
        saved = selector.alpha_logits.numpy()
        row = []
        try:
            for n in range(selector.num_candidates):
                selector.alpha_logits.assign(np.eye(selector.num_candidates)[n] * _FORCE_LOGIT)
                row.append(validation_loss())
        finally:
            selector.alpha_logits.assign(saved)
        losses[key] = row
    return losses


def choose_by_loss(losses: Sequence[float], tolerance: float = 0.0) -> int:
    """Index of the first (smallest) candidate within `tolerance` of the lowest loss."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0 or not np.all(np.isfinite(losses)):
        raise ValueError(f"`losses` must be a non-empty list of finite numbers: {losses}")
    if tolerance < 0:
        raise ValueError(f"`tolerance` must be >= 0. Received: tolerance={tolerance}")
    return int(np.flatnonzero(losses <= losses.min() + tolerance)[0])
