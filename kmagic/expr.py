"""``{expr}`` interpolation: the one bracket scanner and the one evaluator of kmagic.

A ``%%kmodel`` body, a magic line and the Python API (``kmagic.build(...,
namespace=...)``) all evaluate ``{expr}`` here, with the notebook namespace as
the expression's *globals* (so comprehensions, generators and lambdas see
notebook variables, as they do in a notebook cell), and the same errors: a
:class:`~kmagic.errors.KmagicInterpolationError` with a did-you-mean for a
misspelt name.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from kmagic.errors import KmagicInterpolationError, did_you_mean

_CLOSING = {"{": "}", "(": ")", "[": "]"}


def bracket_end(text: str, start: int) -> int:
    """Index just past the bracket that closes the ``{``, ``(`` or ``[`` at ``start``, or -1.

    Brackets nest; quoted strings (with backslash escapes) inside are skipped.
    """
    stack: list[str] = []
    quote = ""
    i = start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in _CLOSING:
            stack.append(_CLOSING[char])
        elif char in ")]}":
            if not stack or stack.pop() != char:
                return -1
            if not stack:
                return i + 1
        i += 1
    return -1


def _globals(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The namespace as globals: the notebook's own dict when it has builtins, else a copy with them."""
    if isinstance(namespace, dict) and "__builtins__" in namespace:
        return namespace
    return {"__builtins__": builtins, **namespace}


def evaluate(expr: str, namespace: Mapping[str, Any] | None, *, line: int | None = None,
             column: int | None = None, source: str | None = None, width: int | None = None) -> Any:
    """The value of one ``{expr}`` (given without its braces) in the notebook namespace.

    ``line``/``column`` place the opening brace for the error (the error
    underlines the whole ``{expr}``); ``source`` is the line it came from.
    """
    text = expr.strip()
    width = width or len(expr) + 2

    def fail(message: str, hint: str | None = None) -> KmagicInterpolationError:
        return KmagicInterpolationError(message, line, column, source=source, width=width, hint=hint)

    if not text:
        raise fail("expected a Python expression inside {}, received nothing")
    try:
        code = compile(text, "<kmagic interpolation>", "eval")
    except SyntaxError as exc:
        raise fail(f"expected a Python expression in {{{text}}}, received a syntax error ({exc.msg})") from None
    scope = _globals(namespace or {})
    try:
        return eval(code, scope)  # noqa: S307 - interpolation is the documented way to reach Python
    except Exception as exc:  # noqa: BLE001 - the user's expression may raise anything
        hint = None
        name = getattr(exc, "name", None) if isinstance(exc, NameError) else None
        if name:
            hint = did_you_mean(name, [k for k in scope if not k.startswith("_")])
        raise fail(f"expected {{{text}}} to evaluate in the notebook's namespace, received "
                   f"{type(exc).__name__}: {exc}", hint) from None
