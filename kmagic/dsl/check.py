"""Syntax tree -> checked program: the statement walker that ties the parts together.

:mod:`kmagic.dsl.expand` turns block uses into statements, :mod:`kmagic.dsl.words`
resolves layer words through the registry, and :mod:`kmagic.dsl.graph` holds
the operations and @names of the model being checked. Nothing here imports Keras.
"""

from __future__ import annotations

from dataclasses import replace

from kmagic import registry
from kmagic.dsl import ast, expand, words
from kmagic.dsl.diagnose import error_at, head_span, head_text, statement_of, value_text
from kmagic.dsl.graph import MAX_OPS, GraphBuilder
from kmagic.dsl.parser import parse_body
from kmagic.dsl.program import BlockDef, Op, Program
from kmagic.dsl.text_input import as_text_input, is_text_shape
from kmagic.errors import KmagicError, KmagicSyntaxError, KmagicValueError, did_you_mean
from kmagic.shapes import ShapeError, parse_shape

__all__ = ["MAX_OPS", "MAX_REPEAT", "block_use_note", "body_has_layers", "parse", "parse_block"]

MAX_REPEAT = 10_000
_INPUT_KEYWORDS = ("dtype", "sparse", "name", "batch_size", "ragged", "tensor")


def parse(text: str, *, input_shape: object = None, blocks: dict[str, BlockDef] | None = None) -> Program:
    """Parse and check kmodel text into a :class:`Program`, importing no Keras.

    ``input_shape`` stands in for a missing ``input`` line (the ``--input``
    option); ``blocks`` are blocks defined earlier (``%%kblock`` cells).
    """
    if not isinstance(text, str):
        raise KmagicValueError(f"expected kmodel text (a str), received {type(text).__name__}")
    nodes = parse_body(text)
    return _Checker(text, dict(blocks or {}), GraphBuilder()).run(nodes, input_shape)


def parse_block(header: str, body: str, *, blocks: dict[str, BlockDef] | None = None) -> BlockDef:
    """Define a block from a ``%%kblock NAME(params)`` line and its body."""
    text = f"block {header.strip()}:\n" + "\n".join("    " + row for row in body.splitlines())
    nodes = parse_body(text)
    defined = expand.collect_blocks(nodes)
    if len(defined) != 1 or len(nodes) != 1:
        raise KmagicSyntaxError("expected one block header such as 'down(f, k=3)', received "
                                f"'{header.strip()}'", 1, 1, source=header)
    block = next(iter(defined.values()))
    check_block_definition(text, block, dict(blocks or {}))
    return block


def check_block_definition(source: str, block: BlockDef, blocks: dict[str, BlockDef],
                           stack: tuple[str, ...] = ()) -> None:
    """Check a block's body once, against a fresh graph, each parameter standing for a placeholder."""
    expand.refuse_top_level_words(block.body, f"block '{block.name}'")
    checker = _Checker(source, {**blocks, block.name: block}, GraphBuilder(), defining=True)
    checker.block_stack = [*stack, block.name]
    span = block.header.span
    start = checker.graph.add_input(ast.Statement(ast.Word("input", span), (), (), (), None, span,
                                                  block.header.source))
    checker.walk(expand.placeholder_body(block), start)


class _Checker:
    """Walks the syntax tree once, emitting operations into ``graph`` and tracking the cursor."""

    def __init__(self, source: str, blocks: dict[str, BlockDef], graph: GraphBuilder, *,
                 defining: bool = False) -> None:
        self.source = source
        self.blocks = blocks
        self.graph = graph
        self.defining = defining  # checking a block definition: errors need no "used at" note
        self.outputs: list[int] | None = None
        self.compile: ast.Statement | None = None
        self.fit: ast.Statement | None = None
        self.block_stack: list[str] = []
        self.uses: list[ast.Statement] = []

    # ------------------------------------------------------------------ driver
    def run(self, nodes: tuple[ast.Node, ...], input_shape: object) -> Program:
        defined_here = expand.collect_blocks(nodes)
        self.blocks.update(defined_here)
        for block in defined_here.values():
            check_block_definition(self.source, block, self.blocks)
        body = [node for node in nodes if not expand.is_block_def(node)]
        cursor: int | None = None
        if not any(_is_input(node) for node in body) and body_has_layers(body):
            if input_shape is None:
                raise KmagicValueError(
                    "this model has no input: expected an 'input SHAPE' line, or the --input option "
                    "(input_shape= in kmagic.build), received neither",
                    _first_line(body), 1, source=_first_source(body),
                )
            cursor = self._add_input_from_option(input_shape, body)
        cursor = self.walk(tuple(body), cursor)
        outputs = self.outputs if self.outputs is not None else ([] if cursor is None else [cursor])
        if not self.graph.inputs and body_has_layers(body):
            raise KmagicValueError("this model has no input")
        graph = self.graph
        return Program(graph.ops, graph.inputs, outputs, dict(graph.tensor_names), self.compile, self.fit,
                       dict(defined_here), self.source)

    def walk(self, nodes: tuple[ast.Node, ...], cursor: int | None) -> int | None:
        """Check statements in order, each reading the cursor the one before left."""
        for node in nodes:
            cursor = self.node(node, cursor)
        return cursor

    def _walk_from(self, nodes: tuple[ast.Node, ...], start: int) -> int:
        """:meth:`walk` from a tensor: statements never lose the cursor, so a tensor comes out."""
        end = self.walk(nodes, start)
        assert end is not None
        return end

    def _emit(self, kind: str, inputs: tuple[int, ...], stmt: ast.Statement, **fields: object) -> Op:
        return self.graph.emit(kind, inputs, stmt, via=tuple(self.uses), named=stmt.word not in self.blocks,
                               **fields)

    def _in_scope(self, nodes: tuple[ast.Node, ...], cursor: int | None) -> int | None:
        self.graph.push_scope()
        try:
            return self.walk(nodes, cursor)
        finally:
            self.graph.pop_scope()

    # ------------------------------------------------------------------ nodes
    def node(self, node: ast.Node, cursor: int | None) -> int | None:
        if isinstance(node, ast.Block):
            return self.block(node, cursor)
        return self.statement(node, cursor)

    def statement(self, stmt: ast.Statement, cursor: int | None) -> int | None:
        word = stmt.word
        self._refuse_code_dicts(stmt)
        if stmt.head is None:
            return self._cursor_move(stmt)
        if word == "input":
            return self._input(stmt)
        if word == "output":
            self._output(stmt)
            return cursor
        if word in ("compile", "fit"):
            self._settings(stmt)
            return cursor
        if word in registry.BLOCK_WORDS or (word in registry.MERGE_BLOCKS and not stmt.refs
                                                                   and not stmt.args and not stmt.kwargs):
            if word in registry.MERGE_BLOCKS:
                return self._layer(stmt, cursor)
            raise error_at(KmagicSyntaxError, f"expected ':' and a block body after '{word}', "
                           "received the end of the line", head_span(stmt), stmt)
        if word in self.blocks:
            return self._use_block(stmt, cursor)
        return self._layer(stmt, cursor)

    def _refuse_code_dicts(self, stmt: ast.Statement) -> None:
        """``dict(class_name="__lambda__", ...)`` and the like: refused at parse time (safe_config's literal check)."""
        from kmagic.safe_config import dict_node_refusal

        stack: list[object] = [*stmt.args, *(kwarg.value for kwarg in stmt.kwargs)]
        while stack:
            value = stack.pop()
            if isinstance(value, ast.Call):
                refused = dict_node_refusal(value) if value.name.lower() == "dict" else None
                if refused is not None:
                    raise error_at(KmagicValueError, "expected dict(...) to name only Keras classes and "
                                   "functions a model may hold", value.span, stmt, received=refused)
                stack.extend([*value.args, *(kwarg.value for kwarg in value.kwargs)])
            elif isinstance(value, ast.TupleValue | ast.ListValue):
                stack.extend(value.items)

    def block(self, block: ast.Block, cursor: int | None) -> int | None:
        header = block.header
        word = header.word
        if word in registry.BLOCK_WORDS or word in registry.MERGE_BLOCKS:
            expand.refuse_top_level_words(block.body, f"'{word}:'")
        if word == "repeat":
            return self._repeat(block, cursor)
        if word == "residual":
            return self._residual(block, cursor)
        if word in registry.MERGE_BLOCKS:
            return self._merge_block(block, cursor)
        if word == "branch":
            raise error_at(KmagicSyntaxError, "expected 'branch:' only inside concat:, add:, multiply:, "
                           "average: or maximum:, received it elsewhere", head_span(header), header)
        if word == "block":
            raise error_at(KmagicSyntaxError, "expected block definitions at the top level, received "
                           "one inside another block", head_span(header), header)
        name = word or head_text(header)
        openers = (*registry.BLOCK_WORDS, *registry.MERGE_BLOCKS)
        hint = did_you_mean(name, openers)
        raise KmagicSyntaxError(f"unknown block keyword '{name}': expected {', '.join(openers[:-1])} or "
                                f"{openers[-1]} before ':'",
                                header.span.line, header.span.column, source=header.source,
                                width=len(name), hint=hint)

    # ------------------------------------------------------------------ statements
    def _cursor_move(self, stmt: ast.Statement) -> int:
        if len(stmt.refs) != 1 or stmt.args or stmt.kwargs or stmt.alias:
            span = stmt.refs[1].span if len(stmt.refs) > 1 else stmt.span
            raise error_at(KmagicSyntaxError, "expected a layer word first, or a single @name to move the "
                           "cursor", span, stmt, received=head_text(stmt) or "several @names")
        return self.graph.lookup(stmt.refs[0], stmt)

    def _input(self, stmt: ast.Statement) -> int:
        if len(stmt.args) != 1:
            span = stmt.args[1].span if len(stmt.args) > 1 else head_span(stmt)
            received = f"{len(stmt.args)} values" if stmt.args else "nothing"
            raise error_at(KmagicValueError, "expected one shape after 'input' (28x28x1, ?x16, ?, (None, 16) "
                           "or 100)", span, stmt, received=received)
        if is_text_shape(stmt.args[0]):
            stmt = as_text_input(stmt)  # input text: one string per sample
        shape = stmt.args[0]
        if isinstance(shape, ast.Word | ast.String | ast.ListValue | ast.Call):
            raise error_at(KmagicValueError, "expected a shape such as 28x28x1, ?x16 or 100, or 'text'", shape.span,
                           stmt, received=f"'{value_text(shape, stmt)}'")
        words.check_kwargs(stmt, _INPUT_KEYWORDS)
        if stmt.refs:
            raise error_at(KmagicSyntaxError, "expected no @references on an input line", stmt.refs[0].span,
                           stmt, received=f"@{stmt.refs[0].name}")
        return self.graph.add_input(stmt, args=(shape,), kwargs=_kwargs(stmt))

    def _add_input_from_option(self, input_shape: object, body: list[ast.Node]) -> int:
        line = _first_line(body)
        span = ast.Span(line, 1, 1)
        stmt = ast.Statement(ast.Word("input", span), (), (), (), None, span, f"--input {input_shape}")
        value = _shape_option(input_shape, stmt)
        return self.graph.add_input(stmt, args=(value,))

    def _output(self, stmt: ast.Statement) -> None:
        if not stmt.refs or stmt.args or stmt.kwargs:
            raise error_at(KmagicSyntaxError, "expected 'output @name [@name ...]'", head_span(stmt), stmt,
                           received=head_text(stmt) if not stmt.refs else "values besides @names")
        if self.outputs is not None:
            raise error_at(KmagicValueError, "expected one 'output' line, received a second", head_span(stmt), stmt)
        self.outputs = [self.graph.lookup(ref, stmt) for ref in stmt.refs]

    def _settings(self, stmt: ast.Statement) -> None:
        word = stmt.word
        if getattr(self, word) is not None:
            first = getattr(self, word).span.line
            raise error_at(KmagicValueError, f"expected one '{word}' line, received a second (the first is "
                           f"at line {first})", head_span(stmt), stmt)
        where = stmt.refs[0] if stmt.refs else stmt.alias
        if where is not None:
            raise error_at(KmagicSyntaxError, f"expected no @references or 'as' on a {word} line", where.span, stmt)
        if word == "compile" and len(stmt.args) > 2:
            raise error_at(KmagicValueError, "expected at most two values after 'compile' (optimizer, loss)",
                           stmt.args[2].span, stmt, received=f"{len(stmt.args)}")
        if word == "fit" and stmt.args:
            raise error_at(KmagicValueError, "expected only key=value settings after 'fit' "
                           "(epochs=10 batch_size=32 ...)", stmt.args[0].span, stmt,
                           received=f"'{value_text(stmt.args[0], stmt)}'")
        setattr(self, word, stmt)

    def _layer(self, stmt: ast.Statement, cursor: int | None) -> int:
        head = stmt.head
        if isinstance(head, ast.Interp):
            args, kwargs = stmt.args, _kwargs(stmt)
            op = self._emit("layer", self._inputs_for(stmt, cursor, merge=False), stmt, word=head.expr,
                            custom=head, args=args, kwargs=kwargs)
            return op.out
        if not isinstance(head, ast.Word):
            raise error_at(KmagicSyntaxError, "expected a layer word at the start of a statement", head_span(stmt),
                           stmt, received=f"'{value_text(head, stmt)}'")
        word = stmt.word
        if word == "bi":
            return self._bidirectional(stmt, cursor)
        spec, class_name = words.resolve_layer_word(head, stmt, self.blocks)
        role = words.role_of(spec, class_name)
        is_merge, is_attention, list_attention = role == "merge", role == "attention", role == "list-attention"
        kind = "merge" if is_merge or list_attention else "attention" if is_attention else "layer"
        args, kwargs = words.assign_words(stmt, spec, class_name)
        inputs = self._inputs_for(stmt, cursor, merge=is_merge, attention=is_attention or list_attention)
        return self._emit(kind, inputs, stmt, word=word, spec=spec, class_name=class_name, args=args,
                          kwargs=kwargs).out

    def _bidirectional(self, stmt: ast.Statement, cursor: int | None) -> int:
        if not stmt.args or not isinstance(stmt.args[0], ast.Word):
            span = stmt.args[0].span if stmt.args else head_span(stmt)
            raise error_at(KmagicValueError, "expected a recurrent layer after 'bi' (bi lstm 32 seq)", span,
                           stmt, received=f"'{value_text(stmt.args[0], stmt)}'" if stmt.args else "nothing")
        outer_kwargs = {k.key: k for k in stmt.kwargs if k.key in ("merge", "merge_mode")}
        inner_stmt = replace(stmt, head=stmt.args[0], args=stmt.args[1:],
                             kwargs=tuple(k for k in stmt.kwargs if k.key not in outer_kwargs), refs=(), alias=None)
        spec, class_name = words.resolve_layer_word(stmt.args[0], inner_stmt, self.blocks)
        args, kwargs = words.assign_words(inner_stmt, spec, class_name)
        inner = Op("layer", -1, (), inner_stmt, word=inner_stmt.word, spec=spec, class_name=class_name,
                   args=args, kwargs=kwargs)
        merge_modes = list(outer_kwargs.values())
        bi_kwargs = {"merge_mode": merge_modes[-1].value} if merge_modes else {}
        inputs = self._inputs_for(stmt, cursor, merge=False)
        return self._emit("layer", inputs, stmt, word="bi", spec=registry.LAYER_ALIASES["bi"],
                          class_name="Bidirectional", kwargs=bi_kwargs, wrapped=inner).out

    # ------------------------------------------------------------------ blocks
    def _repeat(self, block: ast.Block, cursor: int | None) -> int | None:
        header = block.header
        count = header.args[0] if len(header.args) == 1 else None
        if not isinstance(count, ast.Number) or not isinstance(count.value, int) or count.value < 1:
            span = count.span if count is not None else head_span(header)
            received = f"'{value_text(count, header)}'" if count is not None else f"{len(header.args)} values"
            raise error_at(KmagicValueError, "expected a positive whole number after 'repeat' (repeat 3:)",
                           span, header, received=received)
        if count.value > MAX_REPEAT:
            raise error_at(KmagicValueError, f"expected at most {MAX_REPEAT} repetitions", count.span, header,
                           received=str(count.value))
        for _ in range(count.value):
            cursor = self._in_scope(block.body, cursor)
        if header.alias is not None and cursor is not None:
            self.graph.define(header.alias, cursor, header)
        return cursor

    def _residual(self, block: ast.Block, cursor: int | None) -> int:
        header = block.header
        project = False
        for arg in header.args:
            if isinstance(arg, ast.Word) and arg.name.lower() == "project":
                project = True
            else:
                raise error_at(KmagicValueError, "expected 'residual:' or 'residual project:'", arg.span, header,
                               received=f"'{value_text(arg, header)}'", hint=did_you_mean(
                                      value_text(arg, header), ["project"]))
        start = self._require_cursor(cursor, header)
        end = self._walk_from(block.body, start)
        if end == start:
            raise error_at(KmagicValueError, "expected at least one layer in the residual block", header.span,
                           header, received="an empty block")
        return self._emit("residual", (start, end), header, word="residual", project=project).out

    def _merge_block(self, block: ast.Block, cursor: int | None) -> int:
        header = block.header
        if header.refs:
            raise error_at(KmagicSyntaxError, f"expected no @references on '{header.word}:' (each branch reads "
                           "the block's input)", header.refs[0].span, header, received=f"@{header.refs[0].name}")
        start = self._require_cursor(cursor, header)
        ends: list[int] = []
        for node in block.body:
            if not (isinstance(node, ast.Block) and node.header.word == "branch"):
                stmt = node.header if isinstance(node, ast.Block) else node
                raise error_at(KmagicSyntaxError, f"expected only 'branch:' blocks inside '{header.word}:'",
                               stmt.span, stmt, received=f"'{head_text(stmt)}'")
            end = self._walk_from(node.body, start)
            if node.header.alias is not None:
                self.graph.define(node.header.alias, end, node.header)
            ends.append(end)
        if len(ends) < 2:
            raise error_at(KmagicValueError, f"expected at least two 'branch:' blocks inside '{header.word}:'",
                           head_span(header), header, received=str(len(ends)))
        class_name = registry.MERGE_BLOCKS[header.word]
        args, kwargs = words.assign_words(replace(header, refs=()), None, class_name)
        return self._emit("merge", tuple(ends), header, word=header.word, class_name=class_name,
                          args=args, kwargs=kwargs).out

    def _use_block(self, stmt: ast.Statement, cursor: int | None) -> int:
        block = self.blocks[stmt.word]
        nodes = expand.expand_use(block, stmt)
        start = self._inputs_for(stmt, cursor, merge=False)[0]
        expand.check_recursion(self.block_stack, block, stmt)
        self.block_stack.append(block.name)
        self.uses.append(stmt)
        try:
            self.graph.push_scope()
            try:
                end = self._walk_from(nodes, start)
            finally:
                self.graph.pop_scope()
        except KmagicError as error:
            if self.defining:  # the definition's own line says it all
                raise
            raise error.with_note(block_use_note(stmt)) from None
        finally:
            self.uses.pop()
            self.block_stack.pop()
        if stmt.alias is not None:
            self.graph.define(stmt.alias, end, stmt)
        return end

    # ------------------------------------------------------------------ wiring
    def _inputs_for(self, stmt: ast.Statement, cursor: int | None, merge: bool,
                    attention: bool = False) -> tuple[int, ...]:
        refs = [self.graph.lookup(ref, stmt) for ref in stmt.refs]
        if merge:
            if len(refs) >= 2:
                return tuple(refs)
            if len(refs) == 1:
                return (self._require_cursor(cursor, stmt), refs[0])
            raise error_at(KmagicValueError, f"expected at least two inputs for '{stmt.word}' (name them: "
                           f"{stmt.word} @a @b)", head_span(stmt), stmt, received="none")
        if attention:
            if not refs:
                here = self._require_cursor(cursor, stmt)
                return (here, here)
            if len(refs) == 1:
                return (self._require_cursor(cursor, stmt), refs[0])
            if len(refs) > 3:
                raise error_at(KmagicValueError, "expected at most three inputs (@query @value @key)",
                               stmt.refs[3].span, stmt, received=str(len(refs)))
            return tuple(refs)
        if len(refs) > 1 and stmt.word in registry.LAYER_ALIASES:
            raise error_at(KmagicValueError, f"expected one input for '{stmt.word}'", stmt.refs[1].span, stmt,
                           received=f"{len(refs)} @names")
        if refs:
            return tuple(refs)
        return (self._require_cursor(cursor, stmt),)

    def _require_cursor(self, cursor: int | None, stmt: ast.Statement) -> int:
        if cursor is None:
            raise error_at(KmagicValueError, "expected an 'input' line before the first layer",
                           head_span(stmt) if stmt.head is not None else stmt.span, stmt,
                           received=f"'{head_text(stmt)}'")
        return cursor


def block_use_note(stmt: ast.Statement) -> str:
    """Where a block was used: added to errors raised inside its body."""
    return f"in block '{stmt.word}' used at line {stmt.span.line}: {stmt.source.strip()}"


def body_has_layers(body: list[ast.Node]) -> bool:
    """Whether a body has anything but compile/fit settings."""
    return any(statement_of(node).word not in ("compile", "fit") for node in body)


def _is_input(node: ast.Node) -> bool:
    return isinstance(node, ast.Statement) and node.word == "input"


def _first_line(body: list[ast.Node]) -> int:
    return body[0].span.line if body else 1


def _first_source(body: list[ast.Node]) -> str | None:
    return statement_of(body[0]).source if body else None


def _kwargs(stmt: ast.Statement) -> dict[str, ast.Value]:
    return {kwarg.key: kwarg.value for kwarg in stmt.kwargs}


def _shape_option(shape: object, stmt: ast.Statement) -> ast.Value:
    """The ``--input`` option or ``input_shape=`` ('28x28x1', '28,28,1', 100, a tuple) as a shape value."""
    try:
        return ast.Shape(parse_shape(shape), stmt.span)
    except ShapeError as exc:
        raise KmagicValueError(f"{exc} for the input shape (--input, or input_shape= in kmagic.build)") from None
