"""Driving a notebook in JupyterLab / Notebook 7 through the DOM, as a user would."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

# One entry per rendered token of a cell: its text, classes and computed style.
_TOKENS_JS = r"""
(cell) => {
  const out = [];
  for (const line of cell.querySelectorAll('.jp-InputArea-editor .cm-content .cm-line')) {
    const walk = (node) => {
      if (node.nodeType === Node.TEXT_NODE) {
        if (!node.textContent.trim()) return;
        const owner = node.parentElement;
        const style = getComputedStyle(owner);
        const classes = [];
        for (let el = owner; el && !el.classList.contains('cm-line'); el = el.parentElement) {
          classes.push(...el.classList);
        }
        for (const word of node.textContent.split(/\s+/)) {
          if (word) out.push({text: word, classes, color: style.color,
                              weight: style.fontWeight, italic: style.fontStyle});
        }
        return;
      }
      node.childNodes.forEach(walk);
    };
    walk(line);
  }
  return out;
}
"""


def cells(page: Any) -> Any:
    return page.locator(".jp-Notebook .jp-Cell")


def cell(page: Any, index: int) -> Any:
    found = cells(page).nth(index)
    found.scroll_into_view_if_needed()
    return found


def wait_for_notebook(page: Any, n_cells: int, timeout: float = 60_000) -> None:
    """Wait until the notebook shows ``n_cells`` cells with their editors."""
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=timeout)
    page.wait_for_function(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length >= {n_cells}",
                           timeout=timeout)


def wait_for_kernel_idle(app: Any, timeout: float = 90) -> None:
    """Wait until the server has a session whose kernel is idle (asked over the REST API)."""
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{app.url}api/sessions?token={app.token}", timeout=5) as response:
            sessions = json.load(response)
        states = [session["kernel"].get("execution_state", "") for session in sessions]
        if states and all(state == "idle" for state in states):
            return
        time.sleep(0.3)
    raise AssertionError(f"no idle kernel within {timeout}s (states: {states})")


def tokens(page: Any, index: int) -> list[dict[str, Any]]:
    target = cell(page, index)
    target.locator(".cm-content").wait_for()
    return target.evaluate(_TOKENS_JS)


def kinds(token_list: list[dict[str, Any]]) -> dict[str, set[str]]:
    """``{kind: {texts}}`` for the ``cm-kmodel-<kind>`` classes found."""
    found: dict[str, set[str]] = {}
    for token in token_list:
        for cls in token["classes"]:
            if cls.startswith("cm-kmodel-"):
                found.setdefault(cls.removeprefix("cm-kmodel-"), set()).add(token["text"].strip())
    return found


def style_of(token_list: list[dict[str, Any]], text: str) -> tuple[tuple[str, str, str], ...] | None:
    """The computed (color, weight, style) of each token in the first run of tokens spelling ``text``.

    Languages split text differently (``8x8`` is one kmodel token, ``8`` + ``x8``
    in Python), so this returns one style per token of the run; None if absent.
    """
    for start in range(len(token_list)):
        spelled = ""
        for end in range(start, len(token_list)):
            spelled += token_list[end]["text"]
            if spelled == text:
                return tuple((t["color"], t["weight"], t["italic"]) for t in token_list[start:end + 1])
            if not text.startswith(spelled):
                break
    return None


def prompt(page: Any, index: int) -> str:
    return (cell(page, index).locator(".jp-InputPrompt").inner_text() or "").strip()


def run_cell(page: Any, index: int) -> None:
    """Click into cell ``index`` and press Shift+Enter (does not wait)."""
    target = cell(page, index)
    target.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.press("Shift+Enter")


_DONE = re.compile(r"^\[\d+\]:?$")


def wait_until_run(page: Any, index: int, timeout: float = 180) -> None:
    """Wait until the cell's prompt shows an execution count (``[n]:``), not ``[*]:``."""
    deadline = time.monotonic() + timeout
    seen_busy = False
    while time.monotonic() < deadline:
        text = prompt(page, index)
        seen_busy = seen_busy or "*" in text
        if _DONE.match(text):
            return
        time.sleep(0.2)
    raise AssertionError(f"cell {index} did not finish within {timeout}s (prompt {prompt(page, index)!r})")


def run_and_wait(page: Any, index: int, timeout: float = 180) -> None:
    run_cell(page, index)
    wait_until_run(page, index, timeout)


def output_text(page: Any, index: int) -> str:
    return cell(page, index).locator(".jp-OutputArea").inner_text()


def error_outputs(page: Any, index: int) -> list[str]:
    """Texts of the cell's error outputs (tracebacks, KmagicError messages)."""
    area = cell(page, index).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    texts = [area.nth(i).inner_text() for i in range(area.count())]
    return [text for text in texts if re.search(r"Traceback|Error\b", text)]


def shot(page: Any, folder: Path, name: str, target: Any = None) -> Path:
    """Screenshot of the page (or of ``target``) into ``folder/name.png``."""
    path = folder / f"{name}.png"
    if target is not None:
        target.scroll_into_view_if_needed()
        target.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))
    return path
