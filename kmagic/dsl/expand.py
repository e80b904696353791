"""The block expander: block definitions, argument binding and substitution (AST -> AST).

Pure functions of the syntax tree: nothing here knows about layers, tensors
or Keras. The checker calls :func:`expand_use` for each use of a block and
walks the returned statements as if they had been written in place.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kmagic import registry
from kmagic.dsl import ast
from kmagic.dsl.diagnose import error_at, head_span, head_text, value_text
from kmagic.dsl.program import BlockDef
from kmagic.errors import KmagicNameError, KmagicSyntaxError, KmagicValueError, did_you_mean


def is_block_def(node: ast.Node) -> bool:
    """Whether a node is a ``block NAME(...):`` definition."""
    return isinstance(node, ast.Block) and node.header.word == "block"


def collect_blocks(nodes: tuple[ast.Node, ...]) -> dict[str, BlockDef]:
    """The block definitions among top-level nodes, by name; a name defined twice is an error."""
    defined: dict[str, BlockDef] = {}
    for node in nodes:
        if is_block_def(node):
            block = block_def(node)  # type: ignore[arg-type]
            if block.name in defined:
                first = defined[block.name].header.span.line
                header = block.header
                raise error_at(KmagicNameError, f"block '{block.name}' is already defined at line {first}",
                               header.span, header)
            defined[block.name] = block
        elif isinstance(node, ast.Statement) and node.word == "block":
            raise KmagicSyntaxError("expected ':' and an indented body after a block header, received the end of "
                                    "the line", node.span.line, len(node.source.rstrip()) + 1, source=node.source)
    return defined


def block_def(node: ast.Block) -> BlockDef:
    """One ``block NAME(params, k=default):`` definition, its name and parameters checked."""
    header = node.header
    target = header.args[0] if len(header.args) == 1 else None
    params: tuple[tuple[str, ast.Value | None], ...]
    if isinstance(target, ast.Word):
        name, params = target.name.lower(), ()
    elif isinstance(target, ast.Call):
        name = target.name.lower()
        params = tuple((_param_name(arg, header), None) for arg in target.args)
        params += tuple((kwarg.key, kwarg.value) for kwarg in target.kwargs)
        _check_defaults_last(params, target, header)
    else:
        span = target.span if target is not None else head_span(header)
        raise error_at(KmagicSyntaxError, "expected 'block NAME:' or 'block NAME(params, k=default):'", span, header,
                       received=head_text(header))
    if header.kwargs or header.refs or header.alias:
        raise error_at(KmagicSyntaxError, "expected only a name and parameters after 'block'", header.span, header)
    if name in registry.LAYER_ALIASES or name in registry.STRUCTURE_WORDS or registry.keras_class_for(name):
        raise error_at(KmagicNameError, "a block name that is not already a layer word or keyword", target.span,
                       header, received=f"'{name}'")
    names = [p for p, _ in params]
    duplicates = {p for p in names if names.count(p) > 1}
    if duplicates:
        raise error_at(KmagicSyntaxError, f"parameter '{duplicates.pop()}' listed twice", target.span, header)
    return BlockDef(name, params, node.body, header)


def _check_defaults_last(params: tuple[tuple[str, ast.Value | None], ...], target: ast.Call,
                         header: ast.Statement) -> None:
    seen_default = False
    for param, default in params:
        seen_default = seen_default or default is not None
        if seen_default and default is None:
            raise error_at(KmagicSyntaxError, f"parameter '{param}' without a default after one with a default",
                           target.span, header)


def _param_name(arg: ast.Value, header: ast.Statement) -> str:
    if not isinstance(arg, ast.Word):
        raise error_at(KmagicSyntaxError, f"expected a parameter name, received '{value_text(arg, header)}'",
                       arg.span, header)
    return arg.name


def refuse_top_level_words(nodes: tuple[ast.Node, ...], place: str) -> None:
    """``output``, ``compile`` and ``fit`` belong to the model's top level: refuse them in a body, by name.

    ``place`` says which body, for the message ("block 'down'", "'repeat:'").
    """
    for node in nodes:
        stmt = node.header if isinstance(node, ast.Block) else node
        if stmt.word in registry.TOP_LEVEL_WORDS:
            raise error_at(KmagicSyntaxError, f"'{stmt.word}' only at the top level of a model", head_span(stmt),
                           stmt, received=f"it inside {place}")
        if isinstance(node, ast.Block):
            refuse_top_level_words(node.body, place)


def check_recursion(stack: list[str], block: BlockDef, stmt: ast.Statement) -> None:
    """Refuse a block that uses itself, directly or through others (``stack``: blocks being expanded)."""
    if block.name in stack:
        chain = " -> ".join([*stack[stack.index(block.name):], block.name])
        raise error_at(KmagicValueError, "a block that does not use itself", head_span(stmt), stmt,
                       received=f"'{block.name}' using itself ({chain})")


def expand_use(block: BlockDef, stmt: ast.Statement) -> tuple[ast.Node, ...]:
    """The body of ``block`` with the arguments of the use ``stmt`` in place of its parameters."""
    return substitute(block.body, bind_args(block, stmt))


def placeholder_body(block: BlockDef) -> tuple[ast.Node, ...]:
    """The body with each parameter standing for its default, or the number 1: to check a definition once."""
    bound = {name: default if default is not None else ast.Number(1, block.header.span, "1")
             for name, default in block.params}
    return substitute(block.body, bound)


def bind_args(block: BlockDef, stmt: ast.Statement) -> dict[str, ast.Value]:
    """Parameter name -> the value given where the block is used (or its default)."""
    names = [name for name, _ in block.params]
    if len(stmt.args) > len(names):
        raise error_at(KmagicValueError, f"expected at most {len(names)} value(s) for block '{block.name}'"
                       f" ({', '.join(names) or 'no parameters'})", stmt.args[len(names)].span, stmt,
                       received=str(len(stmt.args)))
    bound = dict(zip(names, stmt.args, strict=False))
    for kwarg in stmt.kwargs:
        if kwarg.key not in names:
            raise error_at(KmagicNameError, f"unknown parameter '{kwarg.key}' of block '{block.name}': "
                           f"expected one of {', '.join(names) or 'none'}", kwarg.span, stmt,
                           hint=did_you_mean(kwarg.key, names))
        if kwarg.key in bound:
            raise error_at(KmagicValueError, f"parameter '{kwarg.key}' once", kwarg.span, stmt, received="it twice")
        bound[kwarg.key] = kwarg.value
    for name, default in block.params:
        if name not in bound:
            if default is None:
                raise error_at(KmagicValueError, f"expected a value for parameter '{name}' of block "
                               f"'{block.name}'", head_span(stmt), stmt, received="none")
            bound[name] = default
    return bound


def substitute(nodes: tuple[ast.Node, ...], bound: dict[str, ast.Value]) -> tuple[ast.Node, ...]:
    """A block body with each bare parameter word replaced by its argument."""
    if not bound:
        return nodes
    return tuple(_subst(node, bound) for node in nodes)


def _subst(node: Any, bound: dict[str, ast.Value]) -> Any:
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
