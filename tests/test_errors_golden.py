"""Golden error texts: every mistake names its line and column, what was expected and what was received.

``tests/golden/errors.json`` holds one case per distinct mistake: the body,
the error class, the position and the full text (message, hint, caret,
Keras's text). To review a changed wording, regenerate the file and read
the diff; never loosen a case to make it pass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import kmagic
from kmagic.errors import KmagicError

CASES = json.loads((Path(__file__).parent / "golden" / "errors.json").read_text())
NAMESPACE = {"n": 3, "shape": "x"}


def test_there_are_at_least_30_distinct_mistakes() -> None:
    assert len({case["name"] for case in CASES}) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden_error(case: dict) -> None:
    with pytest.raises(KmagicError) as caught:
        kmagic.build(case["body"], namespace=dict(NAMESPACE))
    error = caught.value
    assert type(error).__name__ == case["error"]
    assert (error.line, error.column) == (case["line"], case["column"])
    assert str(error) == case["text"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_error_text_has_position_caret_and_expectation(case: dict) -> None:
    text = case["text"]
    first = text.splitlines()[0]
    assert first.startswith(f"line {case['line']}, column {case['column']}: ")
    assert re.search(r"expected|unknown", first), "the message says what was expected"
    caret_lines = [row for row in text.splitlines() if row.strip() and set(row.strip()) == {"^"}]
    assert caret_lines, "a caret marks the spot"
    source_line = case["body"].splitlines()[case["line"] - 1].replace("\t", " ")
    caret = caret_lines[0]
    assert caret.index("^") - 4 == case["column"] - 1
    assert text.splitlines()[text.splitlines().index(caret) - 1] == "    " + source_line


def test_ipython_display_is_the_message_alone() -> None:
    with pytest.raises(KmagicError) as caught:
        kmagic.parse("input 8\ndens 3")
    shown = caught.value._render_traceback_()
    assert shown == [f"KmagicNameError: {caught.value}"]
    assert "Traceback" not in "\n".join(shown)


def test_parse_errors_need_no_keras() -> None:
    """The errors of the checked program are raised by parse, before any Keras import."""
    parse_only = [case for case in CASES if case["error"] in ("KmagicSyntaxError",)]
    for case in parse_only:
        with pytest.raises(KmagicError) as caught:
            kmagic.parse(case["body"])
        assert str(caught.value) == case["text"]
