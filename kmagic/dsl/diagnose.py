"""Positioned checker errors and the source text of a statement's parts."""

from __future__ import annotations

from kmagic.dsl import ast
from kmagic.errors import KmagicError


def error_at(cls: type[KmagicError], message: str, span: ast.Span, stmt: ast.Statement, *,
             received: str | None = None, hint: str | None = None, expected_first: bool = True) -> KmagicError:
    """An error of ``cls`` pointing at ``span`` of ``stmt``: "expected X, received Y" when ``received`` is given."""
    text = message
    if received is not None:
        lead = "" if message.startswith("expected ") or not expected_first else "expected "
        text = f"{lead}{message}, received {received}"
    return cls(text, span.line, span.column, source=stmt.source, width=span.width, hint=hint)


def head_span(stmt: ast.Statement) -> ast.Span:
    """Where the statement's head is (the whole statement when it has none: a bare ``@name``)."""
    return stmt.head.span if stmt.head is not None else stmt.span


def head_text(stmt: ast.Statement) -> str:
    """How the statement starts, as typed (its head, or its @names)."""
    if stmt.head is None:
        return " ".join("@" + ref.name for ref in stmt.refs)
    return value_text(stmt.head, stmt)


def value_text(value: ast.Value | None, stmt: ast.Statement) -> str:
    """A value as typed in the statement's source line."""
    if value is None:
        return ""
    if isinstance(value, ast.Word):
        return value.name
    start = value.span.column - 1
    return stmt.source[start: start + value.span.width] or str(value)


def statement_of(node: ast.Node) -> ast.Statement:
    """A statement, or a block's header."""
    return node.header if isinstance(node, ast.Block) else node
