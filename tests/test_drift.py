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
