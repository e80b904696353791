"""Tab completion inside %%kmodel cells, through IPython's own completer (what every front end asks)."""

from __future__ import annotations

import pytest
from IPython.core.completer import provisionalcompleter

from kmagic.completion import complete


def completions(shell, cell: str, cursor: int | None = None) -> list[str]:
    """Complete like a front end: the whole cell and a cursor offset (default: the end)."""
    offset = len(cell) if cursor is None else cursor
    with provisionalcompleter():
        found = list(shell.Completer.completions(cell, offset))
    for item in found:  # each completion replaces the right span of text
        assert item.start <= offset == item.end
    return [cell[: item.start] + item.text for item in found]


def texts(shell, cell: str) -> list[str]:
    offset = len(cell)
    with provisionalcompleter():
        return [item.text for item in shell.Completer.completions(cell, offset)]


def test_statement_start_offers_layer_words(shell) -> None:
    found = texts(shell, "%%kmodel net\ninput 8\nde")
    assert "dense" in found and "deconv" in found
    assert "Dense" in found  # Keras class names too
    found = texts(shell, "%%kmodel net\ninput 8\nBatchNo")
    assert "BatchNormalization" in found


def test_after_a_layer_word_activation_padding_flags_and_keywords(shell) -> None:
    found = texts(shell, "%%kmodel net\ninput 8x8x1\nconv 32 3 ")
    for word in ("relu", "same", "valid", "nobias", "as", "kernel_size=", "strides=", "kernel_initializer="):
        assert word in found, word
    assert texts(shell, "%%kmodel net\ninput 8\ndense 3 sig") == ["sigmoid"]
    assert "kernel_regularizer=" in texts(shell, "%%kmodel net\ninput 8\ndense 3 kernel_re")
    assert "seq" in texts(shell, "%%kmodel net\ninput 5x3\nlstm 8 ")
    assert "mask" in texts(shell, "%%kmodel net\ninput ?\nembedding 100 8 ")


def test_value_after_keyword(shell) -> None:
    assert texts(shell, "%%kmodel net\ninput 8x8x1\nconv 4 3 padding=sa") == ["same"]
    assert "he_normal" in texts(shell, "%%kmodel net\ninput 8\ndense 3 kernel_initializer=he")
    assert "l2" in texts(shell, "%%kmodel net\ninput 8\ndense 3 kernel_regularizer=")


def test_compile_and_fit_words(shell) -> None:
    found = texts(shell, "%%kmodel net\ninput 8\ndense 1\ncompile ad")
    assert {"adam", "adamw", "adamax", "adagrad", "adadelta"} <= set(found)
    assert "auc" in texts(shell, "%%kmodel net\ninput 8\ndense 1\ncompile adam bce metrics=[accuracy, a")
    assert "early_stopping" in texts(shell, "%%kmodel net\ninput 8\ndense 1\nfit callbacks=[ea")
    assert "batch_size=" in texts(shell, "%%kmodel net\ninput 8\ndense 1\nfit ba")


def test_chains_blocks_and_references(shell) -> None:
    assert "maxpool" in texts(shell, "%%kmodel net\ninput 8x8x1\nconv 4 3 relu | max")
    assert "dense" in texts(shell, "%%kmodel net\ninput 8\nrepeat 2: den")
    assert "units=" in texts(shell, "%%kmodel net\ninput 8\nbi lstm 4 ")
    assert "merge=" in texts(shell, "%%kmodel net\ninput 8\nbi lstm 4 ")
    cell = "%%kmodel net\ninput 8 as tokens\ninput 3 as meta\nconcat @to"
    assert texts(shell, cell) == ["tokens"]
    assert completions(shell, cell) == ["%%kmodel net\ninput 8 as tokens\ninput 3 as meta\nconcat @tokens"]


def test_blocks_defined_earlier_complete_with_their_parameters(shell) -> None:
    shell.run_cell("%%kblock down(f, k=3)\nconv f k same relu\nmaxpool 2\n")
    assert "down" in texts(shell, "%%kmodel net\ninput 8x8x1\ndo")
    assert texts(shell, "%%kmodel net\ninput 8x8x1\ndown 4 ") == ["f=", "k="]


def test_cursor_in_the_middle_of_a_cell(shell) -> None:
    cell = "%%kmodel net\ninput 8\nden\ndense 1"
    cursor = cell.index("den\n") + 3
    assert "dense" in texts_at(shell, cell, cursor)


def texts_at(shell, cell: str, cursor: int) -> list[str]:
    with provisionalcompleter():
        return [item.text for item in shell.Completer.completions(cell, cursor)]


def test_magic_line_options_and_choices(shell) -> None:
    assert texts(shell, "%%kmodel net --pre") == ["--precision"]
    assert "mixed_bfloat16" in texts(shell, "%%kmodel net --precision mi")
    assert set(texts(shell, "%%kmodel net --strategy ")) >= {"auto", "mirrored", "tpu"}


def test_kblock_cells_complete_too(shell) -> None:
    assert "dense" in texts(shell, "%%kblock pair(u)\nden")


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_other_cells_are_left_to_ipython(shell) -> None:
    shell.user_ns["dense_value"] = 1
    assert "dense_value" in texts(shell, "dense_v")
    assert "dense" not in texts(shell, "%%time\nden")


def test_comments_get_no_completions(shell) -> None:
    assert texts(shell, "%%kmodel net\ninput 8 # den") == []


def test_completion_is_removed_on_unload(shell) -> None:
    shell.run_line_magic("unload_ext", "kmagic")
    assert "dense" not in texts(shell, "%%kmodel net\ninput 8\nden")


@pytest.mark.parametrize(("cell", "expected"), [
    ("%%kmodel n\nin", {"input"}),
    ("%%kmodel n\ninput 8\nres", {"residual", "resize", "Reshape", "reshape", "Rescaling", "rescale"}),
    ("%%kmodel n\ninput 8\nresidual ", {"project"}),
])
def test_complete_function_directly(cell: str, expected: set[str]) -> None:
    lines = cell.split("\n")
    fragment, found = complete(cell, len(lines) - 1, len(lines[-1]))
    assert expected <= {text for text, _ in found}
    assert all(text.lower().startswith(fragment.lower()) for text, _ in found)


def test_inside_interpolation_python_completion_runs(shell) -> None:
    shell.user_ns["n_classes"] = 10
    assert "n_classes" in texts(shell, "%%kmodel net\ninput 8\ndense {n_cl")
