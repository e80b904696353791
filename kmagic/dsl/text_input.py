"""``input text``: one string per sample, the same as ``input () dtype=string``."""

from __future__ import annotations

import dataclasses

from kmagic.dsl import ast
from kmagic.errors import KmagicValueError


def is_text_shape(value: ast.Value) -> bool:
    """Whether an input line's shape is the word ``text``."""
    return isinstance(value, ast.Word) and value.name.lower() == "text"


def as_text_input(stmt: ast.Statement) -> ast.Statement:
    """``input text [name=...]`` rewritten as ``input () dtype=string [name=...]``."""
    word = stmt.args[0]
    for kwarg in stmt.kwargs:
        value = kwarg.value
        written = value.name if isinstance(value, ast.Word) else getattr(value, "value", None)
        if kwarg.key == "dtype" and str(written).lower() != "string":
            raise KmagicValueError(f"expected no dtype (or dtype=string) on an 'input text' line, received "
                                   f"dtype={written if written is not None else '...'}", kwarg.span.line,
                                   kwarg.span.column, source=stmt.source, width=kwarg.span.width,
                                   hint="Text inputs hold strings; use 'input SHAPE dtype=...' for numbers.")
    kwargs = tuple(k for k in stmt.kwargs if k.key != "dtype")
    dtype = ast.KeyArg("dtype", ast.Word("string", word.span), word.span)
    return dataclasses.replace(stmt, args=(ast.TupleValue((), word.span),), kwargs=(*kwargs, dtype))
