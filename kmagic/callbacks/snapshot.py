"""Copies of a model's training state (weights and optimizer variables), kept cheaply during a fit.

A :class:`WeightSnapshots` keeps one copy, the latest one whose values are
all finite, and puts it back on request. The recorder takes a copy at the
start of a batch (so it holds the result of whole steps only): at the start
of every epoch and then every ``interval`` seconds of wall time, but, after
the first copy of a fit, never so often that copying costs more than
``budget`` (1%) of the training time (a copy that took 5 ms allows the next
one 0.5 s later at the earliest).
"""

from __future__ import annotations

import time
from typing import Any


def state_variables(model: Any) -> list[Any]:
    """The model's weights (trainable or not) and its optimizer's variables, each once."""
    variables: list[Any] = list(getattr(model, "weights", []) or [])
    optimizer = getattr(model, "optimizer", None)
    extra = getattr(optimizer, "variables", None) if optimizer is not None else None
    if callable(extra):  # tf_keras optimizers: a method
        extra = extra()
    variables += list(extra or [])
    seen: set[int] = set()
    unique = []
    for variable in variables:
        if id(variable) not in seen and hasattr(variable, "assign"):
            seen.add(id(variable))
            unique.append(variable)
    return unique


def _value(variable: Any) -> Any:
    import numpy as np

    value = variable.numpy() if hasattr(variable, "numpy") else variable
    return np.array(value, copy=True)


def _finite(values: list[Any]) -> bool:
    import numpy as np

    return all(not np.issubdtype(v.dtype, np.inexact) or bool(np.isfinite(v).all()) for v in values)


class WeightSnapshots:
    """The latest finite copy of a model's training state, and where in training it was taken."""

    def __init__(self, interval: float = 1.0, budget: float = 0.01) -> None:
        self.interval = max(0.0, float(interval))
        self.budget = budget
        self.position: tuple[int, int] | None = None  # (epoch 1-based, batches done in that epoch)
        self.copies = 0
        self.seconds = 0.0
        self._saved: list[tuple[Any, Any]] = []
        self._next = 0.0  # by the interval
        self._allowed = 0.0  # by the cost budget

    def reset(self) -> None:
        """Forget the copy (a new fit begins)."""
        self._saved, self.position, self._next, self._allowed = [], None, 0.0, 0.0

    def due(self, epoch_start: bool = False) -> bool:
        """Whether a copy is due now: the interval has passed (or an epoch starts) and the budget allows."""
        now = time.monotonic()
        return now >= self._allowed and (epoch_start or now >= self._next)

    def take(self, model: Any, position: tuple[int, int]) -> bool:
        """Copy the state now; kept only if every value is finite. Whether it was kept."""
        started = time.monotonic()
        variables = state_variables(model)
        values = [_value(v) for v in variables]
        kept = _finite(values)
        if kept:
            self._saved = list(zip(variables, values, strict=True))
            self.position = position
        took = time.monotonic() - started
        self.copies += 1
        self.seconds += took
        # At most `budget` of the wall time goes to copying, whatever the model's size.
        now = time.monotonic()
        self._allowed = now + (took / self.budget if self.budget else 0.0)
        self._next = max(self._allowed, now + self.interval)
        return kept

    @property
    def available(self) -> bool:
        return bool(self._saved)

    def restore(self) -> tuple[int, int] | None:
        """Put the copy back into the variables it came from; its position, or None without one."""
        if not self._saved:
            return None
        for variable, value in self._saved:
            variable.assign(value)
        return self.position
