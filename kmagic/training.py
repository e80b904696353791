"""The plain functions behind ``%kfit``: adapt preprocessing, infer compile defaults, merge fit arguments.

Nothing here displays anything; the magic prints what these functions report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kmagic.errors import KmagicDataError
from kmagic.registry import ADAPT_CLASSES

# ---------------------------------------------------------------- adapting preprocessing layers

_ADAPTED_MARK = "_kmagic_adapted"


def _is_adapted(layer: Any) -> bool:
    """Whether a preprocessing layer already holds state (given, adapted, or loaded)."""
    if getattr(layer, _ADAPTED_MARK, False):
        return True
    cls = type(layer).__name__
    if cls == "Normalization":
        return getattr(layer, "input_mean", None) is not None
    if hasattr(layer, "vocabulary_size"):
        size = int(layer.vocabulary_size())
        special = getattr(layer, "_token_start_index", None)
        if special is None and hasattr(layer, "_lookup_layer"):
            special = layer._lookup_layer._token_start_index
        return size > (special() if callable(special) else 0)
    return False


def layers_to_adapt(model: Any) -> list[Any]:
    """The preprocessing layers (Normalization, TextVectorization, StringLookup, IntegerLookup)
    that need data before training, in graph order."""
    return [layer for layer in model.layers if type(layer).__name__ in ADAPT_CLASSES and not _is_adapted(layer)]


def _input_index(model: Any, tensor: Any) -> int | None:
    """Which model input a tensor is, or None when it is computed inside the model."""
    for index, model_input in enumerate(model.inputs):
        if model_input is tensor or model_input._keras_history.operation is tensor._keras_history.operation:
            return index
    return None


def _select_input(model: Any, x: Any, index: int) -> Any:
    if isinstance(x, Mapping):
        name = model.inputs[index]._keras_history.operation.name
        if name not in x:
            raise KmagicDataError(f"expected the training data to have an entry '{name}' for the model "
                                  f"input of that name, received keys {sorted(x)}")
        return x[name]
    if isinstance(x, (list, tuple)) and len(model.inputs) > 1:
        return x[index]
    return x


def _features_only(x: Any) -> Any:
    """A tf.data dataset of (features, labels) mapped to its features."""
    if type(x).__name__.endswith("Dataset") and hasattr(x, "map") and isinstance(x.element_spec, tuple):
        return x.map(lambda *items: items[0])
    return x


def layer_input_data(model: Any, layer: Any, x: Any) -> Any:
    """The data a layer sees at its input: a slice of X, or X run through the layers before it."""
    from kmagic._keras import keras

    x = _features_only(x)
    tensor = layer.input
    index = _input_index(model, tensor)
    if index is not None:
        return _select_input(model, x, index)
    feeder = keras().Model(model.inputs, tensor)
    return feeder.predict(x, verbose=0)


def adapt_preprocessing(model: Any, x: Any) -> list[str]:
    """Adapt every preprocessing layer that needs it from training inputs ``x``; their names."""
    adapted = []
    for layer in layers_to_adapt(model):
        data = layer_input_data(model, layer, x)
        try:
            layer.adapt(data)
        except Exception as exc:  # Keras raises many kinds on bad data
            raise KmagicDataError(f"could not adapt layer '{layer.name}' ({type(layer).__name__}) from the "
                                  f"training data: {exc}") from exc
        setattr(layer, _ADAPTED_MARK, True)
        adapted.append(layer.name)
    return adapted


# ---------------------------------------------------------------- compile defaults

@dataclass
class CompileChoice:
    """What ``%kfit`` compiles an uncompiled model with, and why."""

    optimizer: str = "adam"
    loss: Any = "mean_squared_error"
    metrics: Any = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def describe(self) -> str:
        loss = self.loss if not isinstance(self.loss, dict) else ", ".join(f"{k}: {v}" for k, v in self.loss.items())
        metrics = self.metrics if not isinstance(self.metrics, dict) else sorted({m for v in self.metrics.values()
                                                                                   for m in v})
        text = f"optimizer={self.optimizer}, loss={loss}"
        if metrics:
            text += f", metrics=[{', '.join(metrics)}]"
        return f"{text} ({'; '.join(self.reasons)})"


def _output_activation(layer: Any) -> str:
    for candidate in (layer, getattr(layer, "layer", None), getattr(layer, "forward_layer", None)):
        activation = getattr(candidate, "activation", None)
        if activation is not None:
            name = getattr(activation, "__name__", None) or str(activation)
            return name.lower()
    return "linear"


def _labels_are_integers(y: Any, units: int | None) -> bool:
    import numpy as np

    array = np.asarray(y)
    if array.ndim == 1 or (array.ndim >= 2 and array.shape[-1] == 1 and units != 1):
        return True
    return bool(np.issubdtype(array.dtype, np.integer)) and units is not None and array.shape[-1] != units


def _labels_of(y: Any, x: Any) -> Any:
    if y is not None:
        return y
    if type(x).__name__.endswith("Dataset") and hasattr(x, "take"):
        for _, labels, *_rest in x.take(1):
            return labels.numpy() if hasattr(labels, "numpy") else labels
    raise KmagicDataError("expected labels Y to infer a loss from, received none: give Y, "
                          "or compile the model yourself (a 'compile' line in the %%kmodel body)")


def _loss_for(layer: Any, units: int | None, y: Any, label: str) -> tuple[str, str | None, str]:
    activation = _output_activation(layer)
    if activation == "softmax" or activation == "log_softmax":
        if _labels_are_integers(y, units):
            return "sparse_categorical_crossentropy", "accuracy", f"{label}softmax output + integer labels"
        return "categorical_crossentropy", "accuracy", f"{label}softmax output + one-hot labels"
    if activation == "sigmoid":
        reason = "one sigmoid unit" if units == 1 else f"{units} sigmoid units (multi-label)"
        return "binary_crossentropy", "accuracy", f"{label}{reason}"
    return "mean_squared_error", None, f"{label}{activation} output"


def infer_compile(model: Any, y: Any, x: Any = None) -> CompileChoice:
    """The loss (per output), optimizer adam and accuracy for classifiers, from the output layers and labels."""
    outputs = list(model.outputs)
    labels = _labels_of(y, x)
    choice = CompileChoice()
    if len(outputs) == 1:
        tensor = outputs[0]
        loss, metric, reason = _loss_for(tensor._keras_history.operation, tensor.shape[-1], labels, "")
        choice.loss, choice.metrics, choice.reasons = loss, [metric] if metric else [], [reason]
        return choice
    names = [t._keras_history.operation.name for t in outputs]
    if isinstance(labels, Mapping):
        per_output = [labels.get(name) for name in names]
    elif isinstance(labels, (list, tuple)) and len(labels) == len(outputs):
        per_output = list(labels)
    else:
        raise KmagicDataError(f"expected one label array per output ({', '.join(names)}), "
                              f"received {type(labels).__name__}")
    choice.loss, choice.metrics = {}, {}
    for name, tensor, target in zip(names, outputs, per_output, strict=False):
        if target is None:
            raise KmagicDataError(f"expected labels for output '{name}', received none")
        loss, metric, reason = _loss_for(tensor._keras_history.operation, tensor.shape[-1], target, f"{name}: ")
        choice.loss[name] = loss
        choice.metrics[name] = [metric] if metric else []
        choice.reasons.append(reason)
    return choice


def _compile_scope(model: Any) -> Any:
    import contextlib

    from kmagic.buildinfo import info_of

    setup = info_of(model).setup
    return setup.scope() if setup is not None and hasattr(setup, "scope") else contextlib.nullcontext()


def ensure_compiled(model: Any, y: Any, x: Any = None, steps_per_execution: int | None = None) -> CompileChoice | None:
    """Compile with inferred defaults when the model is not compiled; the choice made, or None."""
    if getattr(model, "compiled", False) and getattr(model, "optimizer", None) is not None:
        if steps_per_execution is not None:
            set_steps_per_execution(model, steps_per_execution)
        return None
    from kmagic.buildinfo import info_of

    choice = infer_compile(model, y, x)
    setup = info_of(model).setup
    jit = getattr(setup, "jit", "auto") if setup is not None else "auto"
    with _compile_scope(model):
        model.compile(optimizer=choice.optimizer, loss=choice.loss, metrics=choice.metrics,
                      steps_per_execution=steps_per_execution or 1, jit_compile=jit)
    return choice


def set_steps_per_execution(model: Any, steps: int) -> None:
    """Change how many batches one call runs, on an already compiled model."""
    if getattr(model, "steps_per_execution", None) == steps:
        return
    model.steps_per_execution = steps
    model.train_function = model.test_function = model.predict_function = None


# ---------------------------------------------------------------- data checks

def _shape_of(value: Any) -> tuple[int | None, ...] | None:
    shape = getattr(value, "shape", None)
    if shape is None or type(value).__name__.endswith("Dataset"):
        return None
    return tuple(None if d is None else int(d) for d in shape)


def check_data(model: Any, x: Any, y: Any) -> None:
    """Array inputs must match the model's input shapes, and labels the number of samples."""
    inputs = list(model.inputs)
    if isinstance(x, Mapping):
        names = [t._keras_history.operation.name for t in inputs]
        arrays = [(name, x.get(name)) for name in names]
    elif isinstance(x, (list, tuple)) and len(inputs) > 1:
        arrays = [(t._keras_history.operation.name, part) for t, part in zip(inputs, x, strict=False)]
    else:
        arrays = [(inputs[0]._keras_history.operation.name, x)] if len(inputs) == 1 else []
    samples = None
    for tensor, (name, array) in zip(inputs, arrays, strict=False):
        shape = _shape_of(array)
        if shape is None:
            continue
        expected = tuple(tensor.shape)
        fits = len(shape) == len(expected) and all(e is None or e == d for e, d in zip(expected, shape, strict=True))
        if not fits:
            want = "(n, " + ", ".join("?" if d is None else str(d) for d in expected[1:]) + ")"
            raise KmagicDataError(f"expected inputs of shape {want} for model input '{name}', "
                                  f"received an array of shape {shape}")
        samples = shape[0] if samples is None else samples
    labels = _shape_of(y)
    if labels is not None and samples is not None and labels and labels[0] != samples:
        raise KmagicDataError(f"expected as many labels as input samples ({samples}), received {labels[0]}")


# ---------------------------------------------------------------- fit arguments

def fit_arguments(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``fit`` keywords: the model's stored defaults, overridden by the magic's arguments (None = not given).

    Callbacks add up: the stored ones first, then the given ones. Giving
    ``validation_data`` drops a stored ``validation_split`` and the reverse.
    """
    merged = dict(defaults)
    for key, value in given.items():
        if value is None or key == "callbacks":
            continue
        merged[key] = value
        if key == "validation_data":
            merged.pop("validation_split", None)
        if key == "validation_split":
            merged.pop("validation_data", None)
    callbacks = list(defaults.get("callbacks") or []) + list(given.get("callbacks") or [])
    if callbacks:
        merged["callbacks"] = callbacks
    return merged


def epoch_text_callback(write: Callable[[str], None] = print, stop_on_nan: bool = False) -> Any:
    """A Keras callback writing one line per epoch (the fallback when no dashboard is shown).

    With ``stop_on_nan`` it ends training after an epoch whose loss is NaN or infinite, and says so.
    """
    import math

    from kmagic._keras import keras

    class EpochText(keras().callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.epochs = self.params.get("epochs")

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            items = sorted((logs or {}).items(), key=lambda kv: (kv[0].startswith("val_"), "loss" not in kv[0]))
            values = {k: float(v) for k, v in items if hasattr(v, "__float__")}
            write(f"epoch {epoch + 1}/{self.epochs}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
            loss = values.get("loss")
            if stop_on_nan and loss is not None and not math.isfinite(loss):
                write(f"kmagic: the loss became {loss} at epoch {epoch + 1}: training stopped")
                self.model.stop_training = True

    return EpochText()
