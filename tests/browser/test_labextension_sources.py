"""The labextension's data agrees with the Python side (no browser needed).

- The word lists the highlighter ships are kmagic.registry's, in the built bundle.
- Every starter cell offered by the "Insert kmodel starter" commands runs as a
  real ``%%kmodel`` cell and builds its model.
- The package metadata the wheel relies on (name, version, outputDir) is consistent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import EXTENSION_NAME, LABEXT_SRC, REPO

STARTERS = json.loads((LABEXT_SRC / "src" / "starters.json").read_text(encoding="utf-8"))


def test_word_generator_writes_the_registry_lists(tmp_path: Path) -> None:
    from kmagic.registry import word_lists

    script = LABEXT_SRC / "scripts" / "words.py"
    rendered = subprocess.run([sys.executable, "-c", f"import runpy; m = runpy.run_path({str(script)!r}); "
                               "print(m['render'](), end='')"], capture_output=True, text=True, check=True)
    assert json.loads(rendered.stdout) == word_lists()


@pytest.mark.slow  # builds the extension with jlpm when its sources changed
def test_built_bundle_carries_every_registry_word(built_labextension: Path) -> None:
    from kmagic.registry import word_lists

    bundle = "\n".join(path.read_text(encoding="utf-8") for path in (built_labextension / "static").glob("*.js"))
    missing = {kind: [w for w in words if f'"{w}"' not in bundle] for kind, words in word_lists().items()}
    missing = {kind: words for kind, words in missing.items() if words}
    assert not missing, f"words not in the built extension (rebuild it: jlpm --cwd labextension build): {missing}"


def test_package_metadata_matches_the_wheel_layout() -> None:
    from kmagic import __version__

    package = json.loads((LABEXT_SRC / "package.json").read_text(encoding="utf-8"))
    assert package["name"] == EXTENSION_NAME
    assert package["version"] == __version__, "labextension/package.json's version follows kmagic/_version.py"
    assert (LABEXT_SRC / package["jupyterlab"]["outputDir"]).resolve() == REPO / "kmagic" / "labextension"
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    shared = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared["kmagic/labextension"] == f"share/jupyter/labextensions/{EXTENSION_NAME}"
    hook = pyproject["tool"]["hatch"]["build"]["hooks"]["jupyter-builder"]
    assert hook["build-kwargs"]["path"] == "labextension"
    assert package["scripts"][hook["build-kwargs"]["build_cmd"]]
    assert package["scripts"][hook["editable-build-kwargs"]["build_cmd"]]
    assert (LABEXT_SRC / "yarn.lock").stat().st_size > 0, "yarn.lock must be committed"


@pytest.mark.slow
@pytest.mark.parametrize("starter", STARTERS, ids=[s["id"] for s in STARTERS])
def test_starter_cell_builds(shell: Any, starter: dict[str, str]) -> None:
    magic_line, _, body = starter["source"].partition("\n")
    assert magic_line.startswith("%%kmodel "), magic_line
    name = magic_line.split()[1]
    shell.run_cell_magic("kmodel", magic_line.removeprefix("%%kmodel ") + " --quiet", body)
    model = shell.user_ns[name]
    assert model.count_params() > 0
    assert model.optimizer is not None, "a starter compiles its model so %kfit can train it right away"
