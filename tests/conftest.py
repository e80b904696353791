"""Shared test fixtures: a real IPython shell that re-raises, and notebooks run in a real kernel.

- ``shell``: the process's ``InteractiveShell`` with ``%load_ext kmagic`` done,
  whose ``run_cell`` re-raises the cell's exception (jupysql's ``TestingShell``
  pattern), so a failing magic fails the test with the real exception. Names a
  test adds to the namespace and ``%config KMagic`` settings are removed
  afterwards; the extension is unloaded.
- hypothesis profiles: ``small`` (the default, for ``make test-fast``) and
  ``large`` (``pytest --hypothesis-profile=large``, what ``make test`` runs).
  Tests scale their example counts by the profile with ``hypothesis_examples``
  in tests/test_fuzz.py.
- ``nb_run``: ``nb_run(cells, **options)`` executes a list of code cells with
  nbclient in a fresh ``python3`` kernel (this venv's Python, the repository on
  ``PYTHONPATH``) and returns the executed notebook (errors are kept in the
  outputs unless ``allow_errors=False``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

_PROFILE = {"deadline": None, "derandomize": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much]}
settings.register_profile("small", max_examples=30, **_PROFILE)
settings.register_profile("large", max_examples=1000, **_PROFILE)


def pytest_configure(config: pytest.Config) -> None:
    """The small hypothesis profile unless ``--hypothesis-profile`` names one (make test: large)."""
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile("small")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _reraising_run_cell(shell: Any, original: Callable[..., Any]) -> Callable[..., Any]:
    def run_cell(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise error
        return result

    return run_cell


_OWN_SHELL: list[Any] = []


def _activate_shell() -> tuple[Any, bool]:
    """The process's InteractiveShell (made once, then reused); whether this module made it."""
    from IPython.core.interactiveshell import InteractiveShell

    if InteractiveShell.initialized():
        ip = InteractiveShell.instance()
        return ip, bool(_OWN_SHELL) and ip is _OWN_SHELL[0]
    if _OWN_SHELL:
        ip = _OWN_SHELL[0]
        for cls in type(ip)._walk_mro():  # make it the singleton again (get_ipython, display)
            cls._instance = ip
        return ip, True
    ip = InteractiveShell.instance()
    _OWN_SHELL.append(ip)
    return ip, True


@pytest.fixture
def shell() -> Iterator[Any]:
    """A real InteractiveShell with kmagic loaded; ``run_cell`` re-raises errors (for this test only).

    A shell this fixture made is hidden again after the test (not the singleton any more), so
    tests that run without a shell (display() printing nothing, get_ipython() None) still do.
    """
    ip, own = _activate_shell()
    ip.run_cell = _reraising_run_cell(ip, type(ip).run_cell.__get__(ip))
    if "kmagic" in ip.extension_manager.loaded:
        ip.run_line_magic("unload_ext", "kmagic")
    before = set(ip.user_ns)
    ip.run_line_magic("load_ext", "kmagic")
    yield ip
    del ip.run_cell  # back to the class's run_cell for other tests
    if "kmagic" in ip.extension_manager.loaded:
        ip.run_line_magic("unload_ext", "kmagic")
    for name in set(ip.user_ns) - before:
        del ip.user_ns[name]
    ip.config.pop("KMagic", None)  # %config settings made by the test
    if own:
        type(ip).clear_instance()
    from kmagic import magics

    magics._BLOCK_LIBRARIES.pop(ip, None)


def run_notebook(cells: list[str], *, timeout: int = 180, allow_errors: bool = True, cwd: str | os.PathLike[str] | None = None,
                 env: dict[str, str | None] | None = None, kernel_name: str = "python3") -> Any:
    """Execute code cells in a real kernel with nbclient; return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    kernel_env = dict(os.environ)
    kernel_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), kernel_env.get("PYTHONPATH")]))
    kernel_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for key, value in (env or {}).items():  # None removes a variable
        if value is None:
            kernel_env.pop(key, None)
        else:
            kernel_env[key] = value
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd or REPO)}})
    client.execute(env=kernel_env)
    return notebook


@pytest.fixture
def nb_run() -> Callable[..., Any]:
    """``nb_run(cells, timeout=180, allow_errors=True, cwd=None, env=None)`` -> executed notebook."""
    return run_notebook


def outputs_of(cell: Any, output_type: str | None = None) -> list[Any]:
    """A notebook cell's outputs, optionally only one type (``error``, ``stream``, ``display_data``)."""
    return [o for o in cell.get("outputs", []) if output_type is None or o["output_type"] == output_type]


class RecordingComm:
    """Stands in for the kernel's comm: keeps every message the widget sends."""

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = "test-comm"
        self.kernel = object()  # ipywidgets sends only when a kernel is attached
        self.sent: list[dict[str, Any]] = []

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.sent.append(data)

    def on_msg(self, callback: Any) -> None:
        self.callback = callback

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def custom(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.sent if m.get("method") == "custom"]


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    import ipywidgets.widgets.widget as widget_module

    made: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        made.append(RecordingComm(**kwargs))
        return made[-1]

    monkeypatch.setattr(widget_module.comm, "create_comm", create_comm)
    return made


_KERNEL_STARTERS = ("kernel_env(", "NotebookClient", "start_new_kernel", "KernelManager", "run_notebook(",
                    "nb_run(", "--nbval")


def _starts_kernel(item: pytest.Item) -> bool:
    """Whether a test starts a Jupyter kernel: the ``nb_run`` fixture, or a kernel starter in its own code."""
    import inspect

    if "nb_run" in getattr(item, "fixturenames", ()):
        return True
    function = getattr(item, "function", None)
    try:
        source = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        return False
    return any(marker in source for marker in _KERNEL_STARTERS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that starts a Jupyter kernel without the ``kernel`` marker (so test-fast stays fast)."""
    unmarked = [item.nodeid for item in items
                if item.get_closest_marker("kernel") is None and _starts_kernel(item)]
    if unmarked:
        raise pytest.UsageError("tests that start a kernel must be marked 'kernel': " + ", ".join(unmarked))
