"""Syntax tree -> checked program: names, arity, wiring and blocks, with did-you-mean.

Nothing here imports Keras. A custom layer registered with
``keras.saving.register_keras_serializable`` is recognised when Keras is
already imported (it must be, for anything to have been registered).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

from kmagic import registry
from kmagic.dsl import ast
from kmagic.dsl.parser import parse_body
from kmagic.dsl.program import BlockDef, Op, Program
from kmagic.dsl.text_input import as_text_input, is_text_shape
from kmagic.errors import KmagicError, KmagicNameError, KmagicSyntaxError, KmagicValueError, did_you_mean

MAX_OPS = 20_000
MAX_REPEAT = 10_000
STRUCTURE_WORDS = ("input", "output", "repeat", "residual", "block", "branch", "compile", "fit") + tuple(
    registry.MERGE_BLOCKS
)


def parse(text: str, *, input_shape: object = None, blocks: dict[str, BlockDef] | None = None) -> Program:
    """Parse and check kmodel text into a :class:`Program`, importing no Keras.

    ``input_shape`` stands in for a missing ``input`` line (the ``--input``
    option); ``blocks`` are blocks defined earlier (``%%kblock`` cells).
    """
    if not isinstance(text, str):
        raise KmagicValueError(f"expected kmodel text (a str), received {type(text).__name__}")
    nodes = parse_body(text)
    return _Checker(text, dict(blocks or {})).run(nodes, input_shape)


def parse_block(header: str, body: str, *, blocks: dict[str, BlockDef] | None = None) -> BlockDef:
    """Define a block from a ``%%kblock NAME(params)`` line and its body."""
    text = f"block {header.strip()}:\n" + "\n".join("    " + row for row in body.splitlines())
    nodes = parse_body(text)
    checker = _Checker(text, dict(blocks or {}))
    defined = checker.collect_blocks(nodes)
    if len(defined) != 1 or len(nodes) != 1:
        raise KmagicSyntaxError("expected one block header such as 'down(f, k=3)', received "
                                f"'{header.strip()}'", 1, 1, source=header)
    block = next(iter(defined.values()))
    checker.check_block_body(block)
    return block


@dataclass
class _Scope:
    names: dict[str, int] = field(default_factory=dict)


class _Checker:
    """Walks the syntax tree once, emitting operations and tracking the cursor."""

    def __init__(self, source: str, blocks: dict[str, BlockDef]) -> None:
        self.source = source
        self.blocks = blocks
        self.defined_here: dict[str, BlockDef] = {}
        self.ops: list[Op] = []
        self.inputs: list[int] = []
        self.outputs: list[int] | None = None
        self.scopes: list[_Scope] = [_Scope()]
        self.tensor_names: dict[int, str] = {}
        self.layer_names: set[str] = set()
        self.next_id = 0
        self.compile: ast.Statement | None = None
        self.fit: ast.Statement | None = None
        self.block_stack: list[str] = []
        self.uses: list[ast.Statement] = []
        self.checking_definition = False

    # ------------------------------------------------------------------ driver
    def run(self, nodes: tuple[ast.Node, ...], input_shape: object) -> Program:
        self.defined_here = self.collect_blocks(nodes)
        self.blocks.update(self.defined_here)
        for block in self.defined_here.values():
            self.check_block_body(block)
        body = [node for node in nodes if not _is_block_def(node)]
        cursor: int | None = None
        if not any(_is_input(node) for node in body) and body_has_layers(body):
            if input_shape is None:
                raise KmagicValueError(
                    "this model has no input: expected an 'input SHAPE' line, or the --input option "
                    "(input_shape= in kmagic.build), received neither",
                    _first_line(body), 1, source=_first_source(body),
                )
            cursor = self._add_input_from_option(input_shape, body)
        for node in body:
            cursor = self.node(node, cursor)
        outputs = self.outputs if self.outputs is not None else ([] if cursor is None else [cursor])
        if not self.inputs and body_has_layers(body):
            raise KmagicValueError("this model has no input", 1, 1)
        return Program(self.ops, self.inputs, outputs, dict(self.tensor_names), self.compile, self.fit,
                       dict(self.defined_here), self.source)

    def collect_blocks(self, nodes: tuple[ast.Node, ...]) -> dict[str, BlockDef]:
        defined: dict[str, BlockDef] = {}
        for node in nodes:
            if _is_block_def(node):
                block = self._block_def(node)
                if block.name in defined:
                    first = defined[block.name].header.span.line
                    raise KmagicNameError(f"block '{block.name}' is already defined at line {first}",
                                          node.header.span.line, node.header.span.column,
                                          source=node.header.source, width=node.header.span.width)
                defined[block.name] = block
            elif isinstance(node, ast.Statement) and node.word == "block":
                raise KmagicSyntaxError("expected ':' and an indented body after a block header, "
                                        "received the end of the line", node.span.line,
                                        len(node.source.rstrip()) + 1, source=node.source)
        return defined

    def check_block_body(self, block: BlockDef) -> None:
        """Check a block's body once, with each parameter standing for a placeholder value."""
        self._expand_block_use(block, block.header, _placeholder_args(block), None, dry_run=True)

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
        if word in ("repeat", "residual", "branch", "block") or (word in registry.MERGE_BLOCKS and not stmt.refs
                                                                   and not stmt.args and not stmt.kwargs):
            if word in registry.MERGE_BLOCKS:
                return self._layer(stmt, cursor)
            raise self._error(KmagicSyntaxError, f"expected ':' and a block body after '{word}', "
                              "received the end of the line", stmt.head.span, stmt)
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
                    raise self._error(KmagicValueError, "expected dict(...) to name only Keras classes and "
                                      "functions a model may hold", value.span, stmt, received=refused)
                stack.extend([*value.args, *(kwarg.value for kwarg in value.kwargs)])
            elif isinstance(value, ast.TupleValue | ast.ListValue):
                stack.extend(value.items)

    def block(self, block: ast.Block, cursor: int | None) -> int | None:
        header = block.header
        word = header.word
        if word == "repeat":
            return self._repeat(block, cursor)
        if word == "residual":
            return self._residual(block, cursor)
        if word in registry.MERGE_BLOCKS:
            return self._merge_block(block, cursor)
        if word == "branch":
            raise self._error(KmagicSyntaxError, "expected 'branch:' only inside concat:, add:, multiply:, "
                              "average: or maximum:, received it elsewhere", header.head.span, header)
        if word == "block":
            raise self._error(KmagicSyntaxError, "expected block definitions at the top level, received "
                              "one inside another block", header.head.span, header)
        name = word or _head_text(header)
        hint = did_you_mean(name, ("repeat", "residual", "branch", "block", *registry.MERGE_BLOCKS))
        raise KmagicSyntaxError(f"unknown block keyword '{name}': expected repeat, residual, block, branch, "
                                "concat, add, multiply, average or maximum before ':'",
                                header.span.line, header.span.column, source=header.source,
                                width=len(name), hint=hint)

    # ------------------------------------------------------------------ statements
    def _cursor_move(self, stmt: ast.Statement) -> int:
        if len(stmt.refs) != 1 or stmt.args or stmt.kwargs or stmt.alias:
            span = stmt.refs[1].span if len(stmt.refs) > 1 else stmt.span
            raise self._error(KmagicSyntaxError, "expected a layer word first, or a single @name to move the "
                              "cursor", span, stmt, received=_head_text(stmt) or "several @names")
        return self._lookup(stmt.refs[0], stmt)

    def _input(self, stmt: ast.Statement) -> int:
        if len(stmt.args) != 1:
            span = stmt.args[1].span if len(stmt.args) > 1 else stmt.head.span
            received = f"{len(stmt.args)} values" if stmt.args else "nothing"
            raise self._error(KmagicValueError, "expected one shape after 'input' (28x28x1, ?x16, ?, (None, 16) "
                              "or 100)", span, stmt, received=received)
        if is_text_shape(stmt.args[0]):
            stmt = as_text_input(stmt)  # input text: one string per sample
        shape = stmt.args[0]
        if isinstance(shape, ast.Word | ast.String | ast.ListValue | ast.Call):
            raise self._error(KmagicValueError, "expected a shape such as 28x28x1, ?x16 or 100, or 'text'",
                              shape.span, stmt,
                              received=f"'{_value_text(shape, stmt)}'")
        self._check_kwargs(stmt, ("dtype", "sparse", "name", "batch_size", "ragged", "tensor"))
        if stmt.refs:
            raise self._error(KmagicSyntaxError, "expected no @references on an input line", stmt.refs[0].span,
                              stmt, received=f"@{stmt.refs[0].name}")
        op = self._emit("input", (), stmt, word="input", args=(shape,), kwargs=_kwargs(stmt))
        self.inputs.append(op.out)
        return op.out

    def _add_input_from_option(self, input_shape: object, body: list[ast.Node]) -> int:
        line = _first_line(body)
        span = ast.Span(line, 1, 1)
        stmt = ast.Statement(ast.Word("input", span), (), (), (), None, span, f"--input {input_shape}")
        value = _shape_option(input_shape, stmt)
        op = self._emit("input", (), stmt, word="input", args=(value,))
        self.inputs.append(op.out)
        return op.out

    def _output(self, stmt: ast.Statement) -> None:
        if not stmt.refs or stmt.args or stmt.kwargs:
            raise self._error(KmagicSyntaxError, "expected 'output @name [@name ...]'", stmt.head.span, stmt,
                              received=_head_text(stmt) if not stmt.refs else "values besides @names")
        if self.outputs is not None:
            raise self._error(KmagicValueError, "expected one 'output' line, received a second", stmt.head.span, stmt)
        self.outputs = [self._lookup(ref, stmt) for ref in stmt.refs]

    def _settings(self, stmt: ast.Statement) -> None:
        word = stmt.word
        if getattr(self, word) is not None:
            first = getattr(self, word).span.line
            raise self._error(KmagicValueError, f"expected one '{word}' line, received a second (the first is "
                              f"at line {first})", stmt.head.span, stmt)
        if stmt.refs or stmt.alias:
            span = stmt.refs[0].span if stmt.refs else stmt.alias.span
            raise self._error(KmagicSyntaxError, f"expected no @references or 'as' on a {word} line", span, stmt)
        if word == "compile" and len(stmt.args) > 2:
            raise self._error(KmagicValueError, "expected at most two values after 'compile' (optimizer, loss)",
                              stmt.args[2].span, stmt, received=f"{len(stmt.args)}")
        if word == "fit" and stmt.args:
            raise self._error(KmagicValueError, "expected only key=value settings after 'fit' "
                              "(epochs=10 batch_size=32 ...)", stmt.args[0].span, stmt,
                              received=f"'{_value_text(stmt.args[0], stmt)}'")
        setattr(self, word, stmt)

    def _layer(self, stmt: ast.Statement, cursor: int | None) -> int:
        head = stmt.head
        if isinstance(head, ast.Interp):
            args, kwargs = stmt.args, _kwargs(stmt)
            op = self._emit("layer", self._inputs_for(stmt, cursor, merge=False), stmt, word=head.expr,
                            custom=head, args=args, kwargs=kwargs)
            return op.out
        if not isinstance(head, ast.Word):
            raise self._error(KmagicSyntaxError, "expected a layer word at the start of a statement", head.span,
                              stmt, received=f"'{_value_text(head, stmt)}'")
        word = stmt.word
        if word == "bi":
            return self._bidirectional(stmt, cursor)
        spec, class_name = self._resolve_layer_word(head, stmt)
        is_merge = (spec is not None and spec.merge) or class_name in _MERGE_CLASSES
        is_attention = (spec is not None and spec.keras == "MultiHeadAttention") or class_name in _ATTENTION
        list_attention = class_name in _LIST_ATTENTION
        kind = "merge" if is_merge or list_attention else "attention" if is_attention else "layer"
        args, kwargs = self._assign_words(stmt, spec, class_name)
        inputs = self._inputs_for(stmt, cursor, merge=is_merge, attention=is_attention or list_attention)
        return self._emit(kind, inputs, stmt, word=word, spec=spec, class_name=class_name, args=args,
                          kwargs=kwargs).out

    def _bidirectional(self, stmt: ast.Statement, cursor: int | None) -> int:
        if not stmt.args or not isinstance(stmt.args[0], ast.Word):
            span = stmt.args[0].span if stmt.args else stmt.head.span
            raise self._error(KmagicValueError, "expected a recurrent layer after 'bi' (bi lstm 32 seq)", span,
                              stmt, received=f"'{_value_text(stmt.args[0], stmt)}'" if stmt.args else "nothing")
        outer_kwargs = {k.key: k for k in stmt.kwargs if k.key in ("merge", "merge_mode")}
        inner_stmt = replace(stmt, head=stmt.args[0], args=stmt.args[1:],
                             kwargs=tuple(k for k in stmt.kwargs if k.key not in outer_kwargs), refs=(), alias=None)
        spec, class_name = self._resolve_layer_word(inner_stmt.head, inner_stmt)
        args, kwargs = self._assign_words(inner_stmt, spec, class_name)
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
            span = count.span if count is not None else header.head.span
            received = f"'{_value_text(count, header)}'" if count is not None else f"{len(header.args)} values"
            raise self._error(KmagicValueError, "expected a positive whole number after 'repeat' (repeat 3:)",
                              span, header, received=received)
        if count.value > MAX_REPEAT:
            raise self._error(KmagicValueError, f"expected at most {MAX_REPEAT} repetitions", count.span, header,
                              received=str(count.value))
        for _ in range(count.value):
            self.scopes.append(_Scope())
            for node in block.body:
                cursor = self.node(node, cursor)
            self.scopes.pop()
        if header.alias is not None and cursor is not None:
            self._define(header.alias, cursor, header)
        return cursor

    def _residual(self, block: ast.Block, cursor: int | None) -> int:
        header = block.header
        project = False
        for arg in header.args:
            if isinstance(arg, ast.Word) and arg.name.lower() == "project":
                project = True
            else:
                raise self._error(KmagicValueError, "expected 'residual:' or 'residual project:'", arg.span, header,
                                  received=f"'{_value_text(arg, header)}'", hint=did_you_mean(
                                      _value_text(arg, header), ["project"]))
        start = self._require_cursor(cursor, header)
        end = start
        for node in block.body:
            end = self.node(node, end)
        if end == start:
            raise self._error(KmagicValueError, "expected at least one layer in the residual block", header.span,
                              header, received="an empty block")
        return self._emit("residual", (start, end), header, word="residual", project=project).out

    def _merge_block(self, block: ast.Block, cursor: int | None) -> int:
        header = block.header
        if header.refs:
            raise self._error(KmagicSyntaxError, f"expected no @references on '{header.word}:' (each branch reads "
                              "the block's input)", header.refs[0].span, header, received=f"@{header.refs[0].name}")
        start = self._require_cursor(cursor, header)
        ends: list[int] = []
        for node in block.body:
            if not (isinstance(node, ast.Block) and node.header.word == "branch"):
                stmt = node.header if isinstance(node, ast.Block) else node
                raise self._error(KmagicSyntaxError, f"expected only 'branch:' blocks inside '{header.word}:'",
                                  stmt.span, stmt, received=f"'{_head_text(stmt)}'")
            end = start
            for child in node.body:
                end = self.node(child, end)
            if node.header.alias is not None:
                self._define(node.header.alias, end, node.header)
            ends.append(end)
        if len(ends) < 2:
            raise self._error(KmagicValueError, f"expected at least two 'branch:' blocks inside '{header.word}:'",
                              header.head.span, header, received=str(len(ends)))
        class_name = registry.MERGE_BLOCKS[header.word]
        args, kwargs = self._assign_words(replace(header, refs=()), None, class_name)
        return self._emit("merge", tuple(ends), header, word=header.word, class_name=class_name,
                          args=args, kwargs=kwargs).out

    def _use_block(self, stmt: ast.Statement, cursor: int | None) -> int:
        block = self.blocks[stmt.word]
        bound = self._bind_block_args(block, stmt)
        start = self._inputs_for(stmt, cursor, merge=False)[0]
        self.uses.append(stmt)
        try:
            end = self._expand_block_use(block, stmt, bound, start, dry_run=False)
        except KmagicError as error:
            if self.checking_definition:  # the definition's own line says it all
                raise
            raise error.with_note(block_use_note(stmt)) from None
        finally:
            self.uses.pop()
        if stmt.alias is not None:
            self._define(stmt.alias, end, stmt)
        return end

    def _expand_block_use(self, block: BlockDef, stmt: ast.Statement, bound: dict[str, ast.Value],
                          start: int | None, dry_run: bool) -> int:
        if block.name in self.block_stack:
            chain = " -> ".join([*self.block_stack[self.block_stack.index(block.name):], block.name])
            raise self._error(KmagicValueError, "a block that does not use itself", stmt.head.span, stmt,
                              received=f"'{block.name}' using itself ({chain})")
        saved = None
        if dry_run:
            saved = (self.ops, self.inputs, self.tensor_names, self.layer_names, self.next_id, self.scopes)
            self.ops, self.inputs, self.tensor_names, self.layer_names = [], [], {}, set()
            self.scopes = [_Scope()]
            span = block.header.span
            dummy = ast.Statement(ast.Word("input", span), (), (), (), None, span, block.header.source)
            start = self._emit("input", (), dummy, word="input").out
        self.block_stack.append(block.name)
        self.scopes.append(_Scope())
        outer_checking, self.checking_definition = self.checking_definition, self.checking_definition or dry_run
        try:
            end = start
            for node in _substitute(block.body, bound):
                end = self.node(node, end)
        finally:
            self.checking_definition = outer_checking
            self.scopes.pop()
            self.block_stack.pop()
            if saved is not None:
                self.ops, self.inputs, self.tensor_names, self.layer_names, self.next_id, self.scopes = saved
        return end

    def _bind_block_args(self, block: BlockDef, stmt: ast.Statement) -> dict[str, ast.Value]:
        names = [name for name, _ in block.params]
        if len(stmt.args) > len(names):
            raise self._error(KmagicValueError, f"expected at most {len(names)} value(s) for block '{block.name}'"
                              f" ({', '.join(names) or 'no parameters'})", stmt.args[len(names)].span, stmt,
                              received=str(len(stmt.args)))
        bound = dict(zip(names, stmt.args, strict=False))
        for kwarg in stmt.kwargs:
            if kwarg.key not in names:
                raise self._error(KmagicNameError, f"unknown parameter '{kwarg.key}' of block '{block.name}': "
                                  f"expected one of {', '.join(names) or 'none'}", kwarg.span, stmt,
                                  hint=did_you_mean(kwarg.key, names))
            if kwarg.key in bound:
                raise self._error(KmagicValueError, f"parameter '{kwarg.key}' once", kwarg.span, stmt,
                                  received="it twice")
            bound[kwarg.key] = kwarg.value
        for name, default in block.params:
            if name not in bound:
                if default is None:
                    raise self._error(KmagicValueError, f"expected a value for parameter '{name}' of block "
                                      f"'{block.name}'", stmt.head.span, stmt, received="none")
                bound[name] = default
        return bound

    def _block_def(self, node: ast.Block) -> BlockDef:
        header = node.header
        target = header.args[0] if len(header.args) == 1 else None
        if isinstance(target, ast.Word):
            name, params = target.name.lower(), ()
        elif isinstance(target, ast.Call):
            name = target.name.lower()
            params = tuple((_param_name(arg, header), None) for arg in target.args)
            params += tuple((kwarg.key, kwarg.value) for kwarg in target.kwargs)
            seen_default = False
            for param, default in params:
                seen_default = seen_default or default is not None
                if seen_default and default is None:
                    raise self._error(KmagicSyntaxError, f"parameter '{param}' without a default after one with a "
                                      "default", target.span, header)
        else:
            span = target.span if target is not None else header.head.span
            raise self._error(KmagicSyntaxError, "expected 'block NAME:' or 'block NAME(params, k=default):'",
                              span, header, received=_head_text(header))
        if header.kwargs or header.refs or header.alias:
            raise self._error(KmagicSyntaxError, "expected only a name and parameters after 'block'", header.span,
                              header)
        if name in registry.LAYER_ALIASES or name in STRUCTURE_WORDS or registry.keras_class_for(name):
            raise self._error(KmagicNameError, "a block name that is not already a layer word or keyword",
                              target.span, header, received=f"'{name}'")
        names = [p for p, _ in params]
        duplicates = {p for p in names if names.count(p) > 1}
        if duplicates:
            raise self._error(KmagicSyntaxError, f"parameter '{duplicates.pop()}' listed twice", target.span, header)
        return BlockDef(name, params, node.body, header)

    # ------------------------------------------------------------------ words
    def _resolve_layer_word(self, head: ast.Word, stmt: ast.Statement) -> tuple[registry.LayerSpec | None, str | None]:
        word = head.name.lower()
        spec = registry.LAYER_ALIASES.get(word)
        exact_class = registry.keras_class_for(word)
        if exact_class == head.name and (spec is None or spec.keras != exact_class):
            return None, exact_class  # ``ReLU 6.0``, ``Softmax``, ``Attention``: the class as spelled
        if spec is not None:
            return spec, spec.keras if isinstance(spec.keras, str) else None
        if word in registry.ACTIVATION_WORDS:
            return registry.LayerSpec(word, "Activation", fixed={"activation": word}), "Activation"
        class_name = registry.keras_class_for(word) or _registered_custom_class(word)
        if class_name is not None:
            return None, class_name
        if word in STRUCTURE_WORDS:
            raise self._error(KmagicSyntaxError, f"expected '{word}' to start a block ('{word} ...:')",
                              head.span, stmt)
        candidates = [*registry.LAYER_ALIASES, *registry.KERAS_LAYER_CLASSES, *self.blocks, *STRUCTURE_WORDS]
        raise self._error(KmagicNameError, f"unknown layer '{head.name}'", head.span, stmt,
                          hint=did_you_mean(head.name, candidates), expected_first=False)

    def _assign_words(self, stmt: ast.Statement, spec: registry.LayerSpec | None,
                      class_name: str | None) -> tuple[tuple[ast.Value, ...], dict[str, ast.Value]]:
        """Bare words -> keywords; positional values -> the alias's parameter names."""
        flags = dict(spec.flags) if spec is not None else dict(registry.CLASS_FLAGS.get(class_name or "", {}))
        kwargs: dict[str, ast.Value] = {}
        positional: list[ast.Value] = []
        is_activation_layer = spec is not None and "activation" in spec.fixed

        def put(key: str, value: ast.Value, span: ast.Span) -> None:
            if key in kwargs:
                raise self._error(KmagicValueError, f"'{key}' once", span, stmt, received="it twice")
            kwargs[key] = value

        for value in stmt.args:
            if isinstance(value, ast.Word):
                lowered = value.name.lower()
                if lowered in flags:
                    key, flag_value = flags[lowered]
                    put(key, ast.Const(flag_value, value.span), value.span)
                    continue
                if lowered in registry.ACTIVATION_WORDS and not is_activation_layer:
                    put("activation", ast.String(lowered, value.span), value.span)
                    continue
                if lowered in registry.PADDING_WORDS:
                    put("padding", ast.String(lowered, value.span), value.span)
                    continue
                near = did_you_mean(lowered, [*flags, *registry.ACTIVATION_WORDS, *registry.PADDING_WORDS])
                if near and lowered not in _OTHER_STRING_WORDS:
                    raise self._error(KmagicNameError, f"unknown word '{value.name}' in a '{stmt.word}' statement: "
                                      "expected an activation, padding or flag word", value.span, stmt, hint=near)
                positional.append(ast.String(value.name, value.span))
            else:
                positional.append(value)
        for kwarg in stmt.kwargs:
            key = registry.KEYWORD_ALIASES.get(kwarg.key, kwarg.key) if kwarg.key == "lr" else kwarg.key
            if spec is not None:
                key = spec.keywords.get(key, key)
            put(key, kwarg.value, kwarg.span)
        if spec is not None and spec.alias != "input":
            order = spec.positional
            if len(positional) > len(order):
                names = ", ".join(order) if order else "none"
                raise self._error(KmagicValueError, f"expected at most {len(order)} positional value(s) for "
                                  f"'{stmt.word}' ({names})", positional[len(order)].span, stmt,
                                  received=str(len(positional)))
            named: dict[str, ast.Value] = {}
            for name, value in zip(order, positional, strict=False):
                if name in kwargs:
                    raise self._error(KmagicValueError, f"'{name}' once", kwargs[name].span, stmt,
                                      received="it twice (positionally and as a keyword)")
                named[name] = value
            kwargs = {**named, **kwargs}
            positional = []
        return tuple(positional), kwargs

    def _check_kwargs(self, stmt: ast.Statement, allowed: tuple[str, ...]) -> None:
        for kwarg in stmt.kwargs:
            if kwarg.key not in allowed:
                raise self._error(KmagicNameError, f"unknown keyword '{kwarg.key}' for '{stmt.word}': expected "
                                  f"one of {', '.join(allowed)}", kwarg.span, stmt,
                                  hint=did_you_mean(kwarg.key, allowed))

    # ------------------------------------------------------------------ wiring
    def _inputs_for(self, stmt: ast.Statement, cursor: int | None, merge: bool,
                    attention: bool = False) -> tuple[int, ...]:
        refs = [self._lookup(ref, stmt) for ref in stmt.refs]
        if merge:
            if len(refs) >= 2:
                return tuple(refs)
            if len(refs) == 1:
                return (self._require_cursor(cursor, stmt), refs[0])
            raise self._error(KmagicValueError, f"expected at least two inputs for '{stmt.word}' (name them: "
                              f"{stmt.word} @a @b)", stmt.head.span, stmt, received="none")
        if attention:
            if not refs:
                here = self._require_cursor(cursor, stmt)
                return (here, here)
            if len(refs) == 1:
                return (self._require_cursor(cursor, stmt), refs[0])
            if len(refs) > 3:
                raise self._error(KmagicValueError, "expected at most three inputs (@query @value @key)",
                                  stmt.refs[3].span, stmt, received=str(len(refs)))
            return tuple(refs)
        if len(refs) > 1 and stmt.word in registry.LAYER_ALIASES:
            raise self._error(KmagicValueError, f"expected one input for '{stmt.word}'", stmt.refs[1].span, stmt,
                              received=f"{len(refs)} @names")
        if refs:
            return tuple(refs)
        return (self._require_cursor(cursor, stmt),)

    def _require_cursor(self, cursor: int | None, stmt: ast.Statement) -> int:
        if cursor is None:
            raise self._error(KmagicValueError, "expected an 'input' line before the first layer",
                              stmt.head.span if stmt.head is not None else stmt.span, stmt,
                              received=f"'{_head_text(stmt)}'")
        return cursor

    def _emit(self, kind: str, inputs: tuple[int, ...], stmt: ast.Statement, **fields: object) -> Op:
        if len(self.ops) >= MAX_OPS:
            raise self._error(KmagicValueError, f"a model of at most {MAX_OPS} layers", stmt.span, stmt,
                              received="more after expanding blocks")
        op = Op(kind, self.next_id, inputs, stmt, via=tuple(self.uses), **fields)
        self.next_id += 1
        if stmt.alias is not None and stmt.word not in self.blocks:
            op.name = self._layer_name(stmt.alias.name)
            self._define(stmt.alias, op.out, stmt)
        self.ops.append(op)
        return op

    def _layer_name(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.layer_names:
            n += 1
            candidate = f"{name}_{n}"
        self.layer_names.add(candidate)
        return candidate

    def _define(self, ref: ast.Ref, tensor: int, stmt: ast.Statement) -> None:
        scope = self.scopes[-1]
        if ref.name in scope.names:
            raise self._error(KmagicNameError, "a new name", ref.span, stmt,
                              received=f"'{ref.name}', which is already used")
        scope.names[ref.name] = tensor
        self.tensor_names.setdefault(tensor, ref.name)

    def _lookup(self, ref: ast.Ref, stmt: ast.Statement) -> int:
        for scope in reversed(self.scopes):
            if ref.name in scope.names:
                return scope.names[ref.name]
        known = [name for scope in self.scopes for name in scope.names]
        listed = ", ".join(f"@{name}" for name in known) or "none yet"
        raise self._error(KmagicNameError, f"unknown name '@{ref.name}' (defined so far: {listed})", ref.span, stmt,
                          hint=did_you_mean(f"@{ref.name}", [f"@{name}" for name in known]))

    def _error(self, cls: type, message: str, span: ast.Span, stmt: ast.Statement, *, received: str | None = None,
               hint: str | None = None, expected_first: bool = True) -> Exception:
        text = message
        if received is not None:
            lead = "" if message.startswith("expected ") or not expected_first else "expected "
            text = f"{lead}{message}, received {received}"
        return cls(text, span.line, span.column, source=stmt.source, width=span.width, hint=hint)


_MERGE_CLASSES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"}
_ATTENTION = {"MultiHeadAttention", "GroupQueryAttention"}
#: Attention layers that take their inputs as one list: ``Attention @q @v``.
_LIST_ATTENTION = {"Attention", "AdditiveAttention"}
#: Words that are legitimate string values although close to an activation or padding word.
_OTHER_STRING_WORDS = {"horizontal", "vertical", "horizontal_and_vertical", "sum", "mul", "ave", "concat",
                       "reflect", "wrap", "constant", "nearest", "bilinear", "bicubic", "int", "multi_hot",
                       "count", "tf_idf", "one_hot", "lower_and_strip_punctuation", "whitespace"}


def block_use_note(stmt: ast.Statement) -> str:
    """Where a block was used: added to errors raised inside its body."""
    return f"in block '{stmt.word}' used at line {stmt.span.line}: {stmt.source.strip()}"


def body_has_layers(body: list[ast.Node]) -> bool:
    """Whether a body has anything but compile/fit settings."""
    for node in body:
        stmt = node.header if isinstance(node, ast.Block) else node
        if stmt.word not in ("compile", "fit"):
            return True
    return False


def _is_block_def(node: ast.Node) -> bool:
    return isinstance(node, ast.Block) and node.header.word == "block"


def _is_input(node: ast.Node) -> bool:
    return isinstance(node, ast.Statement) and node.word == "input"


def _first_line(body: list[ast.Node]) -> int:
    return body[0].span.line if body else 1


def _first_source(body: list[ast.Node]) -> str | None:
    if not body:
        return None
    node = body[0]
    return (node.header if isinstance(node, ast.Block) else node).source


def _head_text(stmt: ast.Statement) -> str:
    if stmt.head is None:
        return " ".join("@" + ref.name for ref in stmt.refs)
    return _value_text(stmt.head, stmt)


def _value_text(value: ast.Value | None, stmt: ast.Statement) -> str:
    if value is None:
        return ""
    if isinstance(value, ast.Word):
        return value.name
    start = value.span.column - 1
    return stmt.source[start: start + value.span.width] or str(value)


def _param_name(arg: ast.Value, header: ast.Statement) -> str:
    if not isinstance(arg, ast.Word):
        raise KmagicSyntaxError(f"expected a parameter name, received '{_value_text(arg, header)}'",
                                arg.span.line, arg.span.column, source=header.source, width=arg.span.width)
    return arg.name


def _placeholder_args(block: BlockDef) -> dict[str, ast.Value]:
    """Stand-ins used to check a block body once: defaults, or the number 1."""
    return {name: default if default is not None else ast.Number(1, block.header.span, "1")
            for name, default in block.params}


def _kwargs(stmt: ast.Statement) -> dict[str, ast.Value]:
    return {kwarg.key: kwarg.value for kwarg in stmt.kwargs}


def _shape_option(shape: object, stmt: ast.Statement) -> ast.Value:
    """The ``--input`` option (text like '28x28x1', or a tuple) as a shape value."""
    span = stmt.span
    if isinstance(shape, str):
        from kmagic.dsl.parser import _Line, parse_line

        parsed = parse_line(_Line(span.line, 0, f"input {shape}", f"input {shape}"))
        if parsed and len(parsed[0]) == 1 and len(parsed[0][0].args) == 1:
            return parsed[0][0].args[0]
        raise KmagicValueError(f"expected a shape such as 28x28x1 for --input, received '{shape}'", span.line, 1)
    if isinstance(shape, int):
        return ast.Shape((shape,), span)
    if isinstance(shape, tuple | list) and all(d is None or isinstance(d, int) for d in shape):
        return ast.Shape(tuple(shape), span)
    raise KmagicValueError(f"expected an input shape such as (28, 28, 1), received {shape!r}", span.line, 1)


def _substitute(nodes: tuple[ast.Node, ...], bound: dict[str, ast.Value]) -> tuple[ast.Node, ...]:
    """A block body with each bare parameter word replaced by its argument."""
    if not bound:
        return nodes
    return tuple(_subst(node, bound) for node in nodes)


def _subst(node: object, bound: dict[str, ast.Value]) -> object:
    if isinstance(node, ast.Word):
        return bound.get(node.name, node)
    if isinstance(node, ast.Statement):
        head = node.head if isinstance(node.head, ast.Word) else _subst(node.head, bound)
        return replace(node, head=head, args=tuple(_subst(a, bound) for a in node.args),
                       kwargs=tuple(replace(k, value=_subst(k.value, bound)) for k in node.kwargs))
    if isinstance(node, ast.Block):
        return replace(node, header=_subst(node.header, bound), body=tuple(_subst(n, bound) for n in node.body))
    if isinstance(node, ast.TupleValue | ast.ListValue):
        return replace(node, items=tuple(_subst(item, bound) for item in node.items))
    if isinstance(node, ast.Call):
        return replace(node, args=tuple(_subst(a, bound) for a in node.args),
                       kwargs=tuple(replace(k, value=_subst(k.value, bound)) for k in node.kwargs))
    return node


def _registered_custom_class(word: str) -> str | None:
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
