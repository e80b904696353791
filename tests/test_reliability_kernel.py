"""Issue 6 in real kernels: a kernel interrupt during %kfit (jupyter_client's ``interrupt_kernel()``),
every magic under nbclient (nbconvert's engine) and nbval, and in a terminal IPython.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import outputs_of, run_notebook
from kernel_helpers import kernel_env, user_expression

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(300)]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: Variables that would override what kmagic detects or does by default.
HEADLESS = ("KMAGIC_FRONTEND", "KMAGIC_TEST_MODE")


def test_kernel_interrupt_during_kfit_stops_cleanly(tmp_path: Path) -> None:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env=kernel_env(*HEADLESS), cwd=str(tmp_path))
    try:
        setup = kc.execute_interactive(
            "%load_ext kmagic\nimport numpy as np\nrng = np.random.default_rng(0)\n"
            "X = rng.normal(size=(512, 8)).astype('float32'); y = (X[:, 0] > 0).astype('int64')", timeout=120)
        assert setup["content"]["status"] == "ok"
        assert kc.execute_interactive("%%kmodel net --input 8 --quiet\ndense 32 relu\ndense 2 softmax",
                                      timeout=120)["content"]["status"] == "ok"
        assert kc.execute_interactive("before = [w.copy() for w in net.get_weights()]",
                                      timeout=60)["content"]["status"] == "ok"
        msg_id = kc.execute("%kfit net X y --epochs 400 --batch-size 8")
        text, interrupted_at, error = "", None, None
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text += content["text"]
                if interrupted_at is None and "epoch   2/400" in text:
                    km.interrupt_kernel()  # what the notebook's ■ button does
                    interrupted_at = time.monotonic()
            elif kind == "error":
                error = content
            elif kind == "status" and content["execution_state"] == "idle":
                break
        assert interrupted_at is not None, text
        assert time.monotonic() - interrupted_at < 30  # 400 epochs would take minutes
        # One short error (so "Run all" stops here), no traceback frames.
        assert error is not None and error["ename"] == "TrainingInterrupted", error
        assert len(error["traceback"]) == 1 and "File " not in error["traceback"][0]
        assert "stopped at epoch" in error["traceback"][0]
        # The dashboard (text mode: no widget front end here) says where it stopped.
        assert "interrupted (kernel interrupt)" in text and "stopped at epoch" in text
        epochs = int(user_expression(kc, "len(net_history.history['loss'])"))
        assert 2 <= epochs < 400
        assert user_expression(kc, "all(np.isfinite(w).all() for w in net.get_weights())") == "True"
        assert user_expression(kc, "any(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))") == "True"
        # The next cells run normally, training included.
        assert user_expression(kc, "1 + 1") == "2"
        reply = kc.execute_interactive("%kfit net X y --epochs 1 --no-dashboard", timeout=120)
        assert reply["content"]["status"] == "ok"
        assert user_expression(kc, "len(net_history.history['loss'])") == "1"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# ---------------------------------------------------------------- every magic without a widget front end

SETUP = """import tempfile
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(64, 4)).astype('float32')
y = (X[:, 0] > 0).astype('int64')
tmp = tempfile.mkdtemp(prefix='kmagic-')"""

CELLS = [
    "%load_ext kmagic",
    SETUP,
    "%%kblock twice(u)\ndense u relu\ndense u relu",
    "%%kmodel net --input 4\ntwice 8\ndense 2 softmax",
    "%kfit net X y --epochs 2 --batch-size 16 --validation-split 0.25",
    "%ksummary net",
    "%kactivations net {X[:4]}",
    "%kweights net X y",
    "%ksave net {tmp}/net.keras",
    "%kload again {tmp}/net.keras --summary",
    "%kexport net",
    "%kmodels",
    "%kdevice",
    "%kfit net X y --epochs 1 --no-dashboard",
    "# NBVAL_RAISES_EXCEPTION\n%kfit net {X[:, :3]} y",
    "print(len(net_history.history['loss']), again.count_params() == net.count_params())",
]


def _notebook(cells: list[str]) -> Any:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    return notebook


def test_every_magic_headless_under_nbclient(tmp_path: Path) -> None:

    # The kernel's parent is this pytest process: detected as headless, as under nbconvert.
    notebook = run_notebook(CELLS, timeout=240, cwd=tmp_path,
                            env=dict.fromkeys(HEADLESS))
    cells = notebook.cells
    for index, cell in enumerate(cells):
        mimetypes = {m for o in outputs_of(cell, "display_data") for m in o["data"]}
        assert WIDGET_MIME not in mimetypes, (index, cell.source)  # no widget noise
        stderr = "".join(o["text"] for o in outputs_of(cell, "stream") if o["name"] == "stderr")
        assert "Traceback" not in stderr and "Error" not in stderr, (index, stderr)
        if index != 14:
            assert not outputs_of(cell, "error"), (index, outputs_of(cell, "error"))
    card = outputs_of(cells[3], "display_data")[0]["data"]
    assert {"text/html", "text/plain"} == set(card)
    assert "kmagic-layers" in card["text/html"] and "Model net" in card["text/plain"]
    fit_text = "".join(o["text"] for o in outputs_of(cells[4], "stream"))
    assert "Training net: 2 epochs" in fit_text and "epoch 2/2" in fit_text and "done in" in fit_text
    assert any("image/png" in o["data"] for o in outputs_of(cells[4], "display_data"))  # the final curves
    for index in (6, 7):  # the activation and weight views: PNG and text
        data = outputs_of(cells[index], "display_data")[-1]["data"]
        assert "image/png" in data and "text/plain" in data
    assert "saved net" in outputs_of(cells[8], "stream")[0]["text"]
    assert "import keras" in outputs_of(cells[10], "stream")[0]["text"]
    (error,) = outputs_of(cells[14], "error")
    assert error["ename"] == "KmagicDataError" and len(error["traceback"]) == 1
    assert "shape (n, 4)" in error["traceback"][0] and "(64, 3)" in error["traceback"][0]
    assert outputs_of(cells[15], "stream")[0]["text"].split() == ["1", "True"]


def test_every_magic_passes_nbval(tmp_path: Path) -> None:
    path = tmp_path / "magics.ipynb"
    path.write_text(json.dumps(_notebook(CELLS)))
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                             str(path)], capture_output=True, text=True, cwd=tmp_path,
                            env=kernel_env(*HEADLESS, KMAGIC_TEST_MODE="1", PATH=str(Path(sys.executable).parent) + os.pathsep
                                     + os.environ.get("PATH", "")), timeout=280)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{len(CELLS)} passed" in result.stdout


def test_every_magic_in_a_terminal_ipython(tmp_path: Path) -> None:
    """TerminalInteractiveShell (what the ``ipython`` command runs), in a fresh process."""
    script = tmp_path / "terminal.py"
    script.write_text(
        "import json, sys\n"
        "from IPython.terminal.interactiveshell import TerminalInteractiveShell\n"
        "ip = TerminalInteractiveShell.instance()\n"
        f"for cell in json.loads({json.dumps(json.dumps(CELLS))}):\n"
        "    result = ip.run_cell(cell)\n"
        "    print('<<cell ok>>' if result.success else f'<<cell failed: {type(result.error_in_exec).__name__}>>')\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                            env=kernel_env(*HEADLESS), timeout=280)
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = [line for line in out.splitlines() if line.startswith("<<cell")]
    assert statuses == ["<<cell ok>>"] * 14 + ["<<cell failed: KmagicDataError>>", "<<cell ok>>"], out[-3000:]
    assert "Model net (Functional)" in out and "Training net: 2 epochs" in out and "epoch 2/2" in out
    assert "KmagicDataError: expected the training inputs {X[:, :3]}" in out
    for noise in ("VBox(", "Tab(", "DashboardWidget", "HBox(", "Traceback"):
        assert noise not in out, noise
    assert "Traceback" not in result.stderr


def test_card_is_a_widget_only_with_a_widget_front_end(nb_run) -> None:
    cells = ["%load_ext kmagic", "%%kmodel net --input 4\ndense 2 softmax"]
    headless = nb_run(cells, allow_errors=False)
    (card,) = outputs_of(headless.cells[1], "display_data")
    assert WIDGET_MIME not in card["data"] and "text/html" in card["data"]
    attached = nb_run(cells, allow_errors=False, env={"KMAGIC_FRONTEND": "widget"})
    (card,) = outputs_of(attached.cells[1], "display_data")
    assert {WIDGET_MIME, "text/html", "text/plain"} <= set(card["data"])
