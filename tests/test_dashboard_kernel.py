"""The dashboard in real kernels: the Stop button mid-fit on ipykernel 6 and 7 (jupyter_client, the
message the widget's JavaScript sends) and the headless output (nbclient)."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kernel_helpers import kernel_env, user_expression

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SETUP = """
import numpy as np, keras
from kmagic.widgets.dashboard import Dashboard
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
x = np.random.default_rng(0).random((2048, 8)).astype("float32"); y = x.sum(1)
before = [w.copy() for w in model.get_weights()]
dash = Dashboard(refresh_interval=0.05)
"""


EPOCHS = 300
FITS = {
    "callback": f"fit = model.fit(x, y, epochs={EPOCHS}, batch_size=16, verbose=0, callbacks=[dash])",
    "kfit": f"%kfit model x y --epochs {EPOCHS} --batch-size 16\nfit = model_history",
}
K7_PYTHON = os.environ.get("KMAGIC_IPYKERNEL7_PYTHON") or str(ROOT / ".venv-k7" / "bin" / "python")


def _untracked_message_types() -> list[str]:
    """The message types whose status the Jupyter server (and JupyterLab, from its page config) ignores."""
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager

    return list(MappingKernelManager.class_traits()["untracked_message_types"].default())


def _start_kernel(kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """A kernel started as a Jupyter server starts it: its connection file is ``kernel-<id>.json``."""
    from jupyter_client.manager import KernelManager

    name = "python3"
    if kernel == "ipykernel7":
        if not Path(K7_PYTHON).exists():
            pytest.skip(f"no ipykernel 7 environment at {K7_PYTHON} (make kernel-k7 builds it)")
        spec = tmp_path / "kernels" / "kmagic-k7"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [K7_PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel 7)", "language": "python"}))
        monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
        name = "kmagic-k7"
    kernel_id = str(uuid.uuid4())
    km = KernelManager(kernel_name=name, kernel_id=kernel_id,
                       connection_file=str(tmp_path / f"kernel-{kernel_id}.json"))
    km.start_kernel(env=kernel_env(KMAGIC_FRONTEND="widget"), cwd=str(ROOT))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
    except RuntimeError:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc


@pytest.mark.parametrize("fit", sorted(FITS))
@pytest.mark.parametrize("kernel", ["ipykernel6", "ipykernel7"])
def test_stop_button_ends_a_running_fit(kernel: str, fit: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The click's control-channel request ends training at the batch end; the kernel stays busy."""
    km, kc = _start_kernel(kernel, tmp_path, monkeypatch)
    try:
        setup = SETUP + "\n%load_ext kmagic\nimport ipykernel"
        assert kc.execute_interactive(setup, timeout=180)["content"]["status"] == "ok"
        major = int(user_expression(kc, "ipykernel.version_info[0]"))
        assert major == (7 if kernel == "ipykernel7" else 6)
        msg_id = kc.execute(FITS[fit])
        comm_id, route, updates, clicked_at, stopped_at, final, probed = None, None, 0, None, None, None, False
        statuses: list[tuple[str, str]] = []  # (state, parent msg_type) while the cell runs
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status":
                statuses.append((content["execution_state"], msg["parent_header"].get("msg_type", "")))
                if content["execution_state"] == "idle" and msg["parent_header"].get("msg_id") == msg_id:
                    break
            elif kind == "comm_open" and "_esm" in content.get("data", {}).get("state", {}):
                comm_id = content["comm_id"]
                route = content["data"]["state"]["stop_route"]
            elif kind == "comm_msg" and content.get("comm_id") == comm_id and content["data"].get("method") == "custom":
                updates += 1
                status = content["data"]["content"].get("status") or {}
                if updates == 2 and not probed:
                    # A control request whose status the server tracks (extensions poll this one).
                    kc.control_channel.send(kc.session.msg("usage_request", {}))
                    probed = True
                if updates == 3 and clicked_at is None:
                    # Exactly what the widget's JavaScript sends, through the server, on a click.
                    assert "token" in route, route
                    click = kc.session.msg("kernel_info_request", {"kmagic_stop": route["token"]})
                    kc.control_channel.send(click)
                    clicked_at = time.monotonic()
                if status.get("finished") and stopped_at is None:
                    stopped_at, final = time.monotonic(), status
        assert route is not None and route.get("kernel_id") == km.kernel_id, route
        assert clicked_at is not None and stopped_at is not None
        assert stopped_at - clicked_at < 2.0, f"training ended {stopped_at - clicked_at:.2f} s after the click"
        assert final["stop_reason"] == "Stop button" and final["stopped_early"], final
        # Busy for the whole run: the server and JupyterLab ignore the status of untracked
        # message types (the click's); after any other control request's idle, busy comes next.
        untracked = set(_untracked_message_types())
        idles = [parent for state, parent in statuses[:-1] if state == "idle"]
        assert "kernel_info_request" in idles and "usage_request" in idles, statuses
        for index, (state, parent) in enumerate(statuses[:-1]):
            if state == "idle" and parent not in untracked:  # seen as idle: busy again at once
                assert statuses[index + 1] == ("busy", "execute_request"), statuses
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok", reply["content"]
        assert int(user_expression(kc, "len(fit.history['loss'])")) < EPOCHS
        changed = "any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))"
        assert user_expression(kc, changed) == "True"
        assert user_expression(kc, "1 + 1") == "2"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_headless_run_prints_epochs_and_leaves_an_image(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(SETUP.replace("Dashboard(refresh_interval=0.05)", "Dashboard()")),
        nbformat.v4.new_code_cell("fit = model.fit(x[:256], y[:256], epochs=2, verbose=0, callbacks=[dash])"),
    ]
    env_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT)
    os.environ.pop("KMAGIC_FRONTEND", None)
    try:
        NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_before
    outputs = nb.cells[1].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    lines = text.splitlines()
    assert lines[0].startswith("Training") and "2 epochs" in lines[0]
    assert lines[1].startswith("epoch 1/2") and lines[2].startswith("epoch 2/2") and lines[3].startswith("done in")
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) == 1
    mimetypes = {m for o in outputs if o.output_type == "display_data" for m in o.data}
    assert "application/vnd.jupyter.widget-view+json" not in mimetypes  # no widget noise
    assert not [o for o in outputs if o.output_type == "error" or getattr(o, "name", "") == "stderr"
                and "Traceback" in o.get("text", "")]
