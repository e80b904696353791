"""Every use of private Keras and TensorFlow internals, in one place (tests/test_keras_internals.py tests each).

Keras 3 has no public API for these; when a Keras release moves one, the
test of that function fails and this module is the only one to edit.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any


def producer(tensor: Any) -> Any:
    """The layer (operation) whose call produced a symbolic tensor, or None (``tensor._keras_history``;
    Keras 3 calls it ``operation``, tf_keras ``layer``)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return getattr(history, "operation", None) or getattr(history, "layer", None)  # Keras 3, tf_keras


def producer_name(tensor: Any) -> str | None:
    """The name of the layer that produced a symbolic tensor, or None."""
    operation = producer(tensor)
    return operation.name if operation is not None else None


def graph_layer_name(tensor: Any) -> str:
    """The name of the layer that produced a tensor of a model's graph (each has one; ValueError otherwise)."""
    name = producer_name(tensor)
    if name is None:
        raise ValueError(f"expected a symbolic tensor of a Keras graph, received {type(tensor).__name__}")
    return name


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


# ------------------------------------------------------------------------------------ building, unallocated
def uninitialized_variables() -> list[Any]:
    """Keras's own list of variables created in a ``StatelessScope`` and awaiting initialization
    (``global_state`` ``uninitialized_variables``, created empty if missing); the caller may trim it.
    Raises ImportError under another Keras layout."""
    from keras.src.backend.common import global_state

    return global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)


# ------------------------------------------------------------------------------------ loading safely
def functional_model_classes() -> tuple[type, type]:
    """Keras's ``Functional`` and ``Sequential`` classes (``keras.src.models``), which saved configs name."""
    from keras.src.models.functional import Functional
    from keras.src.models.sequential import Sequential

    return Functional, Sequential


def operation_classes(module_names: tuple[str, ...]) -> set[type]:
    """The ``Operation`` subclasses (op layers such as ``Add`` or ``Reshape``) defined in
    ``keras.src.ops.<name>`` for each name, which a functional config may name."""
    from keras.src.ops.operation import Operation

    found: set[type] = set()
    for name in module_names:
        module = sys.modules.get(f"keras.src.ops.{name}") or importlib.import_module(f"keras.src.ops.{name}")
        found.update(obj for obj in vars(module).values()
                     if isinstance(obj, type) and issubclass(obj, Operation) and obj is not Operation)
    return found


def registered_custom_objects() -> dict[str, Any]:
    """The custom objects Keras would resolve now: those of an open ``custom_object_scope``
    (``global_state``) and those registered with ``register_keras_serializable``, the latter winning."""
    from keras.src.backend.common import global_state
    from keras.src.saving import object_registration

    return {**global_state.get_global_attribute("custom_objects_scope_dict", {}),
            **object_registration.GLOBAL_CUSTOM_OBJECTS}


def exported_symbol(name: str) -> Any:
    """The object Keras exports under a public dotted name (``keras.layers.Dense``), or None (``api_export``)."""
    from keras.src import api_export

    return api_export.get_symbol_from_name(name)


def builtin_function_modules() -> tuple[str, ...]:
    """The ``keras.<family>`` modules a config's ``"module": "builtins"`` function is looked up in,
    in Keras's order (``serialization_lib.BUILTIN_MODULES``)."""
    from keras.src.saving.serialization_lib import BUILTIN_MODULES

    return tuple(BUILTIN_MODULES)


def safe_mode_scope() -> AbstractContextManager[Any]:
    """Keras's safe mode switched on for the ``with`` block, whatever its global flag says (``SafeModeScope``)."""
    from keras.src.saving.serialization_lib import SafeModeScope

    return SafeModeScope(True)


# ------------------------------------------------------------------------------------ saving weights
def save_weights_skipping(model: Any, path: str, skip: list[Any]) -> None:
    """``model.save_weights(path)`` without the objects in ``skip`` (an optimizer whose state is broken)."""
    from keras.src.saving import saving_lib

    saving_lib.save_weights_only(model, path, objects_to_skip=skip)


def load_weights_skipping(model: Any, path: str, skip: list[Any]) -> None:
    """``model.load_weights(path)`` leaving the objects in ``skip`` as they are (an optimizer whose saved
    state does not fit)."""
    from keras.src.saving import saving_lib

    saving_lib.load_weights_only(model, path, objects_to_skip=skip)


# ------------------------------------------------------------------------------------ models and callbacks
def compile_config(model: Any) -> dict[str, Any] | None:
    """The arguments ``model.compile`` was given (``model._compile_config.config``), or None."""
    config = getattr(getattr(model, "_compile_config", None), "config", None)
    return config if isinstance(config, dict) else None


@contextmanager
def compile_config_kept(model: Any) -> Iterator[None]:
    """Put back the model's compile config as it was before the ``with`` block (``_compile_config``).

    Keras's HDF5 writer pops the optimizer out of the model's compile config in place; put back,
    a later save of the same model still records its optimizer. (A shallow copy: a deep copy
    would pickle, that is save and reload, the optimizer.)"""
    holder = getattr(model, "_compile_config", None)
    config = getattr(holder, "config", None)
    kept = dict(config) if isinstance(config, dict) else None
    try:
        yield
    finally:
        if kept is not None and holder is not None:
            holder.config = kept


def raw_learning_rate(optimizer: Any) -> Any:
    """What an optimizer holds as its learning rate (``_learning_rate``): a variable, a schedule, or None."""
    return getattr(optimizer, "_learning_rate", None)


def callback_model(callback: Any) -> Any:
    """The model a Keras callback is attached to, or None before ``set_model`` (``callback._model``:
    the public ``model`` property also syncs the JAX state, and tf_keras callbacks have no ``_model``,
    which gives None)."""
    return getattr(callback, "_model", None)
