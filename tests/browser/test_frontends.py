"""kmagic's whole front end in a real JupyterLab 4 (and Notebook 7) in headless Chromium.

One notebook per front end, driven through the DOM in order: highlighting,
the model card, the live dashboard, its Stop button, the activation explorer,
and no JavaScript errors on the page. Every test runs first in JupyterLab,
then in Notebook 7 when the `notebook` package is installed (else skipped).
Screenshots: artifacts/browser/{lab,notebook}-*.png.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import JupyterApp, open_page
from tests.browser.lab_helpers import (
    cell,
    error_outputs,
    kinds,
    output_text,
    prompt,
    run_and_wait,
    run_cell,
    shot,
    style_of,
    tokens,
    wait_for_kernel_idle,
    wait_for_notebook,
    wait_until_run,
)

pytestmark = [pytest.mark.browser, pytest.mark.kernel, pytest.mark.slow]

EPOCHS = 400
SETUP = """%load_ext kmagic
import numpy as np
rng = np.random.default_rng(0)
X = rng.normal(size=(4000, 64)).astype("float32")
y = (X[:, :8].sum(axis=1) > 0).astype("int32")
units = 64"""
BODY = """# a small classifier for 64 features
input 64 as features
dense {units} relu as hidden
dropout {float('0.1}'[:3])}
dense 64 relu nobias
add @hidden @features
reshape 8x8
flatten
dense 2 softmax
compile adam scce metrics=[accuracy]"""
KMODEL = f"%%kmodel net --seed 1\n{BODY}"
PYTHON_TWIN = f"# the same text in a Python cell\n{BODY}"
FIT = f"w_before = [w.copy() for w in net.get_weights()]\n%kfit net X y --epochs {EPOCHS} --batch-size 16"
CHECK = """import numpy as np
changed = any(not np.allclose(a, b) for a, b in zip(w_before, net.get_weights()))
print(f"EPOCHS_RUN={len(net_history.epoch)} WEIGHTS_CHANGED={changed}")
print(f"PREDICT_SHAPE={net.predict(X[:3], verbose=0).shape}")"""
ACTIVATIONS = "%kactivations net {X[:4]}"
SCRATCH = ""  # typed into by the editing tests, never run
CELLS = [SETUP, KMODEL, PYTHON_TWIN, FIT, CHECK, ACTIVATIONS, SCRATCH]
SETUP_CELL, KMODEL_CELL, TWIN_CELL, FIT_CELL, CHECK_CELL, ACT_CELL, SCRATCH_CELL = range(len(CELLS))

# Every token kind of the language, with words of the cell above that must carry it.
EXPECTED_KINDS = {
    "magic": {"%%kmodel"},
    "option": {"--seed"},
    "comment": {"#"},
    "keyword": {"input", "as", "compile"},
    "layer": {"dense", "dropout", "add", "reshape", "flatten"},
    "activation": {"relu", "softmax", "nobias"},
    "number": {"64", "8x8", "2"},
    "reference": {"@hidden", "@features"},
    "interpolation": {"{units}", "{float('0.1}'[:3])}"},  # a quoted brace does not end it
    "name": {"net", "features", "hidden"},
    "training": {"adam", "scce", "accuracy"},
    "argument": {"metrics"},
}
# Words whose look must differ between the kmodel cell and its Python twin.
RESTYLED = ["dense", "relu", "nobias", "reshape", "flatten", "@hidden", "{units}", "8x8", "adam", "scce"]


@pytest.fixture(scope="module", params=["lab", "notebook"])
def page(request: pytest.FixtureRequest, browser: Any) -> Any:
    app: JupyterApp = request.getfixturevalue("lab" if request.param == "lab" else "notebook7")
    app.write_notebook("kmagic_browser.ipynb", [("code", source) for source in CELLS])
    page = open_page(browser)
    page.goto(app.notebook_url("kmagic_browser.ipynb"))
    wait_for_notebook(page, len(CELLS))
    wait_for_kernel_idle(app)
    page.screenshot_prefix = app.frontend  # type: ignore[attr-defined]
    yield page
    page.context.close()


def _shot(page: Any, artifacts: Path, step: str, target: Any = None) -> None:
    shot(page, artifacts, f"{page.screenshot_prefix}-{step}", target)


def _kind_words(index: int, page: Any) -> dict[str, set[str]]:
    found = kinds(tokens(page, index))
    # comments are one token: keep their first character for the comparison
    if "comment" in found:
        found["comment"] = {text[:1] for text in found["comment"]}
    return found


def test_1_kmodel_cell_is_highlighted_as_kmodel(page: Any, artifacts: Path) -> None:
    kmodel_tokens, python_tokens = tokens(page, KMODEL_CELL), tokens(page, TWIN_CELL)
    found = _kind_words(KMODEL_CELL, page)
    for kind, words in EXPECTED_KINDS.items():
        assert words <= found.get(kind, set()), f"{kind}: expected {words}, found {found.get(kind)}"
    assert not kinds(python_tokens), "the Python cell must not use the kmodel language"

    different = []
    for word in RESTYLED:
        in_kmodel, in_python = style_of(kmodel_tokens, word), style_of(python_tokens, word)
        assert in_kmodel is not None and in_python is not None, f"{word!r} not found in both cells"
        if in_kmodel != in_python:
            different.append(word)
    assert different == RESTYLED, f"styled like Python: {sorted(set(RESTYLED) - set(different))}"
    # the kinds are told apart by colour, not only by class
    colours = {kind: style_of(kmodel_tokens, sorted(words)[0]) for kind, words in EXPECTED_KINDS.items()
               if kind in ("keyword", "layer", "activation", "number", "reference", "interpolation", "comment")}
    assert len(set(colours.values())) == len(colours), colours
    _shot(page, artifacts, "1-highlight")


def test_1b_cell_switches_language_while_typing(page: Any, artifacts: Path) -> None:
    twin = cell(page, TWIN_CELL)
    twin.locator(".cm-content").click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("%%kmodel twin\n")
    twin.locator(".cm-kmodel-layer").first.wait_for(timeout=10_000)
    assert "dense" in kinds(tokens(page, TWIN_CELL))["layer"]
    _shot(page, artifacts, "1b-switched", twin)
    # take the magic line away again: back to Python
    page.keyboard.press("Control+Home")
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Backspace")
    page.wait_for_function(
        "(el) => !el.querySelector('.cm-kmodel-layer')", arg=twin.element_handle(), timeout=10_000)
    assert not kinds(tokens(page, TWIN_CELL))
    page.keyboard.press("Escape")


def test_1d_enter_indents_after_a_block_header(page: Any) -> None:
    scratch = cell(page, SCRATCH_CELL)
    scratch.locator(".cm-content").click()
    page.keyboard.type("%%kmodel scratch\ninput 8\nrepeat 2:\ndense 4 relu\n# done\ndense 1")
    page.keyboard.press("Escape")
    lines = scratch.locator(".cm-line").all_inner_texts()
    assert lines[-3:] == ["    dense 4 relu", "    # done", "    dense 1"], lines
    assert "repeat" in kinds(tokens(page, SCRATCH_CELL))["keyword"]


def _cell_text(page: Any, index: int) -> str:
    return "\n".join(cell(page, index).locator(".cm-line").all_inner_texts())


def test_1e_menu_and_palette_insert_starter_cells(page: Any, artifacts: Path) -> None:
    cell(page, SCRATCH_CELL).click()
    page.keyboard.press("Escape")
    n_before = page.locator(".jp-Notebook .jp-Cell").count()
    # the kmagic menu
    page.locator(".lm-MenuBar-itemLabel", has_text="kmagic").click()
    page.locator(".lm-Menu-itemLabel", has_text="Insert kmodel starter").hover()
    page.locator(".lm-Menu-itemLabel", has_text="CNN image classifier").click()
    page.wait_for_function(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length === {n_before + 1}")
    assert _cell_text(page, n_before).startswith("%%kmodel cnn\n"), _cell_text(page, n_before)
    cell(page, n_before).locator(".cm-kmodel-layer").first.wait_for(timeout=10_000)
    # the command palette
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    palette.wait_for(timeout=10_000)
    palette.fill("Insert kmodel starter: Transformer")
    page.locator(".lm-CommandPalette-item", has_text="Transformer block").first.click()
    page.wait_for_function(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length === {n_before + 2}")
    text = _cell_text(page, n_before + 1)
    assert text.startswith("%%kmodel transformer\n") and "block encoder(" in text, text
    assert "layer" in kinds(tokens(page, n_before + 1))
    _shot(page, artifacts, "1e-starters")


# The theme variable each token kind takes its colour from (JupyterLab's highlight style).
THEME_COLOURS = {
    "keyword": "--jp-mirror-editor-keyword-color",
    "layer": "--jp-mirror-editor-def-color",
    "activation": "--jp-mirror-editor-atom-color",
    "number": "--jp-mirror-editor-number-color",
    "reference": "--jp-mirror-editor-variable-2-color",
    "interpolation": "--jp-mirror-editor-string-2-color",
    "comment": "--jp-mirror-editor-comment-color",
    "magic": "--jp-mirror-editor-meta-color",
}
_RESOLVE_JS = """(names) => names.map((name) => {
  const probe = document.createElement('span');
  probe.style.color = `var(${name})`;
  document.body.appendChild(probe);
  const colour = getComputedStyle(probe).color;
  probe.remove();
  return colour;
})"""


def _pick_theme(page: Any, theme: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=theme).first.click()
    light = "false" if "Dark" in theme else "true"
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached", timeout=20_000)
    page.keyboard.press("Escape")


@pytest.mark.parametrize("theme", ["JupyterLab Dark", "JupyterLab Light"])
def test_1c_colours_follow_the_theme(page: Any, artifacts: Path, theme: str) -> None:
    _pick_theme(page, theme)
    found = kinds(tokens(page, KMODEL_CELL))
    kmodel_tokens = tokens(page, KMODEL_CELL)
    expected = dict(zip(THEME_COLOURS, page.evaluate(_RESOLVE_JS, list(THEME_COLOURS.values())), strict=True))
    for kind, colour in expected.items():
        word = sorted(found[kind])[0]
        (actual,) = {style[0] for style in style_of(kmodel_tokens, word)}
        assert actual == colour, f"{kind} {word!r}: {actual} is not {THEME_COLOURS[kind]} ({colour}) in {theme}"
    _shot(page, artifacts, f"1c-{theme.split()[-1].lower()}", cell(page, KMODEL_CELL))


def test_2_running_kmodel_shows_the_model_card(page: Any, artifacts: Path) -> None:
    run_and_wait(page, SETUP_CELL, timeout=120)
    assert not error_outputs(page, SETUP_CELL), error_outputs(page, SETUP_CELL)
    run_and_wait(page, KMODEL_CELL, timeout=180)
    assert not error_outputs(page, KMODEL_CELL), error_outputs(page, KMODEL_CELL)
    card = cell(page, KMODEL_CELL).locator(".kmagic-card").first
    card.wait_for(timeout=30_000)
    text = card.inner_text()
    for expected in ("dense", "Dense", "Reshape", "(None, 8, 8)"):
        assert expected in text, f"{expected!r} missing from the model card"
    _shot(page, artifacts, "2-model-card", cell(page, KMODEL_CELL))


def _stats(page: Any) -> str:
    return cell(page, FIT_CELL).locator(".kmagic-dash .kmagic-stats").inner_text()


def _epoch_step(stats: str) -> tuple[int, int]:
    epoch = re.search(r"epoch (\d+)/", stats)
    step = re.search(r"step (\d+)/", stats)
    return int(epoch.group(1)) if epoch else 0, int(step.group(1)) if step else 0


def test_3_kfit_shows_a_live_dashboard(page: Any, artifacts: Path) -> None:
    run_cell(page, FIT_CELL)
    dash = cell(page, FIT_CELL).locator(".kmagic-dash").first
    dash.wait_for(timeout=60_000)
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(set(seen)) < 3:
        assert "*" in prompt(page, FIT_CELL), "training ended before the dashboard was seen updating"
        text = _stats(page)
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        time.sleep(0.3)
    assert len(set(seen)) >= 3, f"the dashboard did not update while training: {seen}"
    progress = [_epoch_step(text) for text in seen]
    assert progress == sorted(progress) and progress[-1] > progress[0], progress
    assert dash.locator("canvas").count() >= 1
    _shot(page, artifacts, "3-dashboard-running", cell(page, FIT_CELL))


def test_4_stop_ends_training_early_and_keeps_weights(page: Any, artifacts: Path) -> None:
    dash = cell(page, FIT_CELL).locator(".kmagic-dash").first
    assert "*" in prompt(page, FIT_CELL), "training is no longer running: nothing to stop"
    started = time.monotonic()
    dash.locator(".kmagic-stop").click()
    wait_until_run(page, FIT_CELL, timeout=60)
    assert time.monotonic() - started < 30, "Stop took too long to end training"
    page.wait_for_function("(el) => el.classList.contains('kmagic-done')", arg=dash.element_handle(),
                           timeout=20_000)
    assert "stop" in dash.locator(".kmagic-state").inner_text().lower()
    assert not error_outputs(page, FIT_CELL), error_outputs(page, FIT_CELL)
    _shot(page, artifacts, "4-stopped", cell(page, FIT_CELL))

    run_and_wait(page, CHECK_CELL, timeout=60)
    text = output_text(page, CHECK_CELL)
    match = re.search(r"EPOCHS_RUN=(\d+) WEIGHTS_CHANGED=(\w+)", text)
    assert match, text
    assert 1 <= int(match.group(1)) < EPOCHS, f"training was not stopped early: {text}"
    assert match.group(2) == "True", f"the model lost its trained weights: {text}"
    assert "PREDICT_SHAPE=(3, 2)" in text, text


def test_5_kactivations_renders(page: Any, artifacts: Path) -> None:
    run_and_wait(page, ACT_CELL, timeout=120)
    assert not error_outputs(page, ACT_CELL), error_outputs(page, ACT_CELL)
    view = cell(page, ACT_CELL).locator(".kmagic-activations").first
    view.wait_for(timeout=30_000)
    picture = view.locator("img").first
    picture.wait_for(timeout=30_000)
    overview = picture.get_attribute("src")
    assert overview, "the activation explorer shows no picture"
    # pick one layer: the kernel redraws the picture for it
    select = view.locator("select").first
    labels = [text.strip() for text in select.locator("option").all_inner_texts()]
    hidden = next((label for label in labels if label.startswith("hidden")), None)
    assert hidden, f"layer 'hidden' is not offered: {labels}"
    select.select_option(label=hidden)
    page.wait_for_function("([img, before]) => img.getAttribute('src') !== before",
                           arg=[picture.element_handle(), overview], timeout=30_000)
    assert "hidden" in view.inner_text()
    _shot(page, artifacts, "5-activations", cell(page, ACT_CELL))


# Errors the front end raises by itself, reproduced on the same server with no kmagic
# extension installed: (front end, message, a file the whole stack lies in).
UPSTREAM_ERRORS = [
    # Notebook 7.6.5's shortcuts plugin reads `.schema` of a plugin it has no settings
    # for, on every page load (notebook_core's settingRegistry.pluginChanged handler).
    ("notebook", "Cannot read properties of undefined (reading 'schema')", "/static/notebook/notebook_core."),
]


def _is_upstream(frontend: str, error: str) -> bool:
    message, _, stack = error.removeprefix("pageerror: ").partition("\n")
    frames = [line for line in stack.splitlines() if line.strip().startswith("at ")]
    return any(
        frontend == known_frontend and message == known_message and frames
        and all(where in frame for frame in frames if "http" in frame)
        for known_frontend, known_message, where in UPSTREAM_ERRORS
    )


def test_6_no_javascript_errors(page: Any, artifacts: Path) -> None:
    _shot(page, artifacts, "6-final")
    ours = [error for error in page.js_errors if not _is_upstream(page.screenshot_prefix, error)]
    assert ours == [], "\n\n".join(ours)
