"""A training generator's own exception instead of TensorFlow's "Graph execution error".

Keras runs a Python generator inside a TensorFlow graph, so an exception the
generator raises reaches ``fit``'s caller as ``tf.errors.UnknownError`` with
"<stack traces unavailable>". :func:`watch` wraps a generator so its exception
object is kept; :meth:`GeneratorWatch.user_error` turns it into a
:class:`~kmagic.KmagicDataError` naming the exception's type, its message and
the line of the user's generator that raised it. For data Keras reads through
its own generator (a ``PyDataset``), only TensorFlow's text of the traceback is
left: :func:`from_tensorflow_text` reads the exception and the user's line
from it.
"""

from __future__ import annotations

import linecache
import re
import traceback
import types
from collections.abc import Iterator
from typing import Any

from kmagic.errors import KmagicDataError


class GeneratorWatch:
    """The data handed to ``fit`` (a generator wrapped, anything else as it was), and what it raised."""

    def __init__(self, data: Any) -> None:
        self.original = data
        self.exception: BaseException | None = None
        self.data = self._guarded(data) if isinstance(data, types.GeneratorType) else data

    def _guarded(self, generator: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from generator
        except Exception as exc:
            self.exception = exc
            raise

    def user_error(self, what: str = "the training data generator") -> KmagicDataError | None:
        """The generator's exception as a KmagicDataError (its cause is the exception), or None."""
        exc = self.exception
        if exc is None:
            return None
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        where = _where(exc, getattr(self.original, "gi_code", None))
        error = KmagicDataError(f"expected {what} to yield batches, received {text}",
                                hint=f"It was raised {where}." if where else None)
        error.__cause__ = exc
        return error


def watch(data: Any) -> GeneratorWatch:
    """Wrap ``data`` for ``fit`` when it is a Python generator; other data passes unchanged."""
    return GeneratorWatch(data)


def _where(exc: BaseException, code: types.CodeType | None) -> str:
    """``in gen(), line 5 of /tmp/ipykernel_1/123.py: raise RuntimeError('bad')``: where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    mine = [f for f in frames if code is not None and f.filename == code.co_filename and f.name == code.co_name]
    frame = (mine or frames)[-1]
    source = (frame.line or linecache.getline(frame.filename, frame.lineno or 0)).strip()
    text = f"in {frame.name}(), line {frame.lineno} of {frame.filename}"
    return f"{text}: {source}" if source else text


_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>\S+)\n(?:    (?P<code>[^\n]*)\n)?',
                    re.MULTILINE)
_LIBRARY = re.compile(r"[/\\](site-packages|dist-packages|lib[/\\]python\d+\.\d+)[/\\]")


def from_tensorflow_text(exc: BaseException, what: str = "the training data") -> KmagicDataError | None:
    """The user's exception read from TensorFlow's "Graph execution error" text, or None.

    TensorFlow flattens an exception raised in Python code it ran (a ``PyDataset``'s
    ``__getitem__``) into its message: the exception line, then the traceback. Returns None
    unless that traceback has a frame outside installed libraries (the user's code).
    """
    text = str(exc)
    if "Graph execution error" not in text or "Traceback (most recent call last):" not in text:
        return None
    before, _, trace = text.partition("Traceback (most recent call last):")
    lines = [line for line in before.splitlines() if line.strip()]
    exception = lines[-1].strip() if lines else ""
    if not re.match(r"^[A-Za-z_][\w.]*(: |$)", exception) or exception.startswith("Detected at node"):
        return None
    user = [m for m in _FRAME.finditer(trace) if not _LIBRARY.search(m.group("file"))]
    if not user:
        return None
    frame = user[-1]
    where = f"in {frame.group('name')}(), line {frame.group('line')} of {frame.group('file')}"
    code = (frame.group("code") or "").strip()
    return KmagicDataError(f"expected {what} to yield batches, received {exception}",
                           hint=f"It was raised {where}: {code}." if code else f"It was raised {where}.")
