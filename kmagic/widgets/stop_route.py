"""The Stop button's way into a busy kernel: a request on the kernel's CONTROL channel.

While a cell trains, the kernel's shell thread is busy, so a widget's comm message
(the shell channel, or a subshell that ipykernel 7 routes back to the busy shell) waits
for the cell to end. ipykernel 6 and 7 both read the control channel on a thread of its
own, even while a cell runs. So the dashboard's JavaScript, on a click, opens a short
WebSocket to the Jupyter server (``api/kernels/<id>/channels``) and sends one
``kernel_info_request`` on channel ``control`` whose content carries
``{"kmagic_stop": <dashboard token>}``. :func:`install` wraps the kernel's control
handler for that message type: it asks the dashboard to stop (which only sets flags;
Keras ends ``fit`` at the end of the running batch), then answers as usual.

Why ``kernel_info_request`` and not a message type of our own: the kernel publishes
busy/idle around every control message, and the Jupyter server and JupyterLab/Notebook 7
ignore that status only for the message types in the server's ``untracked_message_types``
(``kernel_info_request`` is one; a new type would flip the status bar to "Idle" mid-cell).
It is also in any deployment's ``allowed_message_types``.

Other control requests still flip the status to "idle" mid-cell: a Notebook 7 file-browser
tab closing the widget comms makes JupyterLab's services create and delete kernel
subshells (``create_subshell_request`` and ``delete_subshell_request`` are not in that
list), and extensions poll with ``usage_request``. So while a fit with a registered
dashboard runs, every control ``idle`` is followed at once by a ``busy`` for the running
``execute_request`` (:func:`training_started` / :func:`training_ended`).

The kernel id comes from the kernel's connection file, which a Jupyter server names
``kernel-<id>.json``. Where there is none (a terminal, VS Code, Colab), :func:`route`
says why, and the button is disabled before any click.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from kmagic.widgets.frontend import ipython

#: The content key of a control-channel ``kernel_info_request`` that carries a click.
STOP_KEY = "kmagic_stop"
REASON = "Stop button"
CURE = ("Interrupt the kernel instead (■ in the toolbar, or I, I): training then stops at the end of "
        "the current batch and keeps its weights and history.")
_KERNEL_FILE = re.compile(r"^kernel-([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.json$")
_MSG_TYPE = "kernel_info_request"

_targets: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_lock = threading.Lock()
_running: dict[str, Any] = {}  # token -> the execute_request whose fit is running
#: The last click this kernel received: ``{"at": time.time(), "stopped": bool}`` (for diagnosis).
last_request: dict[str, Any] = {}


def kernel_id_from(connection_file: str | None) -> str | None:
    """The Jupyter server's kernel id in a connection file's name (``kernel-<uuid>.json``), else None."""
    if not connection_file:
        return None
    match = _KERNEL_FILE.match(Path(connection_file).name)
    return match.group(1).lower() if match else None


def _connection_file(kernel: Any) -> str | None:
    with contextlib.suppress(Exception):
        from ipykernel.connect import get_connection_file

        return str(get_connection_file())
    return getattr(kernel, "connection_file", None)


def route(target: Any) -> dict[str, str]:
    """Register ``target`` (an object with ``stop(reason)`` and ``running``) for clicks.

    Returns the widget's ``stop_route`` trait: ``{"kernel_id", "token"}`` when a click
    can reach this kernel mid-cell, else ``{"reason"}`` (why not, and the cure).
    """
    shell = ipython()
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    handlers = getattr(kernel, "control_handlers", None)
    if kernel is None or not isinstance(handlers, dict) or _MSG_TYPE not in handlers:
        return {"reason": f"This kernel has no control channel kmagic can listen on. {CURE}"}
    kernel_id = kernel_id_from(_connection_file(kernel))
    if kernel_id is None:
        return {"reason": f"This kernel was not started by a Jupyter server, so the button cannot reach it "
                          f"while a cell runs. {CURE}"}
    install(kernel)
    token = secrets.token_hex(12)
    with _lock:
        _targets[token] = target
    return {"kernel_id": kernel_id, "token": token}


def forget(token: str | None) -> None:
    """Stop listening for clicks on behalf of ``token``'s target."""
    if token:
        with _lock:
            _targets.pop(token, None)


def training_started(token: str | None) -> None:
    """``token``'s fit runs (called on the fit's thread): the kernel must look busy until it ends."""
    shell = ipython()
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    if not token or kernel is None or not hasattr(kernel, "get_parent"):
        return
    try:
        parent = kernel.get_parent("shell")
    except Exception:  # an unusual kernel: no status to repair
        return
    with _lock:
        _running[token] = parent


def training_ended(token: str | None) -> None:
    with _lock:
        _running.pop(token or "", None)


def request_stop(token: Any) -> bool:
    """What a click does (on the control thread): ask the target to stop. True if it was training."""
    if not isinstance(token, str):
        return False
    with _lock:
        target = _targets.get(token)
    stopped = target is not None and bool(getattr(target, "running", False))
    if stopped and target is not None:
        target.stop(REASON)  # sets flags only; Keras ends fit at the end of the running batch
    last_request.update(at=time.time(), stopped=stopped)
    return stopped


def install(kernel: Any) -> None:
    """Wrap ``kernel``'s control handler for ``kernel_info_request`` (once per kernel)."""
    handlers = kernel.control_handlers
    original = handlers[_MSG_TYPE]
    if getattr(original, "_kmagic_stop_route", False):
        return

    def kernel_info_or_stop(stream: Any, ident: Any, parent: dict[str, Any]) -> Any:
        content = parent.get("content") if isinstance(parent, dict) else None
        if isinstance(content, dict) and STOP_KEY in content:
            request_stop(content[STOP_KEY])
        return original(stream, ident, parent)  # the usual reply: the sender knows it arrived

    kernel_info_or_stop._kmagic_stop_route = True  # type: ignore[attr-defined]
    handlers[_MSG_TYPE] = kernel_info_or_stop
    publish_status = getattr(kernel, "_publish_status", None)
    if callable(publish_status):

        def publish_status_busy_while_training(status: str, channel: str, parent: Any = None) -> None:
            publish_status(status, channel, parent)
            if status == "idle" and channel == "control":
                with _lock:  # training_ended waits: no "busy" can follow the cell's own "idle"
                    running = list(_running.values())[-1:]
                    for execute_request in running:
                        publish_status("busy", "shell", execute_request)

        kernel._publish_status = publish_status_busy_while_training
        shell = getattr(kernel, "shell", None)
        if shell is not None:  # a fit that never reported its end cannot keep a finished cell "busy"
            shell.events.register("post_execute", _cell_ended)


def _cell_ended() -> None:
    with _lock:
        _running.clear()
