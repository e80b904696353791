"""%ksave, %kload, %kexport, %kmodels, %kdevice, %kactivations, %kweights through a real InteractiveShell."""

from __future__ import annotations

import runpy
import sys
import types

import numpy as np
import pytest
from IPython.utils.capture import capture_output

from kmagic.errors import KmagicError, KmagicNameError, KmagicUsageError

CNN = "%%kmodel net --quiet\ninput 8x8x1\nconv 4 3 relu\nmaxpool 2\nflatten\ndense 3 softmax\n"


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@pytest.mark.parametrize("extension", [".keras", ".h5", ".json"])
def test_ksave_then_kload_round_trip(shell, tmp_path, extension: str) -> None:
    shell.run_cell(CNN)
    shell.user_ns["folder"] = str(tmp_path)
    with capture_output() as saved:
        shell.run_line_magic("ksave", f"net {{folder}}/model{extension}")
    path = tmp_path / f"model{extension}"
    assert path.exists() and f"saved net to {path}" in saved.stdout
    with capture_output() as loaded:
        shell.run_line_magic("kload", f"again {path}")
    assert "loaded again" in loaded.stdout
    original, again = shell.user_ns["net"], shell.user_ns["again"]
    assert again.count_params() == original.count_params()
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    assert np.allclose(original.predict(x, verbose=0), again.predict(x, verbose=0), atol=1e-6)


def test_kload_summary_option_shows_the_card(shell, tmp_path) -> None:
    shell.run_cell(CNN)
    shell.run_line_magic("ksave", f"net {tmp_path}/m.keras")
    with capture_output() as captured:
        shell.run_line_magic("kload", f"m2 {tmp_path}/m.keras --summary")
    assert any("text/html" in output.data for output in captured.outputs)


def test_kload_errors(shell, tmp_path) -> None:
    with pytest.raises(KmagicError):
        shell.run_cell(f"%kload m {tmp_path}/missing.keras")
    with pytest.raises(KmagicUsageError, match="Python identifier"):
        shell.run_cell(f"%kload 2m {tmp_path}/x.keras")
    with pytest.raises(KmagicNameError):
        shell.run_cell(f"%ksave nothing {tmp_path}/x.keras")


def test_kexport_prints_runnable_code(shell) -> None:
    shell.run_cell(CNN)
    with capture_output() as captured:
        shell.run_line_magic("kexport", "net")
    source = captured.stdout
    assert "import keras" in source and "Conv2D" in source
    namespace: dict = {}
    exec(compile(source, "<export>", "exec"), namespace)
    assert namespace["model"].count_params() == shell.user_ns["net"].count_params()


def test_kexport_to_file_writes_a_runnable_module(shell, tmp_path) -> None:
    shell.run_cell("%%kblock twice(u)\ndense u relu\ndense u relu\n")
    shell.run_cell("%%kmodel mlp --input 5 --quiet\ntwice 4\ndense 2 softmax\ncompile adam scce\n")
    target = tmp_path / "mlp_model.py"
    with capture_output() as captured:
        shell.run_line_magic("kexport", f"mlp --to {target}")
    assert f"wrote {target}" in captured.stdout
    module = runpy.run_path(str(target))  # not as __main__: builds the model only
    assert module["model"].count_params() == shell.user_ns["mlp"].count_params()
    assert module["model"].compiled


def test_kexport_of_a_model_not_built_by_kmagic(shell) -> None:
    shell.run_cell("import keras\nplain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation='relu'), "
                   "keras.layers.Dense(1)])")
    with capture_output() as captured:
        shell.run_line_magic("kexport", "plain")
    namespace: dict = {}
    exec(compile(captured.stdout, "<export>", "exec"), namespace)
    assert namespace["model"].count_params() == shell.user_ns["plain"].count_params()


def test_kmodels_lists_models_and_blocks(shell) -> None:
    from kmagic.magics import list_models

    assert list_models({"x": 1}, {}) == "no models or blocks defined yet"
    shell.run_cell(CNN)
    shell.run_cell("%%kblock down(f, k=3)\nconv f k same relu\nmaxpool 2\n")
    shell.run_cell("import keras\nplain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])")
    with capture_output() as captured:
        shell.run_line_magic("kmodels", "")
    lines = captured.stdout.strip().splitlines()
    net_line = next(line for line in lines if line.startswith("net:"))
    assert f"{shell.user_ns['net'].count_params():,} parameters" in net_line
    assert "(None, 8, 8, 1) -> (None, 3)" in net_line and "(kmodel)" in net_line
    assert any(line.startswith("plain:") and "(keras)" in line for line in lines)
    assert "block down(f, k=3)" in lines
    with pytest.raises(KmagicUsageError):
        shell.run_cell("%kmodels extra")


def test_kdevice_reports_devices_and_the_choice(shell) -> None:
    with capture_output() as captured:
        shell.run_line_magic("kdevice", "")
    shown = captured.stdout + "".join(o.data.get("text/plain", "") for o in captured.outputs)
    assert "GPU" in shown
    assert "%%kmodel would use: device CPU" in captured.stdout
    shell.run_line_magic("config", "KMagic.precision = 'mixed_bfloat16'")
    with capture_output() as captured:
        shell.run_line_magic("kdevice", "")
    assert "precision mixed_bfloat16" in captured.stdout


@pytest.fixture
def fake_views(monkeypatch):
    """Stand-ins for the activation and weight views (another module's job), recording their calls."""
    calls: dict[str, tuple] = {}

    def show_activations(model, x, layer=None, sample=0):
        calls["activations"] = (model, x, layer, sample)
        return "activation view"

    def show_weights(model, x=None, y=None):
        calls["weights"] = (model, x, y)
        return None

    for name, function in (("activations", show_activations), ("weights", show_weights)):
        module = types.ModuleType(f"kmagic.widgets.{name}")
        setattr(module, function.__name__, function)
        monkeypatch.setitem(sys.modules, f"kmagic.widgets.{name}", module)
    return calls


def test_kactivations_passes_model_samples_and_options(shell, fake_views) -> None:
    shell.run_cell(CNN)
    shell.user_ns["X"] = np.zeros((4, 8, 8, 1), "float32")
    with capture_output() as captured:
        shell.run_line_magic("kactivations", "net {X[:2]} --layer conv2d --sample 1")
    model, x, layer, sample = fake_views["activations"]
    assert model is shell.user_ns["net"] and x.shape == (2, 8, 8, 1) and (layer, sample) == ("conv2d", 1)
    assert captured.outputs[0].data["text/plain"] == "'activation view'"
    with pytest.raises(KmagicUsageError, match="integer"):
        shell.run_cell("%kactivations net X --sample first")
    with pytest.raises(KmagicNameError):
        shell.run_cell("%kactivations net Xs")


def test_kweights_with_and_without_data(shell, fake_views) -> None:
    shell.run_cell(CNN)
    shell.user_ns.update(X=np.zeros((2, 8, 8, 1)), y=np.zeros(2))
    shell.run_line_magic("kweights", "net")
    assert fake_views["weights"] == (shell.user_ns["net"], None, None)
    shell.run_line_magic("kweights", "net X y")
    assert fake_views["weights"][1] is shell.user_ns["X"] and fake_views["weights"][2] is shell.user_ns["y"]


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kactivations_and_kweights_with_the_real_views(shell) -> None:
    pytest.importorskip("kmagic.widgets.activations")
    pytest.importorskip("kmagic.widgets.weights")
    shell.run_cell(CNN)
    shell.user_ns.update(X=np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype("float32"),
                         y=np.array([0, 1, 2]))
    with capture_output() as activations:
        shell.run_line_magic("kactivations", "net X --sample 2")
    with capture_output() as weights:
        shell.run_line_magic("kfit", "net X y --epochs 1 --no-dashboard")
        weights.outputs.clear()
        shell.run_line_magic("kweights", "net X y")
    for captured in (activations, weights):
        data = captured.outputs[-1].data
        assert "'net'" in data["text/plain"] and ({"text/html", "image/png"} & set(data))
