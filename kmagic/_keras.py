"""The single place that imports TensorFlow and Keras, lazily, on first use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import cache
from types import ModuleType

from kmagic.errors import KmagicError

_INSTALL_HINT = "install TensorFlow with `pip install kmagic[cpu]` (or `kmagic[gpu]` for NVIDIA GPUs)"


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for a moment.

    TensorFlow's C++ start-up lines (absl's "All log messages before
    absl::InitializeLog()", oneDNN and CUDA notices) are written straight to
    fd 2, which ipykernel captures into the cell; no environment variable
    silences all of them. Python-level errors still propagate as exceptions.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (some embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@cache
def tf() -> ModuleType:
    """Import TensorFlow quietly (its C++ log lines are not for notebook users)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with _native_stderr_silenced():
            import tensorflow

            tensorflow.config.list_physical_devices("CPU")  # the device probe logs on first use, too
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise KmagicError(f"TensorFlow is not installed: {_INSTALL_HINT}") from exc
    return tensorflow


@cache
def keras() -> ModuleType:
    """Keras 3, on the TensorFlow backend (``tf.keras`` is the same module)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    tf()
    import keras as keras3

    return keras3


def is_imported() -> bool:
    """Whether Keras has been imported in this process already (nothing is imported here)."""
    import sys

    return "keras" in sys.modules
