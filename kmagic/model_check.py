"""One test of "is this a Keras model", and its error, for the magics and the Python API.

Duck-typed (the attributes every Keras 3 and tf_keras model has), so it imports nothing.
"""

from __future__ import annotations

from typing import Any

from kmagic.errors import KmagicValueError

MODEL_ATTRIBUTES = ("layers", "fit", "predict", "count_params")


def is_model(obj: Any) -> bool:
    """Whether ``obj`` looks like a Keras model (Keras 3 or tf_keras)."""
    return all(hasattr(obj, attr) for attr in MODEL_ATTRIBUTES)


def require_model(obj: Any, word: Any = None) -> Any:
    """``obj`` when it is a Keras model; else a KmagicValueError naming what was received
    (and, given ``word``, how the user wrote it: a name, or ``{...}`` for an expression)."""
    if is_model(obj):
        return obj
    written = "" if word is None else f" for '{word if isinstance(word, str) else '{...}'}'"
    raise KmagicValueError(f"expected a Keras model, received {type(obj).__name__}{written}")
