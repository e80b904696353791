"""The multiworker route: tf_keras (Keras 2) seen through Keras 3 names.

Keras 3's ``fit`` fails under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585), so ``--strategy multiworker`` builds with
``tf_keras``. :class:`Keras2Namespace` is what the compiler builds with there:
layers take their Keras 3 keywords (:data:`KERAS2_KEYWORDS`), a Keras 3-only
layer is refused with its nearest Keras 2 substitute
(``registry.KERAS2_SUBSTITUTES``), and :func:`keras2_callback` lets a Keras 2
``fit`` call Keras 3 callbacks (the dashboard).
"""

from __future__ import annotations

import inspect
from typing import Any

from kmagic.errors import KmagicDeviceError, did_you_mean
from kmagic.keras_internals import KERAS2_BATCH_HOOK_CHECKS
from kmagic.registry import KERAS2_SUBSTITUTES

#: Keras 3 keyword -> the tf_keras (Keras 2) keyword, per layer class, for the
#: multiworker route. ``None`` drops the keyword: Keras 2 has no such setting
#: and decides it itself (the global seed seeds its layers; it picks cuDNN for
#: LSTM/GRU when the arguments allow).
KERAS2_KEYWORDS: dict[str, dict[str, str | None]] = {
    "LeakyReLU": {"negative_slope": "alpha"},
    "LSTM": {"use_cudnn": None, "seed": None},
    "GRU": {"use_cudnn": None, "seed": None},
    "SimpleRNN": {"seed": None},
    "SpatialDropout1D": {"seed": None},
    "SpatialDropout2D": {"seed": None},
    "SpatialDropout3D": {"seed": None},
    "MultiHeadAttention": {"seed": None},
}


def tf_keras_module() -> Any:
    """The ``tf_keras`` package (Keras 2), or a KmagicDeviceError saying how to install it."""
    try:
        import tf_keras
    except ImportError:
        raise KmagicDeviceError(
            "--strategy multiworker trains with tf_keras (Keras 2), which is not installed",
            hint="pip install 'kmagic[multiworker]' (tf-keras matching your TensorFlow version).",
        ) from None
    return tf_keras


class _Keras2Layers:
    """``tf_keras.layers`` with Keras 3 keywords translated (:data:`KERAS2_KEYWORDS`)."""

    def __init__(self, layers: Any) -> None:
        self._layers = layers
        self._translated: dict[str, type] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in KERAS2_KEYWORDS:
            if name not in self._translated:
                self._translated[name] = _translating_class(getattr(self._layers, name), KERAS2_KEYWORDS[name])
            return self._translated[name]
        if hasattr(self._layers, name):
            return getattr(self._layers, name)
        known = [n for n in dir(self._layers) if n[:1].isupper()]
        substitute = KERAS2_SUBSTITUTES.get(name)
        hint = f"Did you mean '{substitute}'?" if substitute else did_you_mean(name, known)
        raise KmagicDeviceError(
            f"layer '{name}' exists only in Keras 3, and --strategy multiworker builds with tf_keras (Keras 2)",
            hint=hint or "Use another layer, or train on one machine (--strategy auto).",
        )


def _translating_class(base: type, renames: dict[str, str | None]) -> type:
    """A subclass of ``base`` whose constructor accepts the Keras 3 keywords of ``renames``."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        for new, old in renames.items():
            if new in kwargs:
                value = kwargs.pop(new)
                if old is not None:
                    kwargs[old] = value
        base.__init__(self, *args, **kwargs)  # type: ignore[misc]

    __init__.__signature__ = _keras3_signature(base, renames)  # type: ignore[attr-defined]
    # Same name and module as the Keras 2 class, so saved configs name the real class.
    return type(base.__name__, (base,), {"__init__": __init__, "__module__": base.__module__,
                                         "__doc__": base.__doc__})


def _keras3_signature(base: type[Any], renames: dict[str, str | None]) -> inspect.Signature:
    """``base.__init__``'s signature under its Keras 3 keyword names (what the compiler checks against)."""
    signature = inspect.signature(base.__init__)
    old_to_new = {old: new for new, old in renames.items() if old is not None}
    params = [p.replace(name=old_to_new.get(p.name, p.name)) for p in signature.parameters.values()]
    variadic = [p for p in params if p.kind == p.VAR_KEYWORD]
    params = [p for p in params if p.kind != p.VAR_KEYWORD]
    present = {p.name for p in params}
    params += [inspect.Parameter(new, inspect.Parameter.KEYWORD_ONLY, default=None)
               for new, old in renames.items() if old is None and new not in present]
    return signature.replace(parameters=params + variadic)


class Keras2Namespace:
    """``tf_keras`` as the compiler sees Keras 3: ``layers``, ``Input``, ``Model``, ``optimizers``, ..."""

    def __init__(self, tf_keras: Any) -> None:
        self._module = tf_keras
        self.layers = _Keras2Layers(tf_keras.layers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def __repr__(self) -> str:
        return f"<kmagic Keras2Namespace over tf_keras {self._module.__version__}>"


_CALLBACK_HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
)


def keras2_callback(callback: Any) -> Any:
    """Wrap a Keras 3 callback so a tf_keras ``fit`` calls its hooks (and sets its model)."""
    base = tf_keras_module().callbacks.Callback

    class Keras3CallbackAdapter(base):  # type: ignore[misc, valid-type]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def set_model(self, model: Any) -> None:
            super().set_model(model)
            self.inner.set_model(model)

        def set_params(self, params: Any) -> None:
            super().set_params(params)
            self.inner.set_params(params)

    for hook in _CALLBACK_HOOKS:
        setattr(Keras3CallbackAdapter, hook, _forward(hook))
    for check, hooks in KERAS2_BATCH_HOOK_CHECKS.items():
        setattr(Keras3CallbackAdapter, check, _answers_for_inner(hooks))
    return Keras3CallbackAdapter(callback)


def _forward(hook: str) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, hook)(*args, **kwargs)

    call.__name__ = hook
    return call


def _answers_for_inner(hooks: tuple[str, ...]) -> Any:
    def implements(self: Any) -> bool:
        return _overrides(self.inner, hooks)

    return implements


def _overrides(callback: Any, hooks: tuple[str, ...]) -> bool:
    from kmagic._keras import keras

    base = keras().callbacks.Callback
    return any(getattr(type(callback), hook, None) is not getattr(base, hook, None) for hook in hooks)
