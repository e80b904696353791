"""``kmagic.export``: readable Keras code for a model, as a module that runs on its own.

The code a ``%%kmodel`` build records names notebook objects where the body
used ``{expr}``: ``{base}`` becomes ``base(...)``, ``{Scale} 2`` becomes
``Scale(2)``. At build time :func:`objects_used` keeps what those names stood
for; at export each becomes

- an import: a module, or a class or function of an importable module;
- a function that rebuilds it, with fresh weights: a Keras model used as a layer;
- a ``keras.saving.deserialize_keras_object`` call: another Keras object (a
  layer instance, an optimizer, a metric) whose config is plain data;

or the export is refused with a :class:`~kmagic.errors.KmagicValueError` that
names each object that cannot be written (a class defined in the notebook
itself, an array...). The finished code is checked to name nothing it does not
define or import before it is returned or written: an exported file never
fails with ``NameError``.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import re
import symtable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmagic.errors import KmagicFileError, KmagicValueError

#: Names every written module defines itself (``import keras``, ``from keras import layers``).
_WRITTEN = frozenset({"keras", "layers"})
_BUILTINS = frozenset(dir(builtins))


def free_names(source: str) -> set[str]:
    """Names Python code reads but never binds at module level, builtins aside: each a NameError."""
    table = symtable.symtable(source, "<kmagic export>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    read: set[str] = set()

    def walk(scope: symtable.SymbolTable, top: bool) -> None:
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and (top or symbol.is_global()):
                read.add(symbol.get_name())
        for child in scope.get_children():
            walk(child, False)

    walk(table, True)
    return read - bound - _BUILTINS


def objects_used(program: Any, recording: Any, namespace: dict[str, Any] | None, model: Any) -> dict[str, Any]:
    """The notebook objects the recorded code names, by name (nothing when the body has no ``{expr}``)."""
    sources = [layer.stmt.source for layer in recording.layers]
    if program.compile is not None:
        sources.append(program.compile.source)
    if not any("{" in source for source in sources):
        return {}
    from kmagic.codegen import render_python

    found: dict[str, Any] = {}
    classes = {type(layer).__name__: type(layer) for layer in _all_layers(model)}
    namespace = namespace if namespace is not None else {}
    paths = [path for source in sources for path in _DOTTED.findall(source)]
    for name in sorted(free_names(render_python(recording)) - _WRITTEN):
        if name in classes:  # {Scale} and {mylib.Scale} are both written Scale(...)
            found[name] = classes[name]
        elif name in namespace:
            found[name] = namespace[name]
        else:  # a class is written by its own name: {np.float32} -> float32
            for path in paths:
                value = _follow(path, namespace) if path.rsplit(".", 1)[-1] == name else None
                if inspect.isclass(value):
                    found[name] = value
                    break
    return found


#: ``{a.b.c}``: an interpolation that is only a dotted name.
_DOTTED = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}")


def _follow(path: str, namespace: dict[str, Any]) -> Any:
    """The object a dotted name reaches from the namespace (attribute reads only), or None."""
    root, *attributes = path.split(".")
    value = namespace.get(root)
    for attribute in attributes:
        value = getattr(value, attribute, None)
    return value


def _all_layers(model: Any) -> list[Any]:
    layers = []
    for layer in getattr(model, "layers", []):
        layers.append(layer)
        layers.extend(_all_layers(layer) if hasattr(layer, "layers") else [])
    return layers


def export(model_or_text: Any, path: str | Path | None = None, *, namespace: dict[str, Any] | None = None) -> str:
    """Keras Python code that builds the same model (fresh weights), compiled as it is.

    ``model_or_text`` is a model (built by kmagic, or a Sequential/functional
    Keras model) or kmodel text, whose ``{expr}`` are evaluated in
    ``namespace``. With ``path`` the code is also written there. Objects the
    code cannot import or rebuild are refused by name (KmagicValueError).
    """
    if isinstance(model_or_text, str):
        from kmagic.compile import build

        model = build(model_or_text, namespace=namespace)
    else:
        model = model_or_text
    source = python_source(model)
    if path is not None:
        write(source, path)
    return source


def write(source: str, path: str | Path) -> Path:
    """Write exported code to ``path`` (a .py file in an existing folder)."""
    target = Path(path)
    if not target.parent.is_dir():
        raise KmagicFileError(f"expected an existing folder for '{target}', received a missing folder "
                              f"'{target.parent}'")
    try:
        target.write_text(source, encoding="utf-8")
    except OSError as exc:
        raise KmagicFileError(f"could not write '{target}': {exc.strerror or exc}") from None
    return target


def python_source(model: Any) -> str:
    """Runnable Keras code for a model: from its kmodel build, else through ``from_keras``."""
    from kmagic.codegen import render_python

    recording, objects = _recording_of(model)
    plan = _Plan()
    for name, value in objects.items():
        plan.resolve(name, value)
    plan.refuse_if_needed(model)
    reserved = tuple(objects)
    source = render_python(recording, imports=tuple(sorted(set(plan.imports))),
                           definitions=tuple(_join_blocks(plan.definitions)), reserved=reserved)
    missing = sorted(free_names(source) - plan.defined)
    if missing:
        raise KmagicValueError(f"cannot export '{model.name}' as code that runs on its own: expected every "
                               f"name it uses to be defined, received undefined {', '.join(missing)}")
    return source


def _recording_of(model: Any) -> tuple[Any, dict[str, Any]]:
    from kmagic.buildinfo import info_of

    if not all(hasattr(model, attr) for attr in ("layers", "get_config", "count_params")):
        raise KmagicValueError(f"expected a Keras model or kmodel text to export, received {type(model).__name__}")
    info = info_of(model)
    if info.recording is not None:
        return info.recording, dict(info.objects)
    from kmagic.codegen import from_keras
    from kmagic.compile import build_program
    from kmagic.dsl.check import parse

    _, recording = build_program(parse(from_keras(model)), name=model.name)
    return recording, {}


def _join_blocks(blocks: list[list[str]]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if lines:
            lines += ["", ""] if block[0].startswith("def ") or lines[-1].startswith(" ") else []
        lines += block
    return lines


@dataclass
class _Plan:
    """What the written module needs before the model: imports, definitions, and what cannot be written."""

    imports: list[str] = field(default_factory=list)
    definitions: list[list[str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    defined: set[str] = field(default_factory=lambda: set(_WRITTEN))
    seen: dict[int, str] = field(default_factory=dict)

    def resolve(self, name: str, value: Any) -> None:
        if name in self.defined:
            return
        if self.seen.get(id(value)) not in (None, name):
            self.definitions.append([f"{name} = {self.seen[id(value)]}"])
        elif inspect.ismodule(value):
            self.imports.append(f"import {value.__name__}" + ("" if value.__name__ == name else f" as {name}"))
        elif inspect.isclass(value) or inspect.isroutine(value):
            self._importable(name, value)
        elif _is_model(value):
            self._model(name, value)
        elif hasattr(value, "get_config"):
            self._keras_object(name, value)
        else:
            self.refused.append(f"{name} (a {type(value).__name__} value)")
            return
        self.seen[id(value)] = name
        self.defined.add(name)

    def _importable(self, name: str, value: Any) -> None:
        module, attr = getattr(value, "__module__", None), getattr(value, "__qualname__", "")
        if module in (None, "__main__", "builtins") or "." in attr or "<" in attr or not _imports(module, attr, value):
            kind = "class" if inspect.isclass(value) else "function"
            where = "defined in the notebook" if module == "__main__" else "that cannot be imported"
            self.refused.append(f"{name} (a {kind} {where})")
            return
        self.imports.append(f"from {module} import {attr}" + ("" if attr == name else f" as {name}"))

    def _model(self, name: str, model: Any) -> None:
        from kmagic.codegen import render_function

        try:
            recording, objects = _recording_of(model)
        except KmagicValueError as exc:
            self.refused.append(f"{name} (a Keras model kmagic cannot write as code: {exc.message})")
            return
        for inner, value in objects.items():
            self.resolve(inner, value)
        function = f"build_{name}"
        doc = f"The model '{model.name}' ({name} in the notebook), with fresh weights."
        block = render_function(recording, function, doc, reserved=tuple(objects))
        block += ["", "", f"{name} = {function}()"]
        if not model.trainable:
            block.append(f"{name}.trainable = False")
        self.definitions.append(block)
        self.defined.add(function)

    def _keras_object(self, name: str, value: Any) -> None:
        from kmagic._keras import keras
        from kmagic.values import literal_code

        cls = type(value)
        module = cls.__module__ or ""
        if not module.startswith(("keras.", "tf_keras.")):
            if module == "__main__" or not _imports(module, cls.__qualname__, cls):
                where = "is defined in the notebook" if module == "__main__" else "cannot be imported"
                self.refused.append(f"{name} (a {cls.__name__} object whose class {where})")
                return
            self.imports.append(f"import {module}")
        try:
            code = literal_code(keras().saving.serialize_keras_object(value))
        except Exception:  # noqa: BLE001 - an object Keras cannot serialize is refused below
            code = None
        if code is None:
            self.refused.append(f"{name} (a {cls.__name__} object whose config is not plain data)")
            return
        self.definitions.append([f"{name} = keras.saving.deserialize_keras_object({code})"])

    def refuse_if_needed(self, model: Any) -> None:
        if self.refused:
            raise KmagicValueError(
                f"cannot export '{model.name}' as code that runs on its own: expected objects that can be "
                f"imported or rebuilt, received {'; '.join(self.refused)}",
                hint="Move classes and functions into a .py module and import them in the notebook, then "
                     "build the model again and export it.")


def _is_model(value: Any) -> bool:
    from kmagic._keras import keras

    return isinstance(value, keras().Model)


def _imports(module: str, attr: str, value: Any) -> bool:
    """Whether ``from module import attr`` gives back ``value``."""
    try:
        return getattr(importlib.import_module(module), attr, None) is value
    except Exception:  # noqa: BLE001 - a module that fails to import cannot be imported by the file either
        return False
