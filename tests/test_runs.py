"""Runs (kmagic.runs): recorded by every route, plain data, exports, %kruns, %kcompare, %kfit --repeat/--compare."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import kmagic
from kmagic.callbacks.history import TrainingHistory
from kmagic.errors import KmagicValueError
from kmagic.run_log import MAX_BATCH_POINTS, RUNS, Run, RunList, run_of

BODY = "input 4\ndense 8 relu\ndense 3 softmax\ncompile adam scce metrics=[accuracy]\n"


@pytest.fixture(autouse=True)
def fresh_runs():
    """Each test starts with an empty kmagic.runs (and leaves it empty)."""
    RUNS.clear(restart_ids=True)
    yield RUNS
    RUNS.clear(restart_ids=True)


@pytest.fixture
def data(shell):
    rng = np.random.default_rng(0)
    shell.user_ns["X"] = rng.normal(size=(64, 4)).astype("float32")
    shell.user_ns["y"] = rng.integers(0, 3, size=64)
    return shell


def _keras_model(optimizer: str = "adam"):
    from kmagic._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(8, activation="relu"), k.layers.Dense(1)], name="reg")
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _xy(n: int = 64):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x @ np.arange(1, 5, dtype="float32"))[:, None]


def _only_plain(value, where="run") -> None:
    """Fails on anything that is not plain Python data (a Keras object, a numpy array, a tensor)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _only_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where}: key {key!r}"
            _only_plain(item, f"{where}.{key}")
        return
    raise AssertionError(f"{where} holds a {type(value).__name__}")


# ---------------------------------------------------------------- routes


def test_a_dashboard_callback_records_one_plain_run() -> None:
    model = _keras_model()
    x, y = _xy()
    model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
              callbacks=[kmagic.Dashboard(frontend="text", final_image=False)])
    assert len(kmagic.runs) == 1
    run = kmagic.runs[-1]
    _only_plain(run.as_dict())
    assert run.model == "reg" and run.route == "callback" and run.epochs == 3
    assert run.options["optimizer"] == "Adam" and run.options["loss"] == "mse" and run.options["epochs"] == 3
    assert run.history["loss"] == pytest.approx(model.history.history["loss"], rel=1e-6)
    assert run.final["val_loss"] == pytest.approx(model.history.history["val_loss"][-1], rel=1e-6)
    assert run.best["val_loss"] == pytest.approx(min(model.history.history["val_loss"]), rel=1e-6)
    assert len(run.batches["x"]) == 3 * 3 and run.batches["x"][-1] == pytest.approx(3.0)
    assert run.stop_reason is None and run.duration > 0 and run.config_hash and run.precision == "float32"


def test_two_recorders_in_one_fit_record_one_run_and_a_second_fit_another() -> None:
    model = _keras_model()
    x, y = _xy()
    dashboard = kmagic.Dashboard(frontend="text", final_image=False)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[dashboard, kmagic.RunRecorder()])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[dashboard])  # the same dashboard continues its series
    assert [r.epochs for r in kmagic.runs] == [2, 1]
    assert [r.id for r in kmagic.runs] == [1, 2]
    assert kmagic.runs[1].history["loss"] == pytest.approx([model.history.history["loss"][0]], rel=1e-6)
    assert dashboard.run is kmagic.runs[1]


def test_kfit_records_name_text_options_and_seed(data, monkeypatch) -> None:
    monkeypatch.setenv("KMAGIC_TEST_MODE", "1")  # %kfit then trains with seed 0
    shell = data
    shell.run_cell(f"%%kmodel net --quiet\n{BODY}")
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 2 --batch-size 16 --no-dashboard")
        shell.run_line_magic("kfit", "net X y --epochs 1 --batch-size 16")  # the dashboard route (text here)
    first, second = kmagic.runs
    assert first.model == "net" and first.route == "%kfit" and first.text == BODY
    assert first.options["epochs"] == 2 and first.options["batch_size"] == 16
    assert first.seed == 0  # KMAGIC_TEST_MODE fixes the seed %kfit uses
    assert second.epochs == 1 and second.history["loss"][0] == pytest.approx(
        shell.user_ns["net_history"].history["loss"][0], rel=1e-6)


def test_kmagic_fit_records_a_run() -> None:
    fitting = pytest.importorskip("kmagic.fitting", reason="kmagic.fit (branch dataA) is not merged yet")
    model = _keras_model()
    x, y = _xy()
    fitting.fit(model, x, y, epochs=2, verbose=0)
    assert len(kmagic.runs) == 1 and kmagic.runs[-1].epochs == 2


def test_runs_survive_reload_ext(data) -> None:
    shell = data
    shell.run_cell(f"%%kmodel net --quiet\n{BODY}")
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 1 --no-dashboard")
    shell.run_line_magic("reload_ext", "kmagic")
    import kmagic as reloaded

    assert len(reloaded.runs) == 1 and reloaded.runs[0].model == "net"
    with capture_output() as captured:
        shell.run_line_magic("kruns", "")
    assert "net" in captured.outputs[0].data["text/plain"]


# ---------------------------------------------------------------- plain data


def test_per_batch_points_are_bounded_and_keep_the_ends() -> None:
    history = TrainingHistory()
    history.start(epochs=4, steps=2500)
    for epoch in range(4):
        history.begin_epoch(epoch, 0.01)
        for step in range(2500):
            history.add_batch(epoch, step, {"loss": 1.0 / (1 + epoch * 2500 + step)})
        history.add_epoch(epoch, {"loss": 1.0 / (1 + epoch)})
    history.finish()
    run = run_of(history, None, (0, 0, 0.0, history.started_at, None), {"epochs": 4})
    assert len(run.batches["x"]) == MAX_BATCH_POINTS == len(run.batches["loss"])
    assert run.batches["x"][0] == pytest.approx(1 / 2500) and run.batches["x"][-1] == pytest.approx(4.0)
    assert run.batches["loss"][-1] == pytest.approx(1.0 / 10000)
    assert len(json.dumps(run.as_dict())) < 20_000


def test_exports_csv_json_and_frame() -> None:
    model = _keras_model()
    x, y = _xy()
    for optimizer in ("adam", "sgd"):
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[kmagic.RunRecorder()])
    rows = list(csv.DictReader(io.StringIO(kmagic.runs.to_csv())))
    assert [r["option optimizer"] for r in rows] == ["Adam", "SGD"]
    assert float(rows[1]["final val_loss"]) == pytest.approx(kmagic.runs[1].final["val_loss"])
    back = RunList.from_json(kmagic.runs.to_json())
    assert [r.as_dict() for r in back] == [r.as_dict() for r in kmagic.runs]
    frame = kmagic.runs.frame()
    assert list(frame.index) == [1, 2] and frame.loc[2, "option optimizer"] == "SGD"


def test_runs_get_refuses_an_unknown_id() -> None:
    RUNS.add(Run(id=0, model="a"))
    assert RUNS.get("run 1").model == "a" and RUNS.get(1) is RUNS.get("r1")
    with pytest.raises(KmagicValueError, match=r"received '7' \(runs recorded: 1\)"):
        RUNS.get("7")


# ---------------------------------------------------------------- %kruns and %kcompare


def _two_optimizer_runs(shell) -> None:
    shell.run_cell(f"%%kmodel net --quiet\n{BODY}")
    shell.run_cell("%%kmodel net_sgd --quiet\n" + BODY.replace("adam", "sgd"))
    with capture_output():
        shell.run_line_magic("kfit", "net X y --epochs 2 --validation-split 0.25 --no-dashboard")
        shell.run_line_magic("kfit", "net_sgd X y --epochs 2 --validation-split 0.25 --no-dashboard")


def test_kruns_table_marks_the_best_value_per_column(data) -> None:
    shell = data
    _two_optimizer_runs(shell)
    with capture_output() as captured:
        shell.run_line_magic("kruns", "")
    output = captured.outputs[0].data
    text, html = output["text/plain"], output["text/html"]
    assert text.splitlines()[0].split()[:2] == ["run", "model"] and "(* best in its column)" in text
    header, rows = RUNS.rows()
    column = header.index("final val_loss")
    best = min(range(2), key=lambda r: rows[r][column])
    assert (best, column) in RUNS.best_cells(header, rows) and ((1 - best), column) not in RUNS.best_cells(header,
                                                                                                           rows)
    assert html.count('class="kmagic-best"') == len(RUNS.best_cells(header, rows))
    with capture_output() as captured:
        shell.run_line_magic("kruns", "net_sgd")
    assert "net_sgd" in captured.outputs[0].data["text/plain"]
    assert "\n1 " not in captured.outputs[0].data["text/plain"]


def test_kcompare_draws_runs_with_a_legend_of_what_differs(data) -> None:
    shell = data
    _two_optimizer_runs(shell)
    with capture_output() as captured:
        shell.run_line_magic("kcompare", "1 2")
    lines = captured.outputs[0].data["text/plain"].splitlines()
    assert lines[0].startswith("run 1 (net, learning_rate=0.0010, optimizer=Adam, "
                               "'compile adam scce metrics=[accuracy]'): 2 epoch(s); final accuracy")
    assert lines[1].startswith("run 2 (net_sgd, learning_rate=0.0100, optimizer=SGD, "
                               "'compile sgd scce metrics=[accuracy]'): 2 epoch(s)")
    assert any(line.startswith("best val_loss: run ") for line in lines)
    assert "image/png" in captured.outputs[0].data
    with pytest.raises(KmagicValueError, match="expected the name of a model with recorded runs"):
        shell.run_line_magic("kcompare", "1 nett")


# ---------------------------------------------------------------- --repeat and --compare


def test_kfit_repeat_trains_from_fresh_seeds_and_keeps_the_best_run(data) -> None:
    shell = data
    shell.run_cell(f"%%kmodel net --quiet\n{BODY}")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --epochs 2 --validation-split 0.25 --no-dashboard --repeat 3")
    runs = list(kmagic.runs)
    assert [r.seed for r in runs] == [0, 1, 2] and {r.group for r in runs} == {"repeat 3x of net"}
    assert len({r.history["loss"][0] for r in runs}) == 3  # different initial weights
    best = min(runs, key=lambda r: r.final["val_loss"])
    view = captured.outputs[-1].data
    assert f"the model keeps the weights of {best.name} (seed {best.seed}" in view["text/plain"]
    assert "  val_loss: " in view["text/plain"] and "image/png" in view
    assert len([o for o in captured.outputs if "image/png" in o.data]) == 1  # the band, not one image per run
    x, y = shell.user_ns["X"][48:], shell.user_ns["y"][48:]  # Keras's validation split: the last 25%
    loss = shell.user_ns["net"].evaluate(x, y, verbose=0)[0]
    assert loss == pytest.approx(best.final["val_loss"], rel=1e-4)
    with capture_output():  # the same seed gives the same run again
        shell.run_line_magic("kfit", "net X y --epochs 2 --validation-split 0.25 --no-dashboard --repeat 1")
    assert kmagic.runs[-1].history["loss"] == pytest.approx(runs[0].history["loss"], rel=1e-5)


def test_kfit_compare_shows_earlier_runs_of_the_model(data) -> None:
    shell = data
    shell.run_cell(f"%%kmodel net --quiet\n{BODY}")
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --epochs 1 --no-dashboard --compare")
    assert "no earlier runs of net to compare with yet" in captured.stdout
    with capture_output() as captured:
        shell.run_line_magic("kfit", "net X y --epochs 2 --no-dashboard --compare")
    lines = captured.outputs[-1].data["text/plain"].splitlines()
    assert any(line.startswith("run 1 (epochs=1)") for line in lines)
    assert any(line.startswith("run 2 (epochs=2)") for line in lines)
    assert "image/png" in captured.outputs[-1].data


def test_dashboard_compare_sends_earlier_runs_as_faded_series(comms) -> None:
    model = _keras_model()
    x, y = _xy()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[kmagic.RunRecorder()])
    dashboard = kmagic.Dashboard(frontend="widget", final_image=False, compare=True)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[dashboard])
    series = dashboard.widget.compare
    assert len(series) == 1 and series[0]["x"] == [1, 2]
    assert series[0]["y"]["loss"] == pytest.approx(kmagic.runs[0].history["loss"])
    assert series[0]["label"] == "run 1"
    assert all(math.isfinite(v) for v in series[0]["y"]["loss"])


# ---------------------------------------------------------------- a real kernel: headless text mode, nbval

KERNEL_CELLS = [
    "%load_ext kmagic\nimport numpy as np, kmagic\nrng = np.random.default_rng(0)\n"
    "X = rng.normal(size=(64, 4)).astype('float32'); y = rng.integers(0, 3, size=64)",
    f"%%kmodel net --quiet\n{BODY}",
    "%kfit net X y --epochs 2 --validation-split 0.25 --repeat 2",
    "%kfit net X y --epochs 1 --validation-split 0.25 --compare",
    "%kruns",
    "%kcompare 1 3",
    "%klr net X y --steps 30 --end 1",
    "# NBVAL_CHECK_OUTPUT\nprint([(r.id, r.seed, r.epochs) for r in kmagic.runs])",
]


def _texts(cell) -> tuple[str, list[str], set[str]]:
    """A cell's stdout, followed by the text of its displays; the display texts; the display mimetypes."""
    plain = [o.data["text/plain"] for o in cell.outputs if o.output_type in ("display_data", "execute_result")
             and "text/plain" in o.data]
    stdout = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    stdout += "\n".join(plain)
    mimetypes = {m for o in cell.outputs if o.output_type in ("display_data", "execute_result") for m in o.data}
    return stdout, plain, mimetypes


@pytest.mark.slow
@pytest.mark.kernel
def test_runs_in_a_headless_kernel_are_text_and_images(nb_run) -> None:
    notebook = nb_run(KERNEL_CELLS, allow_errors=False, env={"KMAGIC_TEST_MODE": "1", "KMAGIC_FRONTEND": None})
    repeat, compare, kruns, kcompare, klr, check = (notebook.cells[i] for i in range(2, 8))
    stdout, _, mimetypes = _texts(repeat)
    assert "net from fresh initial weights, seed 1 (2 of 2)" in stdout and "epoch 2/2" in stdout
    assert "the model keeps the weights of run " in stdout and "image/png" in mimetypes
    assert "application/vnd.jupyter.widget-view+json" not in mimetypes  # headless: no widget
    stdout, _, _ = _texts(compare)
    assert "run 1 (epochs=2, seed=0)" in stdout and "run 3 (epochs=1, seed=0)" in stdout
    _, plain, mimetypes = _texts(kruns)
    assert plain[0].splitlines()[0].startswith("run  model") and "text/html" in mimetypes
    _, plain, mimetypes = _texts(kcompare)
    stdout = plain[0]
    assert stdout.startswith("run 1 (epochs=2): 2 epoch(s)") and "\nrun 3 (epochs=1): 1 epoch(s)" in stdout
    assert "image/png" in mimetypes
    stdout, _, mimetypes = _texts(klr)
    assert "suggested learning rate" in stdout and "image/png" in mimetypes
    assert _texts(check)[0].strip() == "[(1, 0, 2), (2, 1, 2), (3, 0, 1)]"


@pytest.mark.slow
@pytest.mark.kernel
def test_runs_notebook_passes_nbval(tmp_path) -> None:
    import os
    import subprocess
    import sys

    import nbformat

    from tests.conftest import REPO, run_notebook

    executed = run_notebook(KERNEL_CELLS, allow_errors=False, env={"KMAGIC_TEST_MODE": "1", "KMAGIC_FRONTEND": None})
    path = tmp_path / "runs.ipynb"
    nbformat.write(executed, path)
    env = {**os.environ, "KMAGIC_TEST_MODE": "1", "PYTHONPATH": str(REPO)}
    env.pop("KMAGIC_FRONTEND", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                             str(path)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{len(KERNEL_CELLS)} passed" in result.stdout


def test_compare_view_widget_redraws_one_metric(comms) -> None:
    from kmagic.widgets.runs_view import CompareView

    runs = [Run(id=i, model="m", options={"optimizer": name}, epochs=2,
                history={"loss": [1.0, 0.5 * i], "accuracy": [0.5, 0.6], "val_loss": [1.1, 0.7]})
            for i, name in ((1, "Adam"), (2, "SGD"))]
    view = CompareView(runs)
    assert view.text().splitlines()[:2] == ["run 1 (optimizer=Adam): 2 epoch(s); final ",
                                            "run 2 (optimizer=SGD): 2 epoch(s); final "]
    box = view.widget()
    choice, image, text = box.children
    assert [value for _, value in choice.options] == ["", "loss", "accuracy"]
    everything = bytes(image.value)
    choice.value = "accuracy"
    assert bytes(image.value).startswith(b"\x89PNG") and bytes(image.value) != everything
    assert bytes(image.value) == view.png("accuracy") and "optimizer=SGD" in text.value


def test_a_fit_that_never_ended_does_not_block_the_next_record() -> None:
    model = _keras_model()
    x, y = _xy()
    stale = kmagic.RunRecorder()
    stale.set_model(model)
    stale.set_params({"epochs": 1, "steps": 1})
    stale.on_train_begin()  # claims the model, then its fit "dies" without on_train_end
    model.fit(x, y, epochs=1, verbose=0, callbacks=[kmagic.RunRecorder()])
    assert len(kmagic.runs) == 1 and kmagic.runs[0].epochs == 1


@pytest.mark.slow
def test_dashboard_javascript_draws_earlier_runs_faded(tmp_path, comms) -> None:
    """The widget's ``compare`` trait in headless Chromium: grey curves before the first batch, gone without it."""
    import concurrent.futures
    import shutil
    from pathlib import Path

    from test_dashboard_js import CHROMIUM, PAGE, STATIC

    if not Path(CHROMIUM).exists():
        pytest.skip("needs Chromium")
    from playwright.sync_api import sync_playwright

    from kmagic.widgets.runs_view import faded_series

    earlier = Run(id=1, model="m", epochs=4, history={"loss": [1.0, 0.6, 0.4, 0.3], "val_loss": [1.1, 0.8, 0.6, 0.5]})
    shutil.copy(STATIC / "dashboard.js", tmp_path / "dashboard.js")
    state = {"title": "t", "status": {"epochs": 4}, "metrics": ["loss"], "stop_requested": False, "note": "",
             "compare": faded_series([earlier])}
    (tmp_path / "index.html").write_text(PAGE.format(css=(STATIC / "dashboard.css").read_text(),
                                                     state=json.dumps(state), config=""))
    grey = """() => { const c = document.querySelector('.kmagic-chart canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.abs(d[i] - 128) < 8
            && Math.abs(d[i + 1] - 128) < 8 && Math.abs(d[i + 2] - 128) < 8) n++; return n; }"""
    counts, errors = [], []

    def drive() -> None:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--allow-file-access-from-files"])
            page = browser.new_page(viewport={"width": 1100, "height": 700})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((tmp_path / "index.html").as_uri())
            page.wait_for_function("window.ready === true", timeout=10_000)
            page.wait_for_timeout(200)
            counts.append(page.evaluate(grey))
            page.evaluate("window.model.set('compare', [])")
            page.wait_for_timeout(200)
            counts.append(page.evaluate(grey))
            browser.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(drive).result()
    assert not errors, errors
    assert counts[0] > 200 and counts[1] < counts[0] / 10, counts


def test_nested_recordings_collect_the_run_and_the_outer_facts_win() -> None:
    from kmagic.run_log import recording

    model = _keras_model()
    x, y = _xy()
    with recording(model="net", route="%kfit", seed=3) as outer, \
            recording(model="reg", route="kmagic.fit", options={"epochs": 1}) as inner:
        model.fit(x, y, epochs=1, verbose=0, callbacks=[kmagic.RunRecorder()])
    run = kmagic.runs[-1]
    assert outer["runs"] == inner["runs"] == [run]
    assert (run.model, run.route, run.seed, run.options["epochs"]) == ("net", "%kfit", 3, 1)
