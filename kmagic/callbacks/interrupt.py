"""A kernel interrupt that ends training cleanly at the end of the current batch.

:class:`GracefulInterrupt` is both a context manager and a Keras callback:

    guard = GracefulInterrupt(recorders)
    with guard:
        model.fit(..., callbacks=[..., guard])
    if guard.interrupted: ...

While the ``with`` block runs (main thread only), the first SIGINT (what
Jupyter's interrupt button and ``KernelManager.interrupt_kernel()`` send) does
not raise: it asks the model to stop at the end of the batch that is running,
so ``fit`` returns normally with every weight update made so far and the
history of every finished epoch (plus the interrupted one, as Keras records it).
An interrupt that arrives before the first batch ran stops training before that
batch (:class:`StoppedBeforeFirstBatch`, which ``run_fit`` catches): the weights
stay untouched and the history has no epoch.
A second SIGINT, while the first is still being honoured, raises
``KeyboardInterrupt`` at once, as usual. The previous handler is put back when
the block ends.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from kmagic import keras_internals
from kmagic._keras import keras

REASON = "interrupted (kernel interrupt)"


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by a kernel interrupt; the weights and the history were kept.

    A ``KeyboardInterrupt``, so "Run all" stops at this cell; shown as one line in a notebook.
    """

    #: The fit's History so far, set by ``kmagic.fit`` before it raises (annotation only: no class default).
    history: Any

    def _render_traceback_(self) -> list[str]:
        return [f"KeyboardInterrupt: {self}"]


class StoppedBeforeFirstBatch(Exception):  # noqa: N818 - a signal to run_fit, not an error
    """Raised from a batch's start when an interrupt came before any batch trained."""


#: Keras's Callback, imported at run time (Keras has no stubs: Any to the type checker).
_Callback: Any = keras().callbacks.Callback


class GracefulInterrupt(_Callback):
    """Turns the first SIGINT during ``fit`` into a stop at the end of the current batch.

    ``recorders`` (kmagic TrainingRecorders, e.g. the dashboard) are told why training
    stopped, so their display says so. Counts finished batches (``batches_ran``), which
    tells a failure before any training from one during it.
    """

    async_safe = True

    def __init__(self, recorders: list[Any] | None = None) -> None:
        super().__init__()
        self.recorders = list(recorders or [])
        self.interrupted = False
        self.batches_done = 0
        self.batches_started = 0
        self.epoch = 0
        self.step = 0
        self.steps: int | None = None
        self.epochs: int | None = None
        self._previous: Any = None
        self._installed = False

    # -- the signal handler ---------------------------------------------------------

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._on_sigint)
                self._installed = True
            except ValueError:  # not allowed here (an embedded interpreter)
                self._installed = False
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.interrupted:  # asked twice: stop now, whatever the state
            raise KeyboardInterrupt
        self.interrupted = True
        self._ask_to_stop()

    def _ask_to_stop(self) -> None:
        for recorder in self.recorders:
            if getattr(recorder, "_stop_reason", None) is None:
                recorder.stop(REASON)
        model = keras_internals.callback_model(self)
        if model is not None:
            model.stop_training = True

    # -- Keras hooks ----------------------------------------------------------------

    def on_train_begin(self, logs: Any = None) -> None:
        params = self.params or {}
        self.steps, self.epochs = params.get("steps"), params.get("epochs")
        if self.interrupted:  # the interrupt came before fit reset stop_training
            self._ask_to_stop()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch, self.step = epoch, 0

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        # Always called on the training thread (batch ends may run later on Keras's worker thread),
        # so this count is exact when the next batch is about to start.
        if self.interrupted:
            self._ask_to_stop()
            if self.batches_started == 0:  # Keras would still run this batch: leave fit before it
                raise StoppedBeforeFirstBatch(REASON)
        self.batches_started += 1

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches_done += 1
        self.step = batch + 1
        if self.interrupted:
            self._ask_to_stop()

    # -- reporting ----------------------------------------------------------------

    @property
    def batches_ran(self) -> int:
        """Batches that finished: counted at their end, or known from the next one's start (batch
        ends may still be waiting on Keras's worker thread when an error leaves ``fit``)."""
        return max(self.batches_done, self.batches_started - 1)

    def where(self) -> str:
        """``"epoch 2/5, batch 7/20"``: the last batch that ran (or ``"before the first batch"``)."""
        if self.batches_started == 0:
            return "before the first batch"
        epochs = f"/{self.epochs}" if self.epochs else ""
        steps = f"/{self.steps}" if self.steps else ""
        return f"epoch {self.epoch + 1}{epochs}, batch {self.step}{steps}"
