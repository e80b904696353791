"""The single place that imports TensorFlow and Keras, lazily, on first use."""

from __future__ import annotations

import os
from functools import cache
from types import ModuleType

from kmagic.errors import KmagicError
from kmagic.quiet_import import native_stderr_silenced

_INSTALL_HINT = "install TensorFlow with `pip install kmagic[cpu]` (or `kmagic[gpu]` for NVIDIA GPUs)"


@cache
def tf() -> ModuleType:
    """Import TensorFlow quietly (its C++ log lines are not for notebook users)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with native_stderr_silenced():
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
