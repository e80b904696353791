"""Character-level rules of kmodel text: invisible characters and string escapes.

Invisible or ambiguous characters (control characters, NO-BREAK SPACE, a byte
order mark, zero-width spaces, line separators, lone surrogates) are refused
anywhere in a body, named by code point with their line and column.

Strings read escapes as Python does (``\\n``, ``\\t``, ``\\\\``, ``\\'``,
``\\xHH``, ``\\uXXXX``, ``\\UXXXXXXXX``, ``\\N{name}``, octal); a backslash that
does not start a complete, valid escape is kept as a backslash, so a Windows
path such as ``'C:\\Users\\me\\m.keras'`` means what it shows. An escape that
names a lone surrogate (``\\ud800``) is refused.
"""

from __future__ import annotations

import re
import unicodedata

from kmagic.errors import KmagicSyntaxError

_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"}
_ALLOWED = {" ", "\t", "\n", "\r"}  # tabs get their own message where indentation is read


#: Characters that may be refused: ASCII controls other than tab and line breaks, and everything beyond ASCII.
_SUSPECT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\U0010ffff]")


def _refused(char: str) -> bool:
    return char not in _ALLOWED and unicodedata.category(char) in _REFUSED_CATEGORIES


def describe(char: str) -> str:
    """``U+00A0 (NO-BREAK SPACE)``: a character by code point and Unicode name."""
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    if not name:
        category = unicodedata.category(char)
        name = {"Cc": "a control character", "Cs": "a lone surrogate"}.get(category, f"category {category}")
    return f"{code} ({name})"


def _position(text: str, index: int) -> tuple[int, int, str]:
    """Line, column and the text of that line for ``text[index]``, the first refused character.

    Every line break before it is ``\n``, ``\r\n`` or ``\r`` (the others are refused), so lines
    are counted as :func:`kmagic.dsl.parser` counts them.
    """
    before = text[:index].splitlines(keepends=True)
    if not before or before[-1].splitlines()[0] != before[-1]:
        line, start = len(before) + 1, index
    else:
        line, start = len(before), index - len(before[-1])
    source = re.split(r"[\r\n]", text[start:index + 200], maxsplit=1)[0]
    return line, index - start + 1, source


def _shown(source: str) -> str:
    """The line with every refused character drawn as U+FFFD, so the caret lines up and nothing hides."""
    return "".join("\N{REPLACEMENT CHARACTER}" if _refused(char) else char for char in source)


def check_characters(text: str) -> None:
    """Refuse the first invisible or ambiguous character in a body (see the module docstring)."""
    for match in _SUSPECT.finditer(text):
        char, index = match.group(), match.start()
        if _refused(char):
            line, column, source = _position(text, index)
            raise KmagicSyntaxError(
                f"expected visible characters and plain spaces, received {describe(char)}, an invisible "
                "or ambiguous character", line, column, source=_shown(source),
                hint="Delete it, or retype the line (it often comes from copying text from a web page).",
            )


_ESCAPE = re.compile(r"""\\(?:
    (?P<simple>[\\'"abfnrtv])
  | (?P<octal>[0-7]{1,3})
  | x(?P<hex2>[0-9A-Fa-f]{2})
  | u(?P<hex4>[0-9A-Fa-f]{4})
  | U(?P<hex8>[0-9A-Fa-f]{8})
  | N\{(?P<name>[^{}\n]{1,100})\}
)""", re.VERBOSE)
_SIMPLE = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
           "v": "\v"}


def decode_string(literal: str) -> tuple[str, str | None]:
    """The value of a quoted kmodel string, and a problem to report (or None).

    ``literal`` includes its quotes. Invalid escapes stay as written; the only
    problem reported is an escape that yields a lone surrogate, which no file
    or Keras name can hold.
    """
    body = literal[1:-1]
    if "\\" not in body:
        return body, None
    parts: list[str] = []
    position = 0
    problem = None
    while True:
        found = body.find("\\", position)
        if found < 0:
            parts.append(body[position:])
            break
        parts.append(body[position:found])
        match = _ESCAPE.match(body, found)
        if match is None:
            parts.append("\\")
            position = found + 1
            continue
        value = _escape_value(match)
        if value is None:  # \N{...} with a name Unicode does not know: keep as written
            parts.append("\\")
            position = found + 1
            continue
        if len(value) == 1 and 0xD800 <= ord(value) <= 0xDFFF and problem is None:
            problem = f"an escape '{match.group(0)}' for a lone surrogate (not a character)"
        parts.append(value)
        position = match.end()
    return "".join(parts), problem


def _escape_value(match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    if groups["simple"] is not None:
        return _SIMPLE[groups["simple"]]
    if groups["octal"] is not None:
        return chr(int(groups["octal"], 8))
    for key in ("hex2", "hex4", "hex8"):
        if groups[key] is not None:
            code = int(groups[key], 16)
            return chr(code) if code <= 0x10FFFF else None
    try:
        return unicodedata.lookup(groups["name"])
    except KeyError:
        return None
