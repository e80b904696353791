"""The live training dashboard: ``kmagic.Dashboard``, a Keras callback (what ``%kfit`` shows).

With a widget front end (JupyterLab, Notebook 7, VS Code, Colab) it shows an
anywidget whose JavaScript (``static/dashboard.js``) draws the curves; the
kernel sends it only the points recorded since the last refresh. Without one
(nbconvert, nbval, a terminal) it prints one plain-text line per epoch.

One output per dashboard: the widget is displayed with a display id; when
training ends that display is updated to a bundle holding the widget view, a
static PNG of the final curves (and a confusion matrix for classifiers when
validation data is given) and the final status line as ``text/plain``. A live
front end shows the widget alone; a saved notebook, nbconvert or GitHub shows
the image; a terminal shows the text.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import threading
from pathlib import Path
from typing import Any

from kmagic.callbacks.history import (
    Cursor,
    describe_position,
    epoch_line,
    format_value,
    nan_message,
    restored_message,
)
from kmagic.callbacks.recorder import TrainingRecorder
from kmagic.widgets.frontend import detect_frontend, test_mode
from kmagic.widgets.frontend import ipython as _ipython

STATIC = Path(__file__).parent / "static"

__all__ = ["Dashboard", "DashboardWidget", "confusion_matrix_of", "detect_frontend", "fit_async"]


# -- the widget ----------------------------------------------------------------------


def _widget_class() -> type:
    import anywidget
    import traitlets

    class DashboardWidget(anywidget.AnyWidget):
        """The front-end half: draws what the kernel sends and asks for ``sync``; its Stop button goes
        through the kernel's control channel (:mod:`kmagic.widgets.stop_route`)."""

        _esm = STATIC / "dashboard.js"
        _css = STATIC / "dashboard.css"
        title = traitlets.Unicode("Training").tag(sync=True)
        status = traitlets.Dict().tag(sync=True)
        metrics = traitlets.List(traitlets.Unicode()).tag(sync=True)
        stop_requested = traitlets.Bool(False).tag(sync=True)
        note = traitlets.Unicode("").tag(sync=True)
        compare = traitlets.List(traitlets.Dict()).tag(sync=True)  # earlier runs, drawn faded (runs_view)
        # How a click reaches the busy kernel (kmagic.widgets.stop_route): {kernel_id, token} or {reason}.
        stop_route = traitlets.Dict().tag(sync=True)

    return DashboardWidget


_WIDGET_CLASS: type | None = None


def DashboardWidget(**kwargs: Any) -> Any:
    """Create the dashboard's anywidget (the class is built on first use)."""
    global _WIDGET_CLASS
    if _WIDGET_CLASS is None:
        _WIDGET_CLASS = _widget_class()
    return _WIDGET_CLASS(**kwargs)


# -- the callback ----------------------------------------------------------------------


class Dashboard(TrainingRecorder):
    """Live training dashboard: ``model.fit(x, y, callbacks=[kmagic.Dashboard()])``.

    Args:
        refresh_interval: seconds of wall time between display refreshes
            (default 0.25). Recording happens every batch regardless.
        show: display anything at all (``False`` only records).
        title: the heading shown above the curves.
        monitor: the epoch metric that decides the best epoch (default
            ``val_loss``, else ``loss``; accuracy-like metrics are maximised).
        batch_size: samples per batch, to show samples/s (else batches/s).
        validation_data: ``(x, y)``; for a classifier, the confusion matrix on
            it is shown when training ends.
        stop_on_nan: end training when the loss becomes NaN or infinite.
        restore_on_nan: when stopping on NaN, put back the latest finite
            snapshot of the weights and optimizer variables (default: same as
            ``stop_on_nan``; see :class:`~kmagic.callbacks.recorder.TrainingRecorder`).
        snapshot_interval: seconds between those snapshots (default 1).
        frontend: ``"widget"``, ``"text"`` or ``None`` (detect; see
            :func:`detect_frontend`).
        final_image: show a static PNG of the final curves when training ends.
        compare: earlier runs drawn faded under the live curves: ``True`` (the
            runs of a model with this model's name in ``kmagic.runs``), or run ids / runs.

    After a fit: ``.history`` (a :class:`~kmagic.callbacks.history.TrainingHistory`),
    ``.stop()`` ends training at the end of the current batch from any thread,
    ``.bytes_sent`` / ``.messages_sent`` count what went to the front end.
    """

    def __init__(
        self,
        refresh_interval: float | None = None,
        show: bool = True,
        *,
        title: str | None = None,
        monitor: str | None = None,
        batch_size: int | None = None,
        validation_data: Any = None,
        stop_on_nan: bool = False,
        restore_on_nan: bool | None = None,
        snapshot_interval: float = 1.0,
        frontend: str | None = None,
        final_image: bool = True,
        compare: Any = None,
    ) -> None:
        super().__init__(refresh_interval, monitor=monitor, batch_size=batch_size, stop_on_nan=stop_on_nan,
                         restore_on_nan=restore_on_nan, snapshot_interval=snapshot_interval)
        if frontend not in (None, "widget", "text"):
            raise ValueError(f"expected frontend to be 'widget', 'text' or None. Received: frontend={frontend!r}")
        self.show = show
        self.title = title
        self.validation_data = validation_data
        self.frontend = frontend
        self.final_image = final_image
        self.compare = compare  # True (earlier runs of this model), run ids, Runs, or faded_series() dicts
        self.mode: str | None = None
        self.widget: Any = None
        self._final_png: bytes | None = None
        self.confusion: Any = None
        self.bytes_sent = 0
        self.messages_sent = 0
        self._cursor = Cursor()
        self._stop_token: str | None = None
        self._guard_shell: Any = None
        self._display: Any = None
        self._printed_header = False

    # -- lifecycle ---------------------------------------------------------------

    def on_started(self) -> None:
        self._install_interrupt_guard()
        if not self.show:
            return
        self.mode = self.frontend or detect_frontend()
        if self.mode == "widget":
            self._start_widget()
        else:
            self._print_header()

    def on_refresh(self) -> None:
        if self.widget is not None:
            self._send_update()

    def on_nan(self) -> None:
        if self.mode == "text":
            print(self._nan_line(), flush=True)
        elif self.widget is not None:
            self._send_update(state=True)

    def on_restored(self, position: tuple[int, int] | None) -> None:
        if self.mode == "text":
            print(self._restored_line(), flush=True)

    def on_epoch_recorded(self, epoch: int) -> None:
        if self.widget is not None:
            self._send_update(state=True)
        elif self.mode == "text":
            print(self._epoch_line(epoch), flush=True)
        if self._stop_reason is not None and self.model is not None:
            self.model.stop_training = True

    def on_finished(self) -> None:
        self._remove_interrupt_guard()
        if self._stop_token is not None:
            from kmagic.widgets import stop_route

            stop_route.training_ended(self._stop_token)
        if self.show:
            self.confusion = self._confusion_matrix()
            if self.widget is not None:
                self._finish_widget()
            elif self.mode == "text":
                self._finish_text()
        self._release()

    def _finish_widget(self) -> None:
        self.widget.stop_requested = False  # the button's work is done: it shows the final state
        drawing = self.final_image
        self._send_update(state=True, drawing=drawing)
        if drawing:
            self._final_png = self._draw_final_image()
            self._send_update(state=True)
        if self._display is not None:
            self._display.update(self._bundle(), raw=True)

    def _finish_text(self) -> None:
        """Headless: the final line as text; with a kernel (nbconvert, nbval) also one display of the
        image, whose ``text/plain`` is that line. A terminal cannot show an image: none is drawn."""
        print(self._final_line(), flush=True)
        shell = _ipython()
        if self.final_image and shell is not None and getattr(shell, "kernel", None) is not None:
            from IPython.display import display

            self._final_png = self._draw_final_image()
            display(self._bundle(), raw=True)

    @property
    def final_png(self) -> bytes | None:
        """The final image (PNG bytes) once training ended; drawn on first use where nothing showed it."""
        if self._final_png is None and self.history.finished and self.final_image:
            self._final_png = self._draw_final_image()
        return self._final_png

    def _draw_final_image(self) -> bytes:
        from kmagic.widgets.curve_image import training_png

        return training_png(self.history, self.confusion)

    def _bundle(self) -> dict[str, Any]:
        """What the dashboard's one output holds now: widget view, final PNG, readable text."""
        bundle: dict[str, Any] = {}
        if self.widget is not None:
            view = self.widget._repr_mimebundle_()
            view = view[0] if isinstance(view, tuple) else view
            bundle.update({k: v for k, v in (view or {}).items() if k != "text/plain"})
        if self._final_png is not None:
            import base64

            bundle["image/png"] = base64.b64encode(self._final_png).decode("ascii")
        bundle["text/plain"] = self._final_line() if self.history.finished else self._running_line()
        return bundle

    def _release(self) -> None:
        """Training ended: keep the record, drop what holds memory (model, data, weight copies).

        The widget keeps a reference to this callback (for a later ``sync``), and
        ipywidgets keeps every open widget; without this, each finished dashboard
        would keep its model and validation data alive.
        """
        self._model = None
        self.validation_data = None
        self.snapshots._saved = []  # the weight copies (their position stays readable)
        if self.widget is not None:
            _FINISHED.register(self.widget)

    # -- widget ------------------------------------------------------------------

    def _start_widget(self) -> None:
        from kmagic.widgets import stop_route

        if self.widget is None:
            from IPython.display import display

            self.widget = DashboardWidget(title=self.title or self._default_title(), compare=self._compare_series(),
                                          stop_route=stop_route.route(self))
            self.widget.on_msg(self._on_widget_msg)
            self._display = display(self._bundle(), raw=True, display_id=True)
        else:
            self.widget.stop_requested = False
        self._stop_token = self.widget.stop_route.get("token")
        stop_route.training_started(self._stop_token)  # the kernel looks busy until on_finished

    def _compare_series(self) -> list[dict[str, Any]]:
        from kmagic.widgets.runs_view import compare_series

        return compare_series(self.compare, self.model)

    def _on_widget_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "stop":
            if self.running:
                self.stop("Stop button")
            self.widget.stop_requested = True
        elif kind == "sync":
            self._send({"type": "reset", **self._payload(None)})

    def _payload(self, cursor: Cursor | None, drawing: bool = False) -> dict[str, Any]:
        """Status, metric names and points: those since ``cursor``, or all (thinned) for None."""
        status = _json_safe(self.history.status())
        status["drawing"] = drawing
        points = self.history.all_points() if cursor is None else self.history.new_points(cursor)
        return {"status": status, "metrics": self.history.metric_names(), "points": points}

    def _send_update(self, state: bool = False, drawing: bool = False) -> None:
        message = {"type": "update", **self._payload(self._cursor, drawing)}
        self._send(message)
        if state:  # persisted widget state: what a new view shows before it syncs
            with self.widget.hold_sync():
                self.widget.status = message["status"]
                self.widget.metrics = message["metrics"]

    def _send(self, message: dict[str, Any]) -> None:
        self.widget.send(message)
        self.messages_sent += 1
        self.bytes_sent += len(json.dumps(message, separators=(",", ":")))

    def _default_title(self) -> str:
        name = getattr(self.model, "name", None)
        return f"Training {name}" if name else "Training"

    # -- text ----------------------------------------------------------------------

    def _print_header(self) -> None:
        if self._printed_header:
            return
        self._printed_header = True
        h = self.history
        steps = f" × {h.steps_per_epoch} batches" if h.steps_per_epoch else ""
        print(f"{self.title or self._default_title()}: {h.epochs_planned} epochs{steps}", flush=True)

    def _epoch_line(self, epoch: int) -> str:
        return epoch_line(self.history, epoch, timing=not test_mode())

    def _nan_line(self) -> str:
        return nan_message(self.history, self.stop_on_nan)

    def _restored_line(self) -> str:
        return restored_message(self.history.restored_from)

    def _running_line(self) -> str:
        h = self.history
        return f"{self.title or self._default_title()}: running ({h.epochs_planned} epochs planned)"

    def _final_line(self) -> str:
        h = self.history
        text = "done" if test_mode() else f"done in {h.elapsed:.1f}s"
        if h.best_epoch is not None:
            text += f"; best {h.monitor} {format_value(h.best_value)} at epoch {h.best_epoch}"
        if h.stopped_early:
            text += f"; stopped at {h.where_stopped()}: {h.stop_reason}"
        if h.nan_detected and h.nan_at is not None:
            text += f"; WARNING: the loss became NaN or infinite at epoch {h.nan_at[0]}, batch {h.nan_at[1]}"
        if h.restored_from is not None:
            text += f"; weights restored to {describe_position(h.restored_from)}"
        return text

    # -- interrupts -------------------------------------------------------------------

    def _install_interrupt_guard(self) -> None:
        """If the cell ends while training is still 'running' (a kernel interrupt or an
        error inside fit), close the record there: the points and weights stay."""
        shell = _ipython()
        if shell is None or self._guard_shell is not None:
            return
        shell.events.register("post_run_cell", self._after_cell)
        self._guard_shell = shell

    def _remove_interrupt_guard(self) -> None:
        shell, self._guard_shell = self._guard_shell, None
        if shell is not None:
            with contextlib.suppress(ValueError):
                shell.events.unregister("post_run_cell", self._after_cell)

    def _after_cell(self, result: Any = None) -> None:
        if not self.running:
            self._remove_interrupt_guard()
            return
        error = getattr(result, "error_in_exec", None)
        if isinstance(error, KeyboardInterrupt):
            reason = "interrupted (kernel interrupt)"
        elif error is not None:
            reason = f"failed: {type(error).__name__}"
        else:
            return  # training continues in another thread (fit_async)
        self.finish(reason)

    # -- confusion matrix --------------------------------------------------------------

    def _confusion_matrix(self) -> Any:
        if self.validation_data is None or self.model is None or not self.history.epoch_x:
            return None
        try:
            return confusion_matrix_of(self.model, self.validation_data)
        except Exception:  # a model we cannot classify with: no matrix, no error
            return None


# -- helpers -----------------------------------------------------------------------------


class _FinishedWidgets:
    """Finished dashboards' widgets, closed when the cell that showed them runs again (its output is gone).

    A kernel learns that an output is gone only when its cell is re-run: the
    front end clears the cell's outputs first. The cell is identified by the
    ``cellId`` JupyterLab and Notebook 7 send with each execution.
    """

    def __init__(self) -> None:
        self._by_cell: dict[str, list[Any]] = {}
        self._shell: Any = None

    def register(self, widget: Any) -> None:
        cell = _current_cell_id()
        shell = _ipython()
        if cell is None or shell is None:
            return
        if self._shell is not shell:
            shell.events.register("pre_run_cell", self._before_cell)
            self._shell = shell
        self._by_cell.setdefault(cell, []).append(widget)

    def _before_cell(self, info: Any = None) -> None:
        cell = getattr(info, "cell_id", None) or _current_cell_id()
        for widget in self._by_cell.pop(cell, []) if cell else []:
            with contextlib.suppress(Exception):
                layout = getattr(widget, "layout", None)
                widget.close()
                if layout is not None:
                    layout.close()


_FINISHED = _FinishedWidgets()


def _current_cell_id() -> str | None:
    """The id of the notebook cell being executed (the front end's ``cellId``, which ipykernel
    hands to IPython), or None outside a notebook cell."""
    shell = _ipython()
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    cell = getattr(getattr(result, "info", None), "cell_id", None)
    if not cell:
        kernel = getattr(shell, "kernel", None)
        if kernel is None:
            return None
        try:
            cell = kernel.get_parent().get("metadata", {}).get("cellId")
        except Exception:  # no kernel, or a kernel without parent messages
            return None
    return str(cell) if cell else None


def confusion_matrix_of(model: Any, validation_data: Any, limit: int = 5000) -> tuple[Any, list[str]] | None:
    """``(matrix, labels)`` of a single-output classifier on ``(x, y)``, or None if it is not one."""
    import numpy as np

    x, y = validation_data[0], validation_data[1]
    loss = _loss_name(getattr(model, "loss", None))
    if "crossentropy" not in loss and "hinge" not in loss:
        return None
    from kmagic.widgets.activations import _length, _slice

    y = np.asarray(y[:limit])
    # Eager calls in chunks, not model.predict: no predict function is traced (and kept) for it.
    try:
        n = min(_length(x), limit)
        parts = [model(_slice(x, i, min(i + 256, n)), training=False) for i in range(0, n, 256)]
    except (TypeError, ValueError, KeyError):  # inputs this model cannot take as one array
        return None
    if not parts or isinstance(parts[0], (list, tuple, dict)):
        return None
    pred = np.concatenate([np.asarray(p) for p in parts])
    if pred.ndim == 2 and pred.shape[1] >= 2:
        n_classes = pred.shape[1]
        guess = pred.argmax(axis=1)
        if y.ndim == 2 and y.shape[1] == n_classes:
            truth = y.argmax(axis=1)
        else:
            truth = y.reshape(len(y)).astype("int64")
    elif "binary" in loss and (pred.ndim == 1 or pred.shape[-1] == 1):
        n_classes = 2
        threshold = 0.0 if getattr(getattr(model, "loss", None), "from_logits", False) else 0.5
        guess = (pred.reshape(len(pred)) > threshold).astype("int64")
        truth = (y.reshape(len(y)) > 0.5).astype("int64")
    else:
        return None
    if n_classes > 100 or truth.min() < 0 or truth.max() >= n_classes:
        return None
    matrix = np.zeros((n_classes, n_classes), dtype="int64")
    np.add.at(matrix, (truth, guess), 1)
    return matrix, [str(i) for i in range(n_classes)]


def _loss_name(loss: Any) -> str:
    if loss is None:
        return ""
    if isinstance(loss, str):
        return loss.lower()
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return str(name).lower()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


async def fit_async(model: Any, *args: Any, callbacks: list[Any] | None = None, poll_interval: float = 0.05,
                    **kwargs: Any) -> Any:
    """``await fit_async(model, x, y, callbacks=[Dashboard()])``: fit in a worker thread
    while the cell awaits, so the kernel can run other requests (widget controls) meanwhile.

    The Stop button does not need this (it reaches the kernel on its control channel,
    see :mod:`kmagic.widgets.stop_route`). A kernel interrupt stops training at the end
    of the current batch, keeping weights and history, then re-raises.
    """
    import asyncio

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["history"] = model.fit(*args, callbacks=callbacks, **kwargs)
        except BaseException as exc:  # handed to the awaiting cell
            outcome["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
    recorders = [cb for cb in callbacks or [] if isinstance(cb, TrainingRecorder)]
    thread.start()
    try:
        while thread.is_alive():
            await asyncio.sleep(poll_interval)
    except (KeyboardInterrupt, asyncio.CancelledError):
        for recorder in recorders:
            recorder.stop("interrupted (kernel interrupt)")
        model.stop_training = True
        thread.join()
        raise
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["history"]
