"""``kmagic.compile`` and ``%kcompile``: compile a model again with the words of a ``compile`` line.

The fine-tuning step: unfreeze layers, then compile again with a lower
learning rate. Keras's ``compile`` keeps the weights; the optimizer is a new
one, so its state (moments, step count) starts again. Settings the words leave
out are kept from the model's last compile: ``%kcompile net adam(lr=1e-5)``
keeps the loss and the metrics; a left-out optimizer is a fresh one of the
same kind and settings.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Sequence
from typing import Any

from kmagic.errors import KmagicUsageError, KmagicValueError

#: Keras's own defaults, not worth writing back into exported code.
_KERAS_DEFAULTS = {"run_eagerly": False, "steps_per_execution": 1}
EXAMPLE = "adam(lr=1e-5) scce metrics=[accuracy]"


def compile_model(model: Any, text_or_words: str | Sequence[str], namespace: dict[str, Any] | None = None) -> Any:
    """Compile ``model`` again with the words of a kmodel ``compile`` line; returns the model.

    ``text_or_words`` is ``"adam(lr=1e-5) scce metrics=[accuracy]"`` (a leading
    ``compile`` is allowed) or a list of such words; ``{expr}`` in them is
    evaluated in ``namespace``. The weights are kept. What the words leave out
    is kept from the model's last compile; a model never compiled gets the
    defaults a body's ``compile`` line gets (adam).
    """
    from kmagic.buildinfo import info_of
    from kmagic.compile import _Builder
    from kmagic.dsl.check import parse

    if not all(hasattr(model, attr) for attr in ("compile", "layers", "count_params")):
        raise KmagicValueError(f"expected a Keras model to compile, received {type(model).__name__}")
    program = parse("compile " + compile_words(text_or_words))
    info = info_of(model)
    setup = info.setup if info.setup is not None else _plain_setup()
    k = setup.keras_module()
    builder = _Builder(program, k, namespace, setup, model.name)
    scope = setup.scope() if info.setup is not None else contextlib.nullcontext()
    with scope:  # metrics and optimizers made here belong to the model's strategy, as at build
        compiled = bool(getattr(model, "compiled", False))
        given = builder.compile_settings(model, defaults=not compiled)
        assert given is not None
        previous = previous_settings(model, k, skip=set(given)) if compiled else {}
        merged = {**previous, **given}
        first = [key for key in ("optimizer", "loss") if key in merged]  # in the order a compile line has them
        builder.apply_compile(model, {key: merged[key] for key in [*first, *(k for k in merged if k not in first)]})
    if info.recording is not None:
        info.recording.compile_code = builder.recording.compile_code
        _keep_objects(info, program, namespace, model)
    info.compiled_by_dsl = True
    return model


def describe_compile(model: Any) -> str:
    """``optimizer Adam(learning_rate=1e-05), loss mse``: what a compiled model trains with."""
    parts: list[str] = []
    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's own optimizer
    if inner is not None:
        try:
            parts.append(f"optimizer {type(inner).__name__}(learning_rate={float(inner.learning_rate):.3g})")
        except (AttributeError, TypeError, ValueError):  # a schedule has no single rate
            parts.append(f"optimizer {type(inner).__name__}")
    loss = getattr(model, "loss", None)
    if loss is not None:
        parts.append(f"loss {loss if isinstance(loss, str) else type(loss).__name__}")
    return ", ".join(parts)


def compile_words(text_or_words: str | Sequence[str]) -> str:
    """The words after ``compile``, on one line; a KmagicUsageError for anything else."""
    if isinstance(text_or_words, str):
        text = text_or_words
    elif isinstance(text_or_words, Sequence) and all(isinstance(word, str) for word in text_or_words):
        text = " ".join(text_or_words)
    else:
        raise KmagicUsageError(f"expected compile words such as '{EXAMPLE}' (a str or a list of str), "
                               f"received {type(text_or_words).__name__}")
    text = re.sub(r"^\s*compile\b", "", text.strip()).strip()
    if not text:
        raise KmagicUsageError(f"expected compile words such as '{EXAMPLE}', received nothing")
    if "\n" in text:
        raise KmagicUsageError(f"expected the words of one compile line, received {len(text.splitlines())} lines")
    return text


def previous_settings(model: Any, k: Any, skip: Collection[str] = ()) -> dict[str, Any]:
    """The model's last compile settings but ``skip`` as fresh objects (``Resolved`` with code).

    {} for a model never compiled. A loss Keras cannot rebuild from its config
    (a function of the notebook) is kept as the same object.
    """
    from kmagic.values import Resolved, literal_code

    if not getattr(model, "compiled", False):
        return {}
    try:
        config = model.get_compile_config() or {}
    except Exception:  # noqa: BLE001 - a model that cannot say keeps nothing
        return {}
    kept: dict[str, Any] = {}
    for key, value in config.items():
        if key in skip or value is None or _KERAS_DEFAULTS.get(key, object()) == value:
            continue
        same = getattr(model, "loss", None) if key == "loss" else None
        try:
            fresh = k.saving.deserialize_keras_object(value)
        except Exception as exc:  # noqa: BLE001 - Keras's reason is shown
            if callable(same) and getattr(same, "__name__", "").isidentifier():
                kept[key] = Resolved(same, same.__name__)  # the notebook's function, by the name the body used
                continue
            raise KmagicValueError(f"could not keep the {key} of the last compile: expected one Keras can "
                                   f"rebuild, received {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                                   hint=f"Give it in the compile words: {key}=...") from None
        code = literal_code(value)
        if code is None or _has_config(value):
            code = f"keras.saving.deserialize_keras_object({code})"
        kept[key] = Resolved(fresh, code)
    return kept


def _has_config(value: Any) -> bool:
    if isinstance(value, dict):
        return "class_name" in value or any(_has_config(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_config(v) for v in value)
    return False


def _plain_setup() -> Any:
    """The device setup for a model kmagic did not build: Keras 3, no strategy, no XLA."""
    from kmagic.devices import DeviceSetup

    return DeviceSetup()


def _keep_objects(info: Any, program: Any, namespace: dict[str, Any] | None, model: Any) -> None:
    """Names the new compile code uses (``{opt}``) join the objects ``%kexport`` imports."""
    from kmagic.exporting import objects_used

    if "{" in program.compile.source:
        recording = info.recording
        info.objects = {**info.objects, **objects_used(program, recording, namespace, model)}
