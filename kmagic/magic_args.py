"""Magic lines: ``{expr}`` interpolation, argument parsing and value conversion.

The one interpolation syntax of kmagic (the same as in a ``%%kmodel`` body):
an argument that is exactly ``{expr}`` passes the Python value itself, and
``{expr}`` inside a longer word is replaced by the value's text. Quotes group
words with spaces; braces may nest and may hold quoted strings.

Parsing goes through the ``argparse`` parser that IPython's
``magic_arguments`` decorators attach to a magic, so ``%magic?`` help stays
generated from the arguments; its ``UsageError`` becomes a
:class:`~kmagic.errors.KmagicUsageError` with a caret and a did-you-mean hint.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from kmagic.errors import KmagicNameError, KmagicUsageError, did_you_mean
from kmagic.expr import bracket_end
from kmagic.expr import evaluate as expr_evaluate
from kmagic.shapes import ShapeError, parse_shape

_PLACEHOLDER = "__kmagic_value_{}__"
_PLACEHOLDER_RE = re.compile(r"^__kmagic_value_(\d+)__$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Token(NamedTuple):
    """One word of a magic line: its text as typed, its column (1-based), whether it was quoted."""

    text: str
    column: int
    quoted: bool = False


_CLOSING = {"{": "}", "(": ")", "[": "]"}


def tokenize(line: str) -> list[Token]:
    """Split a magic line into words; quotes and bracket groups (``{...}``, ``(...)``, ``[...]``) keep their spaces."""
    tokens: list[Token] = []
    i = 0
    while i < len(line):
        if line[i].isspace():
            i += 1
            continue
        start = i
        parts: list[str] = []
        quoted = False
        while i < len(line) and not line[i].isspace():
            char = line[i]
            if char in "'\"":
                end = line.find(char, i + 1)
                if end < 0:
                    raise KmagicUsageError(f"expected a closing {char}, received the end of the line",
                                           1, i + 1, source=line)
                parts.append(line[i + 1:end])
                quoted = True
                i = end + 1
            elif char in _CLOSING:
                end = bracket_end(line, i)
                if end < 0:
                    what = "{python expression}" if char == "{" else f"'{_CLOSING[char]}'"
                    raise KmagicUsageError(f"expected a closed {what}, received an unbalanced '{char}'",
                                           1, i + 1, source=line)
                parts.append(line[i:end])
                i = end
            else:
                parts.append(char)
                i += 1
        tokens.append(Token("".join(parts), start + 1, quoted))
    return tokens


def evaluate(expr: str, namespace: Mapping[str, Any], *, column: int = 1, source: str | None = None) -> Any:
    """Evaluate one ``{expr}`` (without its braces) on a magic line: :func:`kmagic.expr.evaluate`."""
    return expr_evaluate(expr, namespace, line=1, column=column, source=source)


def _is_whole_interpolation(token: Token) -> bool:
    text = token.text
    return not token.quoted and text.startswith("{") and bracket_end(text, 0) == len(text)


def interpolate_word(token: Token, namespace: Mapping[str, Any], source: str | None = None) -> str:
    """Replace every ``{expr}`` inside a word by the text of its value."""
    text = token.text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "{" and not token.quoted:
            end = bracket_end(text, i)
            value = evaluate(text[i + 1:end - 1], namespace, column=token.column + i, source=source)
            out.append(str(value))
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class ExpandedLine:
    """A magic line after interpolation: argparse words plus the values they stand for."""

    def __init__(self, argv: list[str], values: dict[str, Any], tokens: list[Token], source: str) -> None:
        self.argv = argv
        self.values = values
        self.tokens = tokens
        self.source = source

    def value_of(self, word: Any) -> Any:
        """The Python value behind a placeholder word (other words come back unchanged)."""
        if isinstance(word, str):
            match = _PLACEHOLDER_RE.match(word)
            if match:
                return self.values[word]
        return word

    def column_of(self, word: str) -> int | None:
        """The column where an argparse word came from (``--opt=word`` too), or None when unknown."""
        for index, item in enumerate(self.argv):
            if item == word:
                return self.tokens[index].column
            if item.startswith("-") and item.endswith(f"={word}") and not self.tokens[index].quoted:
                return self.tokens[index].column + len(item) - len(word)
        return None


def expand(line: str, namespace: Mapping[str, Any]) -> ExpandedLine:
    """Interpolate a magic line: whole ``{expr}`` words become placeholders for their values."""
    tokens = tokenize(line)
    argv: list[str] = []
    values: dict[str, Any] = {}
    for token in tokens:
        if _is_whole_interpolation(token):
            key = _PLACEHOLDER.format(len(values))
            values[key] = evaluate(token.text[1:-1], namespace, column=token.column, source=line)
            argv.append(key)
        else:
            argv.append(interpolate_word(token, namespace, source=line))
    return ExpandedLine(argv, values, tokens, line)


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings]


def _same_start(word: str, options: list[str]) -> str | None:
    """A hint for an option sharing a long start with the word (``--epoch-count`` -> ``--epochs``)."""
    import os.path

    scored = [(len(os.path.commonprefix([word.lower(), option])), option) for option in options]
    length, best = max(scored, default=(0, ""))
    return f"Did you mean '{best}'?" if length >= len("--") + 4 else None


def _usage_error(parser: argparse.ArgumentParser, message: str, expanded: ExpandedLine) -> KmagicUsageError:
    """Turn an argparse message into a KmagicUsageError pointing at the bad word."""
    options = _option_strings(parser)
    bad = re.search(r"unrecognized arguments: (.*)", message)
    if bad:
        words = bad.group(1).split()
        word = words[0]
        if word.startswith("-"):
            hint = did_you_mean(word.split("=")[0], options) or _same_start(word.split("=")[0], options)
            text = f"unknown option '{word}' for %{parser.prog}: expected one of {', '.join(options)}"
        else:
            hint = None
            text = f"expected no more arguments for %{parser.prog}, received '{word}'"
        column = expanded.column_of(word)
        return KmagicUsageError(text, 1 if column else None, column, source=expanded.source, width=len(word),
                                hint=hint)
    usage = " ".join(parser.format_usage().replace("::", " ").split()).removeprefix("usage: ")
    return KmagicUsageError(f"%{parser.prog}: {message}", source=expanded.source or None,
                            hint=f"Usage: {usage}")


def parse(magic: Callable[..., Any], line: str, namespace: Mapping[str, Any]) -> argparse.Namespace:
    """Parse a magic line with the magic's ``magic_arguments`` parser, values substituted back."""
    from IPython.core.error import UsageError

    build = getattr(magic, "build_parser", None)
    parser: argparse.ArgumentParser = build() if build is not None else magic.parser  # type: ignore[attr-defined]
    expanded = expand(line, namespace)
    try:
        args = parser.parse_args(expanded.argv)
    except UsageError as exc:
        raise _usage_error(parser, str(exc), expanded) from None
    args._words = dict(vars(args))  # the argparse words before substitution (how each was written)
    for key, value in list(vars(args).items()):
        if key == "_words":
            continue
        if isinstance(value, list):
            setattr(args, key, [expanded.value_of(item) for item in value])
        else:
            setattr(args, key, expanded.value_of(value))
    args._line = expanded  # for error positions later
    return args


# ---------------------------------------------------------------- conversions

def _column(args: argparse.Namespace | None, word: Any) -> tuple[int | None, str | None]:
    """Where a word of the magic line is, and the line: (None, None) when it cannot be found."""
    expanded: ExpandedLine | None = getattr(args, "_line", None) if args is not None else None
    if expanded is None or not isinstance(word, str):
        return None, None
    column = expanded.column_of(word)
    return column, expanded.source if column is not None else None


def _word_error(message: str, args: argparse.Namespace | None, word: Any, hint: str | None = None,
                cls: type[KmagicUsageError] | type[KmagicNameError] = KmagicUsageError) -> Exception:
    """An error pointing at ``word`` on the magic line when it can be found there, else without a position."""
    column, source = _column(args, word)
    return cls(message, 1 if column is not None else None, column, source=source, width=len(str(word)), hint=hint)


def identifier(word: Any, what: str = "a model name", args: argparse.Namespace | None = None) -> str:
    """A Python identifier to bind a result to."""
    if isinstance(word, str) and _IDENTIFIER.match(word):
        return word
    raise _word_error(f"expected {what} (a Python identifier), received {word!r}", args, word)


def to_int(value: Any, option: str, *, minimum: int | None = 1, args: argparse.Namespace | None = None) -> int | None:
    """An integer option (``--epochs 3`` or ``--epochs {n}``); None stays None."""
    if value is None:
        return None
    try:
        number = int(value)
        if isinstance(value, float) and number != value:
            raise ValueError
        if isinstance(value, str) and not re.fullmatch(r"[+-]?\d+", value.strip()):
            raise ValueError
    except (TypeError, ValueError):
        raise _word_error(f"expected an integer for {option}, received {value!r}", args, value) from None
    if minimum is not None and number < minimum:
        raise _word_error(f"expected {option} >= {minimum}, received {number}", args, value)
    return number


def to_float(value: Any, option: str, *, low: float | None = None, high: float | None = None,
             args: argparse.Namespace | None = None) -> float | None:
    """A float option; None stays None; ``low < value < high`` when bounds are given."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _word_error(f"expected a number for {option}, received {value!r}", args, value) from None
    if (low is not None and number <= low) or (high is not None and number >= high):
        raise _word_error(f"expected {option} between {low} and {high}, received {number}", args, value)
    return number


def to_choice(value: Any, option: str, choices: Iterable[str], args: argparse.Namespace | None = None) -> str | None:
    """One of a fixed set of words, case-insensitive; None stays None."""
    if value is None:
        return None
    options = tuple(choices)
    word = str(value).lower()
    if word not in options:
        raise _word_error(f"expected {option} to be one of {', '.join(options)}, received {value!r}", args, value,
                          hint=did_you_mean(word, options))
    return word


def to_shape(value: Any, option: str = "--input", args: argparse.Namespace | None = None,
             ) -> tuple[int | None, ...] | None:
    """A shape (``28x28x1``, ``28,28,1``, ``?x16``, ``100``, ``(None, 16)``) or a Python value: kmagic.shapes."""
    if value is None:
        return None
    try:
        return parse_shape(value)
    except ShapeError as exc:
        raise _word_error(f"{exc} for {option}", args, value) from None


def user_ns(shell: Any) -> dict[str, Any]:
    """The notebook's namespace: the ``user_ns`` of the shell a Magics class was registered on."""
    if shell is None:
        raise KmagicUsageError("expected the magics to be registered on an IPython shell, received none")
    namespace: dict[str, Any] = shell.user_ns
    return namespace


def lookup(word: Any, namespace: Mapping[str, Any], what: str, args: argparse.Namespace | None = None) -> Any:
    """The notebook variable a word names; a value passed by ``{expr}`` comes back as it is."""
    if not isinstance(word, str):
        return word
    if word in namespace:
        return namespace[word]
    names = [k for k in namespace if not k.startswith("_")]
    if not _IDENTIFIER.match(word):
        raise _word_error(f"expected {what}: a variable name or {{expression}}, received '{word}'", args, word,
                          hint=f"Write {{{word}}} to pass a Python expression.", cls=KmagicNameError)
    raise _word_error(f"{what} '{word}' is not defined in the notebook", args, word, hint=did_you_mean(word, names),
                      cls=KmagicNameError)


# ---------------------------------------------------------------- %kfit options


def fit_options(args: argparse.Namespace, lookup_value: Callable[[Any, str], Any]) -> dict[str, Any]:
    """``model.fit`` keywords from ``%kfit``'s parsed options (only those given);
    ``lookup_value(word, what)`` turns a word into the notebook value it names."""
    if args.validation_split is not None and args.validation_data is not None:
        raise KmagicUsageError("expected --validation-split or --validation-data, received both")
    options: dict[str, Any] = {
        "epochs": to_int(args.epochs, "--epochs", args=args),
        "batch_size": to_int(args.batch_size, "--batch-size", args=args),
        "validation_split": to_float(args.validation_split, "--validation-split", low=0, high=1, args=args),
        "steps_per_epoch": to_int(args.steps_per_epoch, "--steps-per-epoch", args=args),
        "validation_steps": to_int(args.validation_steps, "--validation-steps", args=args),
        "initial_epoch": to_int(args.initial_epoch, "--initial-epoch", minimum=0, args=args),
        "steps_per_execution": to_int(args.steps_per_execution, "--steps-per-execution", args=args),
        "shuffle": args.shuffle,
    }
    if args.validation_data is not None:
        words = args.validation_data
        if len(words) not in (1, 2, 3):
            raise KmagicUsageError(f"expected --validation-data DATASET or --validation-data XV YV, received "
                                   f"{len(words)} values")
        values = [lookup_value(word, "validation data") for word in words]
        options["validation_data"] = values[0] if len(values) == 1 else tuple(values)
        if len(values) == 1 and isinstance(values[0], list):
            options["validation_data"] = tuple(values[0])
    if args.callbacks is not None:
        callbacks = lookup_value(args.callbacks, "callbacks")
        options["callbacks"] = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        bad = [c for c in options["callbacks"] if not hasattr(c, "set_model")]
        if bad:
            raise KmagicUsageError(f"expected Keras callbacks for --callbacks, received {type(bad[0]).__name__}",
                                   hint="Pass {[keras.callbacks.EarlyStopping(patience=2)]}.")
    if args.class_weight is not None:
        weights = lookup_value(args.class_weight, "class weights")
        if not isinstance(weights, Mapping):
            raise KmagicUsageError(f"expected a dict of class weights for --class-weight, such as {{{{0: 1, 1: 5}}}}, "
                                   f"received {type(weights).__name__}")
        options["class_weight"] = dict(weights)
    if args.sample_weight is not None:
        options["sample_weight"] = lookup_value(args.sample_weight, "sample weights")
    return {key: value for key, value in options.items() if value is not None}
