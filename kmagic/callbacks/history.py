"""A plain record of one training run: per-batch and per-epoch series, no Keras.

The Keras hooks in :mod:`kmagic.callbacks.recorder` write into it; widgets and
static plots read from it. Everything here is plain Python (floats and lists),
so it can be pickled, compared in tests and sent to a front end.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Points per series a new view receives at most (a long run is thinned evenly).
MAX_SYNC_POINTS = 4000
_MAX_MODES = {"acc", "accuracy", "auc", "precision", "recall", "f1", "r2"}


def monitor_mode(monitor: str) -> str:
    """``"max"`` for metrics where bigger is better (accuracy, AUC, ...), else ``"min"``."""
    base = monitor.removeprefix("val_").lower()
    if base in _MAX_MODES or base.endswith("accuracy") or base.endswith("auc"):
        return "max"
    return "min"


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass
class Cursor:
    """How many points of each kind a consumer has already seen."""

    batches: int = 0
    epochs: int = 0
    lr: int = 0


@dataclass
class TrainingHistory:
    """Everything one fit produced, in plain Python.

    ``batch_x`` holds the position of each recorded batch in epochs (``1.5`` is
    the middle of the second epoch); ``batch[name]`` the value Keras reported
    after that batch (Keras reports running means over the epoch so far).
    ``epoch[name]`` holds one value per finished epoch, validation metrics
    under ``val_*``. ``lr`` lists ``(epoch, learning_rate)`` each time it changed.
    """

    epochs_planned: int = 0
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    monitor: str | None = None
    batch_x: list[float] = field(default_factory=list)
    batch: dict[str, list[float]] = field(default_factory=dict)
    epoch_x: list[int] = field(default_factory=list)
    epoch: dict[str, list[float]] = field(default_factory=dict)
    lr: list[tuple[int, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    nan_detected: bool = False
    nan_at: tuple[int, int] | None = None
    stopped_early: bool = False
    stop_reason: str | None = None
    stopped_at: tuple[int, int] | None = None
    restored_from: tuple[int, int] | None = None
    finished: bool = False
    started_at: float | None = None
    ended_at: float | None = None
    current_epoch: int = 0
    current_step: int = 0
    train_seconds: float = 0.0
    timed_batches: int = 0
    validation_seconds: float = 0.0
    timed_validations: int = 0
    run_batches: int = 0
    last_batch_at: float | None = None
    _last_batch_end: float | None = field(default=None, repr=False)
    _epochs_param: int = field(default=0, repr=False)
    _offset: int | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # -- writing (called from the Keras hooks) ---------------------------------

    def start(self, epochs: int, steps: int | None, batch_size: int | None = None) -> None:
        """A fit begins (a second fit on the same record continues its series)."""
        self._epochs_param = int(epochs or 0)
        self.epochs_planned = len(self.epoch_x) + self._epochs_param
        self._offset = None
        self.steps_per_epoch = steps
        self.batch_size = batch_size
        self.started_at = time.monotonic()
        self.ended_at = None
        self.train_seconds, self.timed_batches = 0.0, 0
        self.validation_seconds, self.timed_validations = 0.0, 0
        self._last_batch_end = None
        self.run_batches, self.last_batch_at = 0, None
        self.finished = False
        self.stopped_early = False
        self.stop_reason = None
        self.stopped_at = None
        self.restored_from = None

    def begin_epoch(self, epoch: int, learning_rate: float | None) -> int:
        """Epoch ``epoch`` (0-based, as Keras counts) starts with this learning rate.

        Returns the epoch's index in this record: a second ``fit`` (Keras counts
        from 0 again, unless ``initial_epoch`` says otherwise) continues the series.
        """
        if self._offset is None:
            self._offset = max(0, len(self.epoch_x) - epoch)
            self.epochs_planned = self._epochs_param + self._offset
        epoch += self._offset
        self.current_epoch = epoch
        self.current_step = 0
        self._last_batch_end = None  # the first batch of an epoch is not timed (tracing, data start-up)
        if learning_rate is not None and math.isfinite(learning_rate):
            with self._lock:
                if not self.lr or not math.isclose(self.lr[-1][1], learning_rate, rel_tol=1e-6):
                    self.lr.append((epoch + 1, float(learning_rate)))
        return epoch

    def add_batch(self, epoch: int, step: int, logs: dict[str, Any] | None) -> None:
        """Record the logs Keras gave after ``step`` (0-based) of ``epoch``."""
        steps = self.steps_per_epoch
        x = epoch + (step + 1) / steps if steps else epoch + 1.0
        now = time.monotonic()
        loss = None
        with self._lock:
            if self._last_batch_end is not None:  # batch-to-batch time inside one epoch
                self.train_seconds += now - self._last_batch_end
                self.timed_batches += 1
            self._last_batch_end = self.last_batch_at = now
            self.run_batches += 1
            self.current_step = step + 1
            batch, n = self.batch, len(self.batch_x)
            self.batch_x.append(x)
            added = 0
            for name, raw in (logs or {}).items():
                try:
                    value = float(raw)
                except (TypeError, ValueError):
                    continue
                series = batch.get(name)
                if series is None:
                    series = batch[name] = [math.nan] * n
                series.append(value)
                added += 1
                if name == "loss":
                    loss = value
            if added != len(batch):  # a series this batch did not report stays aligned
                for series in batch.values():
                    if len(series) == n:
                        series.append(math.nan)
        if loss is not None and not math.isfinite(loss) and not self.nan_detected:
            self.nan_detected = True
            self.nan_at = (epoch + 1, step + 1)

    def add_epoch(self, epoch: int, logs: dict[str, Any] | None) -> None:
        """Record the epoch-end logs (train and ``val_*``) of ``epoch`` (0-based)."""
        values = _numbers(logs)
        if self._last_batch_end is not None and any(k.startswith("val_") for k in values):
            self.validation_seconds += time.monotonic() - self._last_batch_end
            self.timed_validations += 1
        self._last_batch_end = None
        with self._lock:
            n = len(self.epoch_x)
            self.epoch_x.append(epoch + 1)
            for name, value in values.items():
                series = self.epoch.get(name)
                if series is None:
                    series = self.epoch[name] = [math.nan] * n
                series.append(value)
            for series in self.epoch.values():
                if len(series) == n:
                    series.append(math.nan)
        for name in ("loss", "val_loss"):
            logged = values.get(name)
            if logged is not None and not math.isfinite(logged) and not self.nan_detected:
                self.nan_detected = True
                self.nan_at = (epoch + 1, self.current_step)
        self._update_best()

    def finish(self, reason: str | None = None) -> None:
        """Training ended; ``reason`` is set when it ended before the planned epochs."""
        self.ended_at = time.monotonic()
        self.finished = True
        if reason is not None:
            self.stopped_early = True
            self.stop_reason = reason
        elif len(self.epoch_x) < self.epochs_planned:
            self.stopped_early = True
            self.stop_reason = self.stop_reason or "stopped by a callback"
        if self.stopped_early:
            self.stopped_at = (self.current_epoch + 1, self.current_step)

    def where_stopped(self) -> str:
        """``"epoch 2/5, batch 7/20"``: the last batch that ran (when training stopped early)."""
        if self.stopped_at is None:
            return ""
        epoch, step = self.stopped_at
        steps = f"/{self.steps_per_epoch}" if self.steps_per_epoch else ""
        return f"epoch {epoch}/{self.epochs_planned}, batch {step}{steps}"

    # -- reading ---------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Seconds since training started (until it ended)."""
        if self.started_at is None:
            return 0.0
        return (self.ended_at or time.monotonic()) - self.started_at

    @property
    def progress(self) -> float:
        """Fraction of the planned batches done, 0..1."""
        if not self.epochs_planned:
            return 0.0
        steps = self.steps_per_epoch
        done = self.current_epoch + (self.current_step / steps if steps else 0.0)
        return min(1.0, done / self.epochs_planned)

    def rates(self) -> tuple[float | None, float | None]:
        """``(batches/s, ETA in s)`` from measured batch times of this fit.

        The rate is batches over the time between consecutive batch ends inside
        an epoch: the first batch of each epoch (graph tracing, data start-up),
        validation and any pause after the last batch (an interrupt) are not
        counted, so the rate neither starts low nor drops after training
        stopped. The ETA adds the measured validation time per remaining epoch.
        """
        if self.timed_batches and self.train_seconds > 0:
            rate = self.timed_batches / self.train_seconds
        elif self.run_batches and self.last_batch_at is not None and self.started_at is not None \
                and self.last_batch_at > self.started_at and self.epoch_x:
            rate = self.run_batches / (self.last_batch_at - self.started_at)  # one batch per epoch
        else:
            return None, None
        if self.finished or not self.epochs_planned or not self.steps_per_epoch:
            return rate, None
        done = self.current_epoch * self.steps_per_epoch + self.current_step
        left = max(0, self.epochs_planned * self.steps_per_epoch - done)
        eta = left / rate
        if self.timed_validations:
            epochs_left = max(0, self.epochs_planned - len(self.epoch_x))
            eta += epochs_left * self.validation_seconds / self.timed_validations
        return rate, eta

    def status(self) -> dict[str, Any]:
        """Progress numbers for a display: epoch, step, elapsed, ETA, rates."""
        elapsed = self.elapsed
        progress = self.progress
        steps_per_s, eta = self.rates()
        if eta is None and not self.steps_per_epoch and 0 < progress < 1 and not self.finished:
            eta = elapsed * (1 - progress) / progress  # unknown batches per epoch: epochs done so far
        samples_per_s = steps_per_s * self.batch_size if steps_per_s and self.batch_size else None
        return {
            "epoch": min(self.current_epoch + 1, max(self.epochs_planned, 1)),
            "epochs": self.epochs_planned,
            "step": self.current_step,
            "steps": self.steps_per_epoch,
            "progress": progress,
            "epochs_run": len(self.epoch_x),
            "elapsed": elapsed,
            "eta": eta,
            "steps_per_s": steps_per_s,
            "samples_per_s": samples_per_s,
            "finished": self.finished,
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "nan_detected": self.nan_detected,
            "nan_at": list(self.nan_at) if self.nan_at else None,
            "stopped_at": list(self.stopped_at) if self.stopped_at else None,
            "restored_from": list(self.restored_from) if self.restored_from else None,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "monitor": self.monitor,
        }

    def new_points(self, cursor: Cursor) -> dict[str, Any]:
        """The points recorded since ``cursor`` (which is moved past them).

        Offsets (``start``: index of the first point, ``end``: index after the
        last) let a consumer detect a gap and ask for everything.
        Non-finite values become ``None`` (JSON has no NaN).
        """
        with self._lock:
            nb, ne, nl = len(self.batch_x), len(self.epoch_x), len(self.lr)
            out = {
                "batch": _part(self.batch_x, self.batch, cursor.batches, nb, 6),
                "epoch": _part(self.epoch_x, self.epoch, cursor.epochs, ne, None),
                "lr": {"start": cursor.lr, "end": nl, "points": [list(p) for p in self.lr[cursor.lr : nl]]},
            }
        cursor.batches, cursor.epochs, cursor.lr = nb, ne, nl
        return out

    def all_points(self, limit: int = MAX_SYNC_POINTS) -> dict[str, Any]:
        """Every point so far, each series thinned to at most ``limit`` points (evenly spaced,
        first and last kept): what a new view receives. ``end`` says how many points it covers,
        so later updates (starting at ``end``) append after the thinned ones."""
        with self._lock:
            nb, ne, nl = len(self.batch_x), len(self.epoch_x), len(self.lr)
            return {
                "batch": _part(self.batch_x, self.batch, 0, nb, 6, _thin(nb, limit)),
                "epoch": _part(self.epoch_x, self.epoch, 0, ne, None, _thin(ne, limit)),
                "lr": {"start": 0, "end": nl, "points": [list(p) for p in self.lr[max(0, nl - limit) : nl]]},
            }

    def metric_names(self) -> list[str]:
        """Base metric names (``loss`` first, no ``val_`` prefix), in recording order."""
        names: list[str] = []
        for key in [*self.batch, *self.epoch]:
            base = key.removeprefix("val_")
            if base in ("learning_rate", "lr") or base in names:
                continue
            names.append(base)
        if "loss" in names:
            names.remove("loss")
            names.insert(0, "loss")
        return names

    def as_dict(self) -> dict[str, list[float]]:
        """Per-epoch series in the shape of ``keras.callbacks.History.history``."""
        with self._lock:
            return {k: list(v) for k, v in self.epoch.items()}

    def _update_best(self) -> None:
        monitor = self.monitor
        if monitor is None or monitor not in self.epoch:
            monitor = "val_loss" if "val_loss" in self.epoch else "loss"
            if monitor not in self.epoch:
                return
            self.monitor = monitor
        values = self.epoch[monitor]
        mode = monitor_mode(monitor)
        best_i, best = None, None
        for i, value in enumerate(values):
            if not math.isfinite(value):
                continue
            if best is None or (value < best if mode == "min" else value > best):
                best_i, best = i, value
        if best_i is not None:
            self.best_epoch = self.epoch_x[best_i]
            self.best_value = best


def _thin(n: int, limit: int) -> list[int] | None:
    """Indices of at most ``limit`` evenly spaced points of ``n`` (first and last kept), or None for all."""
    if n <= limit:
        return None
    step = (n - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)})


def _part(xs: list[Any], series: dict[str, list[float]], start: int, end: int, digits: int | None,
          keep: list[int] | None = None) -> dict[str, Any]:
    """Points ``start:end`` of one kind (or only the indices ``keep``), JSON-ready."""
    index = range(start, end) if keep is None else keep
    x = [xs[i] for i in index]
    return {
        "start": start,
        "end": end,
        "x": [round(v, digits) for v in x] if digits is not None else x,
        "y": {k: [_finite_or_none(s[i]) for i in index] for k, s in series.items()},
    }


def describe_position(position: tuple[int, int]) -> str:
    """``(3, 0)`` -> "the start of epoch 3"; ``(3, 7)`` -> "after batch 7 of epoch 3"."""
    epoch, done = position
    return f"the start of epoch {epoch}" if done == 0 else f"after batch {done} of epoch {epoch}"


def nan_message(history: TrainingHistory, stopping: bool) -> str:
    """The text warning shown the moment the loss is NaN or infinite."""
    epoch, batch = history.nan_at or (history.current_epoch + 1, history.current_step)
    text = f"WARNING: the loss became NaN or infinite at epoch {epoch}, batch {batch}"
    if stopping:
        return text + ": training stops at the end of this batch (KMagic.stop_on_nan)"
    return text + ": training continues (KMagic.stop_on_nan is off)"


def format_value(value: float | None) -> str:
    """A metric value for a text line: 4 decimals, or scientific notation when very small or large."""
    if value is None or not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4f}"


def epoch_line(history: TrainingHistory, epoch: int, *, timing: bool = True) -> str:
    """The one text line per finished epoch (the dashboard's text mode and ``%kfit --no-dashboard``).

    ``epoch 3/10 - 4.2s - loss 0.3120 - val_loss 0.3500  *best*``; ``timing=False`` leaves out the
    elapsed time, so the line is the same run after run.
    """
    h = history
    i = len(h.epoch_x) - 1
    width = len(str(h.epochs_planned))
    parts = [f"epoch {epoch + 1:>{width}}/{h.epochs_planned}"]
    if timing:
        parts.append(f"{h.elapsed:6.1f}s")
    for base in h.metric_names():
        for name in (base, f"val_{base}"):
            if name in h.epoch:
                parts.append(f"{name} {format_value(h.epoch[name][i])}")
    line = " - ".join(parts)
    if h.best_epoch == epoch + 1:
        line += "  *best*"
    if len(h.lr) > 1 and h.lr[-1][0] == epoch + 1:
        line += f"  (learning rate {h.lr[-1][1]:.3g})"
    if h.nan_detected and h.nan_at and h.nan_at[0] == epoch + 1:
        line += "  WARNING: the loss became NaN or infinite"
    return line


def restored_message(position: tuple[int, int] | None) -> str:
    """What a NaN stop did to the weights."""
    if position is None:
        return "kmagic: no finite weights were saved during this fit: the weights were left as they are"
    return f"kmagic: weights and optimizer state restored to {describe_position(position)} (the last finite snapshot)"


def _numbers(logs: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (logs or {}).items():
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            continue
    return out
