"""kmagic: deep learning in Jupyter notebooks with a small language for Keras models.

Importing this package imports no TensorFlow, Keras, numpy or widgets: every
public name is loaded on first use.
"""

from __future__ import annotations

from typing import Any

from kmagic._version import __version__
from kmagic.errors import KmagicError

__all__ = [
    "__version__",
    "build",
    "fit",
    "parse",
    "to_python",
    "from_keras",
    "export",
    "activations",
    "weights",
    "save",
    "load",
    "Dashboard",
    "explain",
    "report",
    "diff",
    "runs",
    "lr_find",
    "RunRecorder",
    "KmagicError",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_LAZY = {
    "build": ("kmagic.compile", "build"),
    "fit": ("kmagic.fitting", "fit"),
    "parse": ("kmagic.dsl.check", "parse"),
    "to_python": ("kmagic.codegen", "to_python"),
    "from_keras": ("kmagic.codegen", "from_keras"),
    # kmagic.compile(model, words) is the module kmagic.compile itself, made callable (a module's name
    # wins once it is imported); it stays out of __all__ so "import *" never hides the builtin compile
    "compile": ("kmagic.compile", None),
    "export": ("kmagic.exporting", "export"),
    "activations": ("kmagic.inspection", "activations"),
    "weights": ("kmagic.inspection", "weights"),
    "save": ("kmagic.persist", "save"),
    "load": ("kmagic.persist", "load"),
    "Dashboard": ("kmagic.widgets.dashboard", "Dashboard"),
    "explain": ("kmagic.attribution", "explain"),
    "report": ("kmagic.reporting", "report"),
    "diff": ("kmagic.model_diff", "diff"),
    "runs": ("kmagic.run_log", "RUNS"),
    "lr_find": ("kmagic.lr_finder", "lr_find"),
    "RunRecorder": ("kmagic.callbacks.run_recorder", "RunRecorder"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kmagic' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext kmagic``: register the magics (imports no TensorFlow)."""
    from kmagic.devices import prefer_memory_growth
    from kmagic.magics import register
    from kmagic.quiet_import import install_quiet_tensorflow_import

    prefer_memory_growth()
    install_quiet_tensorflow_import()
    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext kmagic``: remove the magics again."""
    from kmagic.magics import unregister
    from kmagic.quiet_import import uninstall_quiet_tensorflow_import

    uninstall_quiet_tensorflow_import()
    unregister(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lives (``jupyter labextension develop``)."""
    return [{"src": "labextension", "dest": "kmagic-labextension"}]
