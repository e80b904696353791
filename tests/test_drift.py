"""Bugs that came from one fact written in several places (the checker's state, positions, ...).

Each test names the drift it guards against; they use the real parser and
checker (no Keras) unless they build a model.
"""

from __future__ import annotations

import pytest

import kmagic
from kmagic.dsl.check import parse, parse_block
from kmagic.errors import KmagicError, KmagicFileError, KmagicSyntaxError

# ----------------------------------------------------------------- C: blocks keep no state of the model


@pytest.mark.parametrize("word, line", [("compile sgd mse", "compile"), ("fit epochs=2", "fit"),
                                        ("output @h", "output")])
def test_top_level_words_inside_a_block_are_refused_by_name(word: str, line: str) -> None:
    text = f"block two:\n    dense 4 as h\n    {word}\ninput 4\ncompile adam mse\ntwo\n"
    with pytest.raises(KmagicSyntaxError) as info:
        parse(text)
    error = info.value
    assert error.message == f"expected '{line}' only at the top level of a model, received it inside block 'two'"
    assert (error.line, error.column) == (3, 5)
    assert "second" not in str(error)


@pytest.mark.parametrize("opener", ["repeat 2:", "residual:", "concat:\n    branch:"])
def test_top_level_words_inside_structure_blocks_are_refused(opener: str) -> None:
    indent = "        " if "branch" in opener else "    "
    text = f"input 4\n{opener}\n{indent}dense 4\n{indent}compile adam mse\n"
    with pytest.raises(KmagicSyntaxError, match="'compile' only at the top level") as info:
        parse(text)
    assert info.value.line == text.count("\n")


def test_kblock_refuses_compile_by_name() -> None:
    with pytest.raises(KmagicSyntaxError, match=r"'compile' only at the top level.*inside block 'down'"):
        parse_block("down(f)", "conv f 3 same\ncompile adam mse")


def test_block_definition_is_checked_against_a_fresh_graph() -> None:
    # Names used inside the definition check must not leak into the model, nor the model's into it.
    text = "block pair:\n    dense 4 as h\n    dense 4\n    add @h\ninput 4 as h\npair\npair\n"
    program = parse(text)
    assert [op.word for op in program.ops] == ["input", "dense", "dense", "add", "dense", "dense", "add"]
    assert program.names[0] == "h"
    assert len(program.inputs) == 1


# ----------------------------------------------------------------- D: positions only where they are real


def test_an_error_without_a_position_prints_none() -> None:
    error = KmagicFileError("refusing to load 'x.keras': it holds Python code")
    assert str(error) == "refusing to load 'x.keras': it holds Python code"
    assert "line" not in error.render() and "column" not in error.render()
    assert error._render_traceback_() == ["KmagicFileError: refusing to load 'x.keras': it holds Python code"]


def test_an_error_with_a_source_but_no_column_draws_no_caret() -> None:
    error = KmagicError("bad", line=2, source="dense 4")
    assert error.render() == "line 2: bad\n    dense 4"


def test_a_positioned_error_keeps_line_column_and_caret() -> None:
    error = KmagicError("bad", 2, 7, source="dense four", width=4)
    assert error.render() == "line 2, column 7: bad\n    dense four\n          ^^^^"
    noted = error.with_note("in block 'b'")
    assert (noted.line, noted.column) == (2, 7)


def test_a_file_error_prints_no_position(tmp_path) -> None:
    with pytest.raises(KmagicFileError) as info:
        kmagic.load(tmp_path / "missing.keras")
    assert str(info.value).startswith("expected an existing file, received ")
    assert info.value.line is None and info.value.column is None


# ----------------------------------------------------------------- A: one evaluator, three ways

NAMESPACE = {"scale": 3, "xs": [1, 2]}


@pytest.mark.parametrize(("expr", "units"), [
    ("(lambda: scale)()", 3),
    ("sum([x*scale for x in xs])", 9),
    ("max(tuple(x*scale for x in xs))", 6),
    ("{k: scale for k in xs}[2]", 3),
])
def test_interpolation_sees_the_namespace_as_globals_three_ways(shell, expr: str, units: int) -> None:
    # the Python API, a %%kmodel body in a real shell, and the %%kmodel line (as the input size)
    assert _units_three_ways(shell, f"{{{expr}}}", NAMESPACE) == [units] * 3


def _units_three_ways(shell, interp: str, namespace: dict, *, comment: str = "", extra: str = "") -> list[int]:
    """Units of ``dense {interp}`` built by the API and in a body, and the input size of ``--input {interp}``."""
    model = kmagic.build(f"input 2\ndense {interp}{comment}", namespace=dict(namespace))
    shell.user_ns.update(namespace)
    shell.run_cell(f"%%kmodel body_net --input 2 --quiet\ndense {interp}{extra}\n")
    shell.run_cell(f"%%kmodel line_net --input {interp} --quiet\ndense 1\n")
    return [model.layers[-1].units, shell.user_ns["body_net"].layers[-1].units,
            shell.user_ns["line_net"].input_shape[1]]


def _error_three_ways(shell, way: str, *, api: str, body: str, line: str) -> KmagicError:
    """The error of ``kmagic.build(api)``, of a cell body, or of ``--input LINE`` on the magic line."""
    with pytest.raises(KmagicError) as info:
        if way == "api":
            kmagic.build(api, namespace=dict(DEEP_NAMESPACE))
        elif way == "body":
            shell.run_cell(f"%%kmodel net --input 2 --quiet\n{body}\n")
        else:
            shell.run_cell(f"%%kmodel net --input {line} --quiet\ndense 1\n")
    return info.value


@pytest.mark.parametrize("way", ["api", "body", "line"])
def test_a_misspelt_name_gets_the_same_error_and_hint_three_ways(shell, way: str) -> None:
    shell.user_ns.update(NAMESPACE)
    error = _error_three_ways(shell, way, api="input 2\ndense {scael}", body="dense {scael}", line="{scael}")
    assert type(error).__name__ == "KmagicInterpolationError"
    assert error.message == ("expected {scael} to evaluate in the notebook's namespace, received NameError: "
                             "name 'scael' is not defined")
    assert error.hint == "Did you mean 'scale'?"
    assert error.width == len("{scael}")
    assert error.source.endswith("dense {scael}" if way != "line" else "--input {scael} --quiet")


#: Interpolations only one bracket scanner reads alike everywhere: deep nesting, braces in strings, dict literals.
DEEP = [
    ("{pick({'a': {'b': 1}})}", 1),
    ("{ {'a': {'b': {'c': 2}}}['a']['b']['c'] }", 2),
    ("{len('}'.join(['ab', 'c']))}", 4),
    ("{len('{' + \"}}\" + '#')}", 4),
    ("{[{'u': {'v': [scale]}}][0]['u']['v'][0]}", 3),
    ("{len({1, 2, (3, (4, (5,)))})}", 3),
]
DEEP_NAMESPACE = {**NAMESPACE, "pick": lambda d: d["a"]["b"]}


@pytest.mark.parametrize(("interp", "units"), DEEP)
def test_deep_interpolations_read_the_same_three_ways(shell, interp: str, units: int) -> None:
    found = _units_three_ways(shell, interp, DEEP_NAMESPACE, comment="  # a { in a comment", extra=" name='{'")
    assert found == [units] * 3
    assert shell.user_ns["body_net"].layers[-1].name == "{"


BAD_DEEP = "{pick({'a': {'b': }})}"


@pytest.mark.parametrize("way", ["api", "body", "line"])
def test_a_bad_expression_in_a_deep_interpolation_is_placed_the_same_three_ways(shell, way: str) -> None:
    shell.user_ns.update(DEEP_NAMESPACE)
    error = _error_three_ways(shell, way, api=f"input 2\n  # {{\nrepeat 1:\n    dense {BAD_DEEP}",
                              body=f"repeat 1:\n    dense {BAD_DEEP}", line=BAD_DEEP)
    assert type(error).__name__ == "KmagicInterpolationError"
    assert error.message.startswith(f"expected a Python expression in {BAD_DEEP}, received a syntax error (")
    assert error.width == len(BAD_DEEP)
    assert error.source[error.column - 1:error.column - 1 + error.width] == BAD_DEEP
    if way == "api":
        assert (error.line, error.column) == (4, 11)


@pytest.mark.parametrize("way", ["api", "body", "line"])
def test_an_unclosed_brace_is_refused_at_the_brace_three_ways(shell, way: str) -> None:
    unclosed = "{pick({'a': {'b': 1}})"
    error = _error_three_ways(shell, way, api=f"input 2\nrepeat 1:\n    dense {unclosed}  # {{",
                              body=f"dense {unclosed}", line=unclosed)
    assert error.message == "expected a closed {python expression}, received an unbalanced '{'"
    assert error.source[error.column - 1:].startswith(unclosed)
    if way == "api":
        assert type(error) is KmagicSyntaxError
        assert (error.line, error.column) == (3, 11)


def test_interpolation_leaves_a_plain_namespace_unchanged() -> None:
    namespace = dict(NAMESPACE)
    kmagic.build("input 2\ndense {scale}", namespace=namespace)
    assert namespace == NAMESPACE


# ----------------------------------------------------------------- B: one shape parser


SHAPES = [("28x28x1", (28, 28, 1)), ("28,28,1", (28, 28, 1)), ("(None, 16)", (None, 16)), ("?x16", (None, 16)),
          ("100", (100,)), ("(16,)", (16,))]


@pytest.mark.parametrize(("text", "shape"), SHAPES)
def test_shapes_parse_the_same_on_the_line_and_in_the_api(shell, text: str, shape: tuple) -> None:
    api = kmagic.build("dense 1", input_shape=text)
    shell.run_cell(f"%%kmodel net --input {text} --quiet\ndense 1\n")
    shell.user_ns["shape_text"] = text
    body = kmagic.build("input {shape_text}\ndense 1", namespace={"shape_text": text})
    assert api.input_shape == shell.user_ns["net"].input_shape == body.input_shape == (None, *shape)


def test_a_scalar_input_has_the_empty_shape_every_way(shell) -> None:
    body = kmagic.parse("input () dtype=string\nstring_lookup")
    assert body.ops[0].args[0].items == ()
    assert kmagic.parse("string_lookup", input_shape="()").ops[0].args[0].dims == ()
    assert kmagic.parse("string_lookup", input_shape=()).ops[0].args[0].dims == ()
    shell.run_cell("%%kmodel words --input () --quiet\nstring_lookup\n")
    assert shell.user_ns["words"].input_shape == (None,)


@pytest.mark.parametrize("bad", ["28xx", "abc", "0x3", "", "2.5"])
def test_bad_shapes_are_refused_the_same_way(shell, bad: str) -> None:
    with pytest.raises(KmagicError, match="expected a shape"):
        kmagic.parse("dense 1", input_shape=bad)
    with pytest.raises(KmagicError, match="expected a shape"):
        shell.run_cell(f"%%kmodel net --input '{bad}' --quiet\ndense 1\n")


# ----------------------------------------------------------------- D: option errors point at the word


@pytest.mark.parametrize(("line", "word"), [
    ("%kfit net X Y --epochs many", "many"),
    ("%kfit net X Y --epochs=many", "many"),
    ("%kfit net X Y --batch-size 0", "0"),
    ("%kfit net X Y --validation-split 2", "2"),
])
def test_option_errors_point_at_the_offending_word(shell, line: str, word: str) -> None:
    import numpy as np

    shell.run_cell("%%kmodel net --input 2 --quiet\ndense 1\ncompile sgd mse\n")
    shell.user_ns.update(X=np.zeros((4, 2), "float32"), Y=np.zeros((4, 1), "float32"))
    with pytest.raises(KmagicError) as info:
        shell.run_cell(line)
    error = info.value
    magic_line = line.removeprefix("%kfit ")
    assert error.column == magic_line.rindex(word) + 1
    assert error.source == magic_line
    assert str(error).startswith(f"line 1, column {error.column}: expected")


def test_choice_errors_point_at_the_word(shell) -> None:
    with pytest.raises(KmagicError) as info:
        shell.run_cell("%%kmodel net --input 2 --precision half\ndense 1\n")
    assert info.value.column == len("net --input 2 --precision ") + 1
    assert info.value.hint is None or "Did you mean" in info.value.hint
