"""Training data checked against a model before ``%kfit`` trains: one clear message per mismatch.

Every check names what the model expected and what it received, as a
:class:`~kmagic.errors.KmagicDataError`, so no Keras or TensorFlow traceback
reaches the user for: the number of inputs (and outputs); each input's
shape; dtypes (text for numbers, fractions for integer inputs, mixed object
arrays); empty arrays; NaN or infinite values; labels that do not fit the
loss (integer labels with categorical cross-entropy, one-hot labels with the
sparse one, class numbers beyond the output's units, binary labels outside
0..1, label shapes that would silently broadcast against the output);
sample counts; a validation split that leaves nothing on one side.

Datasets, generators and ``PyDataset`` objects are not looked into (reading
them would consume them); Keras checks those itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kmagic import keras_internals
from kmagic.errors import KmagicDataError

# ---------------------------------------------------------------- what the model wants


@dataclass
class Port:
    """One model input or output: its name, shape (batch axis included) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


def _model_tensors(model: Any, which: str) -> list[Any]:
    """``model.inputs`` or ``model.outputs``; empty for a model without a defined graph (subclassed,
    or a Sequential not built yet), which is then left to Keras."""
    try:
        return list(getattr(model, which, None) or [])
    except (AttributeError, ValueError, TypeError):
        return []


def _ports(tensors: list[Any]) -> list[Port]:
    ports = []
    for tensor in tensors:
        name = keras_internals.producer_name(tensor) or getattr(tensor, "name", "input")
        dtype = getattr(tensor, "dtype", "float32")
        dtype = getattr(dtype, "name", dtype)
        shape = tuple(None if d is None else int(d) for d in tensor.shape)
        ports.append(Port(str(name), shape, str(dtype)))
    return ports


def _pattern(shape: tuple[int | None, ...]) -> str:
    return "(n" + "".join(", ?" if d is None else f", {d}" for d in shape[1:]) + ")"


def is_streamed(data: Any) -> bool:
    """A dataset, generator or PyDataset: data kmagic does not read ahead."""
    name = type(data).__name__
    if name.endswith("Dataset") or name.endswith("DatasetV2") or "Iterator" in name:
        return True
    return hasattr(data, "__next__") or (hasattr(data, "__getitem__") and hasattr(data, "num_batches"))


def _array_like(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and len(value.shape) >= 1


def _as_array(value: Any, what: str) -> Any:
    """A numpy view of an array-like (lists, tensors, DataFrames) for checking only."""
    import numpy as np

    try:
        return np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - ragged lists and odd objects
        raise KmagicDataError(f"expected {what} as an array (rows of equal length), received "
                              f"{type(value).__name__} that numpy cannot turn into one ({exc})") from None


# ---------------------------------------------------------------- structure


def _split_by_port(data: Any, ports: list[Port], what: str, kind: str) -> list[tuple[Port, Any]]:
    """Pair each model input (or output) with its part of the data."""
    names = ", ".join(f"'{p.name}'" for p in ports)
    count = len(ports)
    plural = f"{count} {kind}s" if count != 1 else f"1 {kind}"
    if isinstance(data, Mapping):
        missing = [p.name for p in ports if p.name not in data]
        extra = sorted(str(k) for k in data if k not in {p.name for p in ports})
        if missing or extra:
            detail = []
            if missing:
                detail.append("missing " + ", ".join(f"'{m}'" for m in missing))
            if extra:
                detail.append("unknown " + ", ".join(f"'{e}'" for e in extra))
            raise KmagicDataError(f"expected {what} to have one entry per model {kind} ({names}), received keys "
                                  f"{sorted(str(k) for k in data)}: {'; '.join(detail)}")
        return [(p, data[p.name]) for p in ports]
    if isinstance(data, (list, tuple)) and (count > 1 or (data and all(_array_like(v) for v in data))):
        if len(data) != count:
            raise KmagicDataError(f"expected {plural} ({names}) in {what}, received a {type(data).__name__} of "
                                  f"{len(data)} arrays", hint="Pass one array per model "
                                  f"{kind}, in this order, or a dict keyed by {kind} name.")
        return list(zip(ports, data, strict=True))
    if count > 1:
        shape = getattr(data, "shape", None)
        received = f"one array of shape {tuple(shape)}" if shape is not None else f"one {type(data).__name__}"
        raise KmagicDataError(f"expected {plural} ({names}) in {what}: a list or dict of {count} arrays, "
                              f"received {received}")
    return [(ports[0], data)]


# ---------------------------------------------------------------- one array


def _check_samples(array: Any, what: str) -> int:
    if array.ndim == 0:
        raise KmagicDataError(f"expected {what} with one row per sample, received a single value ({array!r})")
    if array.shape[0] == 0:
        raise KmagicDataError(f"expected at least one sample in {what}, received an empty array of shape "
                              f"{tuple(array.shape)}")
    return int(array.shape[0])


def _check_finite(array: Any, what: str) -> None:
    import numpy as np

    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.complexfloating):
        return
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if not count:
        return
    nans = int(np.isnan(array).sum())
    kind = "NaN" if nans == count else ("infinite" if nans == 0 else "NaN or infinite")
    first = int(np.argwhere(bad)[0][0])
    if count == array.size:
        raise KmagicDataError(f"expected numbers in {what}, received an array that is all {kind} "
                              f"(shape {tuple(array.shape)})")
    raise KmagicDataError(f"expected finite numbers in {what}, received {count:,} {kind} value"
                          f"{'s' if count != 1 else ''} (the first in sample {first})",
                          hint="Fill or drop them before training, e.g. np.nan_to_num(X) or "
                               "X[~np.isnan(X).any(axis=1)].")


def _kind(dtype: Any) -> str:
    import numpy as np

    if np.issubdtype(dtype, np.bool_):
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "int"
    if np.issubdtype(dtype, np.floating):
        return "float"
    if np.issubdtype(dtype, np.complexfloating):
        return "complex"
    if dtype.kind in "US":
        return "text"
    if dtype.kind == "O":
        return "object"
    return dtype.kind


def _object_kind(array: Any) -> str:
    """What an object array holds: "text", "numbers" or "mixed"."""
    import numbers

    seen = set()
    for item in array.ravel()[:1000]:
        if isinstance(item, (str, bytes)):
            seen.add("text")
        elif isinstance(item, numbers.Number):
            seen.add("numbers")
        else:
            seen.add(type(item).__name__)
    return seen.pop() if len(seen) == 1 else "mixed"


def _received_kind(array: Any) -> str:
    kind = _kind(array.dtype)
    if kind == "object":
        inside = _object_kind(array)
        return {"text": "text (strings)", "numbers": "numbers in an object array"}.get(
            inside, f"an object array of {inside} values")
    return {"text": "text (strings)", "int": f"integers ({array.dtype})", "float": f"numbers ({array.dtype})",
            "bool": "booleans", "complex": f"complex numbers ({array.dtype})"}.get(kind, f"dtype {array.dtype}")


def _check_dtype(array: Any, port: Port, what: str) -> None:
    import numpy as np

    wanted = port.dtype
    kind = _kind(array.dtype)
    inside = _object_kind(array) if kind == "object" else None
    if wanted == "string":
        if kind == "text" or inside == "text":
            return
        raise KmagicDataError(f"expected text (strings) in {what} for model input '{port.name}' (dtype string), "
                              f"received {_received_kind(array)}")
    if kind == "text" or inside == "text":
        raise KmagicDataError(f"expected numbers in {what} for model input '{port.name}' ({wanted}), received "
                              f"text (strings)", hint="Turn text into numbers first (a TextVectorization or "
                                                      "StringLookup layer in the model, or np.unique(..., "
                                                      "return_inverse=True)).")
    if kind == "object" and inside != "numbers":
        raise KmagicDataError(f"expected numbers in {what} for model input '{port.name}' ({wanted}), received "
                              f"{_received_kind(array)} (mixed types, None values or ragged rows?)")
    if kind == "complex":
        raise KmagicDataError(f"expected real numbers in {what} for model input '{port.name}' ({wanted}), "
                              f"received {_received_kind(array)}")
    if kind not in ("int", "float", "bool", "object"):
        raise KmagicDataError(f"expected numbers in {what} for model input '{port.name}' ({wanted}), received "
                              f"{_received_kind(array)}")
    if wanted.startswith(("int", "uint")) and kind == "float":
        finite = array[np.isfinite(array)]
        fractional = finite[finite != np.round(finite)]
        if fractional.size:
            raise KmagicDataError(f"expected whole numbers in {what} for model input '{port.name}' ({wanted}: "
                                  f"token or category ids), received fractions such as {fractional.flat[0]:g}")


def _check_shape(array: Any, port: Port, what: str) -> None:
    expected = port.shape
    shape = tuple(int(d) for d in array.shape)
    fits = len(shape) == len(expected) and all(e is None or e == d for e, d in zip(expected, shape, strict=True))
    if fits or (port.dtype == "string" and shape[1:] == expected[1:-1] and expected[-1] == 1):
        return  # one string per sample for an input of shape (n, 1): the model adds the axis
    hint = None
    if len(shape) == len(expected) - 1 and expected[-1] == 1 and all(
            e is None or e == d for e, d in zip(expected[:-1], shape, strict=True)):
        hint = "Add the last axis of size 1: X[..., None] (or np.expand_dims(X, -1))."
    elif len(shape) == len(expected) - 1 and all(
            e is None or e == d for e, d in zip(expected[1:], shape, strict=True)):
        hint = "Is this a single sample? Add the batch axis: X[None]."
    elif len(shape) > 2 and len(expected) == 2 and expected[1] == math.prod(shape[1:]):
        hint = f"Flatten each sample: X.reshape(len(X), {expected[1]}), or start the model with 'flatten'."
    raise KmagicDataError(f"expected {what} of shape {_pattern(expected)} for model input '{port.name}', "
                          f"received an array of shape {shape}", hint=hint)


def check_inputs(model: Any, x: Any, what: str = "the training inputs") -> int | None:
    """Inputs against the model's inputs; the number of samples (None for streamed data)."""
    if x is None:
        raise KmagicDataError(f"expected {what}, received None")
    if is_streamed(x):
        return None
    ports = _ports(_model_tensors(model, "inputs"))
    if not ports:
        return _check_loose(x, what)
    samples = None
    for port, part in _split_by_port(x, ports, what, "input"):
        label = what if len(ports) == 1 else f"{what} for '{port.name}'"
        if part is None:
            raise KmagicDataError(f"expected an array in {label}, received None")
        if is_streamed(part):
            return None
        array = _as_array(part, label)
        count = _check_samples(array, label)
        _check_shape(array, port, label)
        _check_dtype(array, port, label)
        _check_finite(array, label)
        if samples is not None and count != samples:
            raise KmagicDataError(f"expected the same number of samples in every input, received {samples} and "
                                  f"{count} ('{port.name}')")
        samples = count
    return samples


def _check_loose(data: Any, what: str) -> int | None:
    """For a model without a known graph: each array is non-empty and finite; the sample count."""
    parts = list(data.values()) if isinstance(data, Mapping) else (
        list(data) if isinstance(data, (list, tuple)) and data and all(_array_like(v) for v in data) else [data])
    samples = None
    for part in parts:
        if part is None or is_streamed(part):
            return None
        array = _as_array(part, what)
        if array.dtype.kind == "O":
            continue
        samples = _check_samples(array, what)
        _check_finite(array, what)
    return samples


# ---------------------------------------------------------------- labels


def _loss_key(loss: Any) -> str:
    """A loss, by name, lowercased without underscores: "sparsecategoricalcrossentropy"."""
    if loss is None:
        return ""
    if isinstance(loss, str):
        name = loss
    else:
        name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
        fn = getattr(loss, "fn", None)  # LossFunctionWrapper
        if fn is not None and getattr(fn, "__name__", None):
            name = fn.__name__
    key = str(name).lower().replace("_", "")
    return {"scce": "sparsecategoricalcrossentropy", "cce": "categoricalcrossentropy",
            "bce": "binarycrossentropy", "mse": "meansquarederror", "mae": "meanabsoluteerror"}.get(key, key)


def _losses_per_output(model: Any, outputs: list[Port]) -> list[Any]:
    loss = getattr(model, "loss", None)
    if isinstance(loss, Mapping):
        return [loss.get(p.name) for p in outputs]
    if isinstance(loss, (list, tuple)):
        return list(loss) + [None] * (len(outputs) - len(loss))
    return [loss] * len(outputs)


def _integral(array: Any) -> bool:
    import numpy as np

    if _kind(array.dtype) in ("int", "bool"):
        return True
    return _kind(array.dtype) == "float" and bool(np.all(array == np.round(array)))


def _check_label_fit(array: Any, port: Port, loss: Any, what: str) -> None:
    """Labels against one output and its loss."""
    import numpy as np

    key = _loss_key(loss)
    out = port.shape
    units = out[-1] if len(out) >= 2 else None
    shape = tuple(int(d) for d in array.shape)
    name = f"output '{port.name}'"
    if "sparsecategorical" in key:
        sparse_ok = len(shape) == len(out) - 1 or (len(shape) == len(out) and shape[-1] == 1)
        if not sparse_ok and len(shape) == len(out) and units is not None and shape[-1] == units:
            raise KmagicDataError(f"expected integer class labels of shape (n,) for {name} with loss "
                                  f"sparse_categorical_crossentropy, received one-hot labels of shape {shape} in "
                                  f"{what}", hint="Use loss categorical_crossentropy (cce), or pass y.argmax(-1).")
        if not sparse_ok:
            raise KmagicDataError(f"expected integer class labels of shape (n,) for {name} with loss "
                                  f"sparse_categorical_crossentropy, received {what} of shape {shape}")
        if not _integral(array):
            raise KmagicDataError(f"expected whole class numbers in {what} for loss sparse_categorical_crossentropy, "
                                  f"received fractions such as {array[array != np.round(array)].flat[0]:g}")
        low, high = int(array.min()), int(array.max())
        if low < 0:
            raise KmagicDataError(f"expected class numbers from 0 in {what}, received {low}")
        if units is not None and high >= units:
            raise KmagicDataError(f"expected class numbers 0..{units - 1} in {what} ({name} has {units} units), "
                                  f"received labels up to {high}: {high + 1} or more classes for {units} outputs",
                                  hint=f"Give the last layer {high + 1} units.")
        return
    if "categoricalcrossentropy" in key or "categoricalhinge" in key or "kldivergence" in key:
        loss_name = "categorical_crossentropy" if "crossentropy" in key else key
        if len(shape) == len(out) - 1 or (len(shape) == len(out) and shape[-1] == 1 and units not in (None, 1)):
            kind = "integer" if _integral(array) else "one-column"
            raise KmagicDataError(f"expected one-hot labels of shape {_pattern(out)} for {name} with loss "
                                  f"{loss_name}, received {kind} labels of shape {shape} in {what}",
                                  hint="Use loss sparse_categorical_crossentropy (scce) for integer labels, or "
                                       f"one-hot encode them: keras.utils.to_categorical(y, {units}).")
        if units is not None and len(shape) == len(out) and shape[-1] != units:
            raise KmagicDataError(f"expected one-hot labels with {units} columns for {name} ({units} units), "
                                  f"received {what} of shape {shape}: {shape[-1]} classes for {units} outputs")
        return
    if ("binarycrossentropy" in key or "binaryfocal" in key) and _kind(array.dtype) in ("int", "float", "bool"):
        smallest, largest = float(array.min()), float(array.max())
        if smallest < 0 or largest > 1:
            raise KmagicDataError(f"expected labels between 0 and 1 in {what} for loss binary_crossentropy, "
                                  f"received values from {smallest:g} to {largest:g}",
                                  hint="For more than two classes use a softmax output with one unit per "
                                       "class and loss sparse_categorical_crossentropy.")
    if key in _ELEMENTWISE_LOSSES:  # a custom loss may take labels of any shape: left to it
        _check_same_shape(array, port, what)


#: Keras losses that compare labels and predictions element by element (labels shaped like the output).
_ELEMENTWISE_LOSSES = frozenset({
    "meansquarederror", "meanabsoluteerror", "meanabsolutepercentageerror", "meansquaredlogarithmicerror",
    "huber", "logcosh", "binarycrossentropy", "binaryfocalcrossentropy", "categoricalfocalcrossentropy",
    "hinge", "squaredhinge", "poisson", "cosinesimilarity", "mape", "msle",
})


def _check_same_shape(array: Any, port: Port, what: str) -> None:
    """Labels whose shape would broadcast against the output instead of matching it."""
    out = port.shape
    if any(d is None for d in out[1:]):
        return
    shape = tuple(int(d) for d in array.shape)
    if shape[1:] == out[1:]:
        return
    if len(shape) == len(out) - 1 and out[-1] == 1 and shape[1:] == out[1:-1]:
        return  # (n,) labels for an (n, 1) output
    raise KmagicDataError(f"expected labels of shape {_pattern(out)} to match output '{port.name}', received "
                          f"{what} of shape {shape}")


def check_labels(model: Any, y: Any, what: str = "the training labels", samples: int | None = None) -> None:
    """Labels against the model's outputs and (when compiled) its losses; counts against ``samples``."""
    if y is None or is_streamed(y):
        return
    outputs = _ports(_model_tensors(model, "outputs"))
    if not outputs:
        count = _check_loose(y, what)
        if samples is not None and count is not None and count != samples:
            raise KmagicDataError(f"expected as many labels as input samples ({samples}), received {count} in {what}")
        return
    losses = _losses_per_output(model, outputs)
    for (port, part), loss in zip(_split_by_port(y, outputs, what, "output"), losses, strict=True):
        if is_streamed(part):
            return
        label = what if len(outputs) == 1 else f"{what} for '{port.name}'"
        if part is None:
            raise KmagicDataError(f"expected an array in {label}, received None")
        array = _as_array(part, label)
        count = _check_samples(array, label)
        if samples is not None and count != samples:
            raise KmagicDataError(f"expected as many labels as input samples ({samples}), received {count} "
                                  f"in {label}")
        kind = _kind(array.dtype)
        if kind == "text" or (kind == "object" and _object_kind(array) == "text"):
            raise KmagicDataError(f"expected numeric labels in {label}, received text (strings)",
                                  hint="Map them to class numbers: classes, y = np.unique(y, return_inverse=True).")
        if kind == "object" and _object_kind(array) != "numbers":
            raise KmagicDataError(f"expected numeric labels in {label}, received {_received_kind(array)}")
        if kind == "object":
            array = array.astype("float64")
        _check_finite(array, label)
        if loss is not None:
            _check_label_fit(array, port, loss, label)


# ---------------------------------------------------------------- the whole fit


def split_point(samples: int, validation_split: float) -> int:
    """Where Keras splits arrays for ``validation_split``: the training part is ``[:split_at]``."""
    return int(math.ceil(samples * (1.0 - validation_split)))


def check_fit_data(model: Any, x: Any, y: Any, *, names: tuple[str, str] = ("X", "Y"),
                   validation_data: Any = None, validation_split: float | None = None) -> int | None:
    """Everything ``%kfit`` checks before training (see the module docstring); the number of samples.

    Label checks that need the loss run only when the model is compiled: call
    this again after compiling (cheap: the arrays were already converted once).
    """
    samples = check_inputs(model, x, f"the training inputs {names[0]}")
    if y is None and samples is not None and getattr(model, "loss", None) is not None:
        raise KmagicDataError(f"expected labels {names[1]} for the loss, received none",
                              hint="Give the labels after the inputs: %kfit NAME X Y.")
    check_labels(model, y, f"the training labels {names[1]}", samples)
    if validation_split and samples is not None:
        split_at = split_point(samples, validation_split)
        if split_at == 0 or split_at == samples:
            side = "validation" if split_at == samples else "training"
            raise KmagicDataError(f"expected a validation split that leaves samples on both sides, received "
                                  f"{validation_split:g} of {samples} samples, which leaves no {side} sample")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            if is_streamed(validation_data):
                return samples
            raise KmagicDataError("expected validation data as a dataset or as inputs and labels, received one "
                                  f"{type(validation_data).__name__}",
                                  hint="Give both: --validation-data XV YV (validation_data=(XV, YV) in kmagic.fit).")
        xv, yv = validation_data[0], validation_data[1]
        count = check_inputs(model, xv, "the validation inputs")
        check_labels(model, yv, "the validation labels", count)
    return samples


def check_loss_fit(model: Any, y: Any, *, names: tuple[str, str] = ("X", "Y"), validation_data: Any = None,
                   **_ignored: Any) -> None:
    """The label checks that need the loss, after :func:`check_fit_data` passed on an uncompiled model
    and ``%kfit`` compiled it with inferred defaults (the inputs are not scanned again)."""
    check_labels(model, y, f"the training labels {names[1]}")
    if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
        check_labels(model, validation_data[1], "the validation labels")


# ---------------------------------------------------------------- streamed data, weights, metrics


def is_endless(data: Any) -> bool:
    """A repeating ``tf.data`` dataset, a Python generator or iterator, or a PyDataset without a length."""
    if hasattr(data, "cardinality") and hasattr(data, "element_spec"):
        try:
            return int(data.cardinality()) == -1  # tf.data.INFINITE_CARDINALITY
        except (TypeError, ValueError):
            return False
    if hasattr(data, "num_batches") and hasattr(data, "__getitem__"):
        try:
            return data.num_batches is None
        except NotImplementedError:  # neither __len__ nor num_batches
            return True
    return hasattr(data, "__next__")


def _endless_kind(data: Any) -> str:
    if hasattr(data, "cardinality"):
        return "a repeating tf.data dataset"
    if hasattr(data, "num_batches"):
        return "a PyDataset without a length"
    return f"a Python {'generator' if type(data).__name__ == 'generator' else 'iterator'}"


def check_steps(x: Any, options: Mapping[str, Any], name: str = "X") -> None:
    """Endless training or validation data needs ``steps_per_epoch`` (``validation_steps``)."""
    if options.get("steps_per_epoch") is None and is_endless(x):
        raise KmagicDataError(f"expected --steps-per-epoch N with {_endless_kind(x)} as {name}, received none: "
                              "an epoch would never end",
                              hint="Add --steps-per-epoch N to %kfit (steps_per_epoch=N in kmagic.fit), "
                                   "N = batches per epoch.")
    validation = options.get("validation_data")
    if validation is not None and options.get("validation_steps") is None and is_endless(validation):
        raise KmagicDataError(f"expected --validation-steps N with {_endless_kind(validation)} as validation "
                              "data, received none: validation would never end",
                              hint="Add --validation-steps N to %kfit (validation_steps=N in kmagic.fit).")


def check_sample_weight(x: Any, weights: Any, samples: int | None = None) -> None:
    """Per-sample weights: one number per training sample, and only with arrays (not streamed data)."""
    import numpy as np

    if weights is None:
        return
    if is_streamed(x):
        raise KmagicDataError("expected sample weights inside the dataset (each element (x, y, weight)), "
                              f"received --sample-weight beside {type(x).__name__}",
                              hint="Yield (x, y, weight) from the dataset or generator instead.")
    array = _as_array(weights, "the sample weights")
    if array.ndim != 1 and not (array.ndim == 2 and array.shape[1] == 1):
        raise KmagicDataError(f"expected one weight per sample (a vector), received sample weights of shape "
                              f"{tuple(array.shape)}")
    if samples is not None and array.shape[0] != samples:
        raise KmagicDataError(f"expected one sample weight per training sample ({samples}), received "
                              f"{array.shape[0]}")
    if _kind(array.dtype) not in ("int", "float", "bool"):
        raise KmagicDataError(f"expected numbers as sample weights, received {_received_kind(array)}")
    if not np.all(np.isfinite(array.astype("float64"))):
        raise KmagicDataError("expected finite sample weights, received NaN or infinite values")


#: Keras metrics whose update needs labels shaped like the predictions (2-D).
_TWO_D_METRICS = {"f1score": "f1", "fbetascore": "fbeta", "f1": "f1", "fbeta": "fbeta"}


def _metric_names(model: Any) -> list[str]:
    config = keras_internals.compile_config(model) or {}
    metrics = config.get("metrics") or []
    if isinstance(metrics, Mapping):
        metrics = [m for group in metrics.values() for m in (group if isinstance(group, (list, tuple)) else [group])]
    names = []
    for metric in metrics if isinstance(metrics, (list, tuple)) else [metrics]:
        name = metric if isinstance(metric, str) else type(metric).__name__
        names.append(str(name).lower().replace("_", ""))
    return names


def check_metric_labels(model: Any, y: Any) -> None:
    """Integer class labels for an output of several units with f1/fbeta, which need one-hot labels."""
    needing = sorted({_TWO_D_METRICS[n] for n in _metric_names(model) if n in _TWO_D_METRICS})
    outputs = _ports(_model_tensors(model, "outputs"))
    if not needing or y is None or is_streamed(y) or len(outputs) != 1 or isinstance(y, (Mapping, list, tuple)):
        return
    units = outputs[0].shape[-1] if len(outputs[0].shape) >= 2 else None
    array = _as_array(y, "the training labels")
    if units not in (None, 1) and array.ndim == 1:
        raise KmagicDataError(f"expected one-hot labels of shape (n, {units}) for metric {', '.join(needing)}, "
                              f"received class numbers of shape {tuple(array.shape)}",
                              hint=f"One-hot encode them, keras.utils.to_categorical(y, {units}), with loss "
                                   "categorical_crossentropy (cce); or drop the metric.")
