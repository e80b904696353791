"""How much memory a model's weights may take, and an estimate of it from a config before anything is built."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

#: Set by ``%config KMagic.max_weight_bytes`` (or by hand); None means the default below.
MAX_WEIGHT_BYTES: int | None = None
#: The default limit: this fraction of the machine's memory.
DEFAULT_FRACTION = 0.5


def machine_memory_bytes() -> int:
    """The machine's physical memory (8 GiB when the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 8 * 1024**3


def max_weight_bytes() -> int:
    """The most bytes a model's weights may need: the configured value, else half the machine's memory."""
    if MAX_WEIGHT_BYTES is not None:
        return int(MAX_WEIGHT_BYTES)
    return int(machine_memory_bytes() * DEFAULT_FRACTION)


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


def readable_bytes(count: int) -> str:
    """1,234 bytes, 5.0 MiB, 2.3 GiB."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{count:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
