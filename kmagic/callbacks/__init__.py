"""Keras hooks that record training into plain history objects (no display code).

``kmagic.callbacks.history`` has no Keras import; ``kmagic.callbacks.recorder``
imports Keras (it defines a ``keras.callbacks.Callback`` subclass).
"""

from __future__ import annotations

__all__ = ["TrainingHistory", "TrainingRecorder"]


def __getattr__(name: str):
    if name == "TrainingHistory":
        from kmagic.callbacks.history import TrainingHistory

        return TrainingHistory
    if name == "TrainingRecorder":
        from kmagic.callbacks.recorder import TrainingRecorder

        return TrainingRecorder
    raise AttributeError(f"module 'kmagic.callbacks' has no attribute {name!r}")
