"""Check a Keras config against an allow-list before Keras deserialises any of it.

Every dict with a ``class_name`` (at any depth: layers, nested models,
activations, initializers, regularizers, constraints, losses, metrics,
optimizers, schedules, op nodes) is resolved the way Keras would resolve it
(registered name, custom objects, ``module`` + ``class_name``, the
``"function"`` and ``"builtins"`` forms) and the result must be on the list:
Keras's public modelling classes minus the ones that hold code (Lambda,
TFSMLayer, ...), the pure activation/loss/metric functions, classes the user
registered or passed as ``custom_objects``. Python code (``__lambda__``) is
never allowed. Nothing here depends on Keras's global safe-mode flag.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kmagic import keras_internals
from kmagic.registry import CODE_LAYER_CLASSES

#: Plain-data forms Keras decodes without looking anything up.
DATA_FORMS = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__ellipsis__", "__slice__",
                        "__tuple__"})

#: Forms that are code or resolve arbitrary classes: never allowed.
CODE_FORMS = frozenset({"__lambda__", "__typespec__"})

#: Ops that take Python functions (control flow); the rest of keras.ops is pure array maths.
_FUNCTION_OPS = frozenset({"Cond", "Map", "Scan", "AssociativeScan", "WhileLoop", "ForiLoop", "VectorizedMap",
                           "CustomGradient", "Switch"})

#: Callbacks that write files, call the network or run functions are left off.
_SAFE_CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN", "History", "ProgbarLogger",
                   "LearningRateScheduler")

#: Layers whose ``vocabulary`` may be a path that Keras would read.
_VOCABULARY_KEYS = ("vocabulary",)

_NOT_FUNCTIONS = frozenset({"get", "serialize", "deserialize"})


@dataclass(frozen=True)
class Refusal:
    """Why a config is refused: what was named, where it sits (a path in the config), and why."""

    what: str
    where: str
    reason: str
    missing: bool = False

    def message(self) -> str:
        place = f" at {self.where}" if self.where else ""
        return f"{self.what}{place} {self.reason}"


def _keras() -> Any:
    import keras

    return keras


@lru_cache(maxsize=1)
def allowed_classes() -> frozenset[type]:
    """Keras's public modelling classes, minus those that hold code."""
    k = _keras()
    modules = [k.layers, k.initializers, k.regularizers, k.constraints, k.losses, k.metrics, k.optimizers,
               k.optimizers.schedules, k.dtype_policies, k.models, k.mixed_precision]
    found: set[type] = set()
    for module in modules:
        found.update(obj for obj in vars(module).values() if inspect.isclass(obj))
    found.update(getattr(k.callbacks, name) for name in _SAFE_CALLBACKS if hasattr(k.callbacks, name))
    found.update({*keras_internals.functional_model_classes(), k.Model, k.Layer, k.DTypePolicy,
                  k.layers.InputLayer})
    found.update(cls for cls in keras_internals.operation_classes(("numpy", "nn", "math", "core", "image", "linalg"))
                 if cls.__name__ not in _FUNCTION_OPS)
    return frozenset(cls for cls in found if cls.__name__ not in CODE_LAYER_CLASSES)


@lru_cache(maxsize=1)
def allowed_functions() -> frozenset[Any]:
    """The pure activation, loss and metric functions Keras exports."""
    k = _keras()
    found: set[Any] = set()
    for module in (k.activations, k.losses, k.metrics):
        found.update(obj for name, obj in vars(module).items()
                     if isinstance(obj, types.FunctionType) and name not in _NOT_FUNCTIONS)
    return frozenset(found)


@lru_cache(maxsize=1)
def _allowed_names() -> frozenset[str]:
    return frozenset(cls.__name__ for cls in allowed_classes())


def _describe(node: Mapping[str, Any]) -> str:
    module = node.get("module")
    name = node.get("class_name")
    if name == "function":
        name = node.get("config")
        return f"the function '{module}.{name}'" if module else f"the function '{name}'"
    return f"the class '{module}.{name}'" if module else f"the class '{name}'"


class _Resolver:
    """Resolves one config node as Keras would, against the allow-list."""

    def __init__(self, custom_objects: Mapping[str, Any] | None) -> None:
        self.custom = {**(custom_objects or {}), **keras_internals.registered_custom_objects()}

    def is_custom(self, name: Any) -> bool:
        return isinstance(name, str) and name in self.custom

    def symbol(self, module: str, name: str) -> Any:
        obj = keras_internals.exported_symbol(f"{module}.{name}")
        if obj is not None:
            return obj
        if module.split(".", 1)[0] != "keras":
            return None
        loaded = sys.modules.get(module)
        if loaded is None:
            try:
                loaded = importlib.import_module(module)  # Keras's own code only: the name starts with keras.
            except ImportError:
                return None
        return vars(loaded).get(name)

    def check(self, node: Mapping[str, Any], where: str) -> Refusal | None:
        class_name = node["class_name"]
        if class_name in DATA_FORMS:
            return None
        if class_name in CODE_FORMS:
            return Refusal(f"'{class_name}'", where, "holds Python code, which kmagic never runs")
        if class_name == "function":
            return self.function(node, where)
        return self.cls(node, where)

    def function(self, node: Mapping[str, Any], where: str) -> Refusal | None:
        module, name, registered = node.get("module"), node.get("config"), node.get("registered_name")
        what = _describe(node)
        if not isinstance(name, str):
            return Refusal(what, where, "is not a function name")
        if self.is_custom(name) and registered in (None, "function", name):
            return None
        if isinstance(registered, str) and registered not in ("function", name) and not self.is_custom(registered):
            return Refusal(what, where, f"has a registered name '{registered}' that is not a registered function")
        obj = None
        if module == "builtins":
            for family in keras_internals.builtin_function_modules():  # Keras's own order: the first one found wins
                obj = self.symbol(f"keras.{family}", name)
                if obj is not None:
                    break
        elif isinstance(module, str) and (module == "keras" or module.startswith("keras.")):
            obj = self.symbol(module, name)
        if obj is None:
            return Refusal(what, where, "is not a Keras activation, loss or metric function, nor a registered "
                           "custom object: register it with keras.saving.register_keras_serializable or pass "
                           f"custom_objects={{'{name}': {name}}}", missing=True)
        if obj not in allowed_functions():
            return Refusal(what, where, "is not an activation, loss or metric function (a function with other "
                           "effects would run with the model)")
        return None

    def cls(self, node: Mapping[str, Any], where: str) -> Refusal | None:
        class_name = node["class_name"]
        module = node.get("module")
        registered = node.get("registered_name", class_name)
        what = _describe(node)
        if not isinstance(class_name, str) or not class_name:
            return Refusal(what, where, "is not a class name")
        if self.is_custom(registered) or (module is None and self.is_custom(class_name)):
            return None
        obj = None
        if isinstance(module, str) and (module == "keras" or module.startswith("keras.")):
            obj = self.symbol(module, class_name)
        elif module is None and class_name in _allowed_names():
            return self.fields(node, class_name, where)
        if obj is None:
            if class_name in CODE_LAYER_CLASSES:
                return Refusal(what, where, "holds Python code or a saved graph, which kmagic never runs: rebuild the model without it")
            return Refusal(what, where, "is not a Keras class, nor registered, nor in custom_objects: register it "
                           "with keras.saving.register_keras_serializable or pass "
                           f"custom_objects={{'{class_name}': {class_name}}}", missing=True)
        if obj not in allowed_classes():
            if getattr(obj, "__name__", class_name) in CODE_LAYER_CLASSES or class_name in CODE_LAYER_CLASSES:
                return Refusal(what, where, "holds Python code or a saved graph, which kmagic never runs: rebuild the model without it")
            return Refusal(what, where, "is not on kmagic's list of classes a model may hold")
        return self.fields(node, getattr(obj, "__name__", class_name), where)

    def fields(self, node: Mapping[str, Any], class_name: str, where: str) -> Refusal | None:
        inner = node.get("config")
        if isinstance(inner, Mapping):
            for key in _VOCABULARY_KEYS:
                if isinstance(inner.get(key), str):
                    return Refusal(f"the {key} of '{class_name}'", where,
                                   "names a file that Keras would read; save the vocabulary in the model instead")
        return None


def _walk(config: Any) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Every dict with a string ``class_name``, with its path, without recursion."""
    stack: list[tuple[Any, str]] = [(config, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, Mapping):
            if isinstance(item.get("class_name"), str):
                yield item, path or "the top level"
            for key, value in reversed(list(item.items())):
                if isinstance(value, Mapping | list | tuple):
                    stack.append((value, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list | tuple):
            for index in reversed(range(len(item))):
                if isinstance(item[index], Mapping | list | tuple):
                    stack.append((item[index], f"{path}[{index}]"))


def _named(node: Mapping[str, Any], path: str) -> str:
    """A readable place: the config path plus the layer's name where there is one."""
    inner = node.get("config")
    name = inner.get("name") if isinstance(inner, Mapping) else None
    return f"{path} (named '{name}')" if isinstance(name, str) else path


def find_refusal(config: Any, custom_objects: Mapping[str, Any] | None = None) -> Refusal | None:
    """The first thing in ``config`` kmagic refuses to deserialise, or None when all of it is allowed."""
    resolver = _Resolver(custom_objects)
    for node, path in _walk(config):
        refusal = resolver.check(node, _named(node, path))
        if refusal is not None:
            return refusal
    return None


def top_level_class(config: Any, custom_objects: Mapping[str, Any] | None = None) -> type | None:
    """The class the top of a (checked) model config resolves to, or None when Keras would not find one."""
    if not isinstance(config, Mapping) or not isinstance(config.get("class_name"), str):
        return None
    resolver = _Resolver(custom_objects)
    name = config["class_name"]
    registered = config.get("registered_name", name)
    for key in (registered, name):
        if resolver.is_custom(key):
            return resolver.custom[key]
    module = config.get("module")
    if isinstance(module, str):
        obj = resolver.symbol(module, name)
        return obj if inspect.isclass(obj) else None
    return next((cls for cls in allowed_classes() if cls.__name__ == name), None)


def _registered(name: Any) -> bool:
    """Registered with keras.saving.register_keras_serializable (only asked when Keras is already imported)."""
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(name, str):
        return False
    try:
        return name in keras.saving.get_custom_objects()
    except Exception:  # noqa: BLE001 - a half-imported Keras knows no registrations
        return False


def literal_refusal(mapping: Mapping[str, Any]) -> str | None:
    """A check that needs no Keras, for ``dict(...)`` in a kmodel body: the forms that are always refused."""
    stack: list[Any] = [mapping]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            class_name = item.get("class_name")
            module = item.get("module")
            class_name = class_name if isinstance(class_name, str) else None
            if class_name in CODE_FORMS or (class_name or "").rsplit(".", 1)[-1] in CODE_LAYER_CLASSES:
                return f"class_name='{class_name}', which holds code that kmagic never runs"
            if _registered(item.get("registered_name")) or _registered(class_name):
                stack.extend(v for k, v in item.items() if k == "config")
                continue
            if isinstance(module, str) and module not in ("builtins",) and module.split(".", 1)[0] != "keras":
                return f"module='{module}', which is not a Keras module"
            if class_name == "function" and isinstance(module, str) and module not in (
                    "builtins", "keras.activations", "keras.losses", "keras.metrics"):
                return (f"a function from module='{module}': only Keras activation, loss and metric functions "
                        "may be named")
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def dict_node_refusal(node: Any) -> str | None:
    """The TF-free check of a ``dict(...)`` call in a kmodel body (an ``ast.Call``), on its literal values."""
    from kmagic.dsl import ast

    def literal(value: Any) -> Any:
        if isinstance(value, ast.String | ast.Number | ast.Const):
            return value.value
        if isinstance(value, ast.Word):
            return value.name
        if isinstance(value, ast.TupleValue | ast.ListValue):
            return [literal(item) for item in value.items]
        if isinstance(value, ast.Call) and value.name.lower() == "dict":
            return {kwarg.key: literal(kwarg.value) for kwarg in value.kwargs}
        return None

    return literal_refusal(literal(node)) if isinstance(node, ast.Call) else None


def body_dict_refusal(mapping: Mapping[str, Any]) -> str | None:
    """The full check of a resolved ``dict(...)`` value of a kmodel body (Keras is loaded by then)."""
    refusal = literal_refusal(mapping) or find_refusal(mapping)
    if isinstance(refusal, Refusal):
        return refusal.message()
    return refusal
