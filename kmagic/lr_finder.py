"""The learning-rate finder behind ``%klr``: ``kmagic.lr_find(model, x, y)``.

An exponential sweep of the learning rate from ``start`` to ``end`` over
``steps`` batches (one ``train_on_batch`` each), the loss smoothed with an
exponential moving average (debiased, as fastai does), stopped when the
smoothed loss exceeds ``diverge`` times its minimum or is not finite. Every
model variable and every optimizer variable (moments, iteration count, the
learning rate, a loss scale) is copied before the sweep and assigned back
after it, so the model is bit for bit what it was. Two rules suggest a rate,
both from fastai (``fastai.callback.schedule``), computed on the sweep without
its first tenth and last five points:

- ``valley`` (fastai's default): the longest stretch over which the loss keeps
  decreasing; the rate a little past its first third (fastai's index rule);
- ``steepest``: where the smoothed loss falls fastest against log10(rate).

The suggestion is the valley's rate (the steepest point when no valley of
three or more points exists).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kmagic import keras_internals
from kmagic.errors import KmagicDataError, KmagicValueError


@dataclass
class LRFinding:
    """What the sweep measured and what it suggests; shows as a PNG plus text in a notebook."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    start: float
    end: float
    steps: int
    suggestion: float | None = None
    rule: str = ""
    suggestions: dict[str, float] = field(default_factory=dict)
    stopped: str = ""
    applied: bool = False
    model: str = ""

    def text(self) -> str:
        """Readable lines: the range swept, where it stopped, the suggestion and its rule."""
        swept = f"swept {len(self.lrs)} batch(es), learning rate {self.start:.1e} -> {self.end:.1e}"
        if self.lrs:
            swept += f" (reached {self.lrs[-1]:.2e})"
        lines = [f"{self.model + ': ' if self.model else ''}{swept}"]
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        if self.suggestion is None:
            lines.append("no suggestion: the loss did not go down during the sweep")
        else:
            lines.append(f"suggested learning rate {self.suggestion:.2e} ({self.rule})")
            others = [f"{name} {value:.2e}" for name, value in self.suggestions.items()]
            lines.append("rules: " + ", ".join(others))
        if self.applied:
            lines.append(f"applied: the optimizer's learning rate is now {self.suggestion:.2e}")
        lines.append("weights and optimizer state restored to what they were before the sweep")
        return "\n".join(lines)

    def png(self) -> bytes:
        """The smoothed loss against the learning rate on a log axis, the suggestions marked."""
        from kmagic.widgets.runs_view import lr_png

        return lr_png(self)

    def __repr__(self) -> str:
        return self.text()

    def _repr_png_(self) -> bytes:
        return self.png()


def lr_find(model: Any, x: Any, y: Any = None, *, start: float = 1e-7, end: float = 10.0, steps: int = 100,
            batch_size: int = 32, beta: float = 0.98, diverge: float = 4.0, apply: bool = False,
            seed: int = 0) -> LRFinding:
    """Sweep the learning rate exponentially over ``steps`` batches of ``(x, y)``; restore the model; suggest a rate.

    ``model`` must be compiled with an optimizer that has a fixed learning rate
    (a schedule is refused). ``x`` and ``y`` are arrays (or dicts/lists of
    arrays), or ``x`` is a ``tf.data`` dataset of batches. With ``apply`` the
    optimizer's learning rate is set to the suggestion afterwards.
    """
    optimizer = _check(model, start, end, steps)
    batches = _batches(x, y, batch_size, seed)
    saved = _snapshot(model, optimizer)
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    stopped, average, best = "", 0.0, math.inf
    try:
        for i in range(steps):
            lr = start * (end / start) ** (i / max(1, steps - 1))
            optimizer.learning_rate = lr
            xb, yb = next(batches)
            logs = model.train_on_batch(xb, yb, return_dict=True)
            loss = float(logs["loss"])
            lrs.append(lr)
            losses.append(loss)
            if not math.isfinite(loss):
                smoothed.append(math.nan)
                stopped = f"the loss became {loss} at learning rate {lr:.2e}"
                break
            average = beta * average + (1 - beta) * loss
            value = average / (1 - beta ** (i + 1))
            smoothed.append(value)
            best = min(best, value)
            if i > 0 and value > diverge * best:
                stopped = f"the smoothed loss exceeded {diverge:g}x its minimum at learning rate {lr:.2e}"
                break
    finally:
        _restore(saved)
    finding = LRFinding(lrs, losses, smoothed, start, end, steps, stopped=stopped, model=getattr(model, "name", ""))
    _suggest(finding)
    if apply and finding.suggestion is not None:
        optimizer.learning_rate = finding.suggestion
        finding.applied = True
    return finding


# ---------------------------------------------------------------- checks and data


def _check(model: Any, start: float, end: float, steps: int) -> Any:
    if not (0 < start < end and math.isfinite(end)):
        raise KmagicValueError(f"expected 0 < start < end for the learning-rate sweep, received start={start:g}, "
                               f"end={end:g}")
    if steps < 5:
        raise KmagicValueError(f"expected at least 5 steps for the learning-rate sweep, received {steps}")
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(model, "compiled", False):
        raise KmagicValueError(f"expected a compiled model, received '{getattr(model, 'name', model)}' without an "
                               "optimizer: compile it first (or use %klr, which compiles as %kfit does)")
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = keras_internals.raw_learning_rate(inner)
    if rate is None or not hasattr(optimizer, "learning_rate"):
        raise KmagicValueError(f"expected an optimizer with a learning rate, received {type(inner).__name__}")
    from kmagic._keras import keras

    if isinstance(rate, keras().optimizers.schedules.LearningRateSchedule) or (callable(rate)
                                                                               and not hasattr(rate, "assign")):
        raise KmagicValueError(f"expected an optimizer with a fixed learning rate, received a learning-rate schedule "
                               f"({type(rate).__name__}) on {type(inner).__name__}: the finder sets the rate itself "
                               "each batch. Compile with a number as the learning rate to run it, then put the "
                               "schedule back")
    return optimizer


def _batches(x: Any, y: Any, batch_size: int, seed: int) -> Any:
    """An endless iterator of (x, y) batches: shuffled slices of arrays, or a dataset's batches repeated."""
    if type(x).__name__.endswith("Dataset") and hasattr(x, "repeat"):
        def from_dataset() -> Any:
            for item in x.repeat():
                yield (item[0], item[1]) if isinstance(item, tuple) else (item, None)

        return from_dataset()
    import numpy as np

    first = _first_array(x)
    n = len(first)
    if n == 0:
        raise KmagicDataError("expected training data with at least one sample, received none")
    if y is not None and len(_first_array(y)) != n:
        raise KmagicDataError(f"expected as many labels as inputs, received {n} inputs and "
                              f"{len(_first_array(y))} labels")
    rng = np.random.default_rng(seed)

    def take(data: Any, index: Any) -> Any:
        if data is None:
            return None
        if isinstance(data, dict):
            return {k: np.asarray(v)[index] for k, v in data.items()}
        if isinstance(data, (list, tuple)) and data and hasattr(data[0], "shape"):
            return type(data)(np.asarray(v)[index] for v in data)
        return np.asarray(data)[index]

    def endless() -> Any:
        while True:
            order = rng.permutation(n)
            for begin in range(0, max(1, n - batch_size + 1), batch_size):  # full batches: one trace
                index = order[begin: begin + batch_size]
                yield take(x, index), take(y, index)

    return endless()


def _first_array(data: Any) -> Any:
    if isinstance(data, dict):
        return next(iter(data.values()))
    if isinstance(data, (list, tuple)) and data and hasattr(data[0], "shape"):
        return data[0]
    return data


# ---------------------------------------------------------------- exact save and restore


def optimizer_variables(optimizer: Any) -> list[Any]:
    """Every variable of an optimizer (a loss-scale wrapper's and its inner optimizer's), each once."""
    seen: dict[int, Any] = {}
    for opt in (optimizer, getattr(optimizer, "inner_optimizer", None)):
        for variable in getattr(opt, "variables", None) or []:
            seen.setdefault(id(variable), variable)
    return list(seen.values())


def _snapshot(model: Any, optimizer: Any) -> list[tuple[Any, Any]]:
    """Copies of every model and optimizer variable (the optimizer is built first so its state exists)."""
    import numpy as np

    if not getattr(optimizer, "built", True):
        from kmagic.training import _compile_scope

        with _compile_scope(model):
            optimizer.build(model.trainable_variables)
    variables = {id(v): v for v in [*model.variables, *optimizer_variables(optimizer)]}
    return [(v, np.array(v.numpy(), copy=True)) for v in variables.values()]


def _restore(saved: list[tuple[Any, Any]]) -> None:
    for variable, value in saved:
        variable.assign(value)


# ---------------------------------------------------------------- suggestions (fastai's rules)


def _suggest(finding: LRFinding) -> None:
    pairs = [(lr, s) for lr, s in zip(finding.lrs, finding.smoothed, strict=True) if math.isfinite(s)]
    n = len(pairs)
    trimmed = pairs[n // 10: n - 5] if n >= 20 else pairs
    if len(trimmed) < 3:
        return
    lrs = [p[0] for p in trimmed]
    losses = [p[1] for p in trimmed]
    steep = _steepest(lrs, losses)
    if steep is not None:
        finding.suggestions["steepest descent"] = steep
    valley = _valley(lrs, losses)
    if valley is not None:
        finding.suggestions["valley"] = valley
        finding.suggestion, finding.rule = valley, ("valley: a little past the first third of the longest "
                                                    "stretch where the loss keeps falling (fastai's default)")
    elif steep is not None:
        finding.suggestion, finding.rule = steep, "steepest descent: where the loss falls fastest (no valley found)"


def _steepest(lrs: list[float], losses: list[float]) -> float | None:
    logs = [math.log10(lr) for lr in lrs]
    slopes = []
    for i in range(len(losses)):
        lo, hi = max(0, i - 1), min(len(losses) - 1, i + 1)
        slopes.append((losses[hi] - losses[lo]) / (logs[hi] - logs[lo]))
    i = min(range(len(slopes)), key=slopes.__getitem__)
    return lrs[i] if slopes[i] < 0 else None


def _valley(lrs: list[float], losses: list[float]) -> float | None:
    """fastai's ``valley``: the longest decreasing subsequence, and a point past its first third."""
    n = len(losses)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    if lds[max_end] < 3:
        return None
    sections = (max_end - max_start) / 3
    index = max_start + int(sections) + int(sections / 2)
    return lrs[min(index, n - 1)]
