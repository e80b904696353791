"""``%kfit --repeat N``: fresh initial weights and optimizer state per seed, and keeping the best run's weights."""

from __future__ import annotations

import math
from typing import Any

from kmagic.callbacks.history import monitor_mode
from kmagic.run_log import Run


def fresh_start(model: Any, seed: int) -> None:
    """Give ``model`` the initial weights its layers draw under ``seed`` and a fresh optimizer state.

    Preprocessing layers that hold adapted statistics (Normalization,
    TextVectorization, the lookups) keep them: they are data, not weights.
    """
    from kmagic._keras import keras
    from kmagic.registry import ADAPT_CLASSES
    from kmagic.training import _compile_scope

    k = keras()
    k.utils.set_random_seed(seed)
    with _compile_scope(model):
        clone = k.models.clone_model(model)
    for layer, fresh in zip(model.layers, clone.layers, strict=True):
        if type(layer).__name__ in ADAPT_CLASSES or not layer.weights:
            continue
        layer.set_weights(fresh.get_weights())
    reset_optimizer(model)
    k.utils.set_random_seed(seed)  # shuffling and dropout of this run


def reset_optimizer(model: Any) -> None:
    """Put the optimizer's moments and iteration count back to those of a new optimizer of the same config."""
    from kmagic.lr_finder import optimizer_variables
    from kmagic.training import _compile_scope

    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", False):
        return
    with _compile_scope(model):
        fresh = type(optimizer).from_config(optimizer.get_config())
        fresh.build(model.trainable_variables)
    old, new = optimizer_variables(optimizer), optimizer_variables(fresh)
    if len(old) != len(new):
        for variable in old:  # an optimizer whose state we cannot pair up: zeros are its usual start
            if "learning_rate" not in variable.path:
                variable.assign(variable.numpy() * 0)
        return
    for variable, start in zip(old, new, strict=True):
        variable.assign(start.numpy())


def monitor_of(runs: list[Run]) -> str:
    """``val_loss`` when every run has it, else ``loss``."""
    return "val_loss" if runs and all(run.final.get("val_loss") is not None for run in runs) else "loss"


def is_better(run: Run, than: Run | None, monitor: str) -> bool:
    """Whether ``run`` ends better than ``than`` on ``monitor`` (the weights kept are a run's final ones;
    a missing value never wins)."""
    value = run.final.get(monitor)
    if value is None or not math.isfinite(value):
        return False
    other = than.final.get(monitor) if than is not None else None
    if other is None:
        return True
    return value < other if monitor_mode(monitor) == "min" else value > other


def weights_of(model: Any) -> list[Any]:
    """Copies of every model variable (weights, statistics, seed states), to put back with :func:`set_weights`."""
    import numpy as np

    return [np.array(v.numpy(), copy=True) for v in model.variables]


def set_weights(model: Any, values: list[Any]) -> None:
    for variable, value in zip(model.variables, values, strict=True):
        variable.assign(value)
