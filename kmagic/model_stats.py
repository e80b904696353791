"""Facts about a Keras model for the model card: its graph, parameters, memory, multiply-adds.

Everything here reads a built model and returns plain data (no display).
Multiply-adds are counted per sample for the layers that do the arithmetic
(Dense, convolutions of every kind, recurrent layers, multi-head attention,
nested models); every other layer counts as 0 and is listed in
``ModelStats.uncounted`` so the card can say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kmagic import keras_internals
from kmagic.buildinfo import info_of


@dataclass
class LayerStats:
    """One node of the model graph (a layer call) with its numbers."""

    name: str
    cls: str
    output_shape: str
    inputs: list[str]
    trainable: int
    non_trainable: int
    macs: int | None
    origin: str | None = None
    origin_line: int | None = None
    is_input: bool = False
    is_merge: bool = False


@dataclass
class ModelStats:
    """The model card's data: rows, totals and where the model was built for."""

    name: str
    cls: str
    layers: list[LayerStats]
    trainable: int
    non_trainable: int
    weight_bytes: int
    macs: int
    uncounted: list[str] = field(default_factory=list)
    device: dict[str, Any] = field(default_factory=dict)
    compiled: str | None = None
    outputs: list[str] = field(default_factory=list)
    graph_known: bool = True

    @property
    def parameters(self) -> int:
        return self.trainable + self.non_trainable


def _count(weights: list[Any]) -> int:
    return sum(math.prod(int(d) for d in w.shape) for w in weights)


def _dims(shape: Any) -> list[int | None]:
    return [None if d is None else int(d) for d in shape]


def format_shape(shapes: list[Any]) -> str:
    """``(None, 28, 28, 1)``; several outputs joined by commas."""
    text = [str(tuple(_dims(s))).replace(",)", ")") for s in shapes]
    return ", ".join(text) if text else "?"


def _class_names(layer: Any) -> set[str]:
    return {klass.__name__ for klass in type(layer).__mro__}


def _prod(values: list[int | None]) -> int | None:
    if any(v is None for v in values):
        return None
    return math.prod(v for v in values)  # type: ignore[misc]


def _spatial(shape: list[int | None], layer: Any) -> list[int | None]:
    return shape[2:] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[1:-1]


def _channels(shape: list[int | None], layer: Any) -> int | None:
    return shape[1] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[-1]


def layer_macs(layer: Any, in_shapes: list[list[int | None]], out_shapes: list[list[int | None]]) -> int | None:
    """Multiply-adds per sample of one layer call; None when this layer kind is not counted."""
    names = _class_names(layer)
    if not in_shapes or not out_shapes:
        return None
    inp, out = in_shapes[0], out_shapes[0]
    if "Functional" in names or "Sequential" in names:
        return model_stats(layer).macs
    if "Bidirectional" in names:
        inner = layer_macs(layer.forward_layer, in_shapes, out_shapes)
        return None if inner is None else 2 * inner
    if "Dense" in names:
        rows = _prod(inp[1:-1]) if len(inp) > 2 else 1
        return None if rows is None or inp[-1] is None else rows * inp[-1] * layer.units
    if "BaseSeparableConv" in names:
        pixels, cin = _prod(_spatial(out, layer)), _channels(inp, layer)
        if pixels is None or cin is None:
            return None
        depth = cin * layer.depth_multiplier
        return pixels * (math.prod(layer.kernel_size) * depth + depth * layer.filters)
    if "BaseDepthwiseConv" in names:
        pixels, cin = _prod(_spatial(out, layer)), _channels(inp, layer)
        if pixels is None or cin is None:
            return None
        return pixels * math.prod(layer.kernel_size) * cin * layer.depth_multiplier
    if "BaseConvTranspose" in names:
        pixels, cin = _prod(_spatial(inp, layer)), _channels(inp, layer)
        if pixels is None or cin is None:
            return None
        return pixels * math.prod(layer.kernel_size) * cin * layer.filters
    if "BaseConv" in names:
        pixels, cin = _prod(_spatial(out, layer)), _channels(inp, layer)
        if pixels is None or cin is None:
            return None
        return pixels * math.prod(layer.kernel_size) * (cin // getattr(layer, "groups", 1)) * layer.filters
    for cls, gates in (("LSTM", 4), ("GRU", 3), ("SimpleRNN", 1)):
        if cls in names and len(inp) == 3:
            steps, features, units = inp[1], inp[2], layer.units
            if steps is None or features is None:
                return None
            return steps * gates * (features * units + units * units)
    if "MultiHeadAttention" in names:
        return _attention_macs(layer, in_shapes, out)
    return None


def _attention_macs(layer: Any, in_shapes: list[list[int | None]], out: list[int | None]) -> int | None:
    query = in_shapes[0]
    value = in_shapes[1] if len(in_shapes) > 1 else query
    key = in_shapes[2] if len(in_shapes) > 2 else value
    tq, dq = _prod(query[1:-1]), query[-1]
    tv, dv, dk = _prod(value[1:-1]), value[-1], key[-1]
    out_dim = out[-1]
    if tq is None or dq is None or tv is None or dv is None or dk is None or out_dim is None:
        return None
    heads, kdim = layer.num_heads, layer.key_dim
    vdim = layer.value_dim or kdim
    projections = tq * dq * heads * kdim + tv * dk * heads * kdim + tv * dv * heads * vdim
    attention = tq * tv * heads * (kdim + vdim)
    return projections + attention + tq * heads * vdim * out_dim


# ---------------------------------------------------------------- the graph

def _calls(model: Any) -> list[tuple[Any, Any]] | None:
    """(layer, node) for every layer call inside a functional model, in layer order."""
    return keras_internals.layer_calls(model)


def graph_model(model: Any) -> Any:
    """The functional graph behind a model (a Sequential's inner one), or None."""
    return keras_internals.functional_graph(model)


def layer_calls(model: Any) -> list[tuple[Any, Any]]:
    """``(layer, node)`` for every layer call in graph order; ``(layer, None)`` without a graph."""
    calls = _calls(model)
    return calls if calls is not None else [(layer, None) for layer in model.layers]


def _output_names(model: Any) -> list[str]:
    graph = keras_internals.functional_graph(model)
    if graph is None:
        return [model.layers[-1].name] if model.layers else []
    return [keras_internals.graph_layer_name(t) for t in graph.outputs]


def _compiled(model: Any) -> str | None:
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        return None
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict):
        loss_text = ", ".join(f"{k}={getattr(v, 'name', v)}" for k, v in loss.items())
    elif isinstance(loss, (list, tuple)):
        loss_text = ", ".join(str(getattr(v, "name", v)) for v in loss)
    else:
        loss_text = str(getattr(loss, "name", getattr(loss, "__name__", loss)))
    return f"{type(model.optimizer).__name__}, loss {loss_text}"


def _device(model: Any) -> dict[str, Any]:
    device = dict(info_of(model).device)
    if not device:
        policy = getattr(getattr(model, "dtype_policy", None), "name", None)
        device = {"device": "not recorded (not built by kmagic)", "precision": policy or "float32"}
    return device


def _weight_bytes(model: Any) -> int:
    import numpy as np

    seen: set[int] = set()
    total = 0
    for weight in model.weights:
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        # Keras 3 gives dtype names ("float32"); tf_keras gives tf.DType objects (their .name is the string).
        dtype = np.dtype(getattr(weight.dtype, "name", weight.dtype))
        total += math.prod(int(d) for d in weight.shape) * dtype.itemsize
    return total


def model_stats(model: Any) -> ModelStats:
    """Rows, totals, multiply-adds, device and compile facts of a (built) Keras model."""
    info = info_of(model)
    calls = _calls(model)
    graph_known = calls is not None
    if calls is None:
        calls = [(layer, None) for layer in model.layers]
    rows: list[LayerStats] = []
    uncounted: set[str] = set()
    previous: str | None = None
    for layer, node in calls:
        if node is not None:
            in_shapes = [_dims(t.shape) for t in node.input_tensors]
            out_shapes = [_dims(t.shape) for t in node.output_tensors]
            parents = [keras_internals.graph_layer_name(t) for t in node.input_tensors]
        else:
            in_shapes, out_shapes = [], []
            parents = [previous] if previous else []
        is_input = type(layer).__name__ == "InputLayer"
        macs = None if is_input else layer_macs(layer, in_shapes, out_shapes)
        if macs is None and not is_input:
            uncounted.add(type(layer).__name__)
        origin = info.origins.get(layer.name)
        rows.append(LayerStats(
            name=layer.name,
            cls=type(layer).__name__,
            output_shape=format_shape(out_shapes) if node is not None else "?",
            inputs=list(dict.fromkeys(parents)),
            trainable=_count(layer.trainable_weights),
            non_trainable=_count(layer.non_trainable_weights),
            macs=macs,
            origin=origin.text.strip() if origin else None,
            origin_line=origin.line if origin else None,
            is_input=is_input,
            is_merge=len(set(parents)) > 1,
        ))
        previous = layer.name
    return ModelStats(
        name=model.name,
        cls=type(model).__name__,
        layers=rows,
        trainable=_count(model.trainable_weights),
        non_trainable=_count(model.non_trainable_weights),
        weight_bytes=_weight_bytes(model),
        macs=sum(row.macs or 0 for row in rows),
        uncounted=sorted(uncounted),
        device=_device(model),
        compiled=_compiled(model),
        outputs=_output_names(model),
        graph_known=graph_known,
    )


def human_count(number: int) -> str:
    """``1.2M``-style short counts for totals."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if number >= size:
            return f"{number / size:.3g}{unit}"
    return str(number)


def human_bytes(number: int) -> str:
    """``4.6 MB``-style sizes (decimal units)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if number >= size:
            return f"{number / size:.3g} {unit}"
    return f"{number} B"
