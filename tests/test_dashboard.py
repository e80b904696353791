"""The training dashboard after real (tiny) fits, without a browser: history, widget messages, text."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import RecordingComm

from kmagic._keras import keras
from kmagic.widgets.dashboard import Dashboard, detect_frontend
from tests.png_check import assert_drawn_png


def _classifier(seed: int = 0) -> Any:
    k = keras()
    k.utils.set_random_seed(seed)
    model = k.Sequential([k.Input((6,)), k.layers.Dense(8, activation="relu"), k.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 1).astype("int64")
    return x, y


def _click(dashboard: Dashboard, content: dict[str, Any]) -> None:
    """What the front end's ``model.send(content)`` arrives as, handled by the widget."""
    dashboard.widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_history_after_fit_matches_keras() -> None:
    model, (x, y) = _classifier(), _data()
    dash = Dashboard(frontend="text", final_image=False, batch_size=16)
    fit = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[dash])
    h = dash.history
    steps = math.ceil(72 / 16)
    assert h.steps_per_epoch == steps and len(h.batch_x) == 3 * steps
    assert h.batch_x[0] == pytest.approx(1 / steps) and h.batch_x[-1] == pytest.approx(3.0)
    assert set(h.batch) == {"loss", "accuracy"}
    assert h.epoch_x == [1, 2, 3]
    for name, values in fit.history.items():
        assert h.epoch[name] == pytest.approx(values)
    # The last batch of an epoch reports the epoch's running mean, which is the epoch value.
    assert h.batch["loss"][steps - 1] == pytest.approx(h.epoch["loss"][0], rel=1e-5)
    assert h.monitor == "val_loss"
    assert h.best_epoch == 1 + int(np.argmin(fit.history["val_loss"]))
    assert h.best_value == pytest.approx(min(fit.history["val_loss"]))
    assert not h.nan_detected and not h.stopped_early and h.finished
    assert h.metric_names() == ["loss", "accuracy"]
    status = h.status()
    assert status["samples_per_s"] > 0 and status["progress"] == 1.0 and status["eta"] is None


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_best_epoch_maximises_accuracy_when_monitored() -> None:
    model, (x, y) = _classifier(), _data()
    dash = Dashboard(frontend="text", final_image=False, monitor="val_accuracy")
    fit = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[dash])
    assert dash.history.best_epoch == 1 + int(np.argmax(fit.history["val_accuracy"]))


def test_nan_is_flagged_and_can_stop_training() -> None:
    k = keras()
    model = k.Sequential([k.Input((6,)), k.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, _ = _data(64)
    y = np.full((64,), np.nan, dtype="float32")
    dash = Dashboard(frontend="text", final_image=False, stop_on_nan=True)
    model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[dash])
    h = dash.history
    assert h.nan_detected and h.nan_at == (1, 1)
    assert h.stopped_early and "NaN" in h.stop_reason
    assert len(h.epoch_x) == 1  # stopped in the first epoch
    assert len(h.batch_x) <= 2


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_widget_receives_only_new_points(comms: list[RecordingComm]) -> None:
    model, (x, y) = _classifier(), _data()
    dash = Dashboard(refresh_interval=0, frontend="widget", final_image=False)
    model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0, callbacks=[dash])
    messages = dash.widget.comm.custom()
    updates = [m for m in messages if m["type"] == "update"]
    assert len(updates) >= 10  # refresh_interval=0: about one per batch
    # Offsets are contiguous and every point travels exactly once.
    expected_start = 0
    xs: list[float] = []
    losses: list[float] = []
    for message in updates:
        part = message["points"]["batch"]
        assert part["start"] == expected_start
        expected_start += len(part["x"])
        xs += part["x"]
        losses += part["y"].get("loss", [])
    h = dash.history
    assert xs == pytest.approx(h.batch_x) and losses == pytest.approx(h.batch["loss"])
    epoch_points = sum(len(m["points"]["epoch"]["x"]) for m in updates)
    assert epoch_points == 2
    assert dash.messages_sent == len(messages) and dash.bytes_sent > 0
    # The synced widget state says training finished; a new view asks for everything.
    assert dash.widget.status["finished"] is True and dash.widget.metrics == ["loss", "accuracy"]
    _click(dash, {"type": "sync"})
    reset = dash.widget.comm.custom()[-1]
    assert reset["type"] == "reset" and reset["points"]["batch"]["start"] == 0
    assert reset["points"]["batch"]["x"] == pytest.approx(h.batch_x)
    assert reset["points"]["epoch"]["y"]["val_loss"] == pytest.approx(h.epoch["val_loss"])


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_refresh_is_throttled_by_wall_time(comms: list[RecordingComm]) -> None:
    model, (x, y) = _classifier(), _data()
    dash = Dashboard(refresh_interval=60, frontend="widget", final_image=False)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[dash])
    updates = [m for m in dash.widget.comm.custom() if m["type"] == "update"]
    # One refresh at the start, then only the epoch ends and the end of training.
    assert len(updates) == 1 + 3 + 1
    assert sum(len(m["points"]["batch"]["x"]) for m in updates) == len(dash.history.batch_x) == 36


class ClickStopAt(keras().callbacks.Callback):
    """Plays the front end: sends the Stop button's message during a chosen batch."""

    def __init__(self, dashboard: Dashboard, batch: int) -> None:
        super().__init__()
        self.dashboard, self.batch = dashboard, batch

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if batch == self.batch:
            _click(self.dashboard, {"type": "stop"})


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_stop_message_ends_training_keeping_weights_and_history(comms: list[RecordingComm]) -> None:
    model, (x, y) = _classifier(), _data()
    before = [w.copy() for w in model.get_weights()]
    dash = Dashboard(refresh_interval=0, frontend="widget", final_image=False)
    fit = model.fit(x, y, epochs=20, batch_size=8, verbose=0, callbacks=[dash, ClickStopAt(dash, 3)])
    h = dash.history
    assert h.stopped_early and h.stop_reason == "Stop button"
    assert len(h.epoch_x) == 1 and len(h.batch_x) == 4  # batch 3 was running: it ends, nothing after
    assert len(fit.history["loss"]) == 1
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    # Training is over: the button's request is cleared (the view hides the button), the status says where.
    assert dash.widget.stop_requested is False
    assert dash.widget.status["stop_reason"] == "Stop button"
    assert dash.widget.status["stopped_at"] == [1, 4] and h.where_stopped() == "epoch 1/20, batch 4/12"


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_text_mode_prints_epoch_lines_and_makes_a_final_image(capsys: pytest.CaptureFixture[str]) -> None:
    model, (x, y) = _classifier(), _data()
    dash = Dashboard(frontend="text", validation_data=(x[:40], y[:40]))
    model.fit(x, y, epochs=2, validation_data=(x[:40], y[:40]), verbose=0, callbacks=[dash])
    out = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in out if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and epoch_lines[0].startswith("epoch 1/2")
    assert "loss" in epoch_lines[0] and "val_accuracy" in epoch_lines[0]
    assert out[-1].startswith("done in")
    assert_drawn_png(dash.final_png)
    matrix, labels = dash.confusion
    assert matrix.sum() == 40 and labels == ["0", "1", "2"]


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_no_confusion_matrix_for_regression() -> None:
    k = keras()
    model = k.Sequential([k.Input((6,)), k.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x, _ = _data()
    dash = Dashboard(frontend="text", validation_data=(x, x[:, 0]))
    model.fit(x, x[:, 0], epochs=1, verbose=0, callbacks=[dash])
    assert dash.confusion is None
    assert_drawn_png(dash.final_png)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_learning_rate_changes_are_recorded() -> None:
    model, (x, y) = _classifier(), _data()
    schedule = keras().callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 if epoch < 2 else 0.001)
    dash = Dashboard(frontend="text", final_image=False)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[schedule, dash])
    assert [e for e, _ in dash.history.lr] == [1, 3]
    assert dash.history.lr[-1][1] == pytest.approx(0.001)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_a_second_fit_continues_the_series() -> None:
    model, (x, y) = _classifier(), _data()
    dash = Dashboard(frontend="text", final_image=False)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[dash])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[dash])
    assert dash.history.epoch_x == [1, 2] and dash.history.batch_x[-1] == pytest.approx(2.0)


def test_keeps_keras_async_batch_dispatch() -> None:
    from keras.src.callbacks.callback_list import CallbackList

    model = _classifier()
    bare = CallbackList([keras().callbacks.History()], model=model)
    with_dashboard = CallbackList([Dashboard(show=False)], model=model)
    # Overriding the batch-end hook does not change how Keras dispatches batch ends
    # (TensorFlow: always synchronous; JAX/torch: stays asynchronous).
    assert with_dashboard._async_train == bare._async_train


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_keyboard_interrupt_keeps_state() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    model, (x, y) = _classifier(), _data()
    dash = Dashboard(frontend="text", final_image=False)

    class Interrupt(keras().callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 2:
                raise KeyboardInterrupt

    shell.user_ns.update(model=model, x=x, y=y, dash=dash, Interrupt=Interrupt)
    result = shell.run_cell("model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[dash, Interrupt()])")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    h = dash.history
    assert h.finished and h.stopped_early and h.stop_reason == "interrupted (kernel interrupt)"
    assert len(h.batch_x) >= 2 and not dash.running


def test_frontend_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMAGIC_FRONTEND", "widget")
    assert detect_frontend() == "widget"
    monkeypatch.setenv("KMAGIC_FRONTEND", "text")
    assert detect_frontend() == "text"
    monkeypatch.delenv("KMAGIC_FRONTEND")
    assert detect_frontend() == "text"  # no kernel here


def test_bad_frontend_is_refused() -> None:
    with pytest.raises(ValueError, match="frontend"):
        Dashboard(frontend="browser")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_widget_javascript_is_a_self_contained_module(tmp_path: Path) -> None:
    source = (Path(__file__).parents[1] / "kmagic/widgets/static/dashboard.js").read_text()
    assert re.search(r"^\s*import\b|\bimport\(", source, re.M) is None  # no imports, no CDN
    assert "http://" not in source and "https://" not in source
    module = tmp_path / "dashboard.mjs"
    module.write_text(source)
    subprocess.run(["node", "--check", str(module)], check=True)


# -- one output per view, readable text ---------------------------------------------------


class Published:
    """Records what the shell's display publisher sends (the kernel would send these messages)."""

    def __init__(self, shell: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self._original = shell.display_pub.publish
        shell.display_pub.publish = self.publish

    def publish(self, data: dict[str, Any], metadata: Any = None, source: Any = None, *, transient: Any = None,
                update: bool = False, **kwargs: Any) -> None:
        self.calls.append({"data": data, "transient": transient or {}, "update": update})


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    recorder = Published(shell)
    monkeypatch.setattr(shell.display_pub, "publish", recorder.publish)
    return recorder


def _no_object_reprs(texts: list[str]) -> None:
    for text in texts:
        assert re.search(r"<[^>]* object( at 0x[0-9a-f]+)?>", text) is None, text


def test_widget_mode_is_one_output_updated_at_the_end(comms: list[RecordingComm], published: Published) -> None:
    model, (x, y) = _classifier(), _data()
    dash = Dashboard(refresh_interval=0, frontend="widget", title="Training net")
    model.fit(x, y, epochs=20, batch_size=8, verbose=0, callbacks=[dash, ClickStopAt(dash, 3)])
    new = [c for c in published.calls if not c["update"]]
    updates = [c for c in published.calls if c["update"]]
    assert len(new) == 1 and len(updates) == 1  # one output, updated once through its display id
    display_id = new[0]["transient"]["display_id"]
    assert display_id and updates[0]["transient"]["display_id"] == display_id
    first, final = new[0]["data"], updates[0]["data"]
    assert set(first) == {"application/vnd.jupyter.widget-view+json", "text/plain"}
    assert first["text/plain"] == "Training net: running (20 epochs planned)"
    assert set(final) == {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"}
    assert final["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.widget.model_id
    assert final["text/plain"].startswith("done in ") and "stopped at epoch 1/20, batch 4/12: Stop button" in final["text/plain"]
    import base64

    assert base64.b64decode(final["image/png"]) == dash.final_png and assert_drawn_png(dash.final_png, min_width=300) is not None
    _no_object_reprs([c["data"]["text/plain"] for c in published.calls])
    # While the image was drawn the status said so; the last status says it is done.
    drawing = [m["status"]["drawing"] for m in dash.widget.comm.custom() if m["type"] == "update"]
    assert drawing[-2:] == [True, False] and not any(drawing[:-2])


def test_terminal_text_mode_prints_the_final_line_and_no_image(published: Published,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """No kernel (a terminal IPython, a script): nothing can show an image, the text says it all."""
    k = keras()
    model = k.Sequential([k.Input((6,)), k.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, _ = _data(64)
    y = np.full((64,), np.nan, dtype="float32")
    dash = Dashboard(frontend="text", stop_on_nan=True)
    model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[dash])
    out = capsys.readouterr().out
    assert published.calls == []  # no <IPython.core.display.Image object> in a terminal
    last = out.strip().splitlines()[-1]
    assert "stopped at epoch 1/5" in last and "the loss became NaN or infinite" in last
    assert "WARNING: the loss became NaN or infinite at epoch 1, batch 1" in last
    _no_object_reprs([out])
    assert_drawn_png(dash.final_png, min_width=300)  # drawn on first use


def test_view_texts_are_readable_summaries() -> None:
    """Every view's text/plain is a summary, not an object's repr."""
    from kmagic.widgets.activations import show_activations
    from kmagic.widgets.model_card import ModelCard
    from kmagic.widgets.weights import show_weights

    model, (x, y) = _classifier(), _data()
    texts = {
        "card": ModelCard(model, widget=False)._repr_mimebundle_()["text/plain"],
        "activations": show_activations(model, x[:4])._repr_mimebundle_()["text/plain"],
        "weights": show_weights(model, x, y)._repr_mimebundle_()["text/plain"],
    }
    assert texts["card"].startswith("Model sequential") and "dense" in texts["card"]
    assert texts["activations"].startswith("Activations of model") and "dense" in texts["activations"]
    assert texts["weights"].startswith("Weights of model") and "kernel" in texts["weights"]
    _no_object_reprs(list(texts.values()))


# -- bounded sync, measured rates ---------------------------------------------------------------


def test_sync_after_a_long_run_is_bounded_and_updates_continue_after_it() -> None:
    from kmagic.callbacks.history import MAX_SYNC_POINTS, Cursor, TrainingHistory

    h = TrainingHistory()
    h.start(epochs=2, steps=100_000)
    for epoch in range(2):
        h.begin_epoch(epoch, 0.01)
        for step in range(100_000):
            h.add_batch(epoch, step, {"loss": 1.0 / (step + 1), "accuracy": 0.5})
        h.add_epoch(epoch, {"loss": 0.1, "val_loss": 0.2})
    import json

    everything = h.all_points()
    batch = everything["batch"]
    assert batch["start"] == 0 and batch["end"] == 200_000
    assert len(batch["x"]) == MAX_SYNC_POINTS and all(len(v) == MAX_SYNC_POINTS for v in batch["y"].values())
    assert batch["x"][0] == pytest.approx(h.batch_x[0]) and batch["x"][-1] == pytest.approx(h.batch_x[-1])
    assert batch["x"] == sorted(batch["x"])
    assert len(json.dumps(everything)) < 300_000  # a few hundred kB, not the 6 MB of every point
    assert everything["epoch"]["x"] == [1, 2]
    # Later updates start where the thinned reply ends.
    cursor = Cursor(batches=200_000, epochs=2, lr=len(h.lr))
    h.add_batch(1, 100_000, {"loss": 0.5})
    assert h.new_points(cursor)["batch"]["start"] == 200_000


def test_rates_come_from_measured_batches_and_do_not_drop_after_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow first batch (tracing) does not lower the rate; a pause after the last batch (an
    interrupt) does not either; the ETA is the remaining batches at the measured rate."""
    from kmagic.callbacks import history as history_module

    clock = [100.0]
    monkeypatch.setattr(history_module.time, "monotonic", lambda: clock[0])
    h = history_module.TrainingHistory()
    h.start(epochs=10, steps=50, batch_size=32)
    h.begin_epoch(0, 0.01)
    clock[0] += 5.0  # the first batch: graph tracing
    h.add_batch(0, 0, {"loss": 1.0})
    assert h.status()["eta"] is None  # nothing measured yet: no guess
    for step in range(1, 20):
        clock[0] += 0.01
        h.add_batch(0, step, {"loss": 1.0})
    status = h.status()
    assert status["steps_per_s"] == pytest.approx(100.0) and status["samples_per_s"] == pytest.approx(3200.0)
    assert status["eta"] == pytest.approx((500 - 20) / 100.0)  # not 3x too long because of the first batch
    clock[0] += 60.0  # an interrupt: nothing runs for a minute
    h.finish("interrupted (kernel interrupt)")
    assert h.status()["steps_per_s"] == pytest.approx(100.0)  # no 10x drop


@pytest.mark.slow
@pytest.mark.kernel
def test_in_a_kernel_each_dashboard_is_one_output_with_image_and_text(nb_run: Any) -> None:
    """A real kernel run by nbclient: text mode (headless) and widget mode each leave one display
    output whose final bundle holds the image and the final status line."""
    from conftest import outputs_of

    setup = ("import numpy as np, keras\nfrom kmagic import Dashboard\nkeras.utils.set_random_seed(0)\n"
             "x = np.random.default_rng(0).normal(size=(64, 6)).astype('float32')\n"
             "y = np.full((64,), np.nan, dtype='float32')\n"
             "def fit(frontend):\n"
             "    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)]); m.compile('sgd', 'mse')\n"
             "    m.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[Dashboard(frontend=frontend, stop_on_nan=True)])\n")
    nb = nb_run([setup, "fit('text')", "fit('widget')"], allow_errors=False, env={"KMAGIC_TEST_MODE": "1"})
    for cell, widget in ((nb.cells[1], False), (nb.cells[2], True)):
        displays = outputs_of(cell, "display_data")
        assert len(displays) == 1, [o["output_type"] for o in cell.outputs]
        data = displays[0]["data"]
        assert "image/png" in data
        assert ("application/vnd.jupyter.widget-view+json" in data) is widget
        text = data["text/plain"]
        assert "stopped at epoch 1/3" in text and "NaN" in text, text
        _no_object_reprs([text] + [o.get("text", "") for o in outputs_of(cell, "stream")])
