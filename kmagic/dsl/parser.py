"""kmodel text -> syntax tree, with a position on every node.

Lines and indentation are handled here (iteratively, so deep nesting cannot
exhaust the stack); each line's content is parsed by the Lark grammar in
``grammar.lark``. Every failure is a :class:`KmagicSyntaxError`.

``{expr}`` interpolations are found before Lark sees a line, by
:func:`kmagic.expr.bracket_end` (the bracket scanner magic lines and the Python
API use): each is blanked to a same-length ``{   }`` placeholder, which the
grammar's ``INTERP`` matches, so positions stay exact and any nesting works;
the interpolation node takes its expression from the original text.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from kmagic.dsl import ast
from kmagic.dsl.characters import check_characters, decode_string
from kmagic.errors import KmagicSyntaxError
from kmagic.expr import bracket_end

MAX_BRACKET_DEPTH = 32
MAX_BLOCK_DEPTH = 64
MAX_LINE_LENGTH = 10_000
MAX_DIGITS = 100

_TOKEN_NAMES = {
    "NAME": "a word",
    "NUMBER": "a number",
    "SHAPE": "a shape such as 28x28x1",
    "QMARK": "'?'",
    "STRING": "a quoted string",
    "INTERP": "a {python expression}",
    "CALLNAME": "a call such as l2(1e-4)",
    "COLON": "':'",
    "PIPE": "'|'",
    "AS": "'as'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "EQUAL": "'='",
    "AT": "'@'",
    "SLASH": "'/'",
    "$END": "the end of the line",
}


#: What one line parses to: its statements, whether it ends with ':', the inline block body after the ':'.
#: (Module-level names: inside ``_ToAst`` the words ``list`` and ``tuple`` are grammar callbacks.)
_Statements = list[ast.Statement]
_Header = tuple[_Statements, bool, _Statements]
_Values = tuple[ast.Value, ...]
#: What the grammar puts inside brackets: values, key=value pairs, punctuation tokens, None (empty optionals).
_Item = ast.Value | ast.KeyArg | Token | None
_ItemTuple = tuple[_Item, ...]
_ValueList = list[ast.Value]
_KeyArgs = list[ast.KeyArg]
_Refs = list[ast.Ref]


@dataclass(frozen=True)
class _Alias:
    """``as NAME`` while a statement is being assembled."""

    ref: ast.Ref


def _columns(token: Token) -> tuple[int, int]:
    """(column, end column) of a token; Lark's lexer sets both on every token it makes."""
    if token.column is None or token.end_column is None:
        raise ValueError(f"expected a token from Lark's lexer, with its position, received {token!r}")
    return token.column, token.end_column


def _offsets(token: Token) -> tuple[int, int]:
    """(start, end) index of a token in the text Lark lexed."""
    if token.start_pos is None or token.end_pos is None:
        raise ValueError(f"expected a token from Lark's lexer, with its position, received {token!r}")
    return token.start_pos, token.end_pos


def _span(token: Token, line: int) -> ast.Span:
    return ast.Span(line, _columns(token)[0], max(1, len(str(token))))


@v_args(inline=True)
class _ToAst(Transformer):
    """Lark parse tree -> ast nodes, for one physical line."""

    def __init__(self, line: int, source: str, text: str = "") -> None:
        super().__init__()
        self.line = line
        self.source = source
        self.text = text  # the stripped line as written, before its interpolations were blanked

    # values
    def number(self, token: Token) -> ast.Number:
        text = str(token)
        self._refuse_long_number(token)
        value: int | float = int(text) if text.lstrip("+-").isdigit() else float(text)
        return ast.Number(value, _span(token, self.line), text)

    def fraction(self, num: Token, den: Token) -> ast.Number:
        self._refuse_long_number(num)
        self._refuse_long_number(den)
        denominator = float(den)
        if denominator == 0:
            raise KmagicSyntaxError(
                f"expected a non-zero denominator, received '{num}/{den}'",
                self.line, num.column, source=self.source, width=len(f"{num}/{den}"),
            )
        column = _columns(num)[0]
        span = ast.Span(self.line, column, _columns(den)[1] - column)
        return ast.Number(float(num) / denominator, span, f"{num}/{den}")

    def shape(self, token: Token) -> ast.Shape:
        self._refuse_long_number(token)
        dims = tuple(None if part == "?" else int(part) for part in str(token).split("x"))
        return ast.Shape(dims, _span(token, self.line))

    def string(self, token: Token) -> ast.String:
        value, problem = decode_string(str(token))
        if problem is not None:
            raise KmagicSyntaxError(f"expected a string of characters, received {problem}", self.line,
                                    token.column, source=self.source, width=len(token))
        return ast.String(value, _span(token, self.line))

    def word(self, token: Token) -> ast.Word | ast.Const:
        name = str(token)
        self._refuse_python(name, token)
        lowered = name.lower()
        if lowered in ("true", "false", "none"):
            return ast.Const({"true": True, "false": False, "none": None}[lowered], _span(token, self.line))
        return ast.Word(name, _span(token, self.line))

    def interp(self, token: Token) -> ast.Interp:
        """``{expr}``: the token is a blanked placeholder, so the expression comes from the original text."""
        start, end = _offsets(token)
        return ast.Interp(self.text[start + 1:end - 1].strip(), _span(token, self.line))

    def list(self, opening: Token, *items: _Item) -> ast.ListValue:
        return ast.ListValue(self._values(items), self._bracket_span(opening, items[-1]))

    def tuple(self, opening: Token, *items: _Item) -> ast.TupleValue:
        return ast.TupleValue(self._values(items), self._bracket_span(opening, items[-1]))

    def call(self, name: Token, *items: _Item) -> ast.Call:
        func = str(name)[:-1]
        self._refuse_python(func, name)
        args = self._values(items)
        kwargs = tuple(item for item in items if isinstance(item, ast.KeyArg))
        return ast.Call(func, args, kwargs, self._bracket_span(name, items[-1] if items else None))

    def kwarg(self, key: Token, value: ast.Value) -> ast.KeyArg:
        self._refuse_python(str(key), key)
        end = value.span.column + value.span.width
        column = _columns(key)[0]
        return ast.KeyArg(str(key), value, ast.Span(self.line, column, end - column))

    def ref(self, name: Token) -> ast.Ref:
        return ast.Ref(str(name), ast.Span(self.line, _columns(name)[0] - 1, len(name) + 1))

    def alias(self, _as: Token, name: Token) -> _Alias:
        return _Alias(ast.Ref(str(name), _span(name, self.line)))

    # statements
    def stmt(self, *items: ast.Value | ast.KeyArg | ast.Ref | _Alias) -> ast.Statement:
        head: ast.Value | None = None
        args: _ValueList = []
        kwargs: _KeyArgs = []
        refs: _Refs = []
        alias: ast.Ref | None = None
        for item in items:
            if isinstance(item, ast.KeyArg):
                kwargs.append(item)
            elif isinstance(item, ast.Ref):
                refs.append(item)
            elif isinstance(item, _Alias):
                if alias is not None:
                    self._fail("at most one 'as NAME' per statement", item.ref.span,
                               f"a second 'as {item.ref.name}'")
                alias = item.ref
            elif head is None and not refs and not kwargs:
                head = item
            else:
                args.append(item)
        spans = [item.ref.span if isinstance(item, _Alias) else item.span for item in items]
        column = spans[0].column
        end = max(span.column + span.width for span in spans)
        span = ast.Span(self.line, column, max(1, end - column))
        return ast.Statement(head, tuple(args), tuple(kwargs), tuple(refs), alias, span, self.source)

    def chain(self, *parts: ast.Statement | Token) -> _Statements:
        return [part for part in parts if isinstance(part, ast.Statement)]

    def header(self, chain: _Statements, colon: Token | None = None, inline: _Statements | None = None) -> _Header:
        return chain, colon is not None, inline or []

    def start(self, header: _Header | None = None) -> _Header | None:
        return header

    # helpers
    def _values(self, items: _ItemTuple) -> _Values:
        return tuple(item for item in items if item is not None and not isinstance(item, (Token, ast.KeyArg)))

    def _bracket_span(self, opening: Token, closing: _Item) -> ast.Span:
        column, opening_end = _columns(opening)
        end = _columns(closing)[1] if isinstance(closing, Token) else opening_end
        return ast.Span(self.line, column, max(1, end - column))

    def _refuse_python(self, name: str, token: Token) -> None:
        if "__" in name:
            raise KmagicSyntaxError(
                f"expected a kmodel word, received Python '{name}': a kmodel body runs no Python "
                "outside {...} interpolation",
                self.line, token.column, source=self.source, width=len(name),
            )

    def _refuse_long_number(self, token: Token) -> None:
        if len(token) > MAX_DIGITS:
            raise KmagicSyntaxError(f"expected a number of at most {MAX_DIGITS} characters, received "
                                    f"{len(token)}", self.line, token.column, source=self.source,
                                    width=len(token))

    def _fail(self, expected: str, span: ast.Span, received: str) -> None:
        raise KmagicSyntaxError(f"expected {expected}, received {received}", span.line, span.column,
                                source=self.source, width=span.width)


_TRANSFORMER = _ToAst(0, "", "")
_LOCK = threading.Lock()


@cache
def _lark() -> Lark:
    """The LALR parser, with the AST built during parsing (no intermediate tree)."""
    grammar = (Path(__file__).parent / "grammar.lark").read_text()
    return Lark(grammar, parser="lalr", maybe_placeholders=True, propagate_positions=False,
                transformer=_TRANSFORMER)


@dataclass(frozen=True)
class _Line:
    number: int
    indent: int
    text: str
    stripped: str


@dataclass(frozen=True)
class _Scanned:
    """A stripped line as the grammar lexes it: every ``{expr}`` blanked, and where its comment starts."""

    blanked: str
    code_end: int


def _string_end(text: str, start: int) -> int:
    """Index just past the kmodel string whose quote is at ``start`` (the grammar's STRING), or -1."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == quote:
            return i + 1
        else:
            i += 1
    return -1


def _placeholder(width: int) -> str:
    """What an ``{expr}`` of ``width`` characters becomes for the lexer: ``{   }``, as wide."""
    return "{" + " " * (width - 2) + "}"


def _scan(text: str) -> _Scanned:
    """Blank each ``{expr}`` of a stripped line, skipping kmodel strings and stopping at a ``#`` comment.

    Scanning stops at an unclosed string or ``{``: the lexer fails there (or earlier), with its position.
    """
    pieces: list[str] = []
    done = i = 0
    while i < len(text):
        char = text[i]
        if char == "#":
            return _Scanned("".join(pieces) + text[done:], i)
        if char in "'\"":
            end = _string_end(text, i)
        elif char == "{":
            end = bracket_end(text, i)
            if end > 0:
                pieces += [text[done:i], _placeholder(end - i)]
                done = end
        else:
            end = i + 1
        if end < 0:
            break
        i = end
    return _Scanned("".join(pieces) + text[done:], len(text))


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_TOKEN_NAMES.get(name, name.lower()) for name in expected})
    if len(names) > 6:
        return "a value, a word, a key=value pair, an @reference or 'as NAME'"
    return " or ".join(names) if names else "something else"


def _syntax_error(exc: UnexpectedInput, line: _Line, code_end: int) -> KmagicSyntaxError:
    column = line.indent + (exc.column if isinstance(exc.column, int) and exc.column > 0 else len(line.stripped) + 1)
    if isinstance(exc, UnexpectedCharacters):
        at = exc.column if isinstance(exc.column, int) else len(line.stripped) + 1
        char = line.stripped[at - 1] if at - 1 < len(line.stripped) else ""
        hint = None
        if char == "{":
            message = "expected a closed {python expression}, received an unbalanced '{'"
        elif char == "\t":
            message = "expected spaces, received a tab"
        else:
            message = f"expected {_describe_expected(set(exc.allowed or ()))}, received '{char}'"
            if char in ".;":
                hint = "kmodel is not Python: write values, words and {interpolation} only."
        return KmagicSyntaxError(message, line.number, column, source=line.text, hint=hint)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            received = "the end of the line"
            column = line.indent + len(line.stripped[:code_end].rstrip()) + 1
        else:
            start, end = _offsets(token)
            received = f"'{line.stripped[start:end]}'"
        expected = _describe_expected(set(exc.accepts or exc.expected or ()))
        width = max(1, len(str(token))) if token.type != "$END" else 1
        return KmagicSyntaxError(f"expected {expected}, received {received}", line.number, column,
                                 source=line.text, width=width)
    assert isinstance(exc, UnexpectedEOF)
    return KmagicSyntaxError("expected more input, received the end of the line", line.number, column,
                             source=line.text)


def _check_brackets(line: _Line) -> None:
    depth = 0
    quote = ""
    escaped = False
    for offset, char in enumerate(line.stripped):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                raise KmagicSyntaxError(
                    f"expected at most {MAX_BRACKET_DEPTH} nested brackets, received more",
                    line.number, line.indent + offset + 1, source=line.text,
                )
        elif char in ")]}":
            depth = max(0, depth - 1)


def parse_line(line: _Line) -> tuple[list[ast.Statement], bool, list[ast.Statement]] | None:
    """One line -> (statements, ends with ':', inline block body), or None when blank."""
    if len(line.stripped) > MAX_LINE_LENGTH:
        raise KmagicSyntaxError(f"expected a line of at most {MAX_LINE_LENGTH} characters, "
                                f"received {len(line.stripped)}", line.number, 1, source=line.text[:80])
    _check_brackets(line)
    scanned = _scan(line.stripped)
    with _LOCK:
        _TRANSFORMER.line, _TRANSFORMER.source, _TRANSFORMER.text = line.number, line.text, line.stripped
        try:
            # The transformer runs during parsing: parse returns what _ToAst.start returns, not a Tree.
            result = cast("_Header | None", _lark().parse(scanned.blanked))
        except UnexpectedInput as exc:
            raise _syntax_error(exc, line, scanned.code_end) from None
        except KmagicSyntaxError as exc:
            raise _shift(exc, line.indent) from None
    if result is None:
        return None
    statements, opens, inline = result
    return _shift_statements(statements, line.indent), opens, _shift_statements(inline, line.indent)


def _shift(error: KmagicSyntaxError, indent: int) -> KmagicSyntaxError:
    column = error.column + indent if error.column is not None else None
    return KmagicSyntaxError(error.message, error.line, column, source=error.source, width=error.width,
                             hint=error.hint)


def _shift_statements(statements: list[ast.Statement], indent: int) -> list[ast.Statement]:
    """Columns from Lark are relative to the stripped line: add the indentation back."""
    if not indent:
        return statements
    return [_shift_node(statement, indent) for statement in statements]


def _shift_node(node: Any, indent: int) -> Any:
    """``node`` (a Span, a tuple, an ast dataclass, anything else) with every column moved right by ``indent``."""
    if isinstance(node, ast.Span):
        return ast.Span(node.line, node.column + indent, node.width)
    if isinstance(node, tuple):
        return tuple(_shift_node(item, indent) for item in node)
    if hasattr(node, "__dataclass_fields__"):
        fields = {name: _shift_node(getattr(node, name), indent) for name in node.__dataclass_fields__}
        if "source" in fields:
            fields["source"] = node.source
        return type(node)(**fields)
    return node


def _lines(text: str) -> list[_Line]:
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        body = raw.rstrip()
        stripped = body.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(body) - len(stripped)
        if stripped[0] == "\t" or "\t" in body[: indent + 1]:
            raise KmagicSyntaxError(
                "expected spaces for indentation, received a tab",
                number, indent + 1, source=body.replace("\t", " "),
                hint="Indent blocks with spaces only.",
            )
        lines.append(_Line(number, indent, body, stripped))
    return lines


@dataclass
class _Open:
    """A block being filled: its header, its indentation and its body so far."""

    header: ast.Statement | None
    indent: int
    body: list[ast.Node]
    body_indent: int | None = None


def parse_body(text: str) -> tuple[ast.Node, ...]:
    """Parse a whole kmodel body into top-level nodes."""
    check_characters(text)
    root = _Open(None, -1, [], None)
    stack = [root]
    pending: tuple[ast.Statement, _Line] | None = None  # a block header waiting for its indented body
    for line in _lines(text):
        parsed = parse_line(line)
        if parsed is None:
            continue
        statements, opens, inline = parsed
        if pending is not None:
            pending_header, pending_line = pending
            if line.indent <= pending_line.indent:
                raise KmagicSyntaxError(
                    "expected an indented block after ':', received a line at the same depth",
                    line.number, line.indent + 1, source=line.text,
                )
            if len(stack) >= MAX_BLOCK_DEPTH:
                raise KmagicSyntaxError(f"expected at most {MAX_BLOCK_DEPTH} nested blocks, received more",
                                        line.number, line.indent + 1, source=line.text)
            stack.append(_Open(pending_header, pending_line.indent, [], line.indent))
            pending = None
        else:
            while len(stack) > 1 and line.indent <= stack[-1].indent:
                _close(stack)
            top = stack[-1]
            if top.body_indent is None:
                top.body_indent = line.indent
            elif line.indent != top.body_indent:
                raise KmagicSyntaxError(
                    f"expected indentation of {top.body_indent} spaces, received {line.indent}",
                    line.number, line.indent + 1, source=line.text,
                    hint="Lines of one block must start at the same column.",
                )
        if opens:
            if len(statements) != 1:
                raise KmagicSyntaxError("expected one block header before ':', received a '|' chain",
                                        line.number, line.indent + 1, source=line.text)
            header = statements[0]
            if inline:
                stack[-1].body.append(ast.Block(header, tuple(inline), header.span))
            else:
                pending = (header, line)
        else:
            stack[-1].body.extend(statements)
    if pending is not None:
        pending_line = pending[1]
        raise KmagicSyntaxError("expected an indented block after ':', received the end of the body",
                                pending_line.number, len(pending_line.text) + 1, source=pending_line.text)
    while len(stack) > 1:
        _close(stack)
    return tuple(root.body)


def _close(stack: list[_Open]) -> None:
    block = stack.pop()
    assert block.header is not None
    stack[-1].body.append(ast.Block(block.header, tuple(block.body), block.header.span))

