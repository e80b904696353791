"""The scope and graph builder: operations, tensor ids, @names and layer names of one model.

The checker passes a builder explicitly; checking a block definition uses a
fresh one, so nothing of the model being checked is saved or restored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kmagic.dsl import ast
from kmagic.dsl.diagnose import error_at
from kmagic.dsl.program import Op
from kmagic.errors import KmagicNameError, KmagicValueError, did_you_mean

MAX_OPS = 20_000


@dataclass
class GraphBuilder:
    """Operations emitted so far, the model's inputs and the @names visible in each scope."""

    ops: list[Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    scopes: list[dict[str, int]] = field(default_factory=lambda: [{}])
    tensor_names: dict[int, str] = field(default_factory=dict)
    layer_names: set[str] = field(default_factory=set)
    next_id: int = 0

    def emit(self, kind: str, inputs: tuple[int, ...], stmt: ast.Statement, *, via: tuple[ast.Statement, ...] = (),
             named: bool = True, **fields: Any) -> Op:
        """Add one operation; ``stmt``'s ``as NAME`` names its output when ``named``."""
        if len(self.ops) >= MAX_OPS:
            raise error_at(KmagicValueError, f"a model of at most {MAX_OPS} layers", stmt.span, stmt,
                           received="more after expanding blocks")
        op = Op(kind, self.next_id, inputs, stmt, via=via, **fields)
        self.next_id += 1
        if stmt.alias is not None and named:
            op.name = self._layer_name(stmt.alias.name)
            self.define(stmt.alias, op.out, stmt)
        self.ops.append(op)
        return op

    def add_input(self, stmt: ast.Statement, **fields: Any) -> int:
        """An ``input`` operation, recorded as a model input."""
        op = self.emit("input", (), stmt, word="input", **fields)
        self.inputs.append(op.out)
        return op.out

    def push_scope(self) -> None:
        self.scopes.append({})

    def pop_scope(self) -> None:
        self.scopes.pop()

    def define(self, ref: ast.Ref, tensor: int, stmt: ast.Statement) -> None:
        """Bind ``@name`` in the innermost scope; a name already there is an error."""
        scope = self.scopes[-1]
        if ref.name in scope:
            raise error_at(KmagicNameError, "a new name", ref.span, stmt, received=f"'{ref.name}', which is already used")
        scope[ref.name] = tensor
        self.tensor_names.setdefault(tensor, ref.name)

    def lookup(self, ref: ast.Ref, stmt: ast.Statement) -> int:
        """The tensor an ``@name`` stands for, innermost scope first."""
        for scope in reversed(self.scopes):
            if ref.name in scope:
                return scope[ref.name]
        known = [name for scope in self.scopes for name in scope]
        listed = ", ".join(f"@{name}" for name in known) or "none yet"
        raise error_at(KmagicNameError, f"unknown name '@{ref.name}' (defined so far: {listed})", ref.span, stmt,
                       hint=did_you_mean(f"@{ref.name}", [f"@{name}" for name in known]))

    def _layer_name(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.layer_names:
            n += 1
            candidate = f"{name}_{n}"
        self.layer_names.add(candidate)
        return candidate
