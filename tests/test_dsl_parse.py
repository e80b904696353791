"""The parser and checker on their own: statement and value forms, with no Keras import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import kmagic
from kmagic.dsl import ast
from kmagic.dsl.check import parse_block
from kmagic.dsl.parser import parse_body
from kmagic.errors import KmagicError, KmagicSyntaxError


def test_parse_imports_no_tensorflow_or_keras() -> None:
    code = textwrap.dedent("""
        import sys, kmagic
        program = kmagic.parse('''input 28x28x1
        conv 32 3 relu | maxpool 2
        residual:
            conv 32 3 same
        gap
        dense 10 softmax
        compile adam cce metrics=[accuracy]''')
        assert len(program.ops) == 7, len(program.ops)
        heavy = [m for m in ("tensorflow", "keras", "numpy") if m in sys.modules]
        print("HEAVY", heavy)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_import_kmagic_is_light() -> None:
    code = "import sys, kmagic; print(sorted(m for m in ('tensorflow','keras','numpy','matplotlib','ipywidgets') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def _statement(line: str) -> ast.Statement:
    nodes = parse_body(line)
    assert len(nodes) == 1 and isinstance(nodes[0], ast.Statement)
    return nodes[0]


@pytest.mark.parametrize(("text", "expected"), [
    ("64", 64), ("0.5", 0.5), (".5", 0.5), ("1e-3", 0.001), ("-2", -2), ("1/255", 1 / 255),
])
def test_numbers_and_fractions(text: str, expected: float) -> None:
    value = _statement(f"rescale {text}").args[0]
    assert isinstance(value, ast.Number) and value.value == pytest.approx(expected)
    assert type(value.value) is type(expected)


@pytest.mark.parametrize(("text", "dims"), [
    ("28x28x1", (28, 28, 1)), ("?x16", (None, 16)), ("?", (None,)), ("3x3", (3, 3)),
])
def test_shapes(text: str, dims: tuple) -> None:
    value = _statement(f"input {text}").args[0]
    assert isinstance(value, ast.Shape) and value.dims == dims


def test_value_forms() -> None:
    stmt = _statement("layer (None, 16) [accuracy, auc] 'causal' \"x\" true FALSE None relu "
                      "l2(1e-4) adam(lr=1e-3) dict(spam=bce, topic=scce) {cfg['units']} k=(3,)")
    head, *values = [stmt.head, *stmt.args]
    assert isinstance(head, ast.Word) and head.name == "layer"
    tup, lst, s1, s2, t, f, n, word, call1, call2, mapping, interp = values
    assert isinstance(tup, ast.TupleValue) and [type(i) for i in tup.items] == [ast.Const, ast.Number]
    assert isinstance(lst, ast.ListValue) and [i.name for i in lst.items] == ["accuracy", "auc"]
    assert (s1.value, s2.value) == ("causal", "x")
    assert (t.value, f.value, n.value) == (True, False, None)
    assert isinstance(word, ast.Word) and word.name == "relu"
    assert isinstance(call1, ast.Call) and call1.name == "l2" and call1.args[0].value == 1e-4
    assert call2.kwargs[0].key == "lr" and call2.kwargs[0].value.value == 1e-3
    assert mapping.name == "dict" and [k.key for k in mapping.kwargs] == ["spam", "topic"]
    assert isinstance(interp, ast.Interp) and interp.expr == "cfg['units']"
    assert stmt.kwargs[0].key == "k" and len(stmt.kwargs[0].value.items) == 1


def test_positions_are_one_based_and_account_for_indentation() -> None:
    nodes = parse_body("input 8\nrepeat 2:\n    dense 3 relu   # comment\n")
    block = nodes[1]
    assert isinstance(block, ast.Block)
    inner = block.body[0]
    assert (inner.span.line, inner.span.column) == (3, 5)
    assert inner.args[1].span.column == 13


def test_chains_comments_blank_lines_and_inline_blocks() -> None:
    program = kmagic.parse("""
# a comment line
input 8x8x3

conv 4 3 relu | maxpool 2    # trailing comment
repeat 2: conv 4 3 same relu | bn
""")
    words = [op.word for op in program.ops]
    assert words == ["input", "conv", "maxpool", "conv", "bn", "conv", "bn"]


def test_refs_cursor_alias_and_outputs() -> None:
    program = kmagic.parse("""input 100 as tokens
input 8 as meta
@tokens
embedding 1000 8 | lstm 4 as text
concat @text @meta
dense 1 sigmoid as out
dense 2 softmax @text as aux
output @out @aux""")
    ops = {op.name: op for op in program.ops if op.name}
    assert program.inputs == [ops["tokens"].out, ops["meta"].out]
    embedding = next(op for op in program.ops if op.word == "embedding")
    assert embedding.inputs == (ops["tokens"].out,)
    merge = next(op for op in program.ops if op.kind == "merge")
    assert merge.inputs == (ops["text"].out, ops["meta"].out)
    assert ops["aux"].inputs == (ops["text"].out,)
    assert program.outputs == [ops["out"].out, ops["aux"].out]


def test_bare_words_become_keywords_and_positionals_fill_the_alias_order() -> None:
    op = kmagic.parse("input 8x8x3\nconv 16 3 2 same relu nobias").ops[1]
    assert set(op.kwargs) == {"filters", "kernel_size", "strides", "padding", "activation", "use_bias"}
    assert op.kwargs["use_bias"].value is False and op.kwargs["padding"].value == "same"
    flip = kmagic.parse("input 8x8x3\nrandom_flip horizontal").ops[1]
    assert flip.kwargs["mode"].value == "horizontal"


def test_layer_words_are_case_insensitive() -> None:
    program = kmagic.parse("input 8\nDENSE 3\nDense 4\nbatchNORMALIZATION\nGaussianNoise 0.1")
    assert [op.word for op in program.ops[1:]] == ["dense", "dense", "batchnormalization", "gaussiannoise"]
    assert program.ops[-1].class_name == "GaussianNoise"


def test_blocks_expand_with_parameters_and_defaults() -> None:
    program = kmagic.parse("""block down(f, k=3):
    conv f k same relu
    maxpool 2
input 32x32x3
down 8
down 16 k=5""")
    convs = [op for op in program.ops if op.word == "conv"]
    assert [(c.kwargs["filters"].value, c.kwargs["kernel_size"].value) for c in convs] == [(8, 3), (16, 5)]
    assert "down" in program.blocks


def test_kblock_definitions_carry_into_later_programs() -> None:
    block = parse_block("down(f)", "conv f 3 same relu\nmaxpool 2")
    program = kmagic.parse("input 16x16x3\ndown 4\ndown 8", blocks={"down": block})
    assert [op.word for op in program.ops] == ["input", "conv", "maxpool", "conv", "maxpool"]


def test_input_from_option_when_the_body_has_none() -> None:
    program = kmagic.parse("dense 3", input_shape="28x28x1")
    assert program.ops[0].kind == "input" and program.ops[0].args[0].dims == (28, 28, 1)
    assert kmagic.parse("dense 3", input_shape=(4,)).ops[0].args[0].dims == (4,)


def test_names_inside_repeat_are_local_to_each_repetition() -> None:
    program = kmagic.parse("input 8\nrepeat 3:\n    dense 8 as h\n    dense 8 @h")
    names = [op.name for op in program.ops if op.name]
    assert names == ["h", "h_2", "h_3"]


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_huge_and_deep_inputs_raise_kmagic_errors_only() -> None:
    deep = "input 8\n" + "".join(" " * (4 * i) + "repeat 1:\n" for i in range(200)) + " " * 800 + "dense 1\n"
    with pytest.raises(KmagicSyntaxError, match="nested blocks"):
        kmagic.parse(deep)
    with pytest.raises(KmagicError, match="at most 20000 layers"):
        kmagic.parse("input 8\nrepeat 10000:\n    repeat 10000:\n        dense 1")
    with pytest.raises(KmagicError):
        kmagic.parse("input 8\ndense " + "(" * 5000 + ")" * 5000)
    program = kmagic.parse("input 8\n" + "dense 4\n" * 5000)
    assert len(program.ops) == 5001


def test_statements_that_reach_no_output_are_reported() -> None:
    program = kmagic.parse("input 8 as a\ndense 4 as h\ndropout 0.1\ndense 4 nobias\nadd @h @a\ndense 2")
    assert [(op.word, op.stmt.span.line) for op in program.unreached()] == [("dropout", 3), ("dense", 4)]
    assert kmagic.parse("input 8\ndense 4\ndense 2").unreached() == []


# ----------------------------------------------------------------- {expr}: found by kmagic.expr.bracket_end

NESTED = ["{f({'a': {'b': 1}})}", "{ {'a': {'b': {'c': 2}}}['a']['b']['c'] }", "{'}'.join(['a'])}",
          "{len('{' + \"}}\" + '#')}", "{ {1, (2, [3, {4: {5}}])} }", "{{'k': n}['k']}", "{}"]


@pytest.mark.parametrize("interp", NESTED)
def test_interpolations_nest_to_any_depth_and_keep_their_text(interp: str) -> None:
    stmt = _statement(f"dense {interp} 'x{{' units={interp}  # a {{ comment")
    value, string = stmt.args
    assert isinstance(value, ast.Interp) and value.expr == interp[1:-1].strip()
    assert (value.span.column, value.span.width) == (7, len(interp))
    assert isinstance(string, ast.String) and string.value == "x{"
    keyword = stmt.kwargs[0].value
    assert isinstance(keyword, ast.Interp) and keyword.expr == value.expr
    assert keyword.span.column == len(f"dense {interp} 'x{{' units=") + 1


def test_braces_in_strings_and_comments_start_no_interpolation() -> None:
    stmt = _statement("dense 4 name='{' dtype=\"}{\" kernel_initializer='\\'{'  # {never closed")
    assert [kwarg.value.value for kwarg in stmt.kwargs] == ["{", "}{", "'{"]
    assert not any(isinstance(kwarg.value, ast.Interp) for kwarg in stmt.kwargs)


def test_interpolations_on_several_lines_keep_their_positions() -> None:
    nodes = parse_body("input {shape}  # {\nrepeat {n}:\n    dense { {'a': {'b': 4}}['a']['b'] } relu\n"
                       "    dropout {rates[{'k': 0}['k']]}\n")
    block = nodes[1]
    assert isinstance(block, ast.Block)
    dense, dropout = block.body
    assert dense.args[0].expr == "{'a': {'b': 4}}['a']['b']"
    assert (dense.args[0].span.line, dense.args[0].span.column) == (3, 11)
    assert dense.args[1].name == "relu" and dense.args[1].span.column == 11 + len("{ {'a': {'b': 4}}['a']['b'] }") + 1
    assert dropout.args[0].expr == "rates[{'k': 0}['k']]"
    assert (dropout.args[0].span.line, dropout.args[0].span.column) == (4, 13)


@pytest.mark.parametrize(("body", "line", "column"), [
    ("input 2\nrepeat 2:\n    dense {f({'a': 1}\n", 3, 11),
    ("dense {n} {'}' ", 1, 11),
    ("dense {f(1}", 1, 7),
    ("dense \"{\" {x  # {", 1, 11),
    ("input 2\ndense 4 units={ {'a': {'b': 1} }", 2, 15),
])
def test_an_unclosed_brace_names_its_line_and_column(body: str, line: int, column: int) -> None:
    with pytest.raises(KmagicSyntaxError) as info:
        parse_body(body)
    error = info.value
    assert error.message == "expected a closed {python expression}, received an unbalanced '{'"
    assert (error.line, error.column) == (line, column)
    assert str(error).startswith(f"line {line}, column {column}: expected a closed {{python expression}}")


def test_an_unexpected_interpolation_is_named_as_written() -> None:
    with pytest.raises(KmagicSyntaxError) as info:
        parse_body("input 2\n  dense (1 { {'a': 2}['a'] })")
    error = info.value
    assert error.message == "expected ')' or ',', received '{ {'a': 2}['a'] }'"
    assert (error.line, error.column, error.width) == (2, 12, len("{ {'a': 2}['a'] }"))


@pytest.mark.parametrize(("body", "column"), [
    ("dense {len('#')} k=", 20), ("dense 'a#b' k=  # c", 15), ("dense 4 k= # {", 11), ("  dense {'#'} k=", 17),
])
def test_the_end_of_a_line_is_after_strings_and_interpolations_holding_a_hash(body: str, column: int) -> None:
    with pytest.raises(KmagicSyntaxError) as info:
        parse_body(body)
    assert info.value.message.endswith("received the end of the line")
    assert info.value.column == column
