"""Resource limits: how much memory a model's weights may take, and how many layers a program may have.

The weight limit (``%config KMagic.max_weight_bytes``; by default a quarter of
the machine's physical memory) is checked layer by layer *before* a layer's
variables exist: :func:`layer_weight_bytes` builds a copy of the layer on
shape-only inputs inside a Keras ``StatelessScope``, where variables record
their shape and dtype but allocate nothing. Importing this module imports no
TensorFlow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kmagic import keras_internals

#: The most layers (operations, after ``repeat`` and blocks are expanded) one program may build. Keras
#: builds a model by recursing once per layer, and each layer takes milliseconds to create.
MAX_LAYERS = 2_000
_FALLBACK_MEMORY = 16 * 2**30
_DTYPE_BYTES = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2, "bfloat16": 2,
                "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8, "float64": 8, "complex64": 8,
                "complex128": 16}

_max_weight_bytes: int | None = None


def physical_memory() -> int:
    """Bytes of physical memory on this machine (16 GiB where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_MEMORY


def default_max_weight_bytes() -> int:
    """A quarter of physical memory: room for the weights, their gradients and the optimizer's slots."""
    return physical_memory() // 4


def max_weight_bytes() -> int:
    """The most bytes one model's weights may take (``%config KMagic.max_weight_bytes``)."""
    return _max_weight_bytes if _max_weight_bytes is not None else default_max_weight_bytes()


def set_max_weight_bytes(limit: int | None) -> None:
    """Set the limit in bytes; None or 0 goes back to the default (a quarter of physical memory)."""
    global _max_weight_bytes
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        from kmagic.errors import KmagicValueError

        raise KmagicValueError(f"expected a whole number of bytes (0 = the default) for max_weight_bytes, "
                               f"received {limit!r}")
    _max_weight_bytes = limit or None


def readable_bytes(count: float) -> str:
    """``2.4 GB``: a byte count as people read it (powers of 1000)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} PB"  # pragma: no cover


def variable_bytes(variables: Iterable[Any]) -> tuple[int, int]:
    """(bytes, parameters) of variables from their shapes and dtypes; nothing is read."""
    total = parameters = 0
    for variable in variables:
        shape = tuple(getattr(variable, "shape", ()) or ())
        count = math.prod(int(d) for d in shape if d is not None)
        dtype = str(getattr(variable, "dtype", "float32")).rsplit(".", 1)[-1]
        parameters += count
        total += count * _DTYPE_BYTES.get(dtype, 4)
    return total, parameters


def layer_weight_bytes(layer: Any, inputs: list[Any], merge: bool = False) -> tuple[int, int] | None:
    """(bytes, parameters) the weights of ``layer`` would take when called on ``inputs``, or None when unknown.

    A built layer (a layer instance given by interpolation) is measured as it is. Otherwise a copy made
    from the layer's config is called on shape-only tensors in a ``StatelessScope``, so its variables are
    never allocated; they are dropped from Keras's list of variables awaiting initialization afterwards.
    None when the copy cannot be made (a custom layer without ``get_config``, say).
    """
    if getattr(layer, "built", False):
        return variable_bytes(layer.weights)
    try:
        from keras import KerasTensor, StatelessScope

        pending = keras_internals.uninitialized_variables()
    except ImportError:  # pragma: no cover - another Keras layout
        return None
    already = len(pending)
    try:
        copy = type(layer).from_config(layer.get_config())
        fresh = [KerasTensor(tuple(t.shape), dtype=t.dtype, sparse=getattr(t, "sparse", False)) for t in inputs]
        with StatelessScope(initialize_variables=False):
            copy(fresh) if merge else copy(*fresh)
        return variable_bytes(copy.weights)
    except Exception:  # noqa: BLE001 - the real build reports the layer's own problem
        return None
    finally:
        del pending[already:]


def weight_limit_message(layer_bytes: int, parameters: int, total_before: int) -> str:
    """The refusal text: what the weights need against the limit."""
    limit = max_weight_bytes()
    return (f"expected weights of at most {readable_bytes(limit)} in all (%config KMagic.max_weight_bytes), "
            f"received a layer whose weights need {readable_bytes(layer_bytes)} ({parameters:,} parameters)"
            + (f" on top of {readable_bytes(total_before)} before it" if total_before else ""))


# ---------------------------------------------------------------- a saved config, before loading it

def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _last_dim(build: Any) -> int | None:
    """The last axis of a layer's recorded input shape (``build_config``), when there is one."""
    shape = build.get("input_shape") if isinstance(build, Mapping) else None
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        shape = shape[0]
    return _dim(shape[-1]) if isinstance(shape, list) and shape else None


def _count(size: Any) -> int:
    if isinstance(size, list | tuple):
        return math.prod(_dim(v) or 1 for v in size)
    return _dim(size) or 1


def _layer_parameters(class_name: str, config: Mapping[str, Any], build: Any) -> int:
    """A lower bound of one layer's parameter count from its config (0 for layers not estimated)."""
    inputs = _last_dim(build) or 1
    units = _dim(config.get("units")) or 0
    if class_name in ("Dense", "EinsumDense") and units:
        return units * inputs + units
    if class_name == "Embedding":
        return (_dim(config.get("input_dim")) or 0) * (_dim(config.get("output_dim")) or 0)
    if class_name.startswith(("Conv", "SeparableConv", "DepthwiseConv")) and _dim(config.get("filters")):
        return _count(config.get("kernel_size")) * inputs * config["filters"] + config["filters"]
    gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}.get(class_name)
    if gates and units:
        return gates * units * (inputs + units + 1)
    return 0


def _layers(config: Any) -> Iterator[tuple[str, Mapping[str, Any], Any]]:
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            inner = item.get("config")
            if isinstance(item.get("class_name"), str) and isinstance(inner, Mapping):
                yield item["class_name"], inner, item.get("build_config")
            stack.extend(v for v in item.values() if isinstance(v, Mapping | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, Mapping | list))


def estimate_weight_bytes(config: Any) -> int:
    """A lower bound of the bytes a model config's weights need (float32), from its dense, embedding,
    convolution and recurrent layers; 0 when nothing is known."""
    return 4 * sum(_layer_parameters(name, inner, build) for name, inner, build in _layers(config))
