"""Magic-line interpolation, parsing and argument conversion (kmagic.magic_args), without Keras."""

from __future__ import annotations

import pytest
from IPython.core.magic_arguments import argument, magic_arguments

from kmagic import magic_args
from kmagic.errors import KmagicInterpolationError, KmagicNameError, KmagicUsageError


@magic_arguments()
@argument("name")
@argument("x")
@argument("y", nargs="?")
@argument("--epochs")
@argument("--batch-size")
@argument("--no-dashboard", action="store_true")
@argument("--validation-data", nargs=2)
def fake_fit(line: str) -> None:
    """A magic with the shape of %kfit."""


def test_tokenize_keeps_quotes_and_braces_together() -> None:
    tokens = magic_args.tokenize("net { X[:, 0] } 'a b' {d['k y']}/net.h5")
    assert [t.text for t in tokens] == ["net", "{ X[:, 0] }", "a b", "{d['k y']}/net.h5"]
    assert [t.column for t in tokens] == [1, 5, 17, 23]
    assert tokens[2].quoted and not tokens[1].quoted


def test_brackets_group_words() -> None:
    tokens = magic_args.tokenize("net --input (None, 16) [a, b] x")
    assert [t.text for t in tokens] == ["net", "--input", "(None, 16)", "[a, b]", "x"]
    with pytest.raises(KmagicUsageError, match="unbalanced '\\('"):
        magic_args.tokenize("net (None, 16")


def test_whole_interpolation_passes_the_python_value_itself() -> None:
    data = object()
    namespace = {"data": data, "n": 3}
    args = magic_args.parse(fake_fit, "net {data} {[1, 2]} --epochs {n * 2}", namespace)
    assert args.x is data
    assert args.y == [1, 2]
    assert args.epochs == 6


def test_interpolation_inside_a_word_is_replaced_by_its_text() -> None:
    args = magic_args.parse(fake_fit, "net {folder}/x.npy {'{' + 'y'}", {"folder": "/tmp/run"})
    assert args.x == "/tmp/run/x.npy"
    assert args.y == "{y"


def test_quoted_braces_are_not_interpolated() -> None:
    args = magic_args.parse(fake_fit, "net '{not python}'", {})
    assert args.x == "{not python}"


def test_nargs_two_values_come_back_as_values() -> None:
    xv, yv = object(), object()
    args = magic_args.parse(fake_fit, "net X --validation-data {xv} {yv}", {"xv": xv, "yv": yv})
    assert args.validation_data[0] is xv and args.validation_data[1] is yv


def test_failing_expression_is_an_interpolation_error_with_hint() -> None:
    with pytest.raises(KmagicInterpolationError) as info:
        magic_args.parse(fake_fit, "net {totl + 1}", {"total": 1})
    error = info.value
    assert error.column == 5
    assert "NameError" in error.message
    assert error.hint == "Did you mean 'total'?"


def test_unbalanced_brace_is_a_usage_error() -> None:
    with pytest.raises(KmagicUsageError, match="unbalanced"):
        magic_args.parse(fake_fit, "net {X[0]", {})


def test_unknown_option_gets_did_you_mean_and_caret() -> None:
    with pytest.raises(KmagicUsageError) as info:
        magic_args.parse(fake_fit, "net X --batchsize 3", {})
    error = info.value
    assert error.hint == "Did you mean '--batch-size'?"
    assert error.column == 7 and error.width == len("--batchsize")
    assert "^^^^^^^^^^^" in error.render()


def test_missing_argument_is_a_usage_error_with_usage_hint() -> None:
    with pytest.raises(KmagicUsageError) as info:
        magic_args.parse(fake_fit, "net", {})
    assert "required" in info.value.message
    assert "Usage:" in info.value.hint


def test_extra_positional_is_reported() -> None:
    with pytest.raises(KmagicUsageError, match="expected no more arguments"):
        magic_args.parse(fake_fit, "net X Y Z", {})


@pytest.mark.parametrize(("text", "shape"), [
    ("28x28x1", (28, 28, 1)), ("?x16", (None, 16)), ("100", (100,)), ("(None, 16)", (None, 16)),
    ("?", (None,)), (8, (8,)), ((None, 4), (None, 4)),
])
def test_to_shape(text: object, shape: tuple) -> None:
    assert magic_args.to_shape(text) == shape


@pytest.mark.parametrize("bad", ["28xx", "abc", ""])
def test_to_shape_rejects_nonsense(bad: str) -> None:
    with pytest.raises(KmagicUsageError):
        magic_args.to_shape(bad)


def test_number_conversions() -> None:
    assert magic_args.to_int("3", "--epochs") == 3
    assert magic_args.to_int(4, "--epochs") == 4
    assert magic_args.to_int(None, "--epochs") is None
    assert magic_args.to_float("0.2", "--validation-split", low=0, high=1) == 0.2
    with pytest.raises(KmagicUsageError, match="integer"):
        magic_args.to_int("2.5", "--epochs")
    with pytest.raises(KmagicUsageError, match=">= 1"):
        magic_args.to_int("0", "--epochs")
    with pytest.raises(KmagicUsageError, match="between"):
        magic_args.to_float("1.5", "--validation-split", low=0, high=1)


def test_choice_conversion_has_hint() -> None:
    assert magic_args.to_choice("Float32", "--precision", ("auto", "float32")) == "float32"
    with pytest.raises(KmagicUsageError) as info:
        magic_args.to_choice("flaot32", "--precision", ("auto", "float32"))
    assert info.value.hint == "Did you mean 'float32'?"


def test_lookup_names_and_values() -> None:
    namespace = {"X_train": 1}
    assert magic_args.lookup("X_train", namespace, "training inputs") == 1
    value = [1]
    assert magic_args.lookup(value, namespace, "training inputs") is value
    with pytest.raises(KmagicNameError) as info:
        magic_args.lookup("X_trian", namespace, "training inputs")
    assert "'X_trian' is not defined" in info.value.message
    assert info.value.hint == "Did you mean 'X_train'?"
    with pytest.raises(KmagicNameError, match="variable name or"):
        magic_args.lookup("X[:10]", namespace, "training inputs")


def test_identifier() -> None:
    assert magic_args.identifier("net") == "net"
    with pytest.raises(KmagicUsageError, match="Python identifier"):
        magic_args.identifier("my-net")
