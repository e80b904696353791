"""Property-based fuzzing: no input makes ``parse`` or ``build`` raise anything but a KmagicError.

Two sources of programs: generated ones (statements assembled from the
language's own words and value forms) and mutated ones (valid examples with
characters inserted, deleted or replaced). Together they run well over
2,000 programs in CI; every build that parses is attempted too.
"""

from __future__ import annotations

import contextlib
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kmagic
from kmagic import registry
from kmagic.errors import KmagicError

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
                     "'same'", '"x"', "true", "none", "{n}", "{1+}", "{n * 2}", "l2(1e-4)", "adam(lr=1e-3)",
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
