"""The docs stand alone: generated tables are current, the README names every module, nothing cites
files outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\b(DSL|MAGICS|DESIGN)\.md\b|/work/shared")


def test_language_reference_tables_match_the_registry() -> None:
    result = subprocess.run([sys.executable, "scripts/make_docs.py", "--check"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_generated_tables_change_with_the_registry(monkeypatch) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    import make_docs

    from kmagic import registry

    monkeypatch.setitem(registry.LAYER_ALIASES, "twice_dense", registry.LayerSpec("twice_dense", "Dense", ("units",)))
    assert "`twice_dense`" in make_docs.layer_table()
    page = (REPO / "docs" / "language.md").read_text(encoding="utf-8")
    assert make_docs.render(page) != page


def test_readme_layout_names_every_module() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    modules = sorted(p for p in (REPO / "kmagic").rglob("*.py") if p.name != "__init__.py" or p.parent.name == "kmagic")
    missing = [str(p.relative_to(REPO)) for p in modules if p.stem not in layout and p.name not in layout]
    assert not missing, f"README's layout does not name: {missing}"


def test_no_doc_docstring_or_test_cites_a_file_outside_the_repository() -> None:
    roots = ["README.md", "docs", "kmagic", "tests", "scripts", "benchmarks", "notebooks/src"]
    files = [p for root in roots for p in ([REPO / root] if (REPO / root).is_file() else (REPO / root).rglob("*"))
             if p.suffix in (".md", ".py", ".txt", ".lark", ".js") and p.is_file()]
    citing = [str(p.relative_to(REPO)) for p in files
              if p.name != "test_docs.py" and OUTSIDE.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert not citing, citing
