"""Property-based fuzzing: no input makes ``parse`` or ``build`` raise anything but a KmagicError.

Two sources of programs: generated ones (statements assembled from the
language's own words and value forms) and mutated ones (valid examples with
characters inserted, deleted or replaced). Together they run well over
2,000 programs in CI; every build that parses is attempted too.
"""

from __future__ import annotations

import contextlib
import re
import warnings

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import kmagic
from kmagic import magic_args, registry
from kmagic.dsl import ast as kast
from kmagic.dsl.parser import parse_body
from kmagic.errors import KmagicError, KmagicSyntaxError
from kmagic.expr import evaluate

VALID = [
    "input 8x8x3\nconv 4 3 relu | maxpool 2\nflatten\ndense 10 softmax\ncompile adam cce metrics=[accuracy]",
    "input ? dtype=int32\nembedding 50 4 mask\nbi lstm 4 seq\nlstm 2\ndense 1 sigmoid\ncompile rmsprop bce",
    "input 8x8x3\nconv 4 3 same relu\nresidual:\n    conv 4 3 same relu\n    conv 4 3 same\nrelu\ngap\ndense 3",
    "input 6 as a\ninput 2 as b\n@a\ndense 4 as h\nconcat @h @b\ndense 1 as out\noutput @out",
    "block down(f, k=3):\n    conv f k same relu\n    maxpool 2\ninput 8x8x3\ndown 4\nconcat:\n"
    "    branch: conv 2 1\n    branch: maxpool 3 strides=1 same | conv 2 1\nrepeat 2: dense 3 relu | bn",
    "input 4x6\nmha 2 4\nln\ngap\ndense 2 softmax\nfit epochs=1 batch_size=4 callbacks=[early_stopping(patience=1)]",
]

WORDS = sorted(set(registry.LAYER_ALIASES) | set(registry.ACTIVATION_WORDS) | set(registry.PADDING_WORDS)
               | set(registry.KEYWORDS) | set(registry.OPTIMIZERS) | set(registry.LOSSES) | set(registry.METRICS)
               | {"nobias", "seq", "mask", "project", "Dense", "GaussianNoise", "bogus", "__import__"})
ATOMS = st.one_of(
    st.sampled_from(WORDS),
    st.integers(-3, 40).map(str),
    st.sampled_from(["0.5", ".5", "1e-3", "1/255", "1/0", "8x8x3", "?x4", "?", "(None, 4)", "(3, 3)", "[acc, auc]",
                     "'same'", '"x"', "true", "none", "{n}", "{1+}", "{n * 2}",
                     "{ {'k': {'v': n}}['k']['v'] }", "{len('}{')}", "'{'", "# {", "l2(1e-4)", "adam(lr=1e-3)",
                     "dict(a=mse)", "@a", "@b", "as a", "as b", "units=3", "k=", "|", ":", "(", "]", "{", "\t"]),
)
LINE = st.lists(ATOMS, min_size=1, max_size=7).map(" ".join)
INDENT = st.sampled_from(["", "", "", "    ", "        ", "  "])
PROGRAM = st.lists(st.tuples(INDENT, LINE).map("".join), min_size=1, max_size=8).map("\n".join)


def _check(text: str) -> None:
    """parse, then build when parsing succeeds; only KmagicError may escape."""
    try:
        kmagic.parse(text, input_shape="8")
    except KmagicError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(KmagicError):
            kmagic.build(text, input_shape="8", namespace={"n": 2})


def hypothesis_examples(at_full_size: int) -> int:
    """Examples to run: ``at_full_size`` under the large profile (1000 examples), scaled down under small."""
    return max(10, round(at_full_size * settings().max_examples / 1000))


FUZZ = settings(max_examples=hypothesis_examples(1200),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@FUZZ
@given(PROGRAM)
def test_generated_programs_raise_only_kmagic_errors(text: str) -> None:
    _check(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(list(" :|@{}()[]=,'\"#\t\nx?/.-0123456789abcdefqrs_")))
        if action == "insert":
            text = text[:position] + char + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + 1:]
        else:
            text = text[:position] + char + text[position + 1:]
    return text


@FUZZ
@given(mutated())
def test_mutated_programs_raise_only_kmagic_errors(text: str) -> None:
    _check(text)


SMALL = st.integers(-1, 6).map(str)
LAYER_LINES = st.one_of(
    st.tuples(st.sampled_from(["dense", "conv", "maxpool", "avgpool", "dropout", "upsample", "zeropad", "lstm",
                               "gru", "embedding", "reshape", "repeat_vector", "dwconv", "sepconv", "deconv",
                               "GaussianNoise", "leaky_relu", "mha", "rescale", "crop", "permute"]),
              st.lists(st.one_of(SMALL, st.sampled_from(["0.5", "(2, 2)", "(4,)", "(2, -1)", "same", "relu", "seq",
                                                         "nobias", "mask", "strides=2", "1/2"])), max_size=3))
    .map(lambda t: " ".join([t[0], *t[1]])),
    st.sampled_from(["flatten", "gap", "gmp", "bn", "ln", "relu", "softmax", "prelu", "add @a", "concat @a",
                     "multiply @a @a", "@a", "bi lstm 2 seq", "one_hot 4", "hashing 3", "normalize"]),
)
BODY = st.lists(LAYER_LINES, min_size=1, max_size=6)
SHAPES = st.sampled_from(["8", "4x6", "8x8x3", "4x4x4x2", "?", "? dtype=int32"])


@st.composite
def layered(draw: st.DrawFn) -> str:
    lines = [f"input {draw(SHAPES)} as a", *draw(BODY)]
    if draw(st.booleans()):
        inner = draw(BODY)
        lines.append(draw(st.sampled_from(["residual:", "residual project:", "repeat 2:"])))
        lines += ["    " + line for line in inner]
    return "\n".join(lines)


@settings(max_examples=hypothesis_examples(500), suppress_health_check=[HealthCheck.too_slow])
@given(layered())
def test_layered_programs_build_or_raise_kmagic_errors(text: str) -> None:
    """Mostly valid syntax, so these reach Keras: its refusals must come back as KmagicErrors."""
    _check(text)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@settings(max_examples=hypothesis_examples(300))
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_kmagic_errors(text: str) -> None:
    _check(text)


@pytest.mark.parametrize("text", VALID)
def test_fuzz_seeds_are_valid_programs(text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert kmagic.build(text, input_shape="8", namespace={"n": 2}) is not None


# ---------------------------------------------------------------- strings with escapes, dict(...) mappings

ESCAPE_PIECES = st.sampled_from([
    "\\", "\\\\", "\\'", '\\"', "\\n", "\\t", "\\x4", "\\x41", "\\xzz", "\\N{nope}", "\\N{BULLET}", "\\N{", "\\U",
    "\\U0001F600", "\\U00110000", "\\u12", "\\u00e9", "\\ud800", "\\udfff", "\\0", "\\777", "\\8", "\\q",
    "C:\\Users\\me\\m.keras", "C:\\new\\table", "\x00", "\u00a0", "\ufeff", "\u200b", "\ud800", "\u2028", "é", "{",
    "}", "#", "'", '"', " ", "a",
])
STRING_BODY = st.lists(ESCAPE_PIECES, max_size=6).map("".join)
STRING = st.tuples(st.sampled_from(["'", '"']), STRING_BODY).map(lambda t: f"{t[0]}{t[1]}{t[0]}")
STRING_PROGRAM = st.tuples(
    st.sampled_from(["input 4\ndense 2 name={s}", "input 4\ndense 2\nfit callbacks=[checkpoint({s})]",
                     "input 4 dtype={s}\ndense 2", "input 4\ndense 2 {s}", "input 4\ndense 2\ncompile adam {s}",
                     "input 4\ndense 2 kernel_initializer={s} # {s}", "input 4\ndense 2 activation=[{s}, {s}]"]),
    STRING,
).map(lambda t: t[0].replace("{s}", t[1]))


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(STRING_PROGRAM)
def test_strings_with_escapes_raise_only_kmagic_errors(text: str) -> None:
    _check(text)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(STRING_BODY)
def test_strings_python_can_read_mean_what_python_reads(body: str) -> None:
    """The escape rule is Python's where Python accepts the string; elsewhere the backslash is kept."""
    import ast

    from kmagic.dsl.characters import decode_string

    literal = f"'{body}'"
    if not re.fullmatch(r"'[^'\\\n]*(\\.[^'\\\n]*)*'", literal):  # not one kmodel string (the grammar's rule)
        return
    value, problem = decode_string(literal)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            python = ast.literal_eval(literal)
    except (SyntaxError, ValueError):
        return
    if problem is None:
        assert value == python
    else:
        assert any(0xD800 <= ord(char) <= 0xDFFF for char in python)


KEYS = st.sampled_from(["class_name", "module", "config", "registered_name", "value", "name", "units", "fn",
                        "__class__", "Lambda", "a"])
ATOM_VALUES = st.one_of(STRING, st.sampled_from(["1", "-2.5", "none", "true", "relu", "keras.config", "[1, 2]",
                                                 "(1,)", "{n}", "@a", "l2(1e-4)", "'layers.Lambda'",
                                                 "'keras.config'", "'function'", "'__lambda__'"]))
MAPPING = st.recursive(
    ATOM_VALUES,
    lambda inner: st.lists(st.tuples(KEYS, inner), min_size=0, max_size=4).map(
        lambda pairs: "dict(" + ", ".join(f"{k}={v}" for k, v in pairs) + ")"),
    max_leaves=8,
)
MAPPING_PROGRAM = st.tuples(
    st.sampled_from(["input 4\ndense 2 activation={m}", "input 4\ndense 2 kernel_initializer={m}",
                     "input 4\ndense 2\ncompile {m} mse", "input 4\ndense 2\ncompile adam mse loss_weights={m}",
                     "input 4\ndense 2\nfit callbacks=[{m}]", "input 4\n{{layer}} config={m}",
                     "input 4\ndense 2 kernel_regularizer={m}"]),
    MAPPING,
).map(lambda t: t[0].replace("{m}", t[1]))


@FUZZ
@given(MAPPING_PROGRAM)
def test_dict_mappings_raise_only_kmagic_errors_from_parse(text: str) -> None:
    """``dict(...)`` values of any shape: parsing and checking never raise anything but a KmagicError."""
    with contextlib.suppress(KmagicError):
        kmagic.parse(text)


# ---------------------------------------------------------------- {expr}: one bracket scanner for bodies and lines

PY_TEXT = st.text(alphabet="{}[]()'\"#\\ ab:,", max_size=6)
PY_VALUES = st.recursive(
    st.one_of(PY_TEXT, st.integers(-5, 5), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(PY_TEXT, inner, max_size=3), st.frozensets(PY_TEXT, max_size=3)),
    max_leaves=8,
)


@FUZZ
@given(PY_VALUES, st.sampled_from(["", " "]))
def test_a_body_and_a_magic_line_read_the_same_interpolation(value: object, pad: str) -> None:
    """Any Python literal (nested, with braces, quotes and '#' in its strings) is one ``{expr}`` both ways."""
    source = repr(value)
    interp = "{" + pad + source + pad + "}"
    try:
        nodes = parse_body(f"dense {interp} name='{{'  # a {{ comment")
    except KmagicSyntaxError as error:
        assume("nested brackets" not in error.message)  # the line's bracket limit, not the scanner
        raise
    stmt = nodes[0]
    assert isinstance(stmt, kast.Statement)
    found = stmt.args[0]
    assert isinstance(found, kast.Interp) and found.expr == source
    assert (found.span.column, found.span.width) == (7, len(interp))
    assert evaluate(found.expr, {}) == value
    assert magic_args.tokenize(f"net --input {interp} --quiet")[2].text == interp
