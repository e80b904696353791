"""The magics in a real kernel: errors nbclient and nbval can see, short tracebacks, widgets, completion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, outputs_of

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

BAD_MODEL = "%%kmodel net --input 8\ndense 16 relu\ndens 3 softmax"


def test_bad_kmodel_cell_is_an_error_output_with_a_short_traceback(nb_run) -> None:
    notebook = nb_run([
        "%load_ext kmagic",
        BAD_MODEL,
        "%kfit net X y --epoch-count 2",
        "%%kmodel net --input 8\ndense 3 softmax",
        "print(type(net).__name__, net.count_params())",
    ])
    cells = notebook.cells
    (error,) = outputs_of(cells[1], "error")
    assert error["ename"] == "KmagicNameError"
    traceback = "\n".join(error["traceback"])
    assert "line 2, column 1: unknown layer 'dens'" in traceback
    assert "dens 3 softmax" in traceback and "^^^^" in traceback
    assert "File " not in traceback and "Traceback" not in traceback and len(error["traceback"]) == 1
    (usage,) = outputs_of(cells[2], "error")
    assert usage["ename"] == "KmagicUsageError" and "Did you mean '--epochs'?" in "\n".join(usage["traceback"])
    assert not outputs_of(cells[3], "error")
    assert outputs_of(cells[4], "stream")[0]["text"].strip() == "Functional 27"


def test_kernel_card_is_a_widget_with_static_fallback_and_kfit_trains(nb_run) -> None:
    notebook = nb_run([
        "%load_ext kmagic",
        "import numpy as np\nX = np.random.rand(32, 4).astype('float32')\ny = np.random.randint(0, 2, 32)",
        "%%kmodel net --input 4\ndense 8 relu\ndense 1 sigmoid",
        "%kfit net X y --epochs 2 --batch-size 16",
        "print(len(net_history.history['loss']), net.compiled)",
    ], allow_errors=False, env={"KMAGIC_FRONTEND": "widget"})  # as JupyterLab (nbclient alone is headless)
    cells = notebook.cells
    (card,) = outputs_of(cells[2], "display_data")
    assert {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"} <= set(card["data"])
    assert "dense 8 relu" in card["data"]["text/html"]
    fit_text = "".join(o.get("text", "") for o in outputs_of(cells[3], "stream"))
    assert "loss=binary_crossentropy" in fit_text and "one sigmoid unit" in fit_text
    assert outputs_of(cells[4], "stream")[0]["text"].strip() == "2 True"


def test_completion_through_the_kernel_protocol() -> None:
    from jupyter_client.manager import start_new_kernel

    env = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": str(Path(sys.executable).parent)}
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(REPO))
    try:
        client.execute_interactive("%load_ext kmagic", timeout=60)
        cell = "%%kmodel net\ninput 8x8x1\nconv 8 3 pad"
        reply = client.complete(cell, len(cell), reply=True, timeout=120)["content"]
        assert reply["status"] == "ok"
        assert "padding=" in reply["matches"]
        assert reply["cursor_start"] == len(cell) - 3 and reply["cursor_end"] == len(cell)
        cell = "%%kmodel net\ninput 8\nden"
        assert "dense" in client.complete(cell, len(cell), reply=True, timeout=60)["content"]["matches"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_nbval_fails_a_notebook_whose_magic_fails(tmp_path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("%load_ext kmagic"),
                      nbformat.v4.new_code_cell("%%kmodel net --inptu 8\ndense 2")]
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(notebook))
    env = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
                             str(path)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 1, result.stdout
    assert "KmagicUsageError" in result.stdout and "1 failed" in result.stdout
