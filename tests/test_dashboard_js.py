"""The dashboard's JavaScript in headless Chromium, driven by a stand-in anywidget model.

The page loads ``static/dashboard.js`` as an ES module, renders it with a fake
``model`` (get/on/off/send), feeds it the messages a real fit sent, and checks
what a user sees: stats, curves on canvases, the NaN warning, the Stop button's
message. (The end-to-end run in JupyterLab is tests/browser.)
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kmagic.widgets.dashboard import Dashboard

CHROMIUM = os.environ.get("KMAGIC_CHROMIUM", "/usr/bin/chromium")
STATIC = Path(__file__).resolve().parents[1] / "kmagic/widgets/static"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("node") is None,
                                                   reason="needs Chromium")]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>{css}</style></head>
<body style="width:1000px"><div id="host"></div>
<script type="module">
import widget from "./dashboard.js";
const handlers = {{}};
const state = {state};
window.sent = [];
window.model = {{
  get: (k) => state[k],
  set: (k, v) => {{ state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); }},
  on: (ev, f) => {{ (handlers[ev] = handlers[ev] || []).push(f); }},
  off: (ev, f) => {{ handlers[ev] = (handlers[ev] || []).filter((g) => g !== f); }},
  send: (msg) => window.sent.push(msg),
  save_changes: () => {{}},
}};
window.feed = (msg) => (handlers["msg:custom"] || []).forEach((f) => f(msg, []));
widget.render({{ model: window.model, el: document.getElementById("host") }});
window.ready = true;
</script></body></html>"""


def _messages() -> tuple[list[dict[str, Any]], Dashboard]:
    """The custom messages a real (tiny) fit sends, one per batch, with a NaN at the end."""
    from kmagic._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(8, activation="relu"), k.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    dash = Dashboard(refresh_interval=0, frontend="widget", final_image=False, batch_size=8)
    model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0, callbacks=[dash])
    return [m["content"] for m in dash.widget.comm.sent if m.get("method") == "custom"], dash


def test_dashboard_javascript_draws_and_sends_stop(tmp_path: Path, comms: list) -> None:
    """``comms`` (conftest) records what the widget sends instead of a kernel."""
    from playwright.sync_api import sync_playwright

    messages, dash = _messages()
    shutil.copy(STATIC / "dashboard.js", tmp_path / "dashboard.js")
    state = {"title": "Training test", "status": {}, "metrics": [], "stop_requested": False, "note": ""}
    (tmp_path / "index.html").write_text(PAGE.format(css=(STATIC / "dashboard.css").read_text(),
                                                     state=json.dumps(state)))
    errors: list[str] = []

    def drive() -> None:
        """Sync Playwright refuses to run where an asyncio loop is running (kernel tests leave one)."""
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking",
                                                                          "--allow-file-access-from-files"])
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto((tmp_path / "index.html").as_uri())
            page.wait_for_function("window.ready === true", timeout=10_000)
            assert page.evaluate("window.sent") == [{"type": "sync"}]  # a new view asks for everything
            # The kernel's reply to the sync (nothing recorded yet), then the updates up to mid-training.
            page.evaluate("(m) => window.feed(m)", {"type": "reset", "points": {
                "batch": {"start": 0, "x": [], "y": {}}, "epoch": {"start": 0, "x": [], "y": {}},
                "lr": {"start": 0, "points": []}}})
            half = len(messages) // 2
            for message in messages[:half]:
                page.evaluate("(m) => window.feed(m)", message)
            page.wait_for_timeout(200)
            stats = page.inner_text(".kmagic-stats")
            assert "epoch" in stats and "step" in stats and "samples/s" in stats, stats
            assert page.locator(".kmagic-chart canvas").count() == 2  # loss, accuracy
            assert page.inner_text(".kmagic-state") == "running"
            # Canvases hold drawn pixels (curves), not just a blank area.
            inked = page.evaluate("""() => [...document.querySelectorAll('.kmagic-chart canvas')].map((c) => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })""")
            assert all(n > 500 for n in inked), inked
            # The Stop button sends exactly what the kernel handles.
            page.click(".kmagic-stop")
            assert page.evaluate("window.sent")[-1] == {"type": "stop"}
            assert page.is_disabled(".kmagic-stop")
            # A redraw before the kernel acknowledged the click keeps the button in its "Stopping…" state;
            # then the kernel has it (stop_requested), still "Stopping…" until training ends.
            page.evaluate("(m) => window.feed(m)", messages[half])
            page.wait_for_timeout(100)
            assert page.inner_text(".kmagic-stop") == "Stopping…" and page.is_disabled(".kmagic-stop")
            page.evaluate("window.model.set('stop_requested', true)")
            page.wait_for_timeout(100)
            assert page.inner_text(".kmagic-stop") == "Stopping…" and page.is_disabled(".kmagic-stop")
            # The rest of the fit, then a NaN status: the warning shows; the end state shows.
            for message in messages[half:]:
                page.evaluate("(m) => window.feed(m)", message)
            final = dict(messages[-1]["status"], nan_detected=True, nan_at=[3, 2], stopped_early=True,
                         stop_reason="Stop button", stopped_at=[3, 2], restored_from=[3, 1])
            page.evaluate("(m) => window.feed(m)", {"type": "update", "status": final})
            page.evaluate("window.model.set('stop_requested', false)")  # what the kernel does at the end
            page.wait_for_timeout(200)
            warning = page.inner_text(".kmagic-warn")
            assert "NaN" in warning and "restored to after batch 1 of epoch 3" in warning
            assert page.is_visible(".kmagic-warn")
            assert page.inner_text(".kmagic-state") == "stopped at epoch 3, batch 2: Stop button"
            assert not page.is_visible(".kmagic-stop")  # no "Stopping…" left behind once training ended
            assert page.locator(".kmagic-dash.kmagic-done").count() == 1
            assert f"at epoch {dash.history.best_epoch}" in page.inner_text(".kmagic-stats")
            # Toggles redraw without errors; a gap in the offsets makes the view ask for everything again.
            page.click("text=log scale")
            page.evaluate("(m) => window.feed(m)", {"type": "update", "points": {
                "batch": {"start": 10_000, "x": [9.0], "y": {"loss": [0.1]}}}})
            assert page.evaluate("window.sent")[-1] == {"type": "sync"}
            page.screenshot(path=str(tmp_path / "dashboard.png"))
            browser.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(drive).result()
    assert errors == []
