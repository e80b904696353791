"""Where is kmagic running? A widget front end or plain text, and whether outputs must be deterministic.

No heavy imports here: the model card, the dashboard and the views ask these
questions before they decide what to display.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

#: Programs that run notebooks without a widget front end (argv[0], ``-m`` module or script name).
HEADLESS_PROGRAMS = frozenset({
    "jupyter-nbconvert", "nbconvert", "jupyter-execute", "nbclient", "papermill", "pytest", "py.test",
    "nbmake", "testbook", "nbval", "jupyter-nbclient",
})
#: ``jupyter SUBCOMMAND`` forms of the same programs.
_JUPYTER_SUBCOMMANDS = frozenset({"nbconvert", "execute"})
_TRUE = ("1", "true", "yes", "on")


def test_mode() -> bool:
    """``KMAGIC_TEST_MODE=1``: outputs without timings or rates, fixed seeds where kmagic picks them."""
    return os.environ.get("KMAGIC_TEST_MODE", "").strip().lower() in _TRUE


test_mode.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def detect_frontend() -> str:
    """``"widget"`` when a widget front end is likely attached, else ``"text"``.

    ``KMAGIC_FRONTEND=widget|text`` overrides the guess. Outside an IPython
    kernel (a terminal, a script) it is ``"text"``; in a kernel whose parent
    process is a notebook runner (nbconvert, nbclient, papermill, pytest with
    nbval or nbmake, testbook: see :func:`parent_program`) it is ``"text"``;
    otherwise (JupyterLab, Notebook, VS Code, Colab) ``"widget"``.
    """
    forced = os.environ.get("KMAGIC_FRONTEND", "").strip().lower()
    if forced in ("widget", "text"):
        return forced
    shell = ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return "text"
    if "google.colab" in sys.modules:
        return "widget"
    return "text" if parent_is_headless() else "widget"


def ipython() -> Any:
    """The running IPython shell, or None (without importing IPython)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def program_of(argv: list[str]) -> str:
    """The program a command line runs: ``pytest`` for ``python -m pytest ...``, ``jupyter-nbconvert``
    for ``jupyter nbconvert ...``, the script's name for ``python script.py``, else argv[0]'s name.

    Only the program is looked at, never the paths in its arguments, so a server
    started from ``~/pytest-notes/`` is not mistaken for a test run.
    """
    if not argv:
        return ""
    name = Path(argv[0]).name
    rest = argv[1:]
    if name.startswith("python") or name in ("pypy", "pypy3"):
        index = 0
        while index < len(rest):
            arg = rest[index]
            if arg == "-m" and index + 1 < len(rest):
                return rest[index + 1].split(".")[0]
            if arg.startswith("-m") and len(arg) > 2:
                return arg[2:].split(".")[0]
            if arg == "-c":
                return "python -c"
            if arg in ("-W", "-X", "-Q"):
                index += 2
                continue
            if arg.startswith("-"):
                index += 1
                continue
            name, rest = Path(arg).name, rest[index + 1:]
            break
        else:
            return name
    name = name.removesuffix(".py").removesuffix(".exe")
    if name == "jupyter" and rest and rest[0] in _JUPYTER_SUBCOMMANDS:
        return f"jupyter-{rest[0]}"
    return name


def parent_program() -> str:
    """The program that started this kernel (``JPY_PARENT_PID``, else the parent process)."""
    pid = os.environ.get("JPY_PARENT_PID") or str(os.getppid())
    try:
        raw = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return ""
    argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    return program_of(argv)


def parent_is_headless() -> bool:
    """Whether the kernel's parent is a notebook runner without a widget front end."""
    return parent_program() in HEADLESS_PROGRAMS
