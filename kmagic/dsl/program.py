"""The checked program: a flat list of layer operations wired by tensor ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from kmagic.dsl import ast
from kmagic.registry import LayerSpec


@dataclass(frozen=True)
class BlockDef:
    """A reusable block: ``block NAME(params, k=default):`` and its body."""

    name: str
    params: tuple[tuple[str, ast.Value | None], ...]
    body: tuple[ast.Node, ...]
    header: ast.Statement


@dataclass
class Op:
    """One layer (or input) of the model.

    ``kind`` is ``input``, ``layer``, ``merge`` (a list of inputs),
    ``attention`` (query, value[, key]) or ``residual`` (shortcut, body
    output; ``project`` adds a 1x1 projection when shapes differ).
    ``spec`` is the registry row of an alias; ``class_name`` a Keras class
    (None for rank-generic aliases, resolved from the input rank at build);
    ``custom`` an interpolation that yields a layer class; ``via`` the
    statements that used the blocks this operation came from, outermost first.
    """

    kind: str
    out: int
    inputs: tuple[int, ...]
    stmt: ast.Statement
    word: str = ""
    spec: LayerSpec | None = None
    class_name: str | None = None
    custom: ast.Interp | None = None
    args: tuple[ast.Value, ...] = ()
    kwargs: dict[str, ast.Value] = field(default_factory=dict)
    name: str | None = None
    wrapped: Op | None = None
    project: bool = False
    via: tuple[ast.Statement, ...] = ()


@dataclass
class Program:
    """A checked kmodel program, ready for ``kmagic.compile`` or ``codegen``."""

    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    names: dict[int, str]
    compile: ast.Statement | None
    fit: ast.Statement | None
    blocks: dict[str, BlockDef]
    source: str

    def unreached(self) -> list[Op]:
        """Layers whose output leads to no model output (Keras leaves them out of the model)."""
        needed = set(self.outputs)
        for op in reversed(self.ops):
            if op.out in needed:
                needed.update(op.inputs)
        return [op for op in self.ops if op.out not in needed and op.kind != "input"]

    def summary(self) -> str:
        """One line: how many inputs, layers and outputs."""
        layers = sum(1 for op in self.ops if op.kind != "input")
        return f"{len(self.inputs)} input(s), {layers} layer(s), {len(self.outputs)} output(s)"
