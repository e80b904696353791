"""The KmagicError family: positions, caret rendering and short notebook display."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KmagicError(Exception):
    """Base class of every error kmagic raises for a user's mistake.

    ``line`` and ``column`` are 1-based positions in the kmodel body (or the
    magic line), or None where the error has no real position (a file, the
    data, a device): then no position is printed. ``source`` is the text of
    that line, ``width`` how many characters the caret underlines, ``hint``
    an optional did-you-mean.
    """

    kind = "error"

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        *,
        source: str | None = None,
        width: int = 1,
        hint: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        self.width = max(1, width)
        self.hint = hint
        self.detail = detail
        super().__init__(self.render())

    def render(self) -> str:
        """The full text: position, message, hint, source line with caret, detail."""
        text = f"{self.position()}{self.message}"
        if self.hint:
            stop = "" if text.endswith((".", "?", "!")) or self.hint.startswith("(") else "."
            text += f"{stop} {self.hint}"
        if self.source is not None:
            text += f"\n    {self.source}"
            if self.column is not None:
                text += f"\n    {' ' * (self.column - 1)}{'^' * self.width}"
        if self.detail:
            indented = "\n".join("    " + row for row in self.detail.strip().splitlines())
            text += f"\n  Keras said:\n{indented}"
        return text

    def position(self) -> str:
        """``"line 3, column 5: "``, ``"column 5: "`` (a magic line), ``"line 3: "`` or nothing."""
        if self.line is not None and self.column is not None:
            return f"line {self.line}, column {self.column}: "
        if self.line is not None:
            return f"line {self.line}: "
        return f"column {self.column}: " if self.column is not None else ""

    def with_note(self, note: str) -> KmagicError:
        """The same error with ``note`` added after its hint (where a block was used, say)."""
        hint = f"{self.hint} ({note})" if self.hint else f"({note})"
        return type(self)(self.message, self.line, self.column, source=self.source, width=self.width, hint=hint,
                          detail=self.detail)

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the message alone, no frames."""
        return [f"{type(self).__name__}: {self.render()}"]


class KmagicSyntaxError(KmagicError):
    """The text is not valid kmodel syntax (tokens, brackets, indentation)."""


class KmagicNameError(KmagicError):
    """A word, @reference, block or option that is not known."""


class KmagicValueError(KmagicError):
    """A known word used with a wrong value, count or combination."""


class KmagicBuildError(KmagicError):
    """Keras refused to build a statement (shape mismatch, rank, keyword)."""


class KmagicInterpolationError(KmagicError):
    """A ``{expr}`` interpolation failed to evaluate."""


class KmagicUsageError(KmagicError):
    """A magic was called with wrong arguments (a real exception, so nbval sees it)."""


class KmagicFileError(KmagicError):
    """A model file that cannot be saved or loaded safely."""


class KmagicDataError(KmagicError):
    """Training data that does not fit the model."""


class KmagicDeviceError(KmagicError):
    """A device, strategy or precision that cannot be used here."""


class KmagicWarning(UserWarning):
    """Something legal that is probably not what the user meant (a layer that reaches no output)."""


def _edits(a: str, b: str) -> int:
    """Edits between two words, counting a swap of neighbours as one (optimal string alignment)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A "Did you mean 'x'?" hint for a near-miss word, or None.

    The closest word by edits (a typo, a missing letter, two swapped letters)
    wins; one edit is allowed in words of up to four letters, two in longer
    ones. Otherwise difflib's similarity decides.
    """
    pool: dict[str, str] = {}
    for candidate in candidates:
        pool.setdefault(candidate.lower(), candidate)
    target = word.lower()
    if not pool or target in pool:
        return None
    distance, best = min((_edits(target, key), key) for key in pool)
    if distance <= (1 if len(target) <= 4 else 2):
        return f"Did you mean '{pool[best]}'?"
    close = difflib.get_close_matches(target, list(pool), n=1, cutoff=0.75)
    return f"Did you mean '{pool[close[0]]}'?" if close else None
