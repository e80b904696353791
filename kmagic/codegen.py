"""Readable Keras Python from kmodel text (``to_python``), and kmodel text from a model (``from_keras``)."""

from __future__ import annotations

import inspect
import re
from typing import Any

from kmagic import registry
from kmagic.compile import LayerCode, Recording, build_program, constructor_defaults
from kmagic.dsl.check import parse
from kmagic.dsl.program import BlockDef
from kmagic.errors import KmagicValueError

# ---------------------------------------------------------------------------- to_python


def to_python(text: str, name: str | None = None, input_shape: Any = None, namespace: dict[str, Any] | None = None,
              blocks: dict[str, BlockDef] | None = None) -> str:
    """Readable Keras functional-API code that builds the same model as ``text``."""
    program = parse(text, input_shape=input_shape, blocks=blocks)
    _, recording = build_program(program, name=name, namespace=namespace)
    return render_python(recording)


def render_python(recording: Recording, *, imports: tuple[str, ...] = (), definitions: tuple[str, ...] = (),
                  reserved: tuple[str, ...] = ()) -> str:
    """Turn a build recording into a runnable Python module.

    ``imports`` and ``definitions`` (lines) come before the model: what the
    layers' code names besides ``keras`` and ``layers`` (see
    :mod:`kmagic.exporting`); ``reserved`` names are not used for tensors.
    """
    names = _variable_names(recording, reserved)
    lines = [
        '"""A Keras model, written out by kmagic from a kmodel program."""',
        "",
        "import keras",
        "from keras import layers",
        *imports,
        "",
    ]
    if definitions:
        lines += ["", *definitions, "", ""]
    lines += layer_lines(recording, names)
    lines += ["", f"model = {model_call(recording, names)}"]
    if recording.compile_code:
        lines.append(f"model.compile({recording.compile_code})")
    if recording.fit_code:
        settings = ", ".join(f"{k}={v}" for k, v in recording.fit_code.items())
        lines += ["", "# The program's fit settings; pass your data as x and y:", f"# model.fit(x, y, {settings})"]
    lines += ["", 'if __name__ == "__main__":', "    model.summary()", ""]
    return "\n".join(lines)


def render_function(recording: Recording, function: str, doc: str, reserved: tuple[str, ...] = ()) -> list[str]:
    """``def function():`` that builds and returns the recorded model (for a model inside a model)."""
    names = _variable_names(recording, reserved)
    body = [*layer_lines(recording, names), f"return {model_call(recording, names)}"]
    return [f"def {function}():", f'    """{doc}"""', *(f"    {line}" for line in body)]


def layer_lines(recording: Recording, names: dict[int, str]) -> list[str]:
    """One assignment per recorded layer, each with the kmodel statement it came from."""
    lines: list[str] = []
    for layer in recording.layers:
        out = names[layer.out]
        comment = f"  # line {layer.stmt.span.line}: {_statement_text(layer)}"
        if not layer.inputs:
            lines.append(f"{out} = {layer.call}{comment}")
            continue
        args = [names[i] for i in layer.inputs]
        for extra in layer.extra:
            lines.append(f"shortcut = {extra}({args[0]})")
            args[0] = "shortcut"
        call_args = f"[{', '.join(args)}]" if layer.merge else ", ".join(args)
        first = "[0]" if layer.first_output else ""
        lines.append(f"{out} = {layer.call}({call_args}){first}{comment}")
    return lines


def model_call(recording: Recording, names: dict[int, str]) -> str:
    """``keras.Model(inputs=..., outputs=..., name=...)`` for the recorded tensors."""
    inputs = [names[i] for i in recording.inputs]
    outputs = [names[o] for o in recording.outputs]
    input_code = inputs[0] if len(inputs) == 1 else f"[{', '.join(inputs)}]"
    output_code = outputs[0] if len(outputs) == 1 else f"[{', '.join(outputs)}]"
    return f"keras.Model(inputs={input_code}, outputs={output_code}, name={recording.model_name!r})"


def _statement_text(layer: LayerCode) -> str:
    span = layer.stmt.span
    return layer.stmt.source[span.column - 1: span.column - 1 + span.width].strip()


def _variable_names(recording: Recording, reserved: tuple[str, ...] = ()) -> dict[int, str]:
    """``x`` for a tensor only the very next layer reads; a name of its own otherwise."""
    uses: dict[int, list[int]] = {}
    for position, layer in enumerate(recording.layers):
        for tensor in layer.inputs:
            uses.setdefault(tensor, []).append(position)
    names: dict[int, str] = {}
    taken: set[str] = {"keras", "layers", "model", "shortcut", *reserved}
    outputs = set(recording.outputs)
    single_input = len(recording.inputs) == 1
    for position, layer in enumerate(recording.layers):
        given = recording.names.get(layer.out)
        if given:
            candidate = _identifier(given)
        elif not layer.inputs:
            candidate = "inputs" if single_input else f"input_{len([n for n in names.values() if 'input' in n]) + 1}"
        elif uses.get(layer.out) == [position + 1] and layer.out not in outputs:
            names[layer.out] = "x"
            continue
        else:
            candidate = "outputs" if layer.out in outputs and len(outputs) == 1 else f"x{layer.out}"
        while candidate in taken:
            candidate += "_"
        taken.add(candidate)
        names[layer.out] = candidate
    return names


def _identifier(name: str) -> str:
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"t_{cleaned}"


# ---------------------------------------------------------------------------- from_keras

_SKIP_KEYS = {"name", "trainable", "dtype", "build_config", "compile_config"}
_MHA_SKIP = {"query_shape", "key_shape", "value_shape"}
_REFUSED = registry.CODE_LAYER_CLASSES | {"Functional", "Sequential", "Model", "TimeDistributed"}


def _alias_by_class() -> dict[str, registry.LayerSpec]:
    table: dict[str, registry.LayerSpec] = {}
    for spec in registry.LAYER_ALIASES.values():
        if spec.alias == "input" or spec.keras == "Activation":
            continue
        classes = spec.keras.values() if isinstance(spec.keras, dict) else [spec.keras]
        for class_name in classes:
            table.setdefault(class_name, spec)
    return table


def from_keras(model: Any) -> str:
    """kmodel text that builds a model with the same layers, shapes and parameters.

    Works for Sequential and functional models made of known Keras layers
    (and registered custom layers); anything else gets a clear KmagicValueError.
    """
    from kmagic._keras import keras

    k = keras()
    if not isinstance(model, k.Model):
        raise KmagicValueError(f"from_keras expected a keras.Model, received {type(model).__name__}")
    entries = _graph_entries(model, k)
    return _Writer(entries, k).text()


def _graph_entries(model: Any, k: Any) -> list[dict[str, Any]]:
    """Each layer's config with its input layer names and whether it is an output, in order."""
    kind = type(model).__name__
    if kind not in ("Sequential", "Functional"):
        raise KmagicValueError(f"from_keras expected a Sequential or functional model, received a subclassed "
                               f"model ('{kind}'): its call() is Python that kmodel cannot express")
    config = model.get_config()
    if kind == "Sequential":
        try:
            built_inputs = model.inputs
        except (AttributeError, ValueError):  # Keras 3 raises for a Sequential model never given an input
            built_inputs = None
        if not built_inputs:
            raise KmagicValueError("from_keras expected a built Sequential model (give it a keras.Input first), "
                                   "received one with no input shape")
        entries: list[dict[str, Any]] = []
        previous = None
        layers = list(config["layers"])
        if layers and layers[0]["class_name"] != "InputLayer":
            tensor = model.inputs[0]
            layers.insert(0, {"class_name": "InputLayer", "config": {"batch_shape": tuple(tensor.shape),
                                                                     "dtype": tensor.dtype, "name": "input"}})
        for layer in layers:
            name = layer["config"].get("name") or f"layer_{len(entries)}"
            entries.append({**layer, "name": name, "inputs": [previous] if previous else []})
            previous = name
        entries[-1]["is_output"] = True
        return entries
    outputs = config["output_layers"]
    if outputs and not isinstance(outputs[0], list | tuple):
        outputs = [outputs]
    output_names = [o[0] for o in outputs]
    entries = []
    for layer in config["layers"]:
        nodes = layer.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise KmagicValueError(f"from_keras cannot write layer '{layer['name']}': it is shared (called "
                                   f"{len(nodes)} times), which kmodel has no syntax for")
        inputs = _node_inputs(nodes[0], layer["name"]) if nodes else []
        entries.append({**layer, "inputs": inputs, "is_output": layer["name"] in output_names})
    read = {name for entry in entries for name in entry["inputs"]}
    entries = [e for e in entries if e["class_name"] == "InputLayer" or e["name"] in read or e["is_output"]]
    for entry in entries:
        entry["output_order"] = output_names.index(entry["name"]) if entry["name"] in output_names else None
    return entries


def _node_inputs(node: dict[str, Any], layer_name: str) -> list[str]:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            history = value["config"]["keras_history"]
            if history[2] != 0:
                raise KmagicValueError(f"from_keras cannot write layer '{layer_name}': it reads output "
                                       f"{history[2]} of '{history[0]}', and kmodel layers have one output")
            found.append(history[0])
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(node.get("args", []))
    walk({k: v for k, v in (node.get("kwargs") or {}).items() if k not in ("mask", "training")})
    return found


class _Writer:
    """Turns graph entries into kmodel lines."""

    def __init__(self, entries: list[dict[str, Any]], k: Any) -> None:
        self.entries = entries
        self.k = k
        self.aliases = _alias_by_class()
        self.needed = self._names_needed()

    def _names_needed(self) -> set[str]:
        needed: set[str] = set()
        previous = None
        several_inputs = sum(e["class_name"] == "InputLayer" for e in self.entries) > 1
        for entry in self.entries:
            if entry["class_name"] == "InputLayer":
                if several_inputs:
                    needed.add(entry["name"])
            elif self._refs(entry, previous):
                needed.update(entry["inputs"])
            previous = entry["name"]
        outputs = [e for e in self.entries if e.get("is_output")]
        if len(outputs) > 1 or (outputs and outputs[-1] is not self.entries[-1]):
            needed.update(e["name"] for e in outputs)
        return needed

    def _is_merge(self, entry: dict[str, Any]) -> bool:
        spec = self.aliases.get(entry["class_name"])
        return bool(spec and spec.merge)

    def text(self) -> str:
        lines, previous = [], None
        for entry in self.entries:
            line = self._line(entry, previous)
            if entry["name"] in self.needed:
                line += f" as {_identifier(entry['name'])}"
            lines.append(line)
            previous = entry["name"]
        outputs = sorted((e for e in self.entries if e.get("is_output")), key=lambda e: e.get("output_order") or 0)
        if len(outputs) > 1 or (outputs and outputs[-1] is not self.entries[-1]):
            lines.append("output " + " ".join(f"@{_identifier(e['name'])}" for e in outputs))
        return "\n".join(lines) + "\n"

    def _line(self, entry: dict[str, Any], previous: str | None) -> str:
        class_name, config = entry["class_name"], dict(entry["config"])
        if class_name == "InputLayer":
            return self._input(config)
        if class_name in _REFUSED:
            raise KmagicValueError(f"from_keras cannot write layer '{entry['name']}' ({class_name}): it holds "
                                   "Python code or a whole model, which kmodel cannot express")
        statement = self._statement(class_name, config, entry)
        refs = self._refs(entry, previous)
        return f"{statement} {refs}".rstrip()

    def _refs(self, entry: dict[str, Any], previous: str | None) -> str:
        inputs = entry["inputs"]
        if entry["class_name"] == "MultiHeadAttention" and inputs == [previous, previous]:
            return ""
        if inputs == [previous] and not self._is_merge(entry) and entry["class_name"] != "MultiHeadAttention":
            return ""
        return " ".join(f"@{_identifier(name)}" for name in inputs)

    def _input(self, config: dict[str, Any]) -> str:
        dims = tuple(config.get("batch_shape") or config.get("batch_input_shape") or (None,))[1:]
        shape = "x".join("?" if d is None else str(d) for d in dims) if dims else "()"
        if len(dims) > 1 and all(d is None for d in dims):
            shape = "(" + ", ".join("None" for _ in dims) + ")"
        dtype = str(config.get("dtype") or "float32")
        if not dims and dtype == "string" and not config.get("sparse"):
            return "input text"  # one string per sample
        parts = ["input", shape]
        if dtype != "float32":
            parts.append(f"dtype={dtype}")
        if config.get("sparse"):
            parts.append("sparse=true")
        return " ".join(parts)

    def _statement(self, class_name: str, config: dict[str, Any], entry: dict[str, Any]) -> str:
        _refuse_functions(config, entry["name"], class_name)
        cls = self._layer_class(class_name, entry)
        defaults = _defaults(cls)
        config = {k: v for k, v in config.items() if k not in _SKIP_KEYS and not (class_name == "MultiHeadAttention"
                                                                                     and k in _MHA_SKIP)}
        policy = _policy_name(entry["config"].get("dtype"))
        extra = [f"dtype='{policy}'"] if policy not in (None, "float32") else []
        if class_name == "Activation" and config.get("activation") in registry.ACTIVATION_WORDS:
            return str(config["activation"])
        if class_name == "Bidirectional":
            inner = config.pop("layer")
            config.pop("backward_layer", None)
            inner_entry = {"name": entry["name"], "config": inner["config"]}
            words = ["bi", self._statement(inner["class_name"], dict(inner["config"]), inner_entry)]
            if config.get("merge_mode", "concat") != "concat":
                words.append(f"merge={_value_text(config['merge_mode'])}")
            return " ".join(words)
        spec = self.aliases.get(class_name)
        words = [spec.alias if spec else class_name]
        # Every key a fresh layer reports, even one its signature hides in **kwargs (rms_scaling of
        # LayerNormalization): a value equal to the fresh one needs no keyword.
        params = constructor_defaults(cls)
        fresh = {k: v for k, v in _fresh_config(cls, config).items() if k in defaults or k not in params}
        remaining = {k: _collapse(k, v) for k, v in config.items()
                     if not _is_default(v, fresh.get(k, defaults.get(k, _MISSING)))
                     and not (k == "strides" and "pool_size" in config and _normal(v) == _normal(config["pool_size"]))}
        if spec is not None:
            for name in spec.positional:
                if name not in remaining:
                    break
                words.append(_value_text(remaining.pop(name)))
            for flag, (key, value) in spec.flags.items():
                if remaining.get(key) == value:
                    words.append(flag)
                    remaining.pop(key)
            for key, fixed in spec.fixed.items():
                if remaining.get(key) == fixed:
                    remaining.pop(key)
        activation = remaining.get("activation")
        if isinstance(activation, str) and activation in registry.ACTIVATION_WORDS:
            words.append(remaining.pop("activation"))
        padding = remaining.get("padding")
        if isinstance(padding, str) and padding in registry.PADDING_WORDS:
            words.append(remaining.pop("padding"))
        words += [f"{key}={_value_text(value)}" for key, value in remaining.items()] + extra
        return " ".join(words)

    def _layer_class(self, class_name: str, entry: dict[str, Any]) -> type:
        cls = getattr(self.k.layers, class_name, None)
        if cls is None:
            registered = entry.get("registered_name") or class_name
            cls = self.k.saving.get_custom_objects().get(registered)
        if cls is None:
            raise KmagicValueError(f"from_keras cannot write layer '{entry['name']}': class '{class_name}' is "
                                   "neither a Keras layer nor registered with keras.saving.register_keras_serializable")
        return cls


_FUNCTION_CLASSES = {"function", "__lambda__"}


def _refuse_functions(config: Any, layer: str, class_name: str, key: str | None = None) -> None:
    """A Python function in a layer's settings (``activation=keras.ops.sin``) has no kmodel text: refuse it."""
    if isinstance(config, dict):
        if _is_marshalled_lambda(config):
            raise KmagicValueError(
                f"from_keras cannot write layer '{layer}' ({class_name}): expected Keras names or values for its "
                f"settings, received a Python lambda for '{key or 'a setting'}', which kmodel text cannot hold",
                hint="Use a Keras activation or object, or give the function with a {...} interpolation.")
        if config.get("class_name") in _FUNCTION_CLASSES:
            inner = config.get("config")
            named = inner if isinstance(inner, str) else (inner or {}).get("name") if isinstance(inner, dict) else None
            module = config.get("module")
            what = f"the Python function '{named}'" if named else "a Python function (lambda)"
            if named and module and module != "builtins":
                what += f" of module '{module}'"
            raise KmagicValueError(
                f"from_keras cannot write layer '{layer}' ({class_name}): expected Keras names or values for its "
                f"settings, received {what} for '{key or 'a setting'}', which kmodel text cannot name",
                hint="Use a Keras activation or object (keras.activations.*), or give the function to the "
                     "layer with a {...} interpolation in the kmodel body.")
        for name, value in config.items():
            _refuse_functions(value, layer, class_name, name if key is None else key)
    elif isinstance(config, list | tuple):
        for value in config:
            _refuse_functions(value, layer, class_name, key)


def _is_marshalled_lambda(config: dict[str, Any]) -> bool:
    """Keras writes a lambda activation as ``{"value": (marshalled bytecode, defaults, closure)}``."""
    value = config.get("value")
    return isinstance(value, list | tuple) and len(value) == 3 and isinstance(value[0], str)


_KEYS_OF_SIZES = {"kernel_size", "strides", "pool_size", "dilation_rate", "size"}


def _fresh_config(cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """The config of a new layer made with only the required arguments: what Keras fills in itself."""
    required = [name for name, default in constructor_defaults(cls).items() if default is inspect.Parameter.empty]
    try:
        return cls(**{name: config[name] for name in required if name in config}).get_config()
    except Exception:  # noqa: BLE001 - fall back to the signature's defaults
        return {}


def _collapse(key: str, value: Any) -> Any:
    """``(3, 3)`` -> ``3`` for sizes, as people write them."""
    if key in _KEYS_OF_SIZES and isinstance(value, list | tuple) and value and len(set(value)) == 1:
        return value[0]
    return value


class _Missing:
    pass


_MISSING = _Missing()


def _defaults(cls: type) -> dict[str, Any]:
    return {name: default for name, default in constructor_defaults(cls).items()
            if default is not inspect.Parameter.empty}


def _normal(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_normal(v) for v in value)
    if isinstance(value, dict) and "class_name" in value and isinstance(value.get("config") or {}, dict):
        settings = {k: v for k, v in (value.get("config") or {}).items() if v is not None}
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", value["class_name"]).lower()
        return snake if not settings else (snake, tuple(sorted(settings.items())))
    return value


def _is_default(value: Any, default: Any) -> bool:
    if isinstance(default, _Missing):
        return False
    if value == "linear" and default is None:
        return True
    normal, normal_default = _normal(value), _normal(default)
    if isinstance(normal_default, str) and isinstance(normal, str):
        return normal.replace("_", "") == normal_default.replace("_", "")
    if isinstance(normal, tuple) and isinstance(normal_default, int) and normal and all(
            v == normal_default for v in normal):
        return True
    return normal == normal_default


def _policy_name(dtype: Any) -> str | None:
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    return dtype if isinstance(dtype, str) else None


def _value_text(value: Any) -> str:
    """A Python value written as a kmodel value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        items = ", ".join(_value_text(v) for v in value)
        return f"({items}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict) and "class_name" in value and isinstance(value.get("config") or {}, dict):
        # a layer object as a value (activation=LeakyReLU(...)) carries name, trainable and dtype: not arguments
        settings = {k: v for k, v in (value.get("config") or {}).items() if v is not None and k not in _SKIP_KEYS}
        args = ", ".join(f"{k}={_value_text(v)}" for k, v in settings.items())
        return f"{value['class_name']}({args})"
    if isinstance(value, dict) and all(isinstance(k, str) and k.isidentifier() for k in value):
        return "dict(" + ", ".join(f"{k}={_value_text(v)}" for k, v in value.items()) + ")"
    raise KmagicValueError(f"from_keras cannot write the value {value!r} in kmodel")
