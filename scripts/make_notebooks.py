"""Write the tutorial notebooks (notebooks/*.ipynb) and the concept map (docs/concepts.md).

The notebooks' text lives in ``notebooks/src/NN_name.txt`` as plain cells
separated by marker lines::

    #- md                          a Markdown cell
    #- code                        a code cell
    #- code check                  ... whose output nbval compares (adds '# NBVAL_CHECK_OUTPUT')
    #- code raises                 ... tagged 'raises-exception' (the cell must fail; see 09_errors)
    #- code concept=loss.mse,...   ... that shows these concepts (docs/concepts.md links to it)

Usage (from the repository root)::

    python scripts/make_notebooks.py             # write notebooks whose cells changed, and docs/concepts.md
    python scripts/make_notebooks.py --execute   # ... then run the changed ones in place (outputs committed)
    python scripts/make_notebooks.py --execute --all   # run every notebook again
    python scripts/make_notebooks.py --check     # exit 1 if a notebook or the concept map is out of date

A notebook whose cell sources are unchanged keeps its stored outputs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "notebooks" / "src"
NOTEBOOKS = REPO / "notebooks"
CONCEPT_MAP = REPO / "docs" / "concepts.md"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"

#: The concepts the tutorials must teach (issue 3), in the order of docs/concepts.md.
CONCEPTS: dict[str, tuple[str, str]] = {
    "layer.dense": ("Layers", "Dense"),
    "layer.conv2d": ("Layers", "Conv2D"),
    "layer.maxpool": ("Layers", "MaxPooling2D"),
    "layer.input_shape": ("Layers", "Input shapes"),
    "layer.activation": ("Layers", "Activation (as a keyword and as a layer)"),
    "layer.initializers": ("Layers", "Weight initializers"),
    "layer.batchnorm": ("Layers", "Batch normalization"),
    "layer.dropout": ("Layers", "Dropout"),
    "layer.momentum": ("Layers", "Momentum (batch-norm statistics and SGD)"),
    "act.relu": ("Activations", "ReLU (plotted)"),
    "act.leaky_relu": ("Activations", "Leaky ReLU (plotted)"),
    "act.softmax": ("Activations", "Softmax (plotted)"),
    "act.sigmoid_tanh": ("Activations", "Sigmoid and tanh (plotted)"),
    "loss.mse": ("Losses", "Mean squared error: regression (diabetes)"),
    "loss.bce": ("Losses", "Binary cross-entropy: two classes (breast cancer)"),
    "loss.cce": ("Losses", "Categorical cross-entropy: one-hot classes (wine)"),
    "loss.kld": ("Losses", "KL divergence: matching a teacher's probabilities (iris)"),
    "loss.cosine": ("Losses", "Cosine similarity: learning directions"),
    "opt.compare": ("Optimizers", "SGD, RMSprop, Adagrad, Adam, Nadam compared, curves overlaid"),
    "prep.normalization": ("Preprocessing", "Normalization (adapted by %kfit)"),
    "prep.one_hot": ("Preprocessing", "One-hot encoding"),
    "prep.padding": ("Preprocessing", "Sequence padding (text_vectorize ... seq=N)"),
    "prep.augmentation": ("Preprocessing", "Image augmentation"),
    "prep.text": ("Preprocessing", "Text vectorization"),
    "metric.accuracy": ("Metrics", "Accuracy"),
    "metric.precision_recall": ("Metrics", "Precision and recall"),
    "metric.f1": ("Metrics", "F1"),
    "metric.auc": ("Metrics", "AUC"),
    "metric.iou": ("Metrics", "IoU (segmentation)"),
    "save.h5": ("Serialization", "HDF5 (.h5), saved, reloaded and checked"),
    "save.json": ("Serialization", "Architecture JSON + weights, saved, reloaded and checked"),
    "save.keras": ("Serialization", ".keras, saved, reloaded and checked"),
    "train.backprop": ("Training", "Backpropagation, shown on the dashboard"),
    "train.backprop_by_hand": ("Training", "One backpropagation step by hand (GradientTape)"),
    "inspect.memory": ("Inspection", "Training-step memory per layer, before training"),
    "inspect.profile": ("Inspection", "Forward time per layer"),
    "inspect.explain": ("Inspection", "Saliency, Grad-CAM and token attributions"),
    "inspect.diff": ("Inspection", "Comparing two models (%kdiff)"),
    "share.report": ("Sharing", "A self-contained HTML report"),
    "train.transfer": ("Training", "Transfer learning: frozen base, new head, unfreeze, %kcompile, train again"),
    "classic_vs_deep": ("Classic ML vs deep learning", "Logistic regression beside a CNN on the same digits"),
    "runs.compare": ("Runs", "Two optimizers compared as runs (%kruns, %kcompare)"),
    "runs.repeat": ("Runs", "Repeating a fit with seeds 0..N-1: mean and min–max band"),
    "lr_find": ("Runs", "The learning-rate finder (%klr)"),
}


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    source: str
    check: bool = False
    raises: bool = False
    concepts: list[str] = field(default_factory=list)

    def to_nbformat(self) -> nbformat.NotebookNode:
        if self.kind == "markdown":
            return nbformat.v4.new_markdown_cell(self.source)
        source = self.source
        if self.check:  # a cell magic must stay on the first line; '#' is a comment in its body too
            first, _, rest = source.partition("\n")
            source = f"{first}\n{CHECK_MARK}\n{rest}" if first.startswith("%%") else f"{CHECK_MARK}\n{source}"
        cell = nbformat.v4.new_code_cell(source)
        if self.raises:
            cell.metadata["tags"] = ["raises-exception"]
        return cell


def parse_source(text: str, origin: str) -> list[Cell]:
    """Cells from a source file: ``#- md`` / ``#- code [check] [raises] [concept=a,b]`` markers."""
    cells: list[Cell] = []
    current: Cell | None = None
    lines: list[str] = []

    def flush() -> None:
        if current is not None:
            current.source = "\n".join(lines).strip("\n")
            if not current.source.strip():
                raise ValueError(f"{origin}: an empty cell")
            cells.append(current)

    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#- "):
            flush()
            words = line[3:].split()
            kind = {"md": "markdown", "code": "code"}.get(words[0])
            if kind is None:
                raise ValueError(f"{origin}:{number}: expected '#- md' or '#- code', received {line!r}")
            current, lines = Cell(kind, ""), []
            for word in words[1:]:
                if word == "check":
                    current.check = True
                elif word == "raises":
                    current.raises = True
                elif word.startswith("concept="):
                    current.concepts += [c for c in word[len("concept="):].split(",") if c]
                else:
                    raise ValueError(f"{origin}:{number}: unknown marker word {word!r}")
            unknown = [c for c in current.concepts if c not in CONCEPTS]
            if unknown:
                raise ValueError(f"{origin}:{number}: unknown concepts {unknown}")
        elif current is None:
            if line.strip() and not line.startswith("#"):
                raise ValueError(f"{origin}:{number}: text before the first cell marker")
        else:
            lines.append(line)
    flush()
    return cells


def load_sources() -> dict[str, list[Cell]]:
    """Every notebook's cells, by notebook name (the source file's stem)."""
    return {path.stem: parse_source(path.read_text(encoding="utf-8"), path.name)
            for path in sorted(SOURCES.glob("[0-9][0-9]_*.txt"))}


def new_notebook(cells: list[Cell]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [cell.to_nbformat() for cell in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def _sources(notebook: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in notebook.cells]


def write_notebooks(sources: dict[str, list[Cell]], check_only: bool = False) -> list[Path]:
    """Write the notebooks whose cells changed (dropping their outputs); the paths changed."""
    changed = []
    for name, cells in sources.items():
        path = NOTEBOOKS / f"{name}.ipynb"
        fresh = new_notebook(cells)
        if path.exists() and _sources(nbformat.read(path, as_version=4)) == _sources(fresh):
            continue
        changed.append(path)
        if not check_only:
            NOTEBOOKS.mkdir(exist_ok=True)
            nbformat.write(fresh, path)
    return changed


def _section(cells: list[Cell], index: int) -> str:
    for cell in reversed(cells[: index + 1]):
        if cell.kind == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def concept_map(sources: dict[str, list[Cell]]) -> str:
    """docs/concepts.md: each concept, the notebook and cell that shows it working."""
    where: dict[str, list[str]] = {key: [] for key in CONCEPTS}
    for name, cells in sources.items():
        for index, cell in enumerate(cells):
            for key in cell.concepts:
                section = _section(cells, index)
                where[key].append(f"[{name}](../notebooks/{name}.ipynb), cell {index + 1}"
                                  + (f" ({section})" if section else ""))
    rows = ["| Topic | Concept | Where it is shown working |", "|---|---|---|"]
    for key, (topic, label) in CONCEPTS.items():
        rows.append(f"| {topic} | {label} | {'<br>'.join(where[key]) or 'NOT SHOWN YET'} |")
    return "\n".join([
        "# Concept map",
        "",
        "Every concept the tutorials teach, and the notebook cell that shows it working.",
        "Cells are counted from the top of the notebook, Markdown cells included (the order",
        "JupyterLab shows); the heading in brackets is the section the cell sits in.",
        "Generated by `scripts/make_notebooks.py` from the notebook sources in",
        "`notebooks/src/`; do not edit by hand.",
        "",
        *rows,
        "",
        "## How the notebooks are tested",
        "",
        "- `make test` runs every notebook as a user would, with plain `pytest --nbval-lax notebooks/`",
        "  (no sanitizer, no environment variable): every cell must run without an error, except the",
        "  cells tagged `raises-exception`, which must fail; the cells marked `# NBVAL_CHECK_OUTPUT` must",
        "  print what the committed notebook shows. Those cells print only deterministic things",
        "  (parameter counts, shapes, checks that come out `True`, paths relative to a folder the",
        "  notebook made), never durations, rates, addresses or temporary folder names.",
        "- The notebooks are committed with their outputs, so GitHub and Binder show the results before",
        "  anything runs. After editing a source in `notebooks/src/`, run",
        "  `python scripts/make_notebooks.py --execute` to rewrite and re-run the changed notebooks.",
        "- `tests/test_binder.py` (slow) rebuilds the Binder environment from `binder/` alone in a fresh",
        "  virtual environment (`pip install -r binder/requirements.txt`, then `binder/postBuild`), checks",
        "  that the JupyterLab extension is installed, and runs nbval on `01_quickstart` and `09_errors`",
        "  only, with a kernel from that environment: the other notebooks already run in `make test`, and",
        "  running them twice would double the suite's notebook time. It reuses pip's cache.",
        "",
    ])


def execute(paths: list[Path]) -> None:
    """Run notebooks in place with nbconvert (outputs stored), one after another."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for path in paths:
        print(f"executing {path.relative_to(REPO)}", flush=True)
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                        "--ExecutePreprocessor.timeout=600", str(path)], check=True, env=env, cwd=REPO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run the changed notebooks in place")
    parser.add_argument("--all", action="store_true", help="with --execute: run every notebook")
    parser.add_argument("--check", action="store_true", help="only report what is out of date")
    parser.add_argument("names", nargs="*", help="only these notebooks (e.g. 01_quickstart)")
    args = parser.parse_args(argv)
    sources = load_sources()
    if args.names:
        unknown = set(args.names) - set(sources)
        if unknown:
            parser.error(f"unknown notebooks: {sorted(unknown)}")
    text = concept_map(sources)
    missing = [label for key, (_, label) in CONCEPTS.items() if not any(
        key in cell.concepts for cells in sources.values() for cell in cells)]
    for label in missing:
        print(f"no notebook shows: {label}")
    selected = {k: v for k, v in sources.items() if not args.names or k in args.names}
    if args.check:
        stale = [str(p.relative_to(REPO)) for p in write_notebooks(selected, check_only=True)]
        if not CONCEPT_MAP.exists() or CONCEPT_MAP.read_text(encoding="utf-8") != text:
            stale.append(str(CONCEPT_MAP.relative_to(REPO)))
        unrun = [name for name in selected if (NOTEBOOKS / f"{name}.ipynb").exists() and any(
            c.cell_type == "code" and c.execution_count is None
            for c in nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells)]
        for item in stale:
            print(f"out of date: {item}")
        for name in unrun:
            print(f"not executed: notebooks/{name}.ipynb")
        return 1 if stale or unrun or missing else 0
    changed = write_notebooks(selected)
    CONCEPT_MAP.parent.mkdir(exist_ok=True)
    CONCEPT_MAP.write_text(text, encoding="utf-8")
    for path in changed:
        print(f"wrote {path.relative_to(REPO)}")
    if args.execute:
        execute(sorted(NOTEBOOKS / f"{name}.ipynb" for name in selected) if args.all else changed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
