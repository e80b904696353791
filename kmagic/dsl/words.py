"""The registry-driven word resolver: a statement's head word -> Keras class, role and keywords.

Every set used here comes from :mod:`kmagic.registry`; nothing here imports
Keras. A custom layer registered with ``keras.saving.register_keras_serializable``
is recognised when Keras is already imported (it must be, for anything to
have been registered).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from kmagic import registry
from kmagic.dsl import ast
from kmagic.dsl.diagnose import error_at
from kmagic.errors import KmagicNameError, KmagicSyntaxError, KmagicValueError, did_you_mean

#: Words that are legitimate string values although close to an activation or padding word.
_OTHER_STRING_WORDS = {"horizontal", "vertical", "horizontal_and_vertical", "sum", "mul", "ave", "concat",
                       "reflect", "wrap", "constant", "nearest", "bilinear", "bicubic", "int", "multi_hot",
                       "count", "tf_idf", "one_hot", "lower_and_strip_punctuation", "whitespace"}

Resolution = tuple[registry.LayerSpec | None, str | None]


def resolve_layer_word(head: ast.Word, stmt: ast.Statement, blocks: Iterable[str] = ()) -> Resolution:
    """The registry row (for an alias) and Keras class a layer word names; an unknown word is an error."""
    word = head.name.lower()
    spec = registry.LAYER_ALIASES.get(word)
    exact_class = registry.keras_class_for(word)
    if exact_class == head.name and (spec is None or spec.keras != exact_class):
        return None, exact_class  # ``ReLU 6.0``, ``Softmax``, ``Attention``: the class as spelled
    if spec is not None:
        return spec, spec.keras if isinstance(spec.keras, str) else None
    if word in registry.ACTIVATION_WORDS:
        return registry.LayerSpec(word, "Activation", fixed={"activation": word}), "Activation"
    class_name = registry.keras_class_for(word) or registered_custom_class(word)
    if class_name is not None:
        return None, class_name
    if word in registry.STRUCTURE_WORDS:
        raise error_at(KmagicSyntaxError, f"expected '{word}' to start a block ('{word} ...:')", head.span, stmt)
    candidates = [*registry.LAYER_ALIASES, *registry.KERAS_LAYER_CLASSES, *blocks, *registry.STRUCTURE_WORDS]
    raise error_at(KmagicNameError, f"unknown layer '{head.name}'", head.span, stmt,
                   hint=did_you_mean(head.name, candidates), expected_first=False)


def role_of(spec: registry.LayerSpec | None, class_name: str | None) -> str:
    """How the statement is wired: the alias's role, else its class's (see ``registry.ROLES``)."""
    if spec is not None and spec.role != "layer":
        return spec.role
    return registry.role_of(class_name)


def assign_words(stmt: ast.Statement, spec: registry.LayerSpec | None,
                 class_name: str | None) -> tuple[tuple[ast.Value, ...], dict[str, ast.Value]]:
    """Bare words -> keywords; positional values -> the alias's parameter names."""
    flags = dict(spec.flags) if spec is not None else dict(registry.CLASS_FLAGS.get(class_name or "", {}))
    kwargs: dict[str, ast.Value] = {}
    positional: list[ast.Value] = []
    is_activation_layer = spec is not None and "activation" in spec.fixed

    def put(key: str, value: ast.Value, span: ast.Span) -> None:
        if key in kwargs:
            raise error_at(KmagicValueError, f"'{key}' once", span, stmt, received="it twice")
        kwargs[key] = value

    for value in stmt.args:
        if not isinstance(value, ast.Word):
            positional.append(value)
            continue
        key_value = _bare_word(value, flags, is_activation_layer, stmt)
        if key_value is None:
            positional.append(ast.String(value.name, value.span))
        else:
            put(*key_value, value.span)
    for kwarg in stmt.kwargs:
        key = registry.KEYWORD_ALIASES.get(kwarg.key, kwarg.key) if kwarg.key == "lr" else kwarg.key
        if spec is not None:
            key = spec.keywords.get(key, key)
        put(key, kwarg.value, kwarg.span)
    if spec is None or spec.alias == "input":
        return tuple(positional), kwargs
    return (), _name_positionals(stmt, spec, positional, kwargs)


def _bare_word(value: ast.Word, flags: dict, is_activation_layer: bool,
               stmt: ast.Statement) -> tuple[str, ast.Value] | None:
    """The keyword and value a bare word stands for (``relu``, ``same``, ``seq``), or None for a string."""
    lowered = value.name.lower()
    if lowered in flags:
        key, flag_value = flags[lowered]
        return key, ast.Const(flag_value, value.span)
    if lowered in registry.ACTIVATION_WORDS and not is_activation_layer:
        return "activation", ast.String(lowered, value.span)
    if lowered in registry.PADDING_WORDS:
        return "padding", ast.String(lowered, value.span)
    near = did_you_mean(lowered, [*flags, *registry.ACTIVATION_WORDS, *registry.PADDING_WORDS])
    if near and lowered not in _OTHER_STRING_WORDS:
        raise error_at(KmagicNameError, f"unknown word '{value.name}' in a '{stmt.word}' statement: "
                       "expected an activation, padding or flag word", value.span, stmt, hint=near)
    return None


def _name_positionals(stmt: ast.Statement, spec: registry.LayerSpec, positional: list[ast.Value],
                      kwargs: dict[str, ast.Value]) -> dict[str, ast.Value]:
    order = spec.positional
    if len(positional) > len(order):
        names = ", ".join(order) if order else "none"
        raise error_at(KmagicValueError, f"expected at most {len(order)} positional value(s) for "
                       f"'{stmt.word}' ({names})", positional[len(order)].span, stmt, received=str(len(positional)))
    named: dict[str, ast.Value] = {}
    for name, value in zip(order, positional, strict=False):
        if name in kwargs:
            raise error_at(KmagicValueError, f"'{name}' once", kwargs[name].span, stmt,
                           received="it twice (positionally and as a keyword)")
        named[name] = value
    return {**named, **kwargs}


def check_kwargs(stmt: ast.Statement, allowed: tuple[str, ...]) -> None:
    """Refuse a keyword not in ``allowed``, with a did-you-mean."""
    for kwarg in stmt.kwargs:
        if kwarg.key not in allowed:
            raise error_at(KmagicNameError, f"unknown keyword '{kwarg.key}' for '{stmt.word}': expected "
                           f"one of {', '.join(allowed)}", kwarg.span, stmt, hint=did_you_mean(kwarg.key, allowed))


def registered_custom_class(word: str) -> str | None:
    """A class registered with keras.saving.register_keras_serializable, if Keras is loaded."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        objects = keras.saving.get_custom_objects()
    except Exception:  # noqa: BLE001 - a half-imported Keras must not break parsing
        return None
    for key, obj in objects.items():
        name = key.split(">")[-1]
        if name.lower() == word and isinstance(obj, type):
            return key
    return None
