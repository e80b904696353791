"""DSL values -> Python and Keras objects, each with the code that makes it.

Words are resolved by context (a layer keyword, an optimizer, a loss, a
metric, a callback). ``{expr}`` interpolation is the only Python evaluated.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from kmagic import registry
from kmagic.dsl import ast
from kmagic.errors import KmagicError, KmagicNameError, KmagicValueError, did_you_mean
from kmagic.expr import evaluate
from kmagic.shapes import ShapeError, parse_shape


@dataclass(frozen=True)
class Resolved:
    """A resolved value and readable Python code that recreates it."""

    value: Any
    code: str


def literal_code(value: Any) -> str | None:
    """Code for a plain literal (numbers, strings, None, tuples, lists, dicts of those), else None."""
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, tuple | list):
        codes = [literal_code(item) for item in value]
        parts = [code for code in codes if code is not None]
        if len(parts) != len(codes):
            return None
        if isinstance(value, tuple):
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, dict):
        items = [(literal_code(k), literal_code(v)) for k, v in value.items()]
        if any(k is None or v is None for k, v in items):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    return None


class Resolver:
    """Resolves values of one statement's source line, for one Keras namespace."""

    def __init__(self, keras: ModuleType, namespace: dict[str, Any] | None, source: str = "") -> None:
        self.k = keras
        self.namespace = namespace if namespace is not None else {}
        self.source = source

    def at(self, source: str) -> Resolver:
        """The same resolver reporting errors against another source line."""
        clone = Resolver(self.k, self.namespace, source)
        return clone

    # ------------------------------------------------------------------ generic
    def value(self, node: ast.Value, key: str | None = None) -> Resolved:
        """A value in a layer's keyword or positional slot."""
        if isinstance(node, ast.Number):
            return Resolved(node.value, repr(node.value))
        if isinstance(node, ast.String):
            return Resolved(node.value, repr(node.value))
        if isinstance(node, ast.Const):
            return Resolved(node.value, repr(node.value))
        if isinstance(node, ast.Word):
            return Resolved(node.name, repr(node.name))
        if isinstance(node, ast.Shape):
            return Resolved(node.dims, repr(node.dims))
        if isinstance(node, ast.TupleValue):
            items = [self.value(item, key) for item in node.items]
            code = "(" + ", ".join(i.code for i in items) + ("," if len(items) == 1 else "") + ")"
            return Resolved(tuple(i.value for i in items), code)
        if isinstance(node, ast.ListValue):
            items = [self.value(item, key) for item in node.items]
            return Resolved([i.value for i in items], "[" + ", ".join(i.code for i in items) + "]")
        if isinstance(node, ast.Interp):
            return self.interp(node)
        if isinstance(node, ast.Call):
            return self.layer_call(node, key)
        raise KmagicValueError(f"expected a value, received {type(node).__name__}")

    def interp(self, node: ast.Interp) -> Resolved:
        """Evaluate ``{expr}`` in the namespace (kmagic.expr: the one evaluator of kmagic)."""
        span = node.span
        value = evaluate(node.expr, self.namespace, line=span.line, column=span.column, source=self.source or None,
                         width=span.width)
        code = literal_code(value)
        if code is None:
            code = getattr(value, "__name__", None) if inspect.isclass(value) else None
            code = code or node.expr
        return Resolved(value, code)

    def shape(self, node: ast.Value) -> Resolved:
        """An input shape: 28x28x1, ?x16, ?, (None, 16), 100 or {expr} (kmagic.shapes: the one shape parser)."""
        value = self.value(node).value
        try:
            shape = parse_shape(value)
        except ShapeError as exc:
            raise self._error(KmagicValueError, str(exc), node.span) from None
        return Resolved(shape, repr(shape))

    # ------------------------------------------------------------------ calls
    def layer_call(self, node: ast.Call, key: str | None) -> Resolved:
        """A call in a layer slot: initializer, regularizer, constraint, activation or dict."""
        name = node.name.lower()
        if name == "dict":
            return self._dict(node, lambda v: self.value(v))
        family = _family_for_key(key)
        tables = [
            ("initializers", registry.INITIALIZERS),
            ("regularizers", registry.REGULARIZERS),
            ("constraints", registry.CONSTRAINTS),
        ]
        if family is not None:
            tables.sort(key=lambda item: item[0] != family)
        for module_name, table in tables:
            class_name = table.get(name) or _class_in(getattr(self.k, module_name), node.name)
            if class_name is not None:
                return self._construct(node, f"{module_name}.{class_name}", ())
        if name in registry.ACTIVATION_WORDS or registry.keras_class_for(name):
            spec = registry.LAYER_ALIASES.get(name)
            layer_class = registry.keras_class_for(name)
            if layer_class is None and spec is not None and isinstance(spec.keras, str):
                # leaky_relu(0.1) -> LeakyReLU(negative_slope=0.1); sigmoid() -> Activation('sigmoid')
                return self._construct(node, f"layers.{spec.keras}", spec.positional, dict(spec.fixed))
            if layer_class is None:
                return self._construct(node, "layers.Activation", (), {"activation": name})
            positional = spec.positional if spec is not None and spec.keras == layer_class else ()
            return self._construct(node, f"layers.{layer_class}", positional)
        known = [*registry.INITIALIZERS, *registry.REGULARIZERS, *registry.CONSTRAINTS, "dict"]
        raise self._error(KmagicNameError, f"unknown call '{node.name}': expected an initializer, regularizer, "
                          "constraint, activation or dict(...)", node.span, hint=did_you_mean(node.name, known))

    def optimizer(self, node: ast.Value) -> Resolved:
        if isinstance(node, ast.Interp):
            return self.interp(node)
        if isinstance(node, ast.Word | ast.Call):
            name = node.name.lower()
            class_name: str | None
            if name in registry.OPTIMIZERS:
                class_name, fixed = registry.OPTIMIZERS[name]
            else:
                class_name, fixed = _class_in(self.k.optimizers, node.name), {}
            if class_name is None:
                raise self._error(KmagicNameError, f"unknown optimizer '{node.name}': expected one of "
                                  f"{', '.join(registry.OPTIMIZERS)}", node.span,
                                  hint=did_you_mean(node.name, registry.OPTIMIZERS))
            return self._construct(node, f"optimizers.{class_name}", ("learning_rate",), fixed)
        raise self._error(KmagicValueError, "expected an optimizer such as adam or adam(lr=1e-3), "
                          f"received {_describe(node)}", node.span)

    def loss(self, node: ast.Value) -> Resolved:
        if isinstance(node, ast.Interp):
            return self.interp(node)
        if isinstance(node, ast.Call) and node.name.lower() == "dict":
            return self._dict(node, self.loss)
        if isinstance(node, ast.ListValue):
            items = [self.loss(item) for item in node.items]
            return Resolved([i.value for i in items], "[" + ", ".join(i.code for i in items) + "]")
        if isinstance(node, ast.Word | ast.String):
            text = node.name if isinstance(node, ast.Word) else node.value
            name = registry.LOSSES.get(text.lower())
            if name is None and _keras_knows(self.k.losses, text):
                name = text
            if name is None:
                raise self._error(KmagicNameError, f"unknown loss '{text}': expected a loss word such as mse, bce, "
                                  "cce, scce or any Keras loss name", node.span,
                                  hint=did_you_mean(text, registry.LOSSES))
            return Resolved(name, repr(name))
        if isinstance(node, ast.Call):
            class_name = registry.LOSS_CLASSES.get(node.name.lower()) or _class_in(self.k.losses, node.name)
            if class_name is None:
                raise self._error(KmagicNameError, f"unknown loss '{node.name}'", node.span,
                                  hint=did_you_mean(node.name, registry.LOSS_CLASSES))
            return self._construct(node, f"losses.{class_name}", ())
        raise self._error(KmagicValueError, f"expected a loss, received {_describe(node)}", node.span)

    def metrics(self, node: ast.Value) -> Resolved:
        if isinstance(node, ast.Interp):
            return self.interp(node)
        if isinstance(node, ast.Call) and node.name.lower() == "dict":
            return self._dict(node, self.metrics)
        items = node.items if isinstance(node, ast.ListValue) else (node,)
        resolved = [self.metric(item) for item in items]
        return Resolved([r.value for r in resolved], "[" + ", ".join(r.code for r in resolved) + "]")

    def metric(self, node: ast.Value) -> Resolved:
        if isinstance(node, ast.Interp):
            return self.interp(node)
        if isinstance(node, ast.ListValue):
            return self.metrics(node)
        if not isinstance(node, ast.Word | ast.Call | ast.String):
            raise self._error(KmagicValueError, f"expected a metric, received {_describe(node)}", node.span)
        text = node.value if isinstance(node, ast.String) else node.name
        name = text.lower()
        if name in registry.METRICS:
            target, fixed = registry.METRICS[name]
        elif (found := _class_in(self.k.metrics, text)) is not None:
            target, fixed = found, {}
        elif _keras_knows(self.k.metrics, text):
            target, fixed = text, {}
        else:
            raise self._error(KmagicNameError, f"unknown metric '{text}': expected a metric word such as accuracy, "
                              "precision, recall, f1, auc or iou(num_classes=..)", node.span,
                              hint=did_you_mean(text, registry.METRICS))
        if target[0].islower():
            if isinstance(node, ast.Call):
                raise self._error(KmagicValueError, f"expected '{text}' without arguments", node.span,
                                  received="a call")
            return Resolved(target, repr(target))
        positional = ("k",) if target.startswith(("TopK", "SparseTopK")) else ("num_classes",) if target == "MeanIoU" else ()
        return self._construct(node, f"metrics.{target}", positional, fixed)

    def callback(self, node: ast.Value) -> Resolved:
        if isinstance(node, ast.Interp):
            return self.interp(node)
        if not isinstance(node, ast.Word | ast.Call):
            raise self._error(KmagicValueError, f"expected a callback, received {_describe(node)}", node.span)
        name = node.name.lower()
        class_name: str | None
        if name in registry.CALLBACKS:
            class_name, positional = registry.CALLBACKS[name]
        else:
            class_name, positional = _class_in(self.k.callbacks, node.name), ()
        if class_name is None:
            raise self._error(KmagicNameError, f"unknown callback '{node.name}': expected one of "
                              f"{', '.join(registry.CALLBACKS)}", node.span,
                              hint=did_you_mean(node.name, registry.CALLBACKS))
        return self._construct(node, f"callbacks.{class_name}", positional)

    def callbacks(self, node: ast.Value) -> Resolved:
        if isinstance(node, ast.Interp):
            return self.interp(node)
        items = node.items if isinstance(node, ast.ListValue) else (node,)
        resolved = [self.callback(item) for item in items]
        return Resolved([r.value for r in resolved], "[" + ", ".join(r.code for r in resolved) + "]")

    # ------------------------------------------------------------------ helpers
    def _construct(self, node: ast.Word | ast.Call | ast.String, path: str, positional: tuple[str, ...],
                   fixed: dict[str, Any] | None = None) -> Resolved:
        module_name, class_name = path.split(".")
        cls = getattr(getattr(self.k, module_name), class_name)
        kwargs: dict[str, Resolved] = {k: Resolved(v, repr(v)) for k, v in (fixed or {}).items()}
        args: list[Resolved] = []
        if isinstance(node, ast.Call):
            if len(node.args) > len(positional) and not _takes_positional(cls, len(node.args)):
                raise self._error(KmagicValueError, f"expected at most {len(positional)} positional value(s) in "
                                  f"{node.name}(...)", node.args[len(positional)].span,
                                  received=str(len(node.args)))
            for index, arg in enumerate(node.args):
                resolved = self.value(arg)
                if index < len(positional):
                    kwargs[positional[index]] = resolved
                else:
                    args.append(resolved)
            for kwarg in node.kwargs:
                key = registry.KEYWORD_ALIASES.get(kwarg.key, kwarg.key)
                kwargs[key] = self.value(kwarg.value, key)
        call_args = [a.value for a in args]
        call_kwargs = {k: v.value for k, v in kwargs.items()}
        try:
            obj = cls(*call_args, **call_kwargs)
        except KmagicError:
            raise
        except Exception as exc:  # noqa: BLE001 - Keras's refusal becomes a positioned error
            raise self._error(KmagicValueError, f"{class_name} could not be built from these arguments: {exc}",
                              node.span) from None
        code_parts = [a.code for a in args] + [f"{k}={v.code}" for k, v in kwargs.items()]
        return Resolved(obj, f"keras.{path}({', '.join(code_parts)})")

    def _dict(self, node: ast.Call, each: Any) -> Resolved:
        if node.args:
            raise self._error(KmagicValueError, "expected dict(name=value, ...) with names only",
                              node.args[0].span, received="a positional value")
        items = {kwarg.key: each(kwarg.value) for kwarg in node.kwargs}
        code = "{" + ", ".join(f"{k!r}: {v.code}" for k, v in items.items()) + "}"
        value = {k: v.value for k, v in items.items()}
        from kmagic.safe_config import body_dict_refusal  # Keras configs in dict(...): the load allow-list

        refused = body_dict_refusal(value)
        if refused is not None:
            raise self._error(KmagicValueError, "expected dict(...) to name only Keras classes and functions a "
                              "model may hold", node.span, received=refused)
        return Resolved(value, code)

    def _error(self, cls: type, message: str, span: ast.Span, *, hint: str | None = None,
               received: str | None = None) -> KmagicError:
        if received is not None:
            message = f"{message}, received {received}"
        return cls(message, span.line, span.column, source=self.source or None, width=span.width, hint=hint)


def _family_for_key(key: str | None) -> str | None:
    if key is None:
        return None
    for suffix, family in (("_initializer", "initializers"), ("_regularizer", "regularizers"),
                           ("_constraint", "constraints")):
        if key.endswith(suffix):
            return family
    return None


def _class_in(module: ModuleType, name: str) -> str | None:
    """The class of a Keras module named ``name`` (exact, then case-insensitive), or None."""
    if inspect.isclass(getattr(module, name, None)):
        return name
    lowered = name.lower().replace("_", "")
    for attr in dir(module):
        if attr.lower() == lowered and inspect.isclass(getattr(module, attr)):
            return attr
    return None


def _keras_knows(module: ModuleType, name: str) -> bool:
    try:
        module.get(name)
    except Exception:  # noqa: BLE001 - "unknown" is the answer
        return False
    return True


def _takes_positional(cls: type, count: int) -> bool:
    try:
        params = [p for p in inspect.signature(cls).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= count


def _describe(node: ast.Value) -> str:
    return {
        ast.Number: "a number", ast.String: "a string", ast.Const: "a constant", ast.Shape: "a shape",
        ast.TupleValue: "a tuple", ast.ListValue: "a list",
    }.get(type(node), type(node).__name__)
