"""A Keras callback that records a fit into a :class:`TrainingHistory`, cheaply.

Cost model (Keras 3, ``keras/src/callbacks/callback_list.py``): on backends
that Keras marks thread safe (JAX, torch), a callback that overrides a
batch-end hook makes Keras call batch-end hooks synchronously, converting the
logs to floats on the main thread each batch (a device sync). This callback
declares ``async_safe = True``: its batch-end hook only appends floats under a
lock, so Keras keeps dispatching batch ends to its worker thread exactly as it
does for a bare ``fit``. (On TensorFlow, Keras 3 dispatches batch ends
synchronously and converts the logs every batch even for a bare ``fit``, so
there is nothing extra to avoid.) Everything that must run on the main thread
(drawing, processing front-end events such as the Stop button) happens in the
batch-*begin* hook, and only when ``refresh_interval`` seconds of wall time
have passed.
"""

from __future__ import annotations

import time
from typing import Any

from kmagic import keras_internals, run_log
from kmagic._keras import keras
from kmagic.callbacks.history import TrainingHistory
from kmagic.callbacks.snapshot import WeightSnapshots

#: Keras's Callback, imported at run time (Keras has no stubs: Any to the type checker).
_Callback: Any = keras().callbacks.Callback


class TrainingRecorder(_Callback):
    """Record per-batch and per-epoch logs; stop on request; refresh on a wall-time throttle.

    Subclasses override :meth:`on_refresh` (main thread, throttled),
    :meth:`on_epoch_recorded`, :meth:`on_nan`, :meth:`on_restored` and
    :meth:`on_finished` to display things.

    Non-finite losses: the loss is checked after every batch. The first NaN or
    infinite value is flagged (``history.nan_detected``, ``history.nan_at``)
    and reported through :meth:`on_nan` at the next main-thread hook (the next
    batch start, the validation, or the epoch end). With ``stop_on_nan``,
    training then ends at the end of that batch, and with ``restore_on_nan``
    (the default when stopping) the model's weights and optimizer variables
    are put back to the latest snapshot: a copy taken at the start of a batch
    (at each epoch start, then every ``snapshot_interval`` seconds; never so
    often that copying costs over 1% of the time), kept only when all its
    values are finite, and taken only while every loss so far was finite. ``history.restored_from`` says
    which point that was: ``(epoch, batches done in that epoch)``.
    """

    async_safe = True

    def __init__(
        self,
        refresh_interval: float | None = 0.25,
        *,
        monitor: str | None = None,
        batch_size: int | None = None,
        stop_on_nan: bool = False,
        restore_on_nan: bool | None = None,
        snapshot_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.refresh_interval = 0.25 if refresh_interval is None else max(0.0, float(refresh_interval))
        self.batch_size = batch_size
        self.stop_on_nan = stop_on_nan
        self.restore_on_nan = stop_on_nan if restore_on_nan is None else restore_on_nan
        self.snapshots = WeightSnapshots(snapshot_interval)
        self.history = TrainingHistory(monitor=monitor)
        self._stop_reason: str | None = None
        self._next_refresh = 0.0
        self._epoch = 0
        self._running = False
        self._nan_seen = False
        self._nan_reported = False
        self._restore_pending = False
        self.run: Any = None  # the kmagic.runs entry of the last fit this recorder owned

    # -- control ---------------------------------------------------------------

    def stop(self, reason: str = "stopped by the user") -> None:
        """Ask training to end at the end of the current batch (any thread may call this)."""
        self._stop_reason = reason
        model = keras_internals.callback_model(self)
        if model is not None:
            model.stop_training = True

    @property
    def running(self) -> bool:
        """Whether a fit is in progress."""
        return self._running

    # -- Keras hooks -----------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        params = self.params or {}
        self._stop_reason = None
        self._running = True
        self.history.start(params.get("epochs", 0), params.get("steps"), self.batch_size)
        self.history.nan_detected, self.history.nan_at = False, None  # each fit is checked afresh
        self._nan_seen = self._nan_reported = self._restore_pending = False
        self.snapshots.reset()
        self._next_refresh = 0.0
        run_log.begin(self)  # every fit is a run (kmagic.runs): the first recorder of a fit records it
        self.on_started()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = self.history.begin_epoch(epoch, self._learning_rate())
        self._maybe_refresh()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stop_on_nan and self.restore_on_nan and not self._nan_seen and self.snapshots.due(batch == 0):
            self.snapshots.take(self.model, (self._epoch + 1, batch))
        if time.monotonic() >= self._next_refresh:
            self._refresh()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # May run on Keras's worker thread (async_safe): record and set flags only.
        self.history.add_batch(self._epoch, batch, logs)
        if self.history.nan_detected and not self._nan_seen:
            self._nan_found()

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._running and time.monotonic() >= self._next_refresh:
            self._refresh()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        epoch = self._epoch
        self.history.add_epoch(epoch, logs)
        if self.history.nan_detected and not self._nan_seen:
            self._nan_found()
        self._report_nan()
        self._restore_if_pending()
        self.on_epoch_recorded(epoch)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.finish()

    def finish(self, reason: str | None = None) -> None:
        """End the record (also called when a fit is interrupted or fails); idempotent."""
        if not self._running:
            return
        self._running = False
        self._report_nan()
        self._restore_if_pending()
        self.history.finish(reason or self._stop_reason)
        self.run = run_log.end(self)
        self.on_finished()

    # -- display hooks (override) ----------------------------------------------

    def on_started(self) -> None:
        """Training begins (main thread)."""

    def on_refresh(self) -> None:
        """At most every ``refresh_interval`` seconds during training (main thread)."""

    def on_epoch_recorded(self, epoch: int) -> None:
        """An epoch's logs are recorded (main thread)."""

    def on_finished(self) -> None:
        """Training ended, normally or not (main thread)."""

    def on_nan(self) -> None:
        """The loss became NaN or infinite (``history.nan_at``); called once per fit (main thread)."""

    def on_restored(self, position: tuple[int, int] | None) -> None:
        """After a NaN stop: the weights were restored to ``position``, or None when no finite copy existed."""

    # -- internals -------------------------------------------------------------

    def _nan_found(self) -> None:
        self._nan_seen = True
        self._next_refresh = 0.0  # show it at the next main-thread hook
        if self.stop_on_nan and self._stop_reason is None:
            self.stop("the loss became NaN or infinite")
            self._restore_pending = self.restore_on_nan

    def _report_nan(self) -> None:
        if self.history.nan_detected and not self._nan_reported:
            self._nan_reported = True
            self.on_nan()

    def _restore_if_pending(self) -> None:
        if not self._restore_pending:
            return
        self._restore_pending = False
        position = self.snapshots.restore()
        self.history.restored_from = position
        self.on_restored(position)

    def _maybe_refresh(self) -> None:
        if time.monotonic() >= self._next_refresh:
            self._refresh()

    def _refresh(self) -> None:
        self._report_nan()
        self.on_refresh()
        # Measure the interval from the end of the refresh, so a slow front end
        # can never take more than its share of the time.
        self._next_refresh = time.monotonic() + self.refresh_interval
        model = keras_internals.callback_model(self)
        if self._stop_reason is not None and model is not None:
            model.stop_training = True

    def _learning_rate(self) -> float | None:
        """The optimizer's current learning rate, or None (one read per epoch)."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        try:
            return float(keras().ops.convert_to_numpy(optimizer.learning_rate))
        except Exception:  # a custom optimizer without a readable rate
            return None
