"""%kfit through a real InteractiveShell: adapting, inferred compile, stored fit defaults, options, errors."""

from __future__ import annotations

import numpy as np
import pytest
from IPython.utils.capture import capture_output

from kmagic.errors import KmagicDataError, KmagicNameError, KmagicUsageError


@pytest.fixture
def data(shell):
    rng = np.random.default_rng(0)
    shell.user_ns["X"] = rng.normal(3.0, 2.0, size=(48, 4)).astype("float32")
    shell.user_ns["y"] = rng.integers(0, 3, size=48)
    shell.user_ns["Y1"] = np.eye(3, dtype="float32")[shell.user_ns["y"]]
    return shell


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_adapts_compiles_trains_and_binds_history(data) -> None:
    shell = data
    shell.run_cell("%%kmodel net --quiet\ninput 4\nnormalize\ndense 8 relu\ndense 3 softmax\n")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --epochs 2 --batch-size 16 --no-dashboard")
    out = captured.stdout
    assert "adapted normalization" in out
    assert "compiled net with optimizer=adam, loss=sparse_categorical_crossentropy" in out
    assert "softmax output + integer labels" in out
    assert "epoch 1/2" in out and "epoch 2/2" in out
    history = shell.user_ns["net_history"]
    assert len(history.history["loss"]) == 2 and "accuracy" in history.history
    norm = shell.user_ns["net"].layers[1]
    assert np.allclose(np.ravel(norm.mean), shell.user_ns["X"].mean(axis=0), rtol=1e-3)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_one_hot_labels_pick_cce(data) -> None:
    shell = data
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X Y1 --epochs 1 --no-dashboard")
    assert "loss=categorical_crossentropy" in captured.stdout


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_uses_stored_fit_defaults_and_arguments_win(data) -> None:
    shell = data
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\ncompile adam scce metrics=[accuracy]\n"
                   "fit epochs=3 batch_size=8 validation_split=0.25\n")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --no-dashboard")
    assert "compiled net" not in captured.stdout  # the program compiled it
    history = shell.user_ns["net_history"]
    assert len(history.history["loss"]) == 3 and "val_loss" in history.history
    assert history.params["steps"] == 36 // 8 + (36 % 8 > 0)  # 48 samples, 25% held out, batch 8
    shell.run_line_magic("kfit", "net X y --epochs 1 --batch-size 12 --no-dashboard")
    history = shell.user_ns["net_history"]
    assert len(history.history["loss"]) == 1 and history.params["steps"] == 3


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_validation_data_and_interpolated_slices(data) -> None:
    shell = data
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    shell.run_line_magic("kfit", "net {X[:32]} {y[:32]} --epochs {1 + 1} --batch-size 32 "
                                 "--validation-data {X[32:]} {y[32:]} --no-dashboard")
    history = shell.user_ns["net_history"]
    assert history.params["steps"] == 1 and len(history.history["val_loss"]) == 2


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_validation_split_option(data) -> None:
    shell = data
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    shell.run_line_magic("kfit", "net X y --epochs 1 --batch-size 6 --validation-split 0.5 --no-dashboard")
    assert shell.user_ns["net_history"].params["steps"] == 4
    assert "val_loss" in shell.user_ns["net_history"].history


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_steps_per_execution(data) -> None:
    shell = data
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    shell.run_line_magic("kfit", "net X y --epochs 1 --steps-per-execution 4 --no-dashboard")
    assert shell.user_ns["net"].steps_per_execution == 4


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_shows_the_dashboard_by_default(data) -> None:
    shell = data
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --epochs 2 --batch-size 16")
    # No widget front end in a plain shell (a terminal): the dashboard's text mode, no image.
    assert "Training net" in captured.stdout, captured.stdout
    assert captured.stdout.strip().splitlines()[-1].startswith("done in")
    assert not captured.outputs
    assert len(shell.user_ns["net_history"].history["loss"]) == 2


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_dashboard_setting_off_gives_epoch_text(data) -> None:
    shell = data
    shell.run_line_magic("config", "KMagic.dashboard = False")
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --epochs 1")
    assert "epoch 1/1 - " in captured.stdout and " - loss " in captured.stdout and captured.outputs == []


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_passes_settings_to_the_dashboard(data, monkeypatch) -> None:
    import kmagic.widgets.dashboard as dashboard_module

    seen = {}
    original = dashboard_module.Dashboard

    class Recording(original):
        def __init__(self, *args, **kwargs):
            seen.update(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(dashboard_module, "Dashboard", Recording)
    import kmagic

    monkeypatch.delitem(kmagic.__dict__, "Dashboard", raising=False)
    shell = data
    shell.run_line_magic("config", "KMagic.refresh_interval = 0.5")
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 1")
    assert {k: seen[k] for k in ("refresh_interval", "stop_on_nan", "batch_size", "show")} == {
        "refresh_interval": 0.5, "stop_on_nan": True, "batch_size": 32, "show": True}
    assert seen["validation_data"] is None
    # --batch-size reaches the dashboard (samples/s); a validation split gives it the last
    # fraction of X and Y, as Keras takes it (for the confusion matrix).
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 1 --batch-size 8 --validation-split 0.25")
    xv, yv = seen["validation_data"]
    assert seen["batch_size"] == 8
    assert np.array_equal(xv, shell.user_ns["X"][36:]) and np.array_equal(yv, shell.user_ns["y"][36:])
    with capture_output():
        shell.run_line_magic("kfit", "net {X[:40]} {y[:40]} --epochs 1 --validation-data {X[40:]} {y[40:]}")
    xv, yv = seen["validation_data"]
    assert np.array_equal(xv, shell.user_ns["X"][40:]) and len(yv) == 8


@pytest.mark.parametrize(("line", "error", "text"), [
    ("nett X y", KmagicNameError, "Did you mean 'net'?"),
    ("net X yy", KmagicNameError, "training labels 'yy' is not defined"),
    ("net X y --epoch-count 2", KmagicUsageError, "unknown option '--epoch-count'"),
    ("net X y --epochs two", KmagicUsageError, "expected an integer for --epochs"),
    ("net X y --epochs 0", KmagicUsageError, ">= 1"),
    ("net X y --validation-split 1.5", KmagicUsageError, "between"),
    ("net X y --validation-split 0.2 --validation-data X y", KmagicUsageError, "received both"),
    ("net X y --validation-data X", KmagicDataError, "Give both: --validation-data XV YV"),
    ("net", KmagicUsageError, "required"),
    ("net {X[:, :2]} y --epochs 1", KmagicDataError, None),
])
def test_kfit_errors(data, line: str, error: type, text: str | None) -> None:
    shell = data
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    with pytest.raises(error) as info:
        shell.run_cell(f"%kfit {line} --no-dashboard")
    if text:
        assert text in info.value.render()
    assert "net_history" not in shell.user_ns


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_on_a_dataset_without_y(data) -> None:
    import tensorflow as tf

    shell = data
    shell.user_ns["ds"] = tf.data.Dataset.from_tensor_slices((shell.user_ns["X"], shell.user_ns["y"])).batch(16)
    shell.run_cell("%%kmodel net --quiet\ninput 4\nnormalize\ndense 3 softmax\n")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net ds --epochs 1 --no-dashboard")
    assert "adapted normalization" in captured.stdout and "sparse_categorical_crossentropy" in captured.stdout
    assert shell.user_ns["net_history"].params["steps"] == 3
    norm = shell.user_ns["net"].layers[1]
    assert np.allclose(np.ravel(norm.mean), shell.user_ns["X"].mean(axis=0), rtol=1e-3)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_kfit_interrupted_still_binds_the_history(data) -> None:
    import keras

    from kmagic.buildinfo import info_of

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    shell = data
    shell.run_cell("%%kmodel net --input 4 --quiet\ndense 3 softmax\n")
    info_of(shell.user_ns["net"]).fit_defaults["callbacks"] = [Interrupt()]
    with capture_output(), pytest.raises(KeyboardInterrupt):
        shell.run_line_magic("kfit", "net X y --epochs 5 --no-dashboard")
    assert len(shell.user_ns["net_history"].history["loss"]) >= 1
