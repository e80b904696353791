"""One version: kmagic/_version.py is the source; the JupyterLab extension's package.json follows it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kmagic

REPO = Path(__file__).resolve().parents[1]


def test_labextension_version_follows_the_python_package() -> None:
    package = json.loads((REPO / "labextension" / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == kmagic.__version__


def test_the_version_is_read_from_one_file() -> None:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and 'path = "kmagic/_version.py"' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]\d+|rc\d+)?", kmagic.__version__)
