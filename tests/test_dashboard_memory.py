"""No leak: finished dashboards keep no model alive, and their widgets close when their cell runs again.

A real InteractiveShell with kmagic loaded runs ``%%kmodel`` + ``%kfit`` in
widget mode (``KMAGIC_FRONTEND=widget``; the widgets' comms record instead of
a kernel). Live models are counted with weak references after ``gc.collect()``.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest
from conftest import RecordingComm

CYCLES = 6


@pytest.fixture
def widget_mode(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    """Widget mode; each widget's comm records, with its own id (so ipywidgets keeps every
    open widget in its registry, as with a kernel)."""
    import ipywidgets.widgets.widget as widget_module

    made: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        made.append(RecordingComm(**kwargs))
        made[-1].comm_id = f"comm-{len(made)}"
        return made[-1]

    monkeypatch.setattr(widget_module.comm, "create_comm", create_comm)
    monkeypatch.setenv("KMAGIC_FRONTEND", "widget")
    return made


def _open_widget(comm: RecordingComm) -> Any:
    from ipywidgets.widgets.widget import _instances

    return _instances.get(comm.comm_id)


def _dashboard_widgets(comms: list[RecordingComm]) -> list[Any]:
    """The open dashboard widgets (not their Layout widgets), in creation order."""
    return [w for c in comms if (w := _open_widget(c)) is not None and type(w).__name__ == "DashboardWidget"]


def _data(shell: Any) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    shell.user_ns.update(X=x, y=(x[:, 0] > 0).astype("int64"), XV=x[:64], YV=(x[:64, 0] > 0).astype("int64"))


def test_cycles_keep_alive_only_the_models_names_hold(shell: Any, widget_mode: list) -> None:
    """Each cycle rebinds ``net``; the earlier models must all be collectable, although every
    dashboard's widget is still open (ipywidgets keeps it) and holds its dashboard."""
    from kmagic.widgets.dashboard import Dashboard

    _data(shell)
    models: list[weakref.ref[Any]] = []
    earlier = {id(o) for o in gc.get_objects() if isinstance(o, Dashboard)}  # from other tests
    dashboards: list[Any] = []
    for cycle in range(CYCLES):
        shell.run_cell("%%kmodel net --quiet\ninput 8\ndense 16 relu\ndense 2 softmax\n")
        shell.run_cell("%kfit net X y --epochs 1 --batch-size 32 --validation-data XV YV")
        models.append(weakref.ref(shell.user_ns["net"]))
        if cycle == 0:
            dashboards = [o for o in gc.get_objects() if isinstance(o, Dashboard) and id(o) not in earlier]
    gc.collect()
    alive = [ref() for ref in models if ref() is not None]
    assert alive == [shell.user_ns["net"]], f"{len(alive)} of {CYCLES} models alive"
    assert len(_dashboard_widgets(widget_mode)) == CYCLES  # every dashboard's widget is still open
    # The first cycle's dashboard kept its record, but not the model or the validation data.
    (dash,) = dashboards
    assert dash.widget is not None and dash.history.finished and len(dash.history.epoch_x) == 1
    assert dash.model is None and dash.validation_data is None


def test_a_cells_finished_widgets_close_when_it_runs_again(shell: Any, widget_mode: list) -> None:
    """Re-running a cell clears its output in the front end: its finished dashboard's widget closes."""
    _data(shell)
    shell.run_cell("%%kmodel net --quiet\ninput 8\ndense 2 softmax\n")
    shell.run_cell("%kfit net X y --epochs 1", cell_id="cell-A")
    shell.run_cell("%kfit net X y --epochs 1", cell_id="cell-B")
    first, second = _dashboard_widgets(widget_mode)[-2:]
    layout = first.layout
    shell.run_cell("print('again')", cell_id="cell-A")
    assert first.comm is None and layout.comm is None  # closed (with its layout), out of the registry
    assert _dashboard_widgets(widget_mode)[-1] is second and second.comm is not None  # another cell's: open
