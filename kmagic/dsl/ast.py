"""The kmodel syntax tree: frozen dataclasses with positions, and no logic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Where a node is: 1-based line and column in the body, and its width."""

    line: int
    column: int
    width: int = 1


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span
    text: str


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class Const:
    value: bool | None
    span: Span


@dataclass(frozen=True)
class Word:
    name: str
    span: Span


@dataclass(frozen=True)
class Shape:
    dims: tuple[int | None, ...]
    span: Span


@dataclass(frozen=True)
class TupleValue:
    items: tuple[Value, ...]
    span: Span


@dataclass(frozen=True)
class ListValue:
    items: tuple[Value, ...]
    span: Span


@dataclass(frozen=True)
class KeyArg:
    key: str
    value: Value
    span: Span


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Value, ...]
    kwargs: tuple[KeyArg, ...]
    span: Span


@dataclass(frozen=True)
class Interp:
    expr: str
    span: Span


Value = Number | String | Const | Word | Shape | TupleValue | ListValue | Call | Interp


@dataclass(frozen=True)
class Ref:
    name: str
    span: Span


@dataclass(frozen=True)
class Statement:
    """One statement: ``HEAD values... key=value... @refs... as NAME``.

    ``head`` is the first value (a word, a call for ``block NAME(...)``, or an
    interpolation for a custom layer); None for a bare ``@ref`` statement.
    ``source`` is the whole physical line the statement came from.
    """

    head: Value | None
    args: tuple[Value, ...]
    kwargs: tuple[KeyArg, ...]
    refs: tuple[Ref, ...]
    alias: Ref | None
    span: Span
    source: str

    @property
    def head_span(self) -> Span:
        """Where the head is; the whole statement's span for a bare ``@ref`` statement."""
        return self.head.span if self.head is not None else self.span

    @property
    def word(self) -> str:
        """The head word in lower case, or '' when the head is not a word."""
        return self.head.name.lower() if isinstance(self.head, Word) else ""


@dataclass(frozen=True)
class Block:
    """A statement ending in ``:`` and the statements indented under it."""

    header: Statement
    body: tuple[Node, ...]
    span: Span


Node = Statement | Block

