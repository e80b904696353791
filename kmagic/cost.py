"""What one training step costs before it runs: memory per layer, and each layer's forward time.

The memory of one training step at batch size ``B`` is estimated as the sum of

- **weights**: every variable, at its own dtype (float32 master weights under mixed precision);
- **gradients**: one value per trainable parameter, at the variable's dtype;
- **optimizer slots**: ``slots × trainable parameters`` at the variable's dtype, where ``slots``
  is what the optimizer keeps per parameter (Adam 2, SGD with momentum 1, RMSprop 1, …);
- **activations**: ``B ×`` the elements of every layer call's output, at the layer's compute
  dtype (float16/bfloat16 under mixed precision), plus the input batch. These are the tensors
  the backward pass keeps. Layers that compute more than their output also keep their
  intermediate tensors: a recurrent layer keeps per time step ``7 × units`` values (LSTM: the
  previous state and cell, four gates, ``tanh`` of the cell), ``6 × units`` (GRU) or
  ``2 × units`` (SimpleRNN), twice for ``Bidirectional``; multi-head attention keeps its query,
  key and value projections, the attention scores before and after the softmax, and the
  attended values;
- **backward working memory**: the gradients of the largest layer's input and output, which
  are alive together while that layer's backward pass runs (``B ×`` their elements).

Nothing here allocates a tensor except :func:`layer_times`, which runs the model on real data.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from kmagic import keras_internals
from kmagic.errors import KmagicUsageError

#: Values each optimizer keeps per trainable parameter (Keras 3 optimizers, default settings).
OPTIMIZER_SLOTS = {
    "SGD": 0, "RMSprop": 1, "Adagrad": 1, "Adadelta": 2, "Adam": 2, "AdamW": 2, "Adamax": 2,
    "Nadam": 2, "Ftrl": 2, "Lion": 1, "Lamb": 2, "Adafactor": 1,
}
#: The parts of the estimate, in the order the card shows them.
PARTS = ("weights", "gradients", "optimizer", "activations", "backward")
#: The optimizer %kfit compiles with when a model is not compiled.
DEFAULT_OPTIMIZER = "Adam"


@dataclass
class LayerCost:
    """One layer call's share of a training step's memory, in bytes."""

    name: str
    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations


@dataclass
class MemoryEstimate:
    """The memory of one training step at ``batch_size``, per layer and in total."""

    batch_size: int
    optimizer: str
    slots: int
    compute_dtype: str
    layers: list[LayerCost] = field(default_factory=list)
    inputs: int = 0
    backward: int = 0

    def part(self, name: str) -> int:
        """Total bytes of one part: ``weights``, ``gradients``, ``optimizer`` or ``activations``."""
        if name == "backward":
            return self.backward
        return sum(getattr(row, name) for row in self.layers) + (self.inputs if name == "activations" else 0)

    @property
    def total(self) -> int:
        return sum(row.total for row in self.layers) + self.inputs + self.backward

    def describe(self) -> str:
        """One line: the total and its parts."""
        from kmagic.model_stats import human_bytes

        parts = ", ".join(f"{name} {human_bytes(self.part(name))}"
                          for name in PARTS)
        return (f"{human_bytes(self.total)} per training step at batch size {self.batch_size} "
                f"({parts}; {self.optimizer} keeps {self.slots} value(s) per parameter, "
                f"activations in {self.compute_dtype})")


def optimizer_slots(optimizer: Any) -> tuple[str, int]:
    """``(name, values kept per parameter)`` of a Keras optimizer (``None``: %kfit's default)."""
    if optimizer is None:
        return DEFAULT_OPTIMIZER, OPTIMIZER_SLOTS[DEFAULT_OPTIMIZER]
    inner = getattr(optimizer, "inner_optimizer", None)  # LossScaleOptimizer under mixed precision
    if inner is not None:
        optimizer = inner
    name = type(optimizer).__name__
    slots = OPTIMIZER_SLOTS.get(name, 2)
    if name == "SGD" and float(getattr(optimizer, "momentum", 0) or 0) > 0:
        slots = 1
    if name == "RMSprop":
        slots += int(bool(getattr(optimizer, "centered", False))) + int(float(optimizer.momentum or 0) > 0)
    if getattr(optimizer, "amsgrad", False):
        slots += 1
    if getattr(optimizer, "use_ema", False):
        slots += 1
    return name, slots


def _itemsize(dtype: Any) -> int:
    import numpy as np

    name = getattr(dtype, "name", dtype)
    return 2 if name == "bfloat16" else int(np.dtype(name).itemsize)


def _elements(shape: Any) -> int:
    dims = [1 if d is None else int(d) for d in shape]
    return math.prod(dims[1:]) if dims else 1


def _weight_bytes(weights: list[Any], seen: set[int]) -> int:
    total = 0
    for weight in weights:
        if id(weight) in seen:
            continue
        seen.add(id(weight))
        total += math.prod(int(d) for d in weight.shape) * _itemsize(weight.dtype)
    return total


#: Values a recurrent layer keeps per time step and unit for its backward pass.
RECURRENT_KEPT = {"LSTM": 7, "GRU": 6, "SimpleRNN": 2}


def _internal_elements(layer: Any, node: Any) -> int:
    """Per-sample elements of the intermediate tensors a layer keeps beyond its output."""
    name = type(layer).__name__
    if name == "Bidirectional":
        return 2 * _internal_elements(layer.forward_layer, node)
    shape = [None if d is None else int(d) for d in node.input_tensors[0].shape] if node.input_tensors else []
    if name in RECURRENT_KEPT and len(shape) == 3:
        return RECURRENT_KEPT[name] * (shape[1] or 1) * int(layer.units)
    if name == "MultiHeadAttention" and len(shape) >= 3:
        value = node.input_tensors[-1].shape if len(node.input_tensors) > 1 else shape
        steps_q, steps_v = math.prod(int(d or 1) for d in shape[1:-1]), math.prod(int(d or 1) for d in value[1:-1])
        heads, key_dim = int(layer.num_heads), int(layer.key_dim)
        value_dim = int(layer.value_dim or key_dim)
        projections = heads * (steps_q * key_dim + steps_v * key_dim + steps_v * value_dim)
        return projections + 2 * heads * steps_q * steps_v + heads * steps_q * value_dim
    return 0


def _batch_bytes(tensors: list[Any], batch_size: int) -> int:
    return sum(_elements(t.shape) * _itemsize(t.dtype) for t in tensors) * batch_size


def _compute_dtype(layer: Any) -> str:
    policy = getattr(layer, "dtype_policy", None)
    return str(getattr(policy, "compute_dtype", None) or getattr(layer, "compute_dtype", None) or "float32")


def training_memory(model: Any, batch_size: int, optimizer: Any = None) -> MemoryEstimate:
    """Estimate the memory of one training step of ``model`` at ``batch_size`` (see the module doc).

    ``optimizer`` defaults to the model's own (Adam when it is not compiled).
    """
    from kmagic.model_stats import layer_calls

    if batch_size < 1:
        raise KmagicUsageError(f"expected a batch size of at least 1, received {batch_size}")
    name, slots = optimizer_slots(optimizer if optimizer is not None else getattr(model, "optimizer", None))
    estimate = MemoryEstimate(batch_size=batch_size, optimizer=name, slots=slots,
                              compute_dtype=_compute_dtype(model))
    seen_weights: set[int] = set()
    seen_trainable: set[int] = set()
    for layer, node in layer_calls(model):
        outputs = node.output_tensors if node is not None else []
        activation = _batch_bytes(outputs, batch_size)
        if node is not None:
            through = activation + _batch_bytes(node.input_tensors, batch_size)
            estimate.backward = max(estimate.backward, through)
            activation += _internal_elements(layer, node) * batch_size * _itemsize(_compute_dtype(layer))
        if type(layer).__name__ == "InputLayer":
            estimate.inputs += activation
            continue
        trainable = _weight_bytes(layer.trainable_weights, seen_trainable)
        estimate.layers.append(LayerCost(
            name=layer.name,
            weights=_weight_bytes(layer.weights, seen_weights),
            gradients=trainable,
            optimizer=trainable * slots,
            activations=activation,
        ))
    return estimate


# ---------------------------------------------------------------- forward time per layer

def layer_times(model: Any, x: Any, *, repeats: int = 7, warmup: int = 2) -> dict[str, float]:
    """Each layer call's forward time on the batch ``x``, in seconds (median of ``repeats`` calls
    after ``warmup`` calls). Layers run one by one in inference mode, eagerly, on the inputs the
    model itself gives them; a nested model counts as one layer."""
    from kmagic._keras import keras
    from kmagic.model_stats import graph_model

    graph = graph_model(model)
    if graph is None:
        raise KmagicUsageError(
            f"model '{model.name}' has no layer graph to profile",
            hint="build it with an input shape (an Input layer, or %%kmodel --input)",
        )
    k = keras()
    inputs = [k.ops.convert_to_tensor(value) for value in _input_list(graph, x)]
    times: dict[str, float] = {}

    def timed(operation: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            result = None
            for _ in range(warmup):
                result = operation(*args, **kwargs)
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                result = operation(*args, **kwargs)
                _block_until_ready(result)
                samples.append(time.perf_counter() - start)
            times[operation.name] = times.get(operation.name, 0.0) + statistics.median(samples)
            return result

        return call

    keras_internals.run_through_graph(graph, inputs, timed)
    return times


def _input_list(graph: Any, x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [x[keras_internals.producer_name(t)] for t in graph.inputs]
    if isinstance(x, (list, tuple)) and len(graph.inputs) > 1:
        return list(x)
    return [x]


def _block_until_ready(result: Any) -> None:
    """Wait for a GPU's work (an eager op on a GPU may return before it is done; on a CPU it may not)."""
    first = result[0] if isinstance(result, (list, tuple)) and result else result
    if "GPU" in str(getattr(first, "device", "")):
        from kmagic._keras import tf

        float(tf().reshape(first, [-1])[0])  # reading one value waits for the stream
