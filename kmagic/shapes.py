"""The one shape parser: ``28x28x1``, ``28,28,1``, ``?x16``, ``(None, 16)``, ``100``, or a Python value.

``()`` is the shape of one scalar per sample (``input () dtype=string``).

Used by ``input {expr}`` in a body, by ``--input`` on a magic line and by
``kmagic.build(..., input_shape=...)``, so all three accept the same shapes.
"""

from __future__ import annotations

import re
from typing import Any

_NONE_WORDS = ("?", "none", "None")


class ShapeError(ValueError):
    """A value that is not a shape; callers turn it into a positioned KmagicError."""


def parse_shape(value: Any) -> tuple[int | None, ...]:
    """A shape tuple of positive sizes or None, from text, an int, or a tuple/list of those."""
    if isinstance(value, str):
        return _from_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _checked((value,), value)
    if isinstance(value, tuple | list):
        return _checked(tuple(_dim(item, value) for item in value), value, scalar_ok=True)
    raise ShapeError(f"expected a shape of positive sizes or ?, received {value!r}")


def _from_text(text: str) -> tuple[int | None, ...]:
    inner = text.strip()
    if inner in ("()", "[]"):
        return ()
    if inner[:1] in "([" and inner[-1:] in ")]":
        inner = inner[1:-1]
    parts = [part.strip() for part in re.split(r"[x,]", inner)] if inner.strip() else []
    if len(parts) > 1 and parts[-1] == "" and inner.rstrip().endswith(","):
        parts.pop()  # "(16,)"
    if not parts:
        raise ShapeError(f"expected a shape such as 28x28x1, ?x16 or (None, 16), received {text!r}")
    dims: list[int | None] = []
    for part in parts:
        if part in _NONE_WORDS:
            dims.append(None)
        elif part.isdigit():
            dims.append(int(part))
        else:
            raise ShapeError(f"expected a shape such as 28x28x1, ?x16 or (None, 16), received {text!r}")
    return _checked(tuple(dims), text)


def _dim(item: Any, whole: Any) -> int | None:
    if item is None:
        return None
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    if hasattr(item, "__index__") and not isinstance(item, bool | float):
        return int(item)  # numpy integers
    raise ShapeError(f"expected a shape of positive sizes or ?, received {whole!r}")


def _checked(dims: tuple[int | None, ...], original: Any, scalar_ok: bool = False) -> tuple[int | None, ...]:
    if (not dims and not scalar_ok) or any(d is not None and d < 1 for d in dims):
        raise ShapeError(f"expected a shape of positive sizes or ?, received {original!r}")
    return dims
