"""The dashboard's Stop button mid-fit, in Chromium, where users are.

The matrix: {JupyterLab 4.6 (notebook opened by URL), Notebook 7.6 opened by URL,
Notebook 7.6 created from the file browser (New → kernel, the file-browser tab kept
open)} × {ipykernel 6.31 (kernelspec ``python3``), ipykernel 7.4 (``kmagic-k7``, built
by ``make kernel-k7``)} × {``%kfit``, ``model.fit(..., callbacks=[kmagic.Dashboard()])``}.

Each fit is stopped by a real click while it trains: the cell must end normally, early,
with trained weights, and while the fit runs both the page's kernel status and the
server's ``execution_state`` must stay ``busy``. Screenshots: artifacts/browser/stop-*.png.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import K7_DISPLAY, K7_KERNEL, K7_PYTHON, open_page, running_jupyter
from tests.browser.lab_helpers import cell, error_outputs, output_text, prompt, run_and_wait, run_cell, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EPOCHS = 300
SETUP = """%load_ext kmagic
import numpy as np, ipykernel, kmagic
from kmagic.widgets import stop_route
rng = np.random.default_rng(0)
X = rng.normal(size=(4000, 16)).astype("float32")
y = (X[:, :4].sum(axis=1) > 0).astype("int32")
print("IPYKERNEL", ipykernel.version_info[0])"""
KMODEL = """%%kmodel net --seed 1
input 16
dense 64 relu
dense 2 softmax
compile adam scce metrics=[accuracy]"""
KFIT = f"""before = [w.copy() for w in net.get_weights()]
%kfit net X y --epochs {EPOCHS} --batch-size 16"""
CHECK_KFIT = """changed = any(not np.allclose(a, b) for a, b in zip(before, net.get_weights()))
print(f"RUN={len(net_history.epoch)} CHANGED={changed} CLICK={stop_route.last_request.get('stopped')}")"""
CALLBACK = f"""before = [w.copy() for w in net.get_weights()]
dash = kmagic.Dashboard()
fit = net.fit(X, y, epochs={EPOCHS}, batch_size=16, verbose=0, callbacks=[dash])"""
CHECK_CALLBACK = """changed = any(not np.allclose(a, b) for a, b in zip(before, net.get_weights()))
print(f"RUN={len(fit.epoch)} CHANGED={changed} CLICK={stop_route.last_request.get('stopped')} REASON={dash.history.stop_reason}")"""
CELLS = [SETUP, KMODEL, KFIT, CHECK_KFIT, CALLBACK, CHECK_CALLBACK]
SETUP_CELL, KMODEL_CELL, KFIT_CELL, CHECK_KFIT_CELL, CALLBACK_CELL, CHECK_CALLBACK_CELL = range(len(CELLS))
KERNELS = {"ipykernel6": ("python3", "Python 3 (ipykernel)", 6), "ipykernel7": (K7_KERNEL, K7_DISPLAY, 7)}

# The notebook panel of the test's notebook (not whatever tab has the focus).
_PANEL_JS = """(path) => {
  for (const w of window.jupyterapp.shell.widgets("main")) if (w.context && w.context.path === path) return w;
  return null;
}"""
_PAGE_STATUS_JS = f"""(path) => {{
  const w = ({_PANEL_JS})(path);
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return kernel ? kernel.status : null;
}}"""
# Records every status message the page's kernel connection receives, with what it answers.
_RECORD_STATUS_JS = f"""(path) => {{
  const kernel = ({_PANEL_JS})(path).sessionContext.session.kernel;
  window.kmagicStatusLog = [];
  kernel.iopubMessage.connect((_, msg) => {{
    if (msg.header.msg_type === "status") window.kmagicStatusLog.push(
      [performance.now(), msg.content.execution_state, msg.parent_header.msg_type || "", msg.parent_header.subshell_id || ""]);
  }});
  return kernel.id;
}}"""
_INSERT_CELLS_JS = """async ([path, sources]) => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (panel.context.path !== path) throw new Error(`the new tab shows ${panel.context.path}, not ${path}`);
  await panel.context.ready;  // the file's content is in: inserted cells are not replaced by it
  await panel.sessionContext.ready;
  panel.content.model.sharedModel.insertCells(0, sources.map((source) => ({cell_type: "code", source})));
}"""


@pytest.fixture(scope="module", params=["lab", "notebook", "notebook-new"])
def server(request: pytest.FixtureRequest, built_labextension: Path, browser: Any) -> Any:
    with running_jupyter("lab" if request.param == "lab" else "notebook", built_labextension) as app:
        app.mode = request.param  # type: ignore[attr-defined]
        yield app


@pytest.fixture(params=sorted(KERNELS))
def page(request: pytest.FixtureRequest, server: Any, browser: Any) -> Any:
    kernel, display, _major = KERNELS[request.param]
    if kernel == K7_KERNEL and not K7_PYTHON.exists():
        pytest.skip(f"no ipykernel 7 environment at {K7_PYTHON} (make kernel-k7 builds it)")
    page = open_page(browser)
    page.label = f"stop-{server.mode}-{request.param}"  # type: ignore[attr-defined]
    page.kernel_major = _major  # type: ignore[attr-defined]
    if server.mode == "notebook-new":
        # As a user does: the file browser's New menu; the notebook opens in a second tab and
        # the file-browser tab stays open (it holds its own connection to the kernel).
        page.goto(f"{server.url}tree?token={server.token}")
        page.get_by_text("New", exact=True).first.click()
        with page.context.expect_page() as opened:
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(display)}$")).click()
        notebook = opened.value
        notebook.js_errors = page.js_errors  # type: ignore[attr-defined]
        notebook.on("pageerror", lambda exc: page.js_errors.append(f"pageerror: {exc}"))
        notebook.on("console", lambda msg: page.js_errors.append(f"console.error: {msg.text}")
                    if msg.type == "error" else None)
        notebook.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=90_000)
        notebook.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=30_000)
        path = urllib.parse.unquote(notebook.url.split("/notebooks/", 1)[1].split("?", 1)[0])
        notebook.evaluate(_INSERT_CELLS_JS, [path, CELLS])
        notebook.label, notebook.kernel_major = page.label, _major  # type: ignore[attr-defined]
        target = notebook
    else:
        name = f"stop_{request.param}.ipynb"
        server.write_notebook(name, [("code", source) for source in CELLS], kernel=kernel, display_name=display)
        # ?reset: a fresh JupyterLab workspace, without the previous test's notebook
        page.goto(server.notebook_url(name) + ("&reset" if server.mode == "lab" else ""))
        target, path = page, name
    target.wait_for_function(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {len(CELLS)}",
                             timeout=60_000)
    target.notebook_path = path  # type: ignore[attr-defined]
    _wait_for_page_status(target, "idle", timeout=120)
    target.kernel_id = target.evaluate(_RECORD_STATUS_JS, path)  # type: ignore[attr-defined]
    yield target
    page.context.close()


def _wait_for_page_status(page: Any, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(_PAGE_STATUS_JS, page.notebook_path) == state:
            return
        time.sleep(0.3)
    now = page.evaluate(_PAGE_STATUS_JS, page.notebook_path)
    raise AssertionError(f"the page's kernel never became {state!r} (now {now!r})")


def _server_state(app: Any, kernel_id: str) -> str:
    with urllib.request.urlopen(f"{app.url}api/kernels/{kernel_id}?token={app.token}", timeout=5) as response:
        return str(json.load(response).get("execution_state", ""))


def _stats(page: Any, index: int) -> str:
    return cell(page, index).locator(".kmagic-dash .kmagic-stats").first.inner_text()


def _stop_mid_fit(page: Any, server: Any, index: int, artifacts: Path, name: str) -> dict[str, float]:
    """Run the fit cell, watch it train, click Stop; returns timings. Asserts busy throughout."""
    run_cell(page, index)
    dash = cell(page, index).locator(".kmagic-dash").first
    dash.wait_for(timeout=90_000)
    button = dash.locator(".kmagic-stop")
    samples: list[tuple[float, str | None, str]] = []

    def sample() -> None:
        samples.append((time.monotonic(), page.evaluate(_PAGE_STATUS_JS, page.notebook_path),
                        _server_state(server, page.kernel_id)))

    # Training runs: wait for the dashboard to show two different progress lines.
    seen: set[str] = set()
    deadline = time.monotonic() + 90
    while len(seen) < 2 and time.monotonic() < deadline:
        assert "*" in prompt(page, index), "training ended before it could be stopped"
        text = _stats(page, index)
        if "step" in text:
            seen.add(text)
        sample()
        time.sleep(0.3)
    assert len(seen) >= 2, f"the dashboard did not show training progress: {seen}"
    assert button.is_enabled(), f"the Stop button is disabled: {button.get_attribute('title')}"
    for _ in range(5):
        sample()
        time.sleep(0.2)
    clicked = time.monotonic()
    button.click()
    stopped_shown = None
    while "*" in prompt(page, index) and time.monotonic() - clicked < 60:
        sample()
        if stopped_shown is None and "stop" in dash.locator(".kmagic-state").inner_text().lower():
            stopped_shown = time.monotonic()
        time.sleep(0.2)
    done = time.monotonic()
    assert re.match(r"^\[\d+\]:?$", prompt(page, index)), f"the cell still runs {done - clicked:.0f} s after Stop"
    assert not error_outputs(page, index), error_outputs(page, index)
    # Busy for the whole run: every sample up to 1 s before the cell's end (the end's own
    # idle may reach the page before the prompt changes).
    during = [(at - clicked, mine, theirs) for at, mine, theirs in samples if at < done - 1.0]
    not_busy = [s for s in during if s[1] != "busy" or s[2] != "busy"]
    log = page.evaluate("window.kmagicStatusLog.splice(0)")
    assert during and not not_busy, (f"the kernel was reported idle mid-fit (s after click, page, server): "
                                     f"{not_busy}\nstatus messages (ms, state, parent type, subshell): {log}")
    # The button never stays "Stopping…": training ended, so it is gone or says so.
    page.wait_for_function("(b) => b.offsetParent === null || b.textContent !== 'Stopping…'",
                           arg=button.element_handle(), timeout=15_000)
    shot(page, artifacts, f"{page.label}-{name}", cell(page, index))
    # One output per view: the live front end shows the dashboard widget alone, not also its image.
    assert cell(page, index).locator(".kmagic-dash").count() == 1
    assert cell(page, index).locator(".jp-OutputArea-output img").count() == 0, "the final image beside the widget"
    return {"click_to_cell_end": done - clicked,
            "click_to_stopped_status": (stopped_shown - clicked) if stopped_shown else float("nan")}


def _check(page: Any, index: int) -> dict[str, str]:
    run_and_wait(page, index, timeout=60)
    text = output_text(page, index)
    return dict(re.findall(r"(\w+)=(\S+)", text))


def test_stop_mid_fit(page: Any, server: Any, artifacts: Path) -> None:
    run_and_wait(page, SETUP_CELL, timeout=180)
    assert f"IPYKERNEL {page.kernel_major}" in output_text(page, SETUP_CELL), output_text(page, SETUP_CELL)
    run_and_wait(page, KMODEL_CELL, timeout=180)
    assert not error_outputs(page, KMODEL_CELL), error_outputs(page, KMODEL_CELL)

    timings = {"kfit": _stop_mid_fit(page, server, KFIT_CELL, artifacts, "kfit")}
    found = _check(page, CHECK_KFIT_CELL)
    assert 1 <= int(found["RUN"]) < EPOCHS and found["CHANGED"] == "True" and found["CLICK"] == "True", found

    timings["callback"] = _stop_mid_fit(page, server, CALLBACK_CELL, artifacts, "callback")
    found = _check(page, CHECK_CALLBACK_CELL)
    assert 1 <= int(found["RUN"]) < EPOCHS and found["CHANGED"] == "True" and found["CLICK"] == "True", found
    assert "REASON=Stop button" in output_text(page, CHECK_CALLBACK_CELL), output_text(page, CHECK_CALLBACK_CELL)
    print(f"{page.label}: " + ", ".join(f"{fit} {k} {v:.1f}s" for fit, t in timings.items() for k, v in t.items()))
    _follows_a_theme_switch(page, KFIT_CELL)
    ours = [e for e in page.js_errors if "kmagic" in e.lower() or "dashboard" in e.lower()]
    assert not ours, "\n".join(ours)


_TEXT_LUMINANCE_JS = """(el) => {
  const [r, g, b] = getComputedStyle(el).color.match(/\\d+/g).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""


def _follows_a_theme_switch(page: Any, index: int) -> None:
    """The finished dashboard's text turns light on JupyterLab Dark and dark again on Light."""
    status = cell(page, index).locator(".kmagic-dash .kmagic-stats").first
    for theme, light_text in (("JupyterLab Dark", True), ("JupyterLab Light", False)):
        page.evaluate("(t) => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", theme)
        page.wait_for_function("(t) => document.body.dataset.jpThemeName === t", arg=theme, timeout=30_000)
        page.wait_for_timeout(500)
        luminance = status.evaluate(_TEXT_LUMINANCE_JS)
        assert (luminance > 0.5) == light_text, f"{theme}: dashboard text luminance {luminance:.2f}"
