"""The plain functions behind ``%kfit``: adapt preprocessing, infer compile defaults, merge fit arguments.

Nothing here displays anything; the magic prints what these functions report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kmagic import keras_internals
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
        return size > keras_internals.token_start_index(layer)
    return False


def layers_to_adapt(model: Any) -> list[Any]:
    """The preprocessing layers (Normalization, TextVectorization, StringLookup, IntegerLookup)
    that need data before training, in graph order."""
    return [layer for layer in model.layers if type(layer).__name__ in ADAPT_CLASSES and not _is_adapted(layer)]


def _input_index(model: Any, tensor: Any) -> int | None:
    """Which model input a tensor is, or None when it is computed inside the model."""
    for index, model_input in enumerate(model.inputs):
        if model_input is tensor or keras_internals.producer(model_input) is keras_internals.producer(tensor):
            return index
    return None


def _select_input(model: Any, x: Any, index: int) -> Any:
    if isinstance(x, Mapping):
        name = keras_internals.producer_name(model.inputs[index])
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
    if hasattr(x, "num_batches") and hasattr(x, "__getitem__"):  # a PyDataset: batch 0 is readable again
        first = x[0]
        if isinstance(first, tuple) and len(first) >= 2:
            return first[1]
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
        loss, metric, reason = _loss_for(keras_internals.producer(tensor), tensor.shape[-1], labels, "")
        choice.loss, choice.metrics, choice.reasons = loss, [metric] if metric else [], [reason]
        return choice
    names = [keras_internals.graph_layer_name(t) for t in outputs]
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
        loss, metric, reason = _loss_for(keras_internals.producer(tensor), tensor.shape[-1], target, f"{name}: ")
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

def validation_part(x: Any, y: Any, fit_kwargs: Mapping[str, Any]) -> tuple[Any, Any] | None:
    """The validation data a fit will use: ``validation_data``, or for ``validation_split`` the
    last fraction of X and Y (Keras takes it from the end, before shuffling); None for streamed data."""
    from kmagic import datacheck

    given = fit_kwargs.get("validation_data")
    if given is not None:
        return (given[0], given[1]) if isinstance(given, (tuple, list)) and len(given) >= 2 else None
    split = fit_kwargs.get("validation_split")
    if not split or y is None or datacheck.is_streamed(x):
        return None

    def tail(data: Any, start: int) -> Any:
        if isinstance(data, Mapping):
            return {k: v[start:] for k, v in data.items()}
        if isinstance(data, (list, tuple)) and data and all(hasattr(v, "shape") for v in data):
            return type(data)(v[start:] for v in data)
        return data[start:]

    first = next(iter(x.values())) if isinstance(x, Mapping) else (
        x[0] if isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape") else x)
    try:
        start = datacheck.split_point(len(first), float(split))
        return tail(x, start), tail(y, start)
    except TypeError:
        return None


# ---------------------------------------------------------------- running a fit

@dataclass
class FitOutcome:
    """What :func:`run_fit` returns: the Keras history, and whether a kernel interrupt stopped training."""

    history: Any
    interrupted: bool = False
    where: str = ""
    batches_done: int = 0


def _data_error_types() -> tuple[type[BaseException], ...]:
    from kmagic._keras import tf

    return (ValueError, TypeError, IndexError, KeyError, tf().errors.InvalidArgumentError)


def _keras_message(exc: BaseException) -> tuple[str, str]:
    """The first line of a Keras/TensorFlow error, and a short detail (without graph dumps)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first[:300], "\n".join(lines[:8])


def run_fit(model: Any, x: Any, y: Any, fit_kwargs: dict[str, Any], *, recorders: list[Any] | None = None,
            adapt_callbacks: Callable[[list[Any]], list[Any]] | None = None,
            bind: Callable[[Any], None] | None = None) -> FitOutcome:
    """``model.fit`` with the guards ``%kfit`` needs.

    - The first kernel interrupt (SIGINT) stops training at the end of the current batch
      (:class:`~kmagic.callbacks.interrupt.GracefulInterrupt`), or before the first batch when
      none has run yet (weights untouched, a history with no epoch); a second one interrupts at once.
    - ``bind`` receives the Keras ``History`` of *this* fit whenever at least one batch ran (or an
      interrupt ended it), whatever ended it, never one of an earlier fit.
    - An error Keras raises before the first batch has trained (data Keras cannot use) becomes a
      :class:`KmagicDataError` with Keras's message as detail, not a traceback.
    - An exception a Python generator ``x`` or ``validation_data`` raises is shown as itself (type,
      message, line), not as TensorFlow's "Graph execution error" (:mod:`kmagic.generator_errors`).
    """
    from kmagic import generator_errors
    from kmagic._keras import keras
    from kmagic.callbacks.interrupt import GracefulInterrupt, StoppedBeforeFirstBatch

    k = keras()
    kwargs = dict(fit_kwargs)
    guard = GracefulInterrupt(recorders)
    callbacks = [*list(kwargs.pop("callbacks", None) or []), guard]
    history = k.callbacks.History() if isinstance(model, k.Model) else None
    if history is not None:
        callbacks.append(history)
    if adapt_callbacks is not None:
        callbacks = adapt_callbacks(callbacks)
    earlier = getattr(model, "history", None)
    watched = generator_errors.watch(x)
    watched_validation = generator_errors.watch(kwargs.get("validation_data"))
    if watched_validation.data is not None:
        kwargs["validation_data"] = watched_validation.data

    def this_fit() -> Any:
        if history is not None:
            if not hasattr(history, "epoch"):  # stopped before Keras began: an empty record of this fit
                history.set_model(model)
                history.on_train_begin()
            return history
        current = getattr(model, "history", None)
        return current if current is not earlier else None

    def bind_this_fit() -> None:
        if bind is not None and this_fit() is not None:
            bind(this_fit())

    try:
        with guard:
            result = model.fit(watched.data, y, callbacks=callbacks, **kwargs)
    except StoppedBeforeFirstBatch:
        for recorder in recorders or []:
            getattr(recorder, "finish", lambda: None)()
        bind_this_fit()
        return FitOutcome(this_fit(), True, guard.where(), 0)
    except BaseException as exc:
        if guard.batches_ran or isinstance(exc, KeyboardInterrupt):
            bind_this_fit()
        if isinstance(exc, KeyboardInterrupt):
            raise
        for watch, what in ((watched, "the training data generator"),
                            (watched_validation, "the validation data generator")):
            user_error = watch.user_error(what)
            if user_error is not None:
                raise user_error from watch.exception
        user_error = generator_errors.from_tensorflow_text(exc)
        if user_error is not None:
            raise user_error from exc
        if guard.batches_ran or not isinstance(exc, _data_error_types()):
            raise
        first, detail = _keras_message(exc)
        raise KmagicDataError(f"Keras could not train on this data: {first}", detail=detail,
                              hint="Check the shapes and dtypes of X and Y against the model card.") from exc
    if bind is not None:
        bind(result)
    return FitOutcome(result, guard.interrupted, guard.where(), guard.batches_ran)


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


def epoch_text_callback(write: Callable[[str], None] = print, stop_on_nan: bool = False,
                        snapshot_interval: float = 1.0) -> Any:
    """A Keras callback writing one line per epoch (the fallback when no dashboard is shown).

    It is a :class:`~kmagic.callbacks.recorder.TrainingRecorder`, so a NaN or
    infinite loss is reported (one line) as soon as it appears and, with
    ``stop_on_nan``, ends training with the last finite weights restored,
    exactly as in the dashboard.
    """
    from kmagic.callbacks.history import epoch_line, nan_message, restored_message
    from kmagic.callbacks.recorder import TrainingRecorder
    from kmagic.widgets.frontend import test_mode

    class EpochText(TrainingRecorder):
        def on_epoch_recorded(self, epoch: int) -> None:
            write(epoch_line(self.history, epoch, timing=not test_mode()))

        def on_nan(self) -> None:
            write(nan_message(self.history, self.stop_on_nan))

        def on_restored(self, position: tuple[int, int] | None) -> None:
            write(restored_message(position))

        def on_finished(self) -> None:
            h = self.history
            if h.stopped_early:
                write(f"kmagic: training stopped at {h.where_stopped()}: {h.stop_reason}")

    return EpochText(refresh_interval=None, stop_on_nan=stop_on_nan, snapshot_interval=snapshot_interval)
