"""Loading, %%kmodel, %%kblock, %ksummary, settings and errors, through a real InteractiveShell."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from kmagic import magics
from kmagic.errors import (
    KmagicError,
    KmagicInterpolationError,
    KmagicNameError,
    KmagicSyntaxError,
    KmagicUsageError,
)

REPO = Path(__file__).resolve().parents[1]

MLP = "%%kmodel net --input 8\ndense 16 relu\ndense 3 softmax\n"


def bundles(captured) -> list[dict]:
    return [output.data for output in captured.outputs]


# ---------------------------------------------------------------- loading

def test_load_registers_every_magic(shell) -> None:
    manager = shell.magics_manager
    for name in magics.all_line_magics():
        assert name in manager.magics["line"], name
    for name in magics.CELL_MAGICS:
        assert name in manager.magics["cell"], name
    assert set(magics.all_line_magics()) == {"kfit", "kcompile", "ksummary", "kactivations", "kweights", "ksave",
                                             "kload", "kexport", "kmodels", "kdevice", "kreport", "kdiff", "kruns",
                                             "kcompare", "klr"}


def test_load_imports_nothing_heavy_in_a_fresh_interpreter() -> None:
    code = textwrap.dedent("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "kmagic")
        assert "kfit" in ip.magics_manager.magics["line"]
        heavy = [m for m in ("tensorflow", "keras", "numpy", "matplotlib", "ipywidgets", "lark") if m in sys.modules]
        print(heavy)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_unload_and_reload(shell) -> None:
    shell.run_line_magic("unload_ext", "kmagic")
    assert "kfit" not in shell.magics_manager.magics["line"]
    assert "kmodel" not in shell.magics_manager.magics["cell"]
    assert not any(type(c).__name__ == "KMagic" for c in shell.configurables)
    assert not any(getattr(m, "matcher_identifier", "") == "kmagic.kmodel_completer"
                   for m in shell.Completer.custom_matchers)
    shell.run_line_magic("load_ext", "kmagic")
    shell.run_line_magic("reload_ext", "kmagic")
    assert "kfit" in shell.magics_manager.magics["line"]
    assert sum(type(c).__name__ == "KMagic" for c in shell.configurables) == 1
    assert sum(getattr(m, "matcher_identifier", "") == "kmagic.kmodel_completer"
               for m in shell.Completer.custom_matchers) == 1
    shell.run_cell(MLP.replace("--input 8", "--input 8 --quiet"))
    assert shell.user_ns["net"].count_params() == 8 * 16 + 16 + 16 * 3 + 3


def test_help_is_generated_from_arguments(shell) -> None:
    for name in magics.all_line_magics():
        assert f"  %{name}" in shell.object_inspect_text(f"%{name}"), name  # what %name? shows
    for name in magics.CELL_MAGICS:
        assert f"  %%{name} " in shell.object_inspect_text(f"%%{name}"), name
    doc = shell.object_inspect_text("%kfit")
    for option in ("--epochs N", "--batch-size N", "--validation-split F", "--validation-data XV [YV ...]",
                   "--no-dashboard", "--steps-per-execution N", "NAME X [Y]", "training labels",
                   "--callbacks {list}", "--class-weight {dict}", "--sample-weight W", "--steps-per-epoch N",
                   "--validation-steps N", "--initial-epoch N", "--shuffle", "--no-shuffle"):
        assert option in doc, option


# ---------------------------------------------------------------- %%kmodel

def test_kmodel_binds_model_and_shows_card(shell) -> None:
    with capture_output() as captured:
        shell.run_cell(MLP)
    model = shell.user_ns["net"]
    assert model.name == "net"
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense", "Dense"]
    (bundle,) = bundles(captured)
    assert {"text/html", "text/plain"} <= set(bundle)
    assert "application/vnd.jupyter.widget-view+json" not in bundle  # no kernel here: widgets=auto
    assert "dense 16 relu" in bundle["text/plain"]
    assert "<svg" in bundle["text/html"] and "dense 3 softmax" in bundle["text/html"]


def test_kmodel_quiet_shows_nothing(shell) -> None:
    with capture_output() as captured:
        shell.run_cell(MLP.replace("--input 8", "--input 8 --quiet"))
    assert captured.outputs == [] and captured.stdout == ""
    assert "net" in shell.user_ns


def test_kmodel_plot_shows_the_diagram_large(shell) -> None:
    with capture_output() as small:
        shell.run_cell(MLP)
    with capture_output() as large:
        shell.run_cell(MLP.replace("--input 8", "--input 8 --plot"))
    small_html, large_html = bundles(small)[0]["text/html"], bundles(large)[0]["text/html"]

    def svg_width(html: str) -> float:
        return float(html.split("<svg", 1)[1].split('width="', 1)[1].split('"', 1)[0])

    assert svg_width(large_html) > svg_width(small_html)
    assert large_html.index("<svg") < large_html.index("<table")  # diagram first, at full size


def test_kmodel_widget_setting_on(shell) -> None:
    shell.run_line_magic("config", "KMagic.widgets = 'on'")
    with capture_output() as captured:
        shell.run_cell(MLP)
    bundle = bundles(captured)[0]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "text/html" in bundle and "text/plain" in bundle


def test_kmodel_options_reach_the_build(shell) -> None:
    shell.run_cell("%%kmodel a --input 4 --seed 3 --precision mixed_bfloat16 --jit off --strategy none --quiet\n"
                   "dense 2\n")
    shell.run_cell("%%kmodel b --input 4 --seed 3 --quiet\ndense 2\n")
    from kmagic.buildinfo import info_of

    a, b = shell.user_ns["a"], shell.user_ns["b"]
    assert info_of(a).device["precision"] == "mixed_bfloat16"
    assert info_of(a).device["strategy"] == "none"
    assert a.layers[-1].dtype_policy.name == "float32"  # output layer kept float32
    assert (a.layers[-1].kernel.numpy() == b.layers[-1].kernel.numpy()).all()  # same seed


def test_kmodel_config_defaults_apply(shell) -> None:
    shell.run_line_magic("config", "KMagic.precision = 'mixed_bfloat16'")
    shell.run_cell("%%kmodel c --input 4 --quiet\ndense 2\n")
    from kmagic.buildinfo import info_of

    assert info_of(shell.user_ns["c"]).device["precision"] == "mixed_bfloat16"


def test_kmodel_interpolation_on_line_and_body_is_one_syntax(shell) -> None:
    shell.user_ns.update(shape=(6,), units=5, act="tanh", tag="x")
    shell.run_cell("%%kmodel m_{tag} --input {shape} --quiet\ndense {units} activation={act}\n")
    model = shell.user_ns["m_x"]
    assert model.input_shape == (None, 6)
    assert model.layers[-1].units == 5
    assert model.layers[-1].activation.__name__ == "tanh"


def test_kmodel_body_error_is_body_relative(shell) -> None:
    with pytest.raises(KmagicNameError) as info:
        shell.run_cell("%%kmodel net --input 8\ndense 16 relu\ndens 3 softmax\n")
    error = info.value
    assert (error.line, error.column) == (2, 1)
    assert error.hint.lower() == "did you mean 'dense'?"
    assert "net" not in shell.user_ns


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kmodel_syntax_error_imports_no_keras_first(shell) -> None:
    code = textwrap.dedent("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "kmagic")
        result = ip.run_cell("%%kmodel net --input 8\\ndense 16 (\\n")
        print(type(result.error_in_exec).__name__, "keras" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.split()[-2:] == ["KmagicSyntaxError", "False"], result.stderr


@pytest.mark.parametrize(("line", "error", "text"), [
    ("%%kmodel", KmagicUsageError, "required"),
    ("%%kmodel my-net", KmagicUsageError, "Python identifier"),
    ("%%kmodel net --inptu 8", KmagicUsageError, "Did you mean '--input'?"),
    ("%%kmodel net --input 8 --precision fp8", KmagicUsageError, "expected --precision to be one of"),
    ("%%kmodel net --input 8x", KmagicUsageError, "expected a shape"),
    ("%%kmodel net --input {nope}", KmagicInterpolationError, "NameError"),
    ("%%kmodel net --input 8 --seed -1", KmagicUsageError, ">= 0"),
])
def test_kmodel_line_errors(shell, line: str, error: type, text: str) -> None:
    with pytest.raises(error) as info:
        shell.run_cell(f"{line}\ndense 2\n")
    assert text in info.value.render()


def test_errors_render_without_frames(shell) -> None:
    with pytest.raises(KmagicUsageError) as info:
        shell.run_cell("%kfit net X Y --epoch-count 3")
    rendered = info.value._render_traceback_()
    assert rendered[0].startswith("KmagicUsageError: line 1, column")
    assert not any("File " in row or "Traceback" in row for row in rendered)


def test_showtraceback_in_the_shell_is_short(shell, capsys) -> None:
    result = shell.__class__.run_cell(shell, "%%kmodel net --input 8\ndense 16 (\n")  # the real run_cell
    assert isinstance(result.error_in_exec, KmagicSyntaxError)
    shown = capsys.readouterr().out
    assert "KmagicSyntaxError: line 1" in shown and "^" in shown
    assert "Traceback" not in shown and "magics.py" not in shown


# ---------------------------------------------------------------- blocks

def test_kblock_defines_block_for_later_cells(shell) -> None:
    shell.run_cell("%%kblock down(f, k=3)\nconv f k same relu\nmaxpool 2\n")
    shell.run_cell("%%kmodel cnn --input 16x16x1 --quiet\ndown 4\ndown 8 k=5\nflatten\ndense 2\n")
    model = shell.user_ns["cnn"]
    kernels = [layer.kernel_size for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert kernels == [(3, 3), (5, 5)]


def test_block_from_a_kmodel_cell_stays_usable(shell) -> None:
    shell.run_cell("%%kmodel first --input 4 --quiet\nblock twice(u):\n    dense u relu\n    dense u relu\ntwice 3\n")
    shell.run_cell("%%kmodel second --input 4 --quiet\ntwice 7\n")
    assert shell.user_ns["second"].layers[-1].units == 7
    with capture_output() as captured:
        shell.run_line_magic("kmodels", "")
    assert "block twice(u)" in captured.stdout


def test_blocks_survive_reload_ext(shell) -> None:
    shell.run_cell("%%kblock pair(u=2)\ndense u\ndense u\n")
    shell.run_line_magic("reload_ext", "kmagic")
    shell.run_cell("%%kmodel p --input 3 --quiet\npair\n")
    assert shell.user_ns["p"].layers[-1].units == 2


def test_kblock_errors(shell) -> None:
    with pytest.raises(KmagicUsageError):
        shell.run_cell("%%kblock\ndense 2\n")
    with pytest.raises(KmagicError):
        shell.run_cell("%%kblock bad(\ndense 2\n")
    with pytest.raises(KmagicNameError):
        shell.run_cell("%%kblock b2(u)\ndens u\n")


# ---------------------------------------------------------------- %ksummary

def test_ksummary_shows_the_card_again(shell) -> None:
    shell.run_cell(MLP.replace("--input 8", "--input 8 --quiet"))
    with capture_output() as captured:
        shell.run_line_magic("ksummary", "net --plot")
    bundle = bundles(captured)[0]
    assert "dense_1" in bundle["text/plain"] or "Dense" in bundle["text/plain"]
    assert "<svg" in bundle["text/html"]


def test_ksummary_of_a_plain_keras_model_and_value(shell) -> None:
    shell.run_cell("import keras\nplain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])")
    with capture_output() as captured:
        shell.run_line_magic("ksummary", "{plain}")
    assert "parameters: 8" in bundles(captured)[0]["text/plain"]


def test_name_errors_are_clear(shell) -> None:
    shell.run_cell(MLP.replace("--input 8", "--input 8 --quiet"))
    with pytest.raises(KmagicNameError) as info:
        shell.run_cell("%ksummary nett")
    assert "model 'nett' is not defined" in info.value.message and info.value.hint == "Did you mean 'net'?"
    shell.user_ns["number"] = 3
    with pytest.raises(KmagicError, match="expected a Keras model, received int"):
        shell.run_cell("%ksummary number")


def test_kmodel_input_in_tuple_notation(shell) -> None:
    shell.run_cell("%%kmodel seq --input (None, 16) --quiet\nlstm 4\n")
    assert shell.user_ns["seq"].input_shape == (None, None, 16)
