"""Everyday data turned into what Keras trains on, per model input and output.

- Text: a numpy ``str``/``bytes`` array, a list of Python strings or a pandas
  Series of strings becomes the object array TensorFlow reads as ``tf.string``;
  one string per sample is a vector also for an input of shape ``(n, 1)`` (Keras
  cannot slice 2-D object arrays; the model adds the axis itself).
- pandas: a numeric DataFrame becomes one float32 matrix, a Series a vector; a
  DataFrame given to a model with several named inputs feeds each input from the
  column of that name (the same for outputs and labels).
- Labels: 1-D labels for an output of one unit become ``(n, 1)``, the shape
  metrics such as ``f1`` and ``fbeta`` need (losses take either); a
  ``tf.data`` dataset of such labels is mapped the same way.

pandas is never imported here: a value is recognised by its type's module.
Datasets, generators and ``PyDataset`` objects pass through unchanged (except
for the label shape of a ``tf.data`` dataset).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kmagic.errors import KmagicDataError


def _pandas_kind(value: Any) -> str | None:
    """"DataFrame" or "Series" for a pandas object, else None."""
    cls = type(value)
    if cls.__module__.split(".")[0] != "pandas":
        return None
    return cls.__name__ if cls.__name__ in ("DataFrame", "Series") else None


def _port_specs(model: Any, which: str) -> list[tuple[str, tuple[int | None, ...], str]]:
    """(name, shape, dtype) of each model input or output; empty for a model without a graph."""
    from kmagic.datacheck import _model_tensors, _ports

    return [(p.name, p.shape, p.dtype) for p in _ports(_model_tensors(model, which))]


def _is_text(array: Any) -> bool:
    if array.dtype.kind in "US":
        return True
    if array.dtype.kind == "O" and array.size:
        return isinstance(array.ravel()[0], (str, bytes))
    return False


def _series_array(series: Any) -> Any:
    import numpy as np

    array = series.to_numpy()
    if array.dtype.kind == "O" or str(series.dtype) in ("string", "str"):
        array = series.to_numpy(dtype=object)
        return array if _is_text(array) else np.asarray(array.tolist())
    return array


def _frame_matrix(frame: Any, what: str) -> Any:
    """A numeric DataFrame as one float32 matrix (text columns named in the error)."""
    import numpy as np

    bad = [str(c) for c, dtype in frame.dtypes.items()
           if not (np.issubdtype(np.dtype(dtype), np.number) or np.issubdtype(np.dtype(dtype), np.bool_))]
    if bad:
        raise KmagicDataError(f"expected numeric columns in {what} (a DataFrame becomes one float32 matrix), "
                              f"received non-numeric column{'s' if len(bad) > 1 else ''} "
                              f"{', '.join(repr(c) for c in bad[:5])}",
                              hint="Drop or encode them first, e.g. df.drop(columns=[...]) or "
                                   "pd.get_dummies(df), or give the model one named input per column.")
    return frame.to_numpy(dtype="float32")


def _as_numpy(value: Any, what: str) -> Any:
    """One array-like (pandas, list, numpy) as a numpy array; other values unchanged."""
    import numpy as np

    kind = _pandas_kind(value)
    if kind == "Series":
        return _series_array(value)
    if kind == "DataFrame":
        if len(value.columns) == 1 and not np.issubdtype(np.dtype(value.dtypes.iloc[0]), np.number):
            return _series_array(value.iloc[:, 0])[:, None]
        return _frame_matrix(value, what)
    if isinstance(value, list) and value and all(isinstance(v, (str, bytes)) for v in value):
        return np.array(value, dtype=object)
    if isinstance(value, list) and value and not any(hasattr(v, "shape") for v in value):
        try:
            return np.asarray(value)
        except ValueError:
            return value  # ragged: the data check names it
    return value


def _fit_port(value: Any, shape: tuple[int | None, ...], dtype: str, what: str) -> Any:
    """One array for one model input: text as objects, shaped to the input's rank."""
    import numpy as np

    value = _as_numpy(value, what)
    if not isinstance(value, np.ndarray):  # tensors (Keras's own calls), datasets, ...: as they are
        return value
    if _is_text(value):
        value = value.astype(object)
        # Keras cannot slice 2-D object arrays, and a Functional model adds a missing last axis of
        # size 1 itself: text for an input of shape (n, 1) (or (n,)) goes in as a vector.
        if dtype == "string" and value.ndim >= 2 and value.shape[-1] == 1 and (
                value.ndim == len(shape) + 1 or shape[-1] == 1):
            value = value[..., 0]
    return value


def _columns_by_name(frame: Any, ports: list[tuple[str, tuple[int | None, ...], str]], what: str,
                     kind: str) -> dict[str, Any]:
    names = [name for name, _, _ in ports]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise KmagicDataError(f"expected {what} to have one column per model {kind} ({', '.join(names)}), "
                              f"received a DataFrame without column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(repr(m) for m in missing)} (columns: "
                              f"{', '.join(repr(str(c)) for c in list(frame.columns)[:8])})",
                              hint=f"Rename the columns, or pass a dict keyed by {kind} name.")
    feed = {}
    for name, shape, dtype in ports:
        column = _series_array(frame[name])
        if not _is_text(column) and len(shape) == 2 and shape[-1] == 1 and column.ndim == 1:
            column = column[:, None]
        feed[name] = _fit_port(column, shape, dtype, f"{what} column '{name}'")
    return feed


def prepare_inputs(model: Any, x: Any, what: str = "the training inputs") -> Any:
    """Model inputs ``x`` as Keras takes them (see the module docstring); streamed data unchanged."""
    from kmagic.datacheck import is_streamed

    if x is None or is_streamed(x):
        return x
    ports = _port_specs(model, "inputs")
    if not ports:
        return _as_numpy(x, what) if _pandas_kind(x) or isinstance(x, list) else x
    if _pandas_kind(x) == "DataFrame" and len(ports) > 1:
        return _columns_by_name(x, ports, what, "input")
    if isinstance(x, Mapping):
        specs = {name: (shape, dtype) for name, shape, dtype in ports}
        return {k: _fit_port(v, *specs[k], what) if k in specs else v for k, v in x.items()}
    if isinstance(x, (list, tuple)) and len(ports) > 1 and len(x) == len(ports):
        return [_fit_port(v, shape, dtype, what) for v, (_, shape, dtype) in zip(x, ports, strict=True)]
    if len(ports) == 1:
        _, shape, dtype = ports[0]
        return _fit_port(x, shape, dtype, what)
    return x


def _label_port(value: Any, shape: tuple[int | None, ...], what: str) -> Any:
    import numpy as np

    value = _as_numpy(value, what)
    if isinstance(value, np.ndarray) and value.ndim == 1 and len(shape) == 2 and shape[-1] == 1 and not _is_text(value):
        return value[:, None]
    return value


def prepare_labels(model: Any, y: Any, what: str = "the training labels") -> Any:
    """Labels ``y`` as Keras takes them: pandas as numpy, 1-D labels of a one-unit output as ``(n, 1)``."""
    from kmagic.datacheck import is_streamed

    if y is None or is_streamed(y):
        return y
    ports = _port_specs(model, "outputs")
    if not ports:
        return _as_numpy(y, what) if _pandas_kind(y) or isinstance(y, list) else y
    if _pandas_kind(y) == "DataFrame" and len(ports) > 1 and all(n in y.columns for n, _, _ in ports):
        return {name: _label_port(y[name], shape, what) for name, shape, _ in ports}
    if isinstance(y, Mapping):
        shapes = {name: shape for name, shape, _ in ports}
        return {k: _label_port(v, shapes[k], what) if k in shapes else v for k, v in y.items()}
    if isinstance(y, (list, tuple)) and len(ports) > 1 and len(y) == len(ports):
        return [_label_port(v, shape, what) for v, (_, shape, _) in zip(y, ports, strict=True)]
    if len(ports) == 1:
        return _label_port(y, ports[0][1], what)
    return y


def prepare_dataset(model: Any, data: Any) -> Any:
    """A batched ``tf.data`` dataset of ``(x, y[, w])`` whose 1-D labels feed a one-unit output,
    mapped to ``(n, 1)`` labels; any other data unchanged."""
    spec = getattr(data, "element_spec", None)
    if not isinstance(spec, tuple) or len(spec) < 2 or not hasattr(data, "map"):
        return data
    label = spec[1]
    ports = _port_specs(model, "outputs")
    shape = getattr(label, "shape", None)
    if len(ports) != 1 or shape is None or shape.rank != 1 or ports[0][1][1:] != (1,):
        return data
    from kmagic._keras import tf

    t = tf()
    return data.map(lambda x, y, *rest: (x, t.expand_dims(y, -1), *rest))


def prepare_validation(model: Any, validation: Any) -> Any:
    """``validation_data`` (a dataset, or a tuple of inputs, labels and weights) prepared the same way."""
    if isinstance(validation, (tuple, list)) and len(validation) in (2, 3):
        xv, yv, *rest = validation
        return (prepare_inputs(model, xv, "the validation inputs"),
                prepare_labels(model, yv, "the validation labels"), *[_as_numpy(w, "the weights") for w in rest])
    return prepare_dataset(model, validation)


def prepare_weights(value: Any) -> Any:
    """Per-sample weights from pandas or a list as a numpy vector."""
    return _as_numpy(value, "the sample weights") if value is not None else None


# ---------------------------------------------------------------- models that take everyday data

_WRAPPED = "_kmagic_everyday_data"


def accept_everyday_data(model: Any) -> Any:
    """Let ``model.predict``/``evaluate``/``fit`` take what ``%kfit`` takes: str arrays, lists of
    strings, pandas Series and DataFrames (:func:`prepare_inputs`), 1-D labels for a one-unit
    output with ``f1`` (:func:`prepare_labels`). Returns ``model``.

    Plain Keras refuses numpy ``str`` arrays, lists of strings and Series of strings, cannot
    split a DataFrame by input name, and ``F1Score`` refuses 1-D labels. The methods become
    attributes of this model object; ``kmagic.build`` and ``kmagic.load`` call this.
    """
    if getattr(model, _WRAPPED, False) or not _port_specs(model, "inputs"):
        return model
    import functools

    def wrap(method: Any, with_labels: bool) -> Any:
        @functools.wraps(method)
        def call(x: Any = None, *args: Any, **kwargs: Any) -> Any:
            x = prepare_inputs(model, x)
            if with_labels:
                if args:
                    args = (prepare_labels(model, args[0]), *args[1:])
                elif "y" in kwargs:
                    kwargs["y"] = prepare_labels(model, kwargs["y"])
                if kwargs.get("validation_data") is not None:
                    kwargs["validation_data"] = prepare_validation(model, kwargs["validation_data"])
            return method(x, *args, **kwargs)

        return call

    object.__setattr__(model, "predict", wrap(model.predict, False))
    object.__setattr__(model, "evaluate", wrap(model.evaluate, True))
    object.__setattr__(model, "fit", wrap(model.fit, True))
    object.__setattr__(model, _WRAPPED, True)
    return model
