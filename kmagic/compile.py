"""Checked program -> ``keras.Model``; Keras errors mapped back to the DSL statement.

The same walk can record, for each layer, the Keras class and arguments it
used, which :mod:`kmagic.codegen` turns into readable Python.

The module is callable: ``kmagic.compile(model, words)`` compiles a model
again with the words of a ``compile`` line (see :mod:`kmagic.recompile`).
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kmagic import buildinfo, datafeed, devices, limits
from kmagic.dsl import ast
from kmagic.dsl.check import block_use_note, parse
from kmagic.dsl.program import BlockDef, Op, Program
from kmagic.errors import (
    KmagicBuildError,
    KmagicError,
    KmagicNameError,
    KmagicValueError,
    KmagicWarning,
    did_you_mean,
)
from kmagic.values import Resolved, Resolver

#: Keywords every Keras 3 layer accepts through ``**kwargs``.
_BASE_LAYER_KEYWORDS = {"name", "dtype", "trainable", "autocast", "activity_regularizer", "input_shape",
                        "input_dim", "batch_input_shape", "batch_size", "weights"}


@dataclass
class LayerCode:
    """How one tensor was made, for code generation."""

    out: int
    call: str
    inputs: tuple[int, ...]
    merge: bool
    stmt: ast.Statement
    extra: list[str] = field(default_factory=list)
    first_output: bool = False


@dataclass
class Recording:
    """What a build did, in the order it did it (read by ``codegen``)."""

    layers: list[LayerCode] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    compile_code: str | None = None
    fit_code: dict[str, str] = field(default_factory=dict)
    model_name: str = "kmodel"


def build(text: str, name: str | None = None, input_shape: Any = None, namespace: dict[str, Any] | None = None,
          strategy: str | None = None, precision: str | None = None, jit: str | bool | None = None,
          seed: int | None = None, blocks: dict[str, BlockDef] | None = None) -> Any:
    """Compile kmodel ``text`` into a ``keras.Model`` (compiled if the text has ``compile``).

    ``namespace`` is where ``{expr}`` interpolation is evaluated; ``blocks``
    are blocks defined earlier (``%%kblock``); the device options mean what
    the ``%%kmodel`` options of the same name mean. Any mistake raises a
    :class:`~kmagic.KmagicError`.
    """
    program = parse(text, input_shape=input_shape, blocks=blocks)
    return build_program(program, name=name, namespace=namespace, strategy=strategy, precision=precision,
                         jit=jit, seed=seed)[0]


def build_program(program: Program, *, name: str | None = None, namespace: dict[str, Any] | None = None,
                  strategy: str | None = None, precision: str | None = None, jit: str | bool | None = None,
                  seed: int | None = None) -> tuple[Any, Recording]:
    """Build a checked program; returns the model and a recording of how."""
    _refuse_too_many_layers(program)
    _warn_unreached(program)
    setup = devices.resolve(strategy=strategy, precision=precision, jit=jit)
    k = setup.keras_module()
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise KmagicValueError(f"expected a non-negative whole number for seed, received {seed!r}")
        k.utils.set_random_seed(seed)
    builder = _Builder(program, k, namespace, setup, _model_name(name))
    with setup.scope():
        model = builder.model()
        builder.compile(model)
    info = buildinfo.BuildInfo(source=program.source, origins=builder.origins, fit_defaults=builder.fit_defaults(),
                               device=setup.describe(), compiled_by_dsl=program.compile is not None, setup=setup,
                               seed=seed, recording=builder.recording)
    from kmagic.exporting import objects_used

    info.objects = objects_used(program, builder.recording, namespace, model)  # what %kexport must import or rebuild
    buildinfo.attach(model, info)
    datafeed.accept_everyday_data(model)  # its predict/evaluate/fit take what %kfit takes (text, pandas)
    return model, builder.recording


def _refuse_too_many_layers(program: Program) -> None:
    """More than ``limits.MAX_LAYERS`` layers: refused at the first one over, before Keras does any work."""
    layers = [op for op in program.ops if op.kind != "input"]
    if len(layers) > limits.MAX_LAYERS:
        op = layers[limits.MAX_LAYERS]
        span = op.stmt.span
        error: KmagicError = KmagicValueError(
            f"expected a model of at most {limits.MAX_LAYERS:,} layers, received {len(layers):,}", span.line,
            span.column, source=op.stmt.source, width=span.width,
            hint="Keras builds a model layer by layer, recursively; split it into smaller models.")
        for use in reversed(op.via):
            error = error.with_note(block_use_note(use))
        raise error


@contextmanager
def _recursion_room(layers: int) -> Iterator[None]:
    """Keras connects a functional model by recursing once per layer: room for ``limits.MAX_LAYERS``."""
    before = sys.getrecursionlimit()
    needed = 3 * layers + 1_000
    if needed > before:
        sys.setrecursionlimit(needed)
    try:
        yield
    finally:
        if needed > before:
            sys.setrecursionlimit(before)


def _warn_unreached(program: Program) -> None:
    lines = sorted({op.stmt.span.line: op.stmt for op in program.unreached()}.items())
    if lines:
        listed = "; ".join(f"line {line}: {stmt.source.strip()}" for line, stmt in lines)
        warnings.warn(f"these statements lead to no output, so the model leaves them out: {listed}",
                      KmagicWarning, stacklevel=3)


def _model_name(name: str | None) -> str:
    if name is None:
        return "kmodel"
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    return cleaned or "kmodel"


class _Builder:
    """One build: walks the program's operations and makes Keras layers."""

    def __init__(self, program: Program, k: Any, namespace: dict[str, Any] | None, setup: Any, name: str) -> None:
        self.program = program
        self.k = k
        self.resolver = Resolver(k, namespace)
        self.setup = setup
        self.tensors: dict[int, Any] = {}
        self.origins: dict[str, buildinfo.LayerOrigin] = {}
        self.recording = Recording(names=dict(program.names), model_name=name)
        self.name = name
        self.output_ids = set(program.outputs)
        self.weight_bytes = 0

    # ------------------------------------------------------------------ model
    def model(self) -> Any:
        for op in self.program.ops:
            self._op(op)
        if not self.program.inputs:
            raise KmagicValueError("expected at least one layer, received an empty model")
        inputs = [self.tensors[i] for i in self.program.inputs]
        outputs = [self.tensors[o] for o in self.program.outputs]
        self.recording.inputs = list(self.program.inputs)
        self.recording.outputs = list(self.program.outputs)
        try:
            with _recursion_room(len(self.program.ops)):
                return self.k.Model(inputs=inputs[0] if len(inputs) == 1 else inputs,
                                    outputs=outputs[0] if len(outputs) == 1 else outputs, name=self.name)
        except Exception as exc:  # noqa: BLE001
            raise KmagicBuildError("expected the outputs to depend on the inputs, received a graph Keras refused",
                                   1, 1, detail=str(exc)) from None

    def _op(self, op: Op) -> None:
        try:
            self._op_at_statement(op)
        except KmagicError as error:
            for use in reversed(op.via):
                error = error.with_note(block_use_note(use))
            raise error from None

    def _op_at_statement(self, op: Op) -> None:
        resolver = self.resolver.at(op.stmt.source)
        try:
            if op.kind == "input":
                self._input(op, resolver)
            elif op.kind == "residual":
                self._residual(op, resolver)
            else:
                self._layer(op, resolver)
        except KmagicError:
            raise
        except RecursionError:
            raise self._fail(op, "a model Keras can build without running out of stack", None) from None
        except Exception as exc:  # noqa: BLE001 - Keras's refusal, reported at the statement
            raise self._fail(op, None, exc) from None

    def _fail(self, op: Op, expected: str | None, exc: Exception | None, creating: bool = False) -> KmagicBuildError:
        stmt = op.stmt
        shapes = ", ".join(str(tuple(self.tensors[i].shape)) for i in op.inputs if i in self.tensors)
        word = op.word or stmt.word
        if creating:
            written = stmt.source[stmt.span.column - 1: stmt.span.column - 1 + stmt.span.width].strip()
            message = f"'{word}' could not be created: expected arguments that Keras accepts, received '{written}'"
        else:
            expected = expected or f"an input that '{word}' can take"
            received = f"shape {shapes}" if shapes else "its arguments"
            message = f"'{word}' could not be built: expected {expected}, received {received}"
        span = stmt.head_span if stmt.head is not None else stmt.span
        detail = _short_keras_text(exc) if exc is not None else None
        return KmagicBuildError(message, span.line, span.column, source=stmt.source, width=span.width, detail=detail)

    def _input(self, op: Op, resolver: Resolver) -> None:
        shape = resolver.shape(op.args[0]) if op.args else Resolved((None,), "(None,)")
        kwargs = {key: resolver.value(value, key) for key, value in op.kwargs.items()}
        if op.name:
            kwargs["name"] = Resolved(op.name, repr(op.name))
        call_kwargs = {key: value.value for key, value in kwargs.items()}
        self.tensors[op.out] = self.k.Input(shape=shape.value, **call_kwargs)
        code = ", ".join([f"shape={shape.code}"] + [f"{k}={v.code}" for k, v in kwargs.items()])
        self.recording.layers.append(LayerCode(op.out, f"keras.Input({code})", (), False, op.stmt))

    def _layer(self, op: Op, resolver: Resolver) -> None:
        inputs = [self.tensors[i] for i in op.inputs]
        try:
            layer, code = self._make_layer(op, resolver, inputs)
        except KmagicError:
            raise
        except Exception as exc:  # noqa: BLE001 - the constructor refused the arguments
            raise self._fail(op, None, exc, creating=True) from None
        self._check_weight_bytes(op, layer, inputs)
        out = layer(inputs) if op.kind == "merge" else layer(*inputs)
        several = isinstance(out, list | tuple)
        if several:
            out = out[0]
        self.tensors[op.out] = out
        self._origin(layer, op.stmt)
        self.recording.layers.append(LayerCode(op.out, code, op.inputs, op.kind == "merge", op.stmt,
                                               first_output=several))

    def _check_weight_bytes(self, op: Op, layer: Any, inputs: list[Any]) -> None:
        """Refuse a layer whose weights would pass ``limits.max_weight_bytes()``, before they exist."""
        measured = limits.layer_weight_bytes(layer, inputs, merge=op.kind == "merge")
        if measured is None:
            return
        size, parameters = measured
        if self.weight_bytes + size > limits.max_weight_bytes():
            span = op.stmt.head_span if op.stmt.head is not None else op.stmt.span
            word = op.word or op.stmt.word
            raise KmagicBuildError(f"'{word}' could not be built: "
                                   + limits.weight_limit_message(size, parameters, self.weight_bytes),
                                   span.line, span.column, source=op.stmt.source, width=span.width,
                                   hint="Use fewer units, or raise the limit if the machine has the memory.")
        self.weight_bytes += size

    def _make_layer(self, op: Op, resolver: Resolver, inputs: list[Any]) -> tuple[Any, str]:
        cls, class_code = self._layer_class(op, resolver, inputs)
        if not isinstance(cls, type):  # a layer instance given by {expr}
            if op.args or op.kwargs:
                raise KmagicValueError(f"expected a layer class in {{{op.word}}} when arguments follow, received "
                                       "a layer instance", op.stmt.head_span.line, op.stmt.head_span.column,
                                       source=op.stmt.source)
            return cls, op.word
        kwargs: dict[str, Resolved] = {}
        spec = op.spec
        if spec is not None:
            kwargs.update({k: Resolved(v, repr(v)) for k, v in spec.fixed.items()})
        kwargs.update(self._positional(cls, op, resolver))
        for key, value in op.kwargs.items():
            kwargs[key] = resolver.value(value, key)
        if op.wrapped is not None:
            inner, inner_code = self._make_layer(op.wrapped, resolver.at(op.wrapped.stmt.source), inputs)
            kwargs = {"layer": Resolved(inner, inner_code), **kwargs}
        self._check_keywords(cls, kwargs, op)
        if op.name:
            kwargs["name"] = Resolved(op.name, repr(op.name))
        dtype = self.setup.layer_dtype(op.out in self.output_ids, class_name=cls.__name__)
        if dtype is not None and "dtype" not in kwargs and op.wrapped is None:
            kwargs["dtype"] = Resolved(dtype, repr(dtype))
        layer = cls(**{k: v.value for k, v in kwargs.items()})
        written = spec.positional if spec is not None else _own_parameters(cls)[: len(op.args)]
        return layer, f"{class_code}({_call_arguments(cls, kwargs, written)})"

    def _layer_class(self, op: Op, resolver: Resolver, inputs: list[Any]) -> tuple[Any, str]:
        if op.custom is not None:
            value = resolver.interp(op.custom).value
            base = self.k.layers.Layer
            if (inspect.isclass(value) and issubclass(value, base)) or isinstance(value, base):
                name = value.__name__ if inspect.isclass(value) else op.custom.expr
                return value, name
            span = op.custom.span
            raise KmagicValueError(f"expected {{{op.custom.expr}}} to be a Keras layer class, received "
                                   f"{type(value).__name__}", span.line, span.column, source=op.stmt.source,
                                   width=span.width)
        class_name = op.class_name
        if class_name is None and op.spec is not None and isinstance(op.spec.keras, dict):
            class_name = self._generic_class(op, inputs)
        assert class_name is not None
        if ">" in class_name:
            return self.k.saving.get_custom_objects()[class_name], class_name.split(">")[-1]
        if class_name == "Input":
            raise KmagicValueError("expected 'input' only as its own line", op.stmt.span.line, op.stmt.span.column,
                                   source=op.stmt.source)
        return getattr(self.k.layers, class_name), f"layers.{class_name}"

    def _generic_class(self, op: Op, inputs: list[Any]) -> str:
        assert op.spec is not None and isinstance(op.spec.keras, dict)
        rank = len(inputs[0].shape) - 2
        if rank not in op.spec.keras:
            ranks = sorted(op.spec.keras)
            shape = tuple(inputs[0].shape)
            spans = {1: "a sequence (batch, steps, channels)", 2: "an image (batch, h, w, channels)",
                     3: "a volume (batch, d, h, w, channels)"}
            wanted = " or ".join(spans[r] for r in ranks)
            span = op.stmt.head_span
            raise KmagicBuildError(f"'{op.word}' expected {wanted}, received shape {shape}", span.line,
                                   span.column, source=op.stmt.source, width=span.width,
                                   hint="Add 'reshape' or 'flatten' to change the rank." if rank < 1 else None)
        return op.spec.keras[rank]

    def _positional(self, cls: type, op: Op, resolver: Resolver) -> dict[str, Resolved]:
        """Positional values of a class without a table row fill its constructor's parameters in order."""
        if not op.args:
            return {}
        params = _own_parameters(cls)
        if len(op.args) > len(params):
            extra = op.args[len(params)]
            raise KmagicValueError(f"expected at most {len(params)} positional value(s) for {cls.__name__} "
                                   f"({', '.join(params)}), received {len(op.args)}", extra.span.line,
                                   extra.span.column, source=op.stmt.source, width=extra.span.width)
        result = {}
        for name, value in zip(params, op.args, strict=False):
            if name in op.kwargs:
                raise KmagicValueError(f"expected '{name}' once, received it twice (positionally and as a "
                                       "keyword)", value.span.line, value.span.column, source=op.stmt.source)
            result[name] = resolver.value(value, name)
        return result

    def _check_keywords(self, cls: type, kwargs: dict[str, Resolved], op: Op) -> None:
        params = set(constructor_defaults(cls)) | set(_own_parameters(cls))
        allowed = params | (_BASE_LAYER_KEYWORDS if _takes_any_keyword(cls) else set())
        for key in kwargs:
            if key not in allowed and key != "layer":
                span = next((k.span for k in op.stmt.kwargs if k.key == key), op.stmt.head_span)
                raise KmagicNameError(f"unknown keyword '{key}' for {cls.__name__}: expected one of "
                                      f"{', '.join(sorted(params))}", span.line, span.column, source=op.stmt.source,
                                      width=len(key), hint=did_you_mean(key, allowed))

    def _residual(self, op: Op, resolver: Resolver) -> None:
        shortcut, body = (self.tensors[i] for i in op.inputs)
        in_shape, out_shape = tuple(shortcut.shape), tuple(body.shape)
        codes: list[str] = []
        if in_shape != out_shape:
            if not op.project:
                span = op.stmt.head_span
                raise KmagicBuildError(
                    f"'residual' expected its body to keep the shape {in_shape}, received {out_shape}",
                    span.line, span.column, source=op.stmt.source, width=span.width,
                    hint="Use 'residual project:' to add a projection on the shortcut.")
            projection, code = self._projection(op, in_shape, out_shape)
            shortcut = projection(shortcut)
            self._origin(projection, op.stmt)
            codes.append(code)
        dtype = self.setup.layer_dtype(op.out in self.output_ids)
        add_kwargs = {key: value for key, value in (("dtype", dtype), ("name", op.name)) if value}
        add = self.k.layers.Add(**add_kwargs)
        self.tensors[op.out] = add([shortcut, body])
        self._origin(add, op.stmt)
        add_code = "layers.Add(" + ", ".join(f"{key}={value!r}" for key, value in add_kwargs.items()) + ")"
        self.recording.layers.append(LayerCode(op.out, add_code, op.inputs, True, op.stmt, extra=codes))

    def _projection(self, op: Op, in_shape: tuple, out_shape: tuple) -> tuple[Any, str]:
        rank = len(in_shape) - 2
        channels = out_shape[-1]
        if len(in_shape) != len(out_shape):
            span = op.stmt.head_span
            raise KmagicBuildError(f"'residual project' expected a body that keeps the rank of {in_shape}, received "
                                   f"{out_shape}", span.line, span.column, source=op.stmt.source, width=span.width,
                                   hint="Put gap, flatten or reshape before the 'residual project:' block.")
        if rank == 0:
            return self.k.layers.Dense(channels), f"layers.Dense({channels})"
        strides = []
        for before, after in zip(in_shape[1:-1], out_shape[1:-1], strict=True):
            if before is None or after is None or after == 0 or before % after:
                span = op.stmt.head_span
                raise KmagicBuildError(f"'residual project' expected spatial sizes that divide evenly, received "
                                       f"{in_shape} -> {out_shape}", span.line, span.column, source=op.stmt.source)
            strides.append(before // after)
        conv = f"Conv{rank}D"
        stride_value = tuple(strides)
        layer = getattr(self.k.layers, conv)(channels, 1, strides=stride_value, padding="same")
        return layer, f"layers.{conv}({channels}, 1, strides={stride_value!r}, padding='same')"

    def _origin(self, layer: Any, stmt: ast.Statement) -> None:
        span = stmt.span
        text = stmt.source[span.column - 1: span.column - 1 + span.width].strip() or stmt.source.strip()
        self.origins[layer.name] = buildinfo.LayerOrigin(span.line, span.column, text)

    # ------------------------------------------------------------------ training settings
    def compile(self, model: Any) -> None:
        settings = self.compile_settings(model)
        if settings is not None:
            self.apply_compile(model, settings)

    def compile_settings(self, model: Any, defaults: bool = True) -> dict[str, Resolved] | None:
        """The ``compile`` line's settings, resolved and checked (None without a line).

        ``defaults`` adds the optimizer (adam) and jit setting the line leaves out.
        """
        stmt = self.program.compile
        if stmt is None:
            return None
        resolver = self.resolver.at(stmt.source)
        settings: dict[str, Resolved] = {}
        slots = ("optimizer", "loss")
        for slot, value in zip(slots, stmt.args, strict=False):
            settings[slot] = resolver.optimizer(value) if slot == "optimizer" else resolver.loss(value)
        for kwarg in stmt.kwargs:
            if kwarg.key in settings:
                raise KmagicValueError(f"expected '{kwarg.key}' once, received it twice", kwarg.span.line,
                                       kwarg.span.column, source=stmt.source, width=kwarg.span.width)
            settings[kwarg.key] = self._compile_setting(kwarg, resolver)
        if "optimizer" not in settings and defaults:
            settings["optimizer"] = resolver.optimizer(ast.Word("adam", stmt.head_span))
        if "jit_compile" not in settings and defaults:
            settings["jit_compile"] = Resolved(self.setup.jit, repr(self.setup.jit))
        allowed = set(inspect.signature(model.compile).parameters) - {"self", "kwargs"}
        for kwarg in stmt.kwargs:
            if kwarg.key not in allowed:
                raise KmagicNameError(f"unknown compile setting '{kwarg.key}': expected one of "
                                      f"{', '.join(sorted(allowed))}", kwarg.span.line, kwarg.span.column,
                                      source=stmt.source, width=len(kwarg.key), hint=did_you_mean(kwarg.key, allowed))
        return settings

    def apply_compile(self, model: Any, settings: dict[str, Resolved]) -> None:
        """``model.compile`` with resolved settings; the code that does the same goes to the recording."""
        stmt = self.program.compile
        assert stmt is not None
        try:
            model.compile(**{k: v.value for k, v in settings.items()})
        except Exception as exc:  # noqa: BLE001
            span = stmt.head_span
            raise KmagicBuildError("'compile' could not be applied: expected settings that fit this model's "
                                   f"outputs ({', '.join(model.output_names)})", span.line, span.column,
                                   source=stmt.source, width=span.width, detail=_short_keras_text(exc)) from None
        self.recording.compile_code = ", ".join(f"{k}={v.code}" for k, v in settings.items()
                                                if not (k == "jit_compile" and v.value is False))

    def _compile_setting(self, kwarg: ast.KeyArg, resolver: Resolver) -> Resolved:
        key = kwarg.key
        if key == "optimizer":
            return resolver.optimizer(kwarg.value)
        if key == "loss":
            return resolver.loss(kwarg.value)
        if key in ("metrics", "weighted_metrics"):
            return resolver.metrics(kwarg.value)
        if key == "loss_weights" and isinstance(kwarg.value, ast.Call):
            return resolver.value(kwarg.value, None) if kwarg.value.name.lower() == "dict" else resolver.value(
                kwarg.value)
        return resolver.value(kwarg.value, key)

    def fit_defaults(self) -> dict[str, Any]:
        stmt = self.program.fit
        if stmt is None:
            return {}
        resolver = self.resolver.at(stmt.source)
        allowed = set(inspect.signature(self.k.Model.fit).parameters) - {"self", "x", "y", "kwargs"}
        values: dict[str, Resolved] = {}
        for kwarg in stmt.kwargs:
            if kwarg.key not in allowed:
                raise KmagicNameError(f"unknown fit setting '{kwarg.key}': expected one of {', '.join(sorted(allowed))}",
                                      kwarg.span.line, kwarg.span.column, source=stmt.source, width=len(kwarg.key),
                                      hint=did_you_mean(kwarg.key, allowed))
            if kwarg.key == "sample_weight":
                raise KmagicValueError(f"expected only defaults on the fit line, received {kwarg.key}=: data "
                                       "belongs to one training run", kwarg.span.line, kwarg.span.column,
                                       source=stmt.source, width=len(kwarg.key),
                                       hint=f"Pass it to %kfit: --{kwarg.key.replace('_', '-')} ... "
                                            f"(or {kwarg.key}= to kmagic.fit).")
            if kwarg.key == "callbacks":
                values[kwarg.key] = resolver.callbacks(kwarg.value)
            else:
                values[kwarg.key] = resolver.value(kwarg.value, kwarg.key)
        self.recording.fit_code = {k: v.code for k, v in values.items()}
        return {k: v.value for k, v in values.items()}


def _call_arguments(cls: type, kwargs: dict[str, Resolved], written: tuple[str, ...] | list[str]) -> str:
    """Arguments as a reader writes them: the DSL's positional parameters positionally, the rest by keyword."""
    leading: list[str] = []
    for name in _own_parameters(cls):
        if name not in kwargs or name not in written:
            break
        leading.append(name)
    parts = [kwargs[name].code for name in leading]
    parts += [f"{k}={v.code}" for k, v in kwargs.items() if k not in leading]
    return ", ".join(parts)


@cache
def _own_parameters(cls: type[Any]) -> tuple[str, ...]:
    return tuple(p.name for p in inspect.signature(cls.__init__).parameters.values()
                 if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


@cache
def _takes_any_keyword(cls: type[Any]) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())


@cache
def constructor_defaults(cls: type) -> dict[str, Any]:
    """Every keyword a layer class takes, through its base classes, with its default.

    Keras layers pass ``**kwargs`` up to their bases (``LSTM`` -> ``RNN``), so
    the class's own signature alone misses keywords it accepts.
    """
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        for p in params:
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                defaults[p.name] = p.default
    return defaults


def _short_keras_text(exc: BaseException) -> str:
    """Keras's own message, without the long argument dumps it sometimes appends."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not line.lstrip().startswith(("•", "Arguments received"))]
    return "\n".join(kept[:8]) or text


class _CallableModule(types.ModuleType):
    """This module, callable: ``kmagic.compile(model, words)`` (the package's name for the function)."""

    def __call__(self, model: Any, text_or_words: Any, namespace: dict[str, Any] | None = None) -> Any:
        from kmagic.recompile import compile_model

        return compile_model(model, text_or_words, namespace=namespace)


sys.modules[__name__].__class__ = _CallableModule
