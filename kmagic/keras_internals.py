"""Every use of private Keras and TensorFlow internals, in one place (tests/test_keras_internals.py tests each).

Keras 3 has no public API for these; when a Keras release moves one, the
test of that function fails and this module is the only one to edit.
"""

from __future__ import annotations

from typing import Any


def producer(tensor: Any) -> Any:
    """The layer (operation) whose call produced a symbolic tensor, or None (``tensor._keras_history``)."""
    history = getattr(tensor, "_keras_history", None)
    return history.operation if history is not None else None


def producer_name(tensor: Any) -> str | None:
    """The name of the layer that produced a symbolic tensor, or None."""
    operation = producer(tensor)
    return operation.name if operation is not None else None


def functional_graph(model: Any) -> Any:
    """The functional graph behind a model (a Sequential's inner one), or None (``_nodes``, ``_functional``)."""
    if hasattr(model, "_nodes_by_depth") and hasattr(model, "_nodes"):
        return model
    inner = getattr(model, "_functional", None)
    if inner is not None and hasattr(inner, "_nodes"):
        return inner
    return None


def layer_calls(model: Any) -> list[tuple[Any, Any]] | None:
    """(layer, node) for every layer call inside a functional model, in layer order; None if not functional.

    A layer called in several models has one inbound node per call; the one
    in this graph is the one whose key (``{id}_ib-{index}``) the graph holds.
    """
    graph = functional_graph(model)
    if graph is None:
        return None
    calls = []
    for layer in graph.layers:
        for index, node in enumerate(layer._inbound_nodes):
            if f"{id(layer)}_ib-{index}" in graph._nodes:
                calls.append((layer, node))
                break
    return calls


def run_through_graph(graph: Any, inputs: list[Any], operation_fn: Any) -> Any:
    """Run a functional graph eagerly, calling each layer through ``operation_fn(layer)`` (a wrapper
    that may time the call or watch its output under a gradient tape); ``Functional._run_through_graph``."""
    return graph._run_through_graph(inputs, operation_fn=operation_fn)


def token_start_index(layer: Any) -> int:
    """How many special tokens (padding, OOV) a lookup or TextVectorization layer puts first."""
    special = getattr(layer, "_token_start_index", None)
    if special is None and hasattr(layer, "_lookup_layer"):
        special = layer._lookup_layer._token_start_index
    return int(special() if callable(special) else (special or 0))


def gpu_memory_limits() -> list[int]:
    """Memory per GPU in bytes, in TensorFlow's order (``tensorflow.python.client.device_lib``)."""
    from tensorflow.python.client import device_lib

    return [int(d.memory_limit) for d in device_lib.list_local_devices() if d.device_type == "GPU"]


#: tf_keras (Keras 2) asks a callback whether it has batch hooks through these private methods,
#: and skips the hooks when they say no; a wrapper must answer for the callback it wraps.
KERAS2_BATCH_HOOK_CHECKS: dict[str, tuple[str, str]] = {
    "_implements_train_batch_hooks": ("on_train_batch_begin", "on_train_batch_end"),
    "_implements_test_batch_hooks": ("on_test_batch_begin", "on_test_batch_end"),
    "_implements_predict_batch_hooks": ("on_predict_batch_begin", "on_predict_batch_end"),
}
