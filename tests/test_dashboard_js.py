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
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kmagic.widgets.dashboard import Dashboard

CHROMIUM = os.environ.get("KMAGIC_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "kmagic/widgets/static"

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists() or shutil.which("node") is None,
                                    reason="needs Chromium")
TYPES = {"int": int, "number": (int, float), "string": str, "bool": bool, "list": list, "object": dict,
         "null": type(None)}


def documented_schema() -> dict[str, Any]:
    """The message schema, from the one place it is written down: docs/dashboard.md."""
    text = (ROOT / "docs/dashboard.md").read_text()
    section = text.split("### Messages between the kernel and the view", 1)[1]
    return json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))


def check_fields(value: dict[str, Any], fields: dict[str, str], where: str) -> None:
    """``value`` has exactly the documented fields, each of a documented type."""
    assert set(value) == set(fields), f"{where}: fields {sorted(value)} != documented {sorted(fields)}"
    for name, kinds in fields.items():
        allowed = tuple(TYPES[k] for k in kinds.split("|"))
        item = value[name]
        ok = isinstance(item, allowed) and not (isinstance(item, bool) and bool not in allowed)
        assert ok, f"{where}.{name} = {item!r}, documented as {kinds}"


def check_message(message: dict[str, Any], schema: dict[str, Any], direction: str = "kernel to view") -> None:
    check_fields(message, schema[direction][message["type"]], message["type"])
    if "status" in message:
        check_fields(message["status"], schema["status"], "status")
    for kind, part in message.get("points", {}).items():
        check_fields(part, schema["points"][kind], f"points.{kind}")
        for name, values in part.get("y", {}).items():
            assert len(values) == len(part["x"]), f"points.{kind}.y.{name} not aligned with x"

PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>{css}</style></head>
<body style="width:1000px"><div id="host"></div>{config}
<script>
// The Jupyter server's kernel WebSocket, played by the page: records what the Stop button
// sends and answers each request on its channel, as the kernel does.
window.sockets = [];
window.WebSocket = class {{
  constructor(url) {{ this.url = url; this.sent = []; window.sockets.push(this); setTimeout(() => this.onopen(), 0); }}
  send(data) {{
    const msg = JSON.parse(data);
    this.sent.push(msg);
    const reply = {{channel: msg.channel, header: {{msg_type: "kernel_info_reply"}}, parent_header: msg.header, content: {{}}}};
    setTimeout(() => this.onmessage({{data: JSON.stringify(reply)}}), 0);
  }}
  close() {{ this.closed = true; }}
}};
window.fetch = async () => ({{status: 200}});
</script>
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


def test_recorded_messages_follow_the_documented_schema(comms: list) -> None:
    """Every message a real fit sends (updates, and the reply to a view's sync) matches docs/dashboard.md,
    and the JavaScript sends only documented messages and reads only documented status fields."""
    schema = documented_schema()
    messages, dash = _messages()
    assert len(messages) > 5
    dash.widget._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "sync"}}}, "buffers": []})
    reset = dash.widget.comm.custom()[-1]
    assert reset["type"] == "reset"
    for message in [*messages, reset]:
        check_message(message, schema)
    check_fields(dict(dash.widget.status), schema["status"], "widget state status")
    source = (STATIC / "dashboard.js").read_text()
    sent = set(re.findall(r'model\.send\(\{ type: "(\w+)" \}\)', source))
    assert sent == set(schema["view to kernel"]) - {"stop"}  # the button uses the control channel instead
    handled = set(re.findall(r'msg\.type === "(\w+)"', source)) | {"update"}
    assert handled == set(schema["kernel to view"])
    read = set(re.findall(r"\b(?:s|status)\.([a-z_]+)\b", source))
    assert read and read <= set(schema["status"]), read - set(schema["status"])


JUPYTER_CONFIG = ('<script id="jupyter-config-data" type="application/json">'
                  '{"baseUrl": "http://127.0.0.1:8888/lab-base/", "wsUrl": "", "token": "s3cret"}</script>')


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_stop_button_says_why_it_cannot_work_before_a_click(tmp_path: Path) -> None:
    """No Jupyter server page (VS Code, Colab), or a kernel without a route: disabled, with reason and cure."""
    from playwright.sync_api import sync_playwright

    shutil.copy(STATIC / "dashboard.js", tmp_path / "dashboard.js")
    cases = {
        "no-server-page": ({"kernel_id": "0c8d6e62-5b1c-4e0e-9d7a-2f1f3c1a7b10", "token": "t"}, "", "not a Jupyter server page"),
        "no-route": ({"reason": "This kernel was not started by a Jupyter server. Interrupt the kernel instead."},
                     JUPYTER_CONFIG, "not started by a Jupyter server"),
    }
    for name, (route, config, _why) in cases.items():
        state = {"title": "t", "status": {"epochs": 5, "epoch": 1}, "metrics": [], "stop_requested": False,
                 "note": "", "stop_route": route}
        (tmp_path / f"{name}.html").write_text(PAGE.format(css=(STATIC / "dashboard.css").read_text(),
                                                           state=json.dumps(state), config=config))
    seen: dict[str, dict[str, Any]] = {}

    def drive() -> None:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking",
                                                                          "--allow-file-access-from-files"])
            page = browser.new_page()
            for name in cases:
                page.goto((tmp_path / f"{name}.html").as_uri())
                page.wait_for_function("window.ready === true", timeout=10_000)
                page.wait_for_timeout(100)
                page.click(".kmagic-stop", force=True)  # a click on the disabled button does nothing
                seen[name] = {"disabled": page.is_disabled(".kmagic-stop"), "text": page.inner_text(".kmagic-stop"),
                              "title": page.get_attribute(".kmagic-stop", "title"),
                              "note": page.inner_text(".kmagic-stop-note"), "sockets": page.evaluate("window.sockets.length")}
            browser.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(drive).result()
    for name, (_route, _config, why) in cases.items():
        got = seen[name]
        assert got["disabled"] and got["text"] == "■ Stop" and got["sockets"] == 0, (name, got)
        assert why in got["title"] and why in got["note"] and "Interrupt the kernel" in got["note"], (name, got)


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_dashboard_javascript_draws_and_sends_stop(tmp_path: Path, comms: list) -> None:
    """``comms`` (conftest) records what the widget sends instead of a kernel."""
    from playwright.sync_api import sync_playwright

    messages, dash = _messages()
    shutil.copy(STATIC / "dashboard.js", tmp_path / "dashboard.js")
    state = {"title": "Training test", "status": {}, "metrics": [], "stop_requested": False, "note": "",
             "stop_route": {"kernel_id": "0c8d6e62-5b1c-4e0e-9d7a-2f1f3c1a7b10", "token": "t0k3n"}}
    (tmp_path / "index.html").write_text(PAGE.format(css=(STATIC / "dashboard.css").read_text(),
                                                     state=json.dumps(state), config=JUPYTER_CONFIG))
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
            # The Stop button sends exactly what the kernel handles: a kernel_info_request on the
            # control channel of its kernel's WebSocket, carrying the dashboard's token.
            page.click(".kmagic-stop")
            assert page.is_disabled(".kmagic-stop")
            page.wait_for_function("window.sockets.length === 1 && window.sockets[0].sent.length === 1")
            socket = page.evaluate("({url: window.sockets[0].url, sent: window.sockets[0].sent})")
            assert socket["url"].startswith("ws://127.0.0.1:8888/lab-base/api/kernels/0c8d6e62-5b1c-4e0e-9d7a-2f1f3c1a7b10"
                                            "/channels?session_id="), socket["url"]
            assert socket["url"].endswith("&token=s3cret"), socket["url"]
            (request,) = socket["sent"]
            assert request["channel"] == "control" and request["header"]["msg_type"] == "kernel_info_request"
            assert request["content"] == {"kmagic_stop": "t0k3n"}
            assert {"type": "stop"} not in page.evaluate("window.sent")  # no comm message: it would wait
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
            # Every message the view received matches the documented schema.
            for message in messages:
                check_message(message, documented_schema())
            # Toggles redraw without errors; a gap in the offsets makes the view ask for everything again.
            page.click("text=log scale")
            page.click("text=log scale")
            page.evaluate("(m) => window.feed(m)", {"type": "update", "points": {
                "batch": {"start": 10_000, "end": 10_001, "x": [9.0], "y": {"loss": [0.1]}}}})
            assert page.evaluate("window.sent")[-1] == {"type": "sync"}
            _check_stopped_axis_thinned_reset_and_theme(page)
            page.screenshot(path=str(tmp_path / "dashboard.png"))
            browser.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(drive).result()
    assert errors == []


INKED_RIGHT = """() => { const c = document.querySelector('.kmagic-chart canvas'), ctx = c.getContext('2d');
  const d = ctx.getImageData(0, 0, c.width, c.height).data; let right = 0;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const i = 4 * (y * c.width + x);  // the per-batch curve's colour (light blue, #9ecae1)
    if (d[i + 3] > 100 && Math.abs(d[i] - 158) < 40 && Math.abs(d[i + 1] - 202) < 40 && d[i + 2] > 180) right = Math.max(right, x);
  }
  return right / c.width; }"""
LIGHT_PIXELS = """() => { let n = 0; for (const c of document.querySelectorAll('.kmagic-chart canvas')) {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 150 && d[i] > 235 && d[i + 1] > 235 && d[i + 2] > 235) n++; }
  return n; }"""


def _run(planned: int, ran: int, steps: int, finished: bool, thin_to: int | None = None) -> dict[str, Any]:
    """A reset message for a run of ``ran`` epochs of ``planned`` (stopped early when finished)."""
    n = ran * steps
    index = list(range(n)) if thin_to is None else [round(i * (n - 1) / (thin_to - 1)) for i in range(thin_to)]
    status = {"epoch": ran, "epochs": planned, "step": steps, "steps": steps, "progress": ran / planned,
              "epochs_run": ran, "finished": finished, "stopped_early": finished, "stop_reason": "Stop button",
              "stopped_at": [ran, steps], "elapsed": 3.0}
    return {"type": "reset", "status": status, "metrics": ["loss"], "points": {
        "batch": {"start": 0, "end": n, "x": [(i + 1) / steps for i in index],
                  "y": {"loss": [1.0 / (1 + (i + 1) / steps) for i in index]}},
        "epoch": {"start": 0, "end": ran, "x": list(range(1, ran + 1)), "y": {"loss": [1.0 / (1 + e) for e in range(1, ran + 1)]}},
        "lr": {"start": 0, "end": 0, "points": []}}}


def _check_stopped_axis_thinned_reset_and_theme(page: Any) -> None:
    """After an early stop the x-axis spans the epochs that ran; a thinned reset takes later
    updates at its ``end``; a theme switch redraws the canvases in the new colours."""
    page.evaluate("(m) => window.feed(m)", _run(planned=300, ran=6, steps=20, finished=False))
    page.wait_for_timeout(150)
    running = page.evaluate(INKED_RIGHT)
    page.evaluate("(m) => window.feed(m)", _run(planned=300, ran=6, steps=20, finished=True))
    page.wait_for_timeout(150)
    stopped = page.evaluate(INKED_RIGHT)
    assert running < 0.2 and stopped > 0.85, (running, stopped)  # planned axis while running, ran after a stop
    # A reset thinned to 50 of 120 points covers 120: an update starting at 120 is appended, no sync.
    sent = len(page.evaluate("window.sent"))
    page.evaluate("(m) => window.feed(m)", _run(planned=300, ran=6, steps=20, finished=False, thin_to=50))
    page.evaluate("(m) => window.feed(m)", {"type": "update", "points": {
        "batch": {"start": 120, "end": 121, "x": [6.05], "y": {"loss": [0.2]}}}})
    assert len(page.evaluate("window.sent")) == sent
    page.evaluate("(m) => window.feed(m)", {"type": "update", "points": {
        "batch": {"start": 125, "end": 126, "x": [6.3], "y": {"loss": [0.2]}}}})
    assert page.evaluate("window.sent")[-1] == {"type": "sync"}
    # Theme: JupyterLab switches <body>'s data-jp-theme-light and its --jp-* variables.
    page.add_style_tag(content='body[data-jp-theme-light="false"] { background: #111; '
                                "--jp-ui-font-color1: #ffffff; --jp-border-color2: #f0f0f0; }")
    page.evaluate("document.body.dataset.jpThemeLight = 'true'")
    page.wait_for_timeout(400)
    light = page.evaluate(LIGHT_PIXELS)
    page.evaluate("document.body.dataset.jpThemeLight = 'false'")
    page.wait_for_timeout(500)
    dark = page.evaluate(LIGHT_PIXELS)
    assert light < 20 and dark > 200, (light, dark)  # axis labels and grid redrawn in the dark theme's colours
