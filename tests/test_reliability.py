"""Issue 6, in process: interrupts, diverging training, bad data, files, language safety, test mode.

Every case goes through a real IPython shell (the ``shell`` fixture) or a
real Keras fit on tiny data. The real-kernel cases (``interrupt_kernel()``,
nbconvert, nbval, a terminal IPython) are in ``test_reliability_kernel.py``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.utils.capture import capture_output

from kmagic.errors import KmagicDataError, KmagicError, KmagicFileError, KmagicNameError, KmagicSyntaxError

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def data(shell):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5).astype("int64")
    shell.user_ns.update(X=x, y=y, Y1=np.eye(3, dtype="float32")[y], np=np)
    return shell


def _weights(model: Any) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


# ---------------------------------------------------------------- bad data


MLP = "%%kmodel net --input 4 --quiet\ndense 8 relu\ndense 3 softmax\n"
TWO_INPUTS = "%%kmodel net --quiet\ninput 4 as a\ninput 2 as b\nconcat @a @b\ndense 3 softmax\n"
IMAGES = "%%kmodel net --quiet\ninput 6x6x1\nconv 2 3 relu\nflatten\ndense 3 softmax\n"
TOKENS = "%%kmodel net --quiet\ninput 5 dtype=int32\nembedding 20 4\nflatten\ndense 3 softmax\n"
TEXT = "%%kmodel net --quiet\ninput 1 dtype=string\ndense 3 softmax\n"

BAD_DATA = [
    # (model cell, setup code, %kfit arguments, words the message must contain)
    (TWO_INPUTS, "", "net X y", ["2 inputs ('a', 'b')", "received one array of shape (48, 4)"]),
    (TWO_INPUTS, "parts = [X, X[:, :2], X]", "net parts y", ["2 inputs", "received a list of 3 arrays"]),
    (TWO_INPUTS, "parts = {'a': X, 'c': X[:, :2]}", "net parts y", ["missing 'b'", "unknown 'c'"]),
    (MLP, "", "net {X[:, :3]} y", ["shape (n, 4)", "received an array of shape (48, 3)"]),
    (IMAGES, "imgs = np.zeros((8, 6, 6), 'float32')", "net imgs {y[:8]}",
     ["shape (n, 6, 6, 1)", "received an array of shape (8, 6, 6)", "X[..., None]"]),
    (MLP, "words = np.array([['a', 'b', 'c', 'd']] * 48)", "net words y", ["expected numbers", "received text"]),
    (MLP, "mixed = np.array([[1, 'a', None, 2.0]] * 48, dtype=object)", "net mixed y",
     ["expected numbers", "object array"]),
    (TOKENS, "ids = np.full((48, 5), 1.5)", "net ids y", ["whole numbers", "int32", "1.5"]),
    (TEXT, "", "net {X[:, :1]} y", ["expected text (strings)", "received numbers (float32)"]),
    (MLP, "", "net {X[:0]} {y[:0]}", ["at least one sample", "empty array of shape (0, 4)"]),
    (MLP, "holes = X.copy(); holes[5, 2] = np.nan", "net holes y", ["1 NaN value", "sample 5"]),
    (MLP, "", "net {np.full((48, 4), np.nan)} y", ["all NaN"]),
    (MLP, "", "net X {np.full(48, np.inf)}", ["all infinite", "training labels"]),
    (MLP, "", "net X {y[:40]}", ["as many labels as input samples (48), received 40"]),
    (MLP, "", "net X {np.array([str(v) for v in y])}", ["numeric labels", "text"]),
    (MLP, "", "net X {y + 2}", ["class numbers 0..2", "labels up to 4", "5 or more classes for 3 outputs"]),
    (MLP, "", "net X {y - 1}", ["class numbers from 0", "received -1"]),
    ("%%kmodel net --input 4 --quiet\ndense 3 softmax\ncompile adam cce\n", "", "net X y",
     ["one-hot labels of shape (n, 3)", "categorical_crossentropy", "integer labels of shape (48,)",
      "sparse_categorical_crossentropy (scce)"]),
    ("%%kmodel net --input 4 --quiet\ndense 3 softmax\ncompile adam scce\n", "", "net X Y1",
     ["integer class labels", "received one-hot labels of shape (48, 3)", "categorical_crossentropy (cce)"]),
    ("%%kmodel net --input 4 --quiet\ndense 3 softmax\ncompile adam cce\n", "", "net X {np.eye(5)[y]}",
     ["one-hot labels with 3 columns", "5 classes for 3 outputs"]),
    ("%%kmodel net --input 4 --quiet\ndense 1 sigmoid\n", "", "net X {y * 3}",
     ["between 0 and 1", "binary_crossentropy", "from 0 to 6"]),
    ("%%kmodel net --input 4 --quiet\ndense 1\n", "", "net X {np.zeros((48, 3))}",
     ["labels of shape (n, 1)", "received the training labels {np.zeros((48, 3))} of shape (48, 3)"]),
    (MLP, "", "net {X[:1]} {y[:1]} --validation-split 0.5", ["leaves no validation sample"]),
    (MLP, "", "net X y --validation-data {X[:, :2]} {y}", ["validation inputs", "shape (n, 4)", "(48, 2)"]),
    (MLP, "", "net X y --validation-data X {y + 7}", ["validation labels", "labels up to 9"]),
]


@pytest.mark.parametrize(("cell", "setup", "line", "needles"), BAD_DATA,
                         ids=[f"{i}-{case[2].split()[1][:12]}" for i, case in enumerate(BAD_DATA)])
def test_bad_data_is_refused_before_training_with_one_clear_message(data, cell, setup, line, needles) -> None:
    shell = data
    shell.run_cell(cell)
    if setup:
        shell.run_cell(setup)
    model = shell.user_ns["net"]
    before = _weights(model)
    compiled_before = model.compiled
    with capture_output() as captured, pytest.raises(KmagicDataError) as caught:
        shell.run_cell(f"%kfit {line} --epochs 1 --no-dashboard")
    text = caught.value.render()
    for needle in needles:
        assert needle in text, text
    assert "expected" in text and "received" in text
    # Nothing trained, nothing bound; the display is the message alone (no frames).
    assert _same(before, _weights(model)) and "net_history" not in shell.user_ns
    assert "epoch 1/1" not in captured.stdout
    assert caught.value._render_traceback_() == [f"KmagicDataError: {text}"]
    if not compiled_before:  # compiled with inferred defaults at most: never trained
        optimizer = getattr(model, "optimizer", None)
        assert optimizer is None or int(optimizer.iterations.numpy()) == 0


def test_names_not_in_the_namespace_are_named(data) -> None:
    shell = data
    shell.run_cell(MLP)
    with pytest.raises(KmagicNameError, match="validation data 'Xval' is not defined"):
        shell.run_cell("%kfit net X y --validation-data Xval y --no-dashboard")


def test_keras_errors_before_the_first_batch_become_a_data_error(data) -> None:
    """Streamed data is not read ahead: what Keras refuses still arrives as one KmagicDataError."""
    import tensorflow as tf

    shell = data
    shell.run_cell(MLP)
    shell.user_ns["ds"] = tf.data.Dataset.from_tensor_slices((np.zeros((8, 3), "float32"), np.zeros(8))).batch(4)
    with capture_output(), pytest.raises(KmagicDataError) as caught:
        shell.run_cell("%kfit net ds --epochs 1 --no-dashboard")
    text = caught.value.render()
    assert text.count("Keras could not train on this data") == 1 and "Keras said:" in text
    assert "Traceback" not in "".join(caught.value._render_traceback_())
    assert "net_history" not in shell.user_ns


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_good_data_of_every_kind_still_trains(data) -> None:
    shell = data
    shell.run_cell(TWO_INPUTS)
    shell.run_cell("parts = {'a': X, 'b': X[:, :2]}")
    with capture_output():
        shell.run_line_magic("kfit", "net parts y --epochs 1 --no-dashboard")
        shell.run_line_magic("kfit", "net {[X, X[:, :2]]} {y.reshape(-1, 1)} --epochs 1 --no-dashboard")
    shell.run_cell(TOKENS)
    with capture_output():
        shell.run_line_magic("kfit", "net {np.arange(240).reshape(48, 5) % 20} {y.astype('float32')} "
                                     "--epochs 1 --no-dashboard --validation-split 0.25")
    assert len(shell.user_ns["net_history"].history["val_loss"]) == 1


# ---------------------------------------------------------------- interrupts


class SigintAt(keras.callbacks.Callback):
    """Sends this process a SIGINT (what a kernel interrupt is) during a chosen batch."""

    def __init__(self, epoch: int, batch: int, times: int = 1) -> None:
        super().__init__()
        self.at, self.times, self.epoch = (epoch, batch), times, 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if (self.epoch, batch) == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_interrupt_during_kfit_stops_at_the_end_of_the_batch(data) -> None:
    from kmagic.buildinfo import info_of
    from kmagic.callbacks.interrupt import TrainingInterrupted

    shell = data
    shell.run_cell(MLP)
    model = shell.user_ns["net"]
    before = _weights(model)
    handler = signal.getsignal(signal.SIGINT)
    info_of(model).fit_defaults["callbacks"] = [SigintAt(epoch=1, batch=2)]
    with capture_output() as captured, pytest.raises(TrainingInterrupted) as caught:
        shell.run_cell("%kfit net X y --epochs 20 --batch-size 8")
    # The batch that was running ended; nothing after it ran.
    message = str(caught.value)
    assert "stopped at epoch 2/20, batch 3/6 (kernel interrupt)" in message, message
    assert "net_history holds every finished epoch" in message
    assert caught.value._render_traceback_() == [f"KeyboardInterrupt: {message}"]
    history = shell.user_ns["net_history"]
    assert len(history.history["loss"]) == 2  # epoch 1, and the interrupted epoch 2 as Keras records it
    assert int(model.optimizer.iterations.numpy()) == 6 + 3
    assert not _same(before, _weights(model)) and all(np.isfinite(w).all() for w in _weights(model))
    assert "stopped at epoch 2/20, batch 3/6: interrupted (kernel interrupt)" in captured.stdout  # the dashboard
    assert signal.getsignal(signal.SIGINT) is handler  # put back
    # The next cell runs normally.
    info_of(model).fit_defaults["callbacks"] = []
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 1 --no-dashboard")
    assert len(shell.user_ns["net_history"].history["loss"]) == 1


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_a_second_interrupt_stops_at_once_and_binds_this_fits_history(data) -> None:
    from kmagic.buildinfo import info_of

    shell = data
    shell.run_cell(MLP)
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 2 --no-dashboard")
    earlier = shell.user_ns["net_history"]
    info_of(shell.user_ns["net"]).fit_defaults["callbacks"] = [SigintAt(epoch=0, batch=1, times=2)]
    with capture_output(), pytest.raises(KeyboardInterrupt) as caught:
        shell.run_cell("%kfit net X y --epochs 5 --no-dashboard")
    assert type(caught.value) is KeyboardInterrupt
    history = shell.user_ns["net_history"]
    assert history is not earlier and history.history == {}  # no epoch finished in this fit


# ---------------------------------------------------------------- diverging training


DIVERGING = "%%kmodel net --input 4 --quiet\ndense 1\ncompile sgd(learning_rate=4.0) mse\n"


class WeightsAtBatchBegin(keras.callbacks.Callback):
    """Keeps the model's weights at the start of every batch, keyed (epoch 1-based, batches done)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[tuple[int, int], list[np.ndarray]] = {}
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self.seen[(self.epoch + 1, batch)] = _weights(self.model)


def _diverging_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 4)).astype("float32") * 3
    return x, x.sum(axis=1)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_nan_stop_restores_the_last_finite_snapshot() -> None:
    import kmagic
    from kmagic.widgets.dashboard import Dashboard

    model = kmagic.build("input 4\ndense 1\ncompile sgd(learning_rate=4.0) mse", seed=0)
    x, y = _diverging_data()
    spy = WeightsAtBatchBegin()
    dash = Dashboard(frontend="text", final_image=False, stop_on_nan=True, snapshot_interval=0)
    model.fit(x, y, epochs=30, batch_size=4, shuffle=False, verbose=0, callbacks=[spy, dash])
    h = dash.history
    assert h.nan_detected and h.stopped_early and "NaN" in h.stop_reason
    epoch, batch = h.nan_at
    assert len(h.epoch_x) == epoch < 30  # stopped in the epoch where it happened
    restored = h.restored_from
    assert restored is not None and restored <= (epoch, batch - 1)
    # The weights are exactly those at the start of the restored batch: finite, from whole steps.
    assert _same(_weights(model), spy.seen[restored])
    assert all(np.isfinite(w).all() for w in _weights(model))
    steps_before = (restored[0] - 1) * 8 + restored[1]
    assert int(model.optimizer.iterations.numpy()) == steps_before  # optimizer state restored too


def test_kfit_flags_nan_at_once_restores_and_the_setting_can_keep_going(data) -> None:
    shell = data
    x, y = _diverging_data()
    shell.user_ns.update(xd=x, yd=y)
    shell.run_cell(DIVERGING)
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net xd yd --epochs 30 --batch-size 4 --no-dashboard")
    lines = captured.stdout.splitlines()
    warning = next(i for i, line in enumerate(lines) if line.startswith("WARNING: the loss became NaN"))
    assert "training stops at the end of this batch (KMagic.stop_on_nan)" in lines[warning]
    nan_epoch = int(lines[warning].split("epoch ")[1].split(",")[0])
    # Flagged as soon as it appears: before that epoch's line (then the restore, then the epoch line).
    assert lines[warning + 2].split("/")[0].split() == ["epoch", str(nan_epoch)] and "restored" in lines[warning + 1]
    assert lines[warning + 2].endswith("WARNING: the loss became NaN or infinite")  # the one epoch-line printer
    assert any(line.startswith("kmagic: training stopped at epoch") for line in lines)
    model = shell.user_ns["net"]
    assert all(np.isfinite(w).all() for w in _weights(model))
    assert len(shell.user_ns["net_history"].history["loss"]) == nan_epoch
    # Off: flagged, not stopped, nothing restored.
    shell.run_line_magic("config", "KMagic.stop_on_nan = False")
    shell.run_cell(DIVERGING)
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net xd yd --epochs 4 --batch-size 4 --no-dashboard")
    lines = captured.stdout.splitlines()
    warning = next(i for i, line in enumerate(lines) if line.startswith("WARNING: the loss became NaN"))
    assert "training continues" in lines[warning]
    assert lines[warning + 1].startswith("epoch ")  # printed before the epoch's line
    assert not any("restored" in line for line in lines)
    assert len(shell.user_ns["net_history"].history["loss"]) == 4


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_dashboard_flags_nan_mid_epoch_in_the_widget(comms) -> None:
    import kmagic
    from kmagic.widgets.dashboard import Dashboard

    model = kmagic.build("input 4\ndense 1\ncompile sgd(learning_rate=4.0) mse", seed=0)
    x, y = _diverging_data()
    dash = Dashboard(refresh_interval=60, frontend="widget", final_image=False, stop_on_nan=False)
    model.fit(x, y, epochs=6, batch_size=4, shuffle=False, verbose=0, callbacks=[dash])
    sent = [message for comm in comms for message in comm.custom()]
    statuses = [m["status"] for m in sent if "status" in m]
    first = next(s for s in statuses if s["nan_detected"])
    epoch, batch = dash.history.nan_at
    # The warning went out during the epoch it happened in (refresh_interval=60 would otherwise wait).
    assert first["epoch"] == epoch and first["step"] < 8 and first["nan_at"] == [epoch, batch]
    assert len(dash.history.epoch_x) == 6


# ---------------------------------------------------------------- files


@pytest.fixture
def saved(shell, tmp_path):
    shell.run_cell("%%kmodel net --input 3 --quiet\ndense 2 softmax\n")
    shell.user_ns["folder"] = str(tmp_path)
    return shell, tmp_path


def _one_line(error: KmagicError) -> str:
    (line,) = error._render_traceback_()
    assert "Traceback" not in line and 'File "' not in line
    return line


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_kload_truncated_file_is_a_clear_error(saved, suffix: str) -> None:
    shell, folder = saved
    shell.run_line_magic("ksave", f"net {{folder}}/m{suffix}")
    path = folder / f"m{suffix}"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(KmagicFileError) as caught:
        shell.run_cell(f"%kload again {path}")
    assert str(path) in _one_line(caught.value) and "again" not in shell.user_ns


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("m.keras", "not a zip", "expected a .keras zip archive"),
    ("m.h5", "plain text", "expected an HDF5 model file"),
    ("m.json", "{broken", "not valid JSON"),
    ("m.pkl", "x", "expected a path ending in .keras, .h5 or .json"),
    ("m.weights.h5", "x", "received a weights file"),
])
def test_kload_wrong_format_is_a_clear_error(saved, name: str, content: str, needle: str) -> None:
    shell, folder = saved
    (folder / name).write_text(content)
    with pytest.raises(KmagicFileError) as caught:
        shell.run_cell(f"%kload again {folder / name}")
    assert needle in _one_line(caught.value)


def test_kload_refuses_lambda_and_unknown_custom_layers(saved) -> None:
    shell, folder = saved
    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs)).save(str(folder / "lam.keras"))

    @keras.saving.register_keras_serializable(package="kmagic_test_reliability")
    class Tripler(keras.layers.Layer):
        def call(self, x):
            return x * 3

    keras.Model(inputs, Tripler()(inputs)).save(str(folder / "custom.keras"))
    keras.saving.get_custom_objects().pop("kmagic_test_reliability>Tripler")
    with pytest.raises(KmagicFileError) as caught:
        shell.run_cell(f"%kload lam {folder / 'lam.keras'}")
    assert "refusing to load" in _one_line(caught.value) and "Lambda" in str(caught.value)
    with pytest.raises(KmagicFileError) as caught:
        shell.run_cell(f"%kload custom {folder / 'custom.keras'}")
    assert "could not load" in _one_line(caught.value)
    assert "lam" not in shell.user_ns and "custom" not in shell.user_ns


def test_ksave_errors_are_clear_and_leave_no_file(saved) -> None:
    shell, folder = saved
    (folder / "afile").write_text("a file, not a folder")
    with pytest.raises(KmagicFileError) as caught:
        shell.run_cell(f"%ksave net {folder}/afile/inside.keras")
    assert "afile" in _one_line(caught.value)
    with pytest.raises(KmagicFileError, match="expected a path ending in"):
        shell.run_cell(f"%ksave net {folder}/net.pickle")
    assert sorted(p.name for p in folder.iterdir()) == ["afile"]


# ---------------------------------------------------------------- language safety


def test_kmodel_refuses_python_outside_braces_and_runs_nothing(shell, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for line in (f"__import__('os').system('touch {marker}')", f"os.system('touch {marker}')",
                 f"dense 2 activation=__import__('os').system('touch {marker}')"):
        with pytest.raises(KmagicSyntaxError) as caught:
            shell.run_cell(f"%%kmodel net --input 4\ndense 4\n{line}\n")
        assert "kmodel is not Python" in str(caught.value) or "expected" in str(caught.value)
        assert not marker.exists() and "net" not in shell.user_ns
    assert "os" not in shell.user_ns


# ---------------------------------------------------------------- KMAGIC_TEST_MODE


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_test_mode_text_has_no_timings_and_the_image_is_repeatable(monkeypatch, capsys) -> None:
    import kmagic
    from kmagic.widgets.curve_image import training_png
    from kmagic.widgets.dashboard import Dashboard

    monkeypatch.setenv("KMAGIC_TEST_MODE", "1")
    model = kmagic.build("input 4\ndense 3 softmax\ncompile adam scce", seed=0)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    dash = Dashboard(frontend="text", final_image=False, batch_size=8)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[dash])
    out = capsys.readouterr().out
    assert "done" in out and "done in" not in out and not any(ch in out for ch in ("s -", "/s"))
    first = training_png(dash.history)
    dash.history.started_at -= 12.5  # another run, slower
    assert training_png(dash.history) == first
    monkeypatch.delenv("KMAGIC_TEST_MODE")
    assert training_png(dash.history) != first


def test_test_mode_fixes_the_initial_weights(shell, monkeypatch) -> None:
    monkeypatch.setenv("KMAGIC_TEST_MODE", "1")
    shell.run_cell("%%kmodel a --input 4 --quiet\ndense 3\n")
    shell.run_cell("import keras; keras.utils.set_random_seed(123)")
    shell.run_cell("%%kmodel b --input 4 --quiet\ndense 3\n")
    assert _same(_weights(shell.user_ns["a"]), _weights(shell.user_ns["b"]))


# ---------------------------------------------------------------- where we run


@pytest.mark.parametrize(("argv", "program"), [
    (["/usr/bin/python3", "-m", "pytest", "tests"], "pytest"),
    (["/venv/bin/pytest", "-q"], "pytest"),
    (["python", "-X", "dev", "-mpytest"], "pytest"),
    (["/venv/bin/python", "/venv/bin/jupyter-nbconvert", "--execute", "a.ipynb"], "jupyter-nbconvert"),
    (["/venv/bin/python", "/venv/bin/jupyter", "nbconvert", "--to", "html"], "jupyter-nbconvert"),
    (["/venv/bin/python", "/home/me/pytest-notes/.venv/bin/jupyter-lab", "--notebook-dir=/home/nbval"],
     "jupyter-lab"),
    (["/home/pytest/venv/bin/python", "-m", "jupyter_server"], "jupyter_server"),
    (["/usr/bin/papermill", "in.ipynb", "out.ipynb"], "papermill"),
    (["node", "/home/nbconvert/vscode/server.js"], "node"),
])
def test_the_parent_program_is_read_from_its_command_not_its_paths(argv: list[str], program: str) -> None:
    from kmagic.widgets.frontend import HEADLESS_PROGRAMS, program_of

    assert program_of(argv) == program
    headless = program in HEADLESS_PROGRAMS
    assert headless == (program in ("pytest", "jupyter-nbconvert", "papermill"))


def test_parent_detection_reads_the_real_process(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    from kmagic.widgets.frontend import parent_is_headless, parent_program

    folder = tmp_path / "pytest-nbval-notes"  # words that once fooled the substring check
    folder.mkdir()
    for name, headless in (("jupyter-lab", False), ("jupyter-nbconvert", True)):
        script = folder / name
        script.write_text("import time\ntime.sleep(30)\n")
        process = subprocess.Popen([sys.executable, str(script), "--notebook-dir", str(folder)])
        try:
            monkeypatch.setenv("JPY_PARENT_PID", str(process.pid))
            deadline = time.monotonic() + 10
            while name.encode() not in Path(f"/proc/{process.pid}/cmdline").read_bytes():  # exec'd yet?
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert parent_program() == name and parent_is_headless() is headless
        finally:
            process.kill()
            process.wait()


def test_card_is_static_without_a_widget_front_end(shell, monkeypatch) -> None:
    from kmagic.widgets.model_card import ModelCard

    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 2\n")
    monkeypatch.delenv("KMAGIC_FRONTEND", raising=False)
    bundle = ModelCard(shell.user_ns["net"])._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}  # no kernel here: no widget
    monkeypatch.setenv("KMAGIC_FRONTEND", "widget")
    assert "application/vnd.jupyter.widget-view+json" in ModelCard(shell.user_ns["net"])._repr_mimebundle_()


# ---------------------------------------------------------------- multiworker hooks


class FakeSetup:
    """A device setup seen from a worker that is not the chief."""

    is_chief = False

    def __init__(self) -> None:
        self.adapted: list[list[Any]] = []

    def adapt_callbacks(self, callbacks: list[Any]) -> list[Any]:
        self.adapted.append(list(callbacks))
        return list(callbacks)

    def scope(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_adapts_callbacks_and_shows_nothing_off_the_chief(data) -> None:
    from kmagic.buildinfo import info_of
    from kmagic.callbacks.interrupt import GracefulInterrupt
    from kmagic.widgets.dashboard import Dashboard

    shell = data
    shell.run_cell(MLP)
    setup = info_of(shell.user_ns["net"]).setup = FakeSetup()
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --epochs 2")
    (callbacks,) = setup.adapted
    kinds = {type(cb) for cb in callbacks}
    assert Dashboard in kinds and GracefulInterrupt in kinds
    dashboard = next(cb for cb in callbacks if isinstance(cb, Dashboard))
    assert dashboard.show is False and dashboard.history.epoch_x == [1, 2]
    assert "Training net" not in captured.stdout and captured.outputs == []
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --epochs 1 --no-dashboard")
    assert "epoch 1/1" not in captured.stdout


def test_weight_bytes_of_tf_keras_models() -> None:
    tf_keras = pytest.importorskip("tf_keras")
    from kmagic.model_stats import _weight_bytes

    model = tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Dense(2)])
    assert _weight_bytes(model) == (3 * 2 + 2) * 4


def test_json_of_history_status_is_plain() -> None:
    from kmagic.callbacks.history import TrainingHistory

    h = TrainingHistory()
    h.start(3, 4)
    h.begin_epoch(0, 0.1)
    h.add_batch(0, 0, {"loss": float("nan")})
    h.finish("Stop button")
    status = h.status()
    assert status["stopped_at"] == [1, 1] and status["nan_at"] == [1, 1]
    json.dumps(status)  # what the widget receives


def test_checks_leave_custom_losses_and_graphless_models_to_keras() -> None:
    import kmagic
    from kmagic import datacheck

    def my_sparse_loss(y_true, y_pred):
        return keras.ops.mean(y_pred) * 0

    model = kmagic.build("input 4\ndense 10 softmax")
    model.compile("adam", my_sparse_loss)
    datacheck.check_fit_data(model, np.zeros((4, 4)), np.zeros(4))  # (n,) labels for (n, 10): its business

    class Subclassed(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    sub = Subclassed()
    sub.compile("adam", "mse")
    datacheck.check_fit_data(sub, np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(KmagicDataError, match="finite numbers"):  # what needs no graph is still checked
        datacheck.check_fit_data(sub, np.zeros((4, 3)), np.full((4, 2), [np.nan, 1.0]))
