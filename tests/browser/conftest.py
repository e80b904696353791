"""A real JupyterLab (and Notebook 7, if installed) in Debian's headless Chromium.

Fixtures:
- ``built_labextension``: kmagic/labextension, rebuilt with jlpm when stale.
- ``jupyter_app``: a Jupyter server on 127.0.0.1 with a temporary root, config
  and data dir (the data dir links the built extension in), one per front end.
- ``browser``: Chromium driven by Playwright; skipped only if Chromium is absent.
- ``page``: a fresh page that records JavaScript errors (``page.js_errors``).

Screenshots go to artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
LABEXT_SRC = REPO / "labextension"
LABEXT_OUT = REPO / "kmagic" / "labextension"
EXTENSION_NAME = "kmagic-labextension"
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = os.environ.get("KMAGIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
BUILD_INPUTS = ("src", "style", "scripts", "package.json", "tsconfig.json", "yarn.lock")


# -- the extension ----------------------------------------------------------------------


def _newest_mtime(paths: list[Path]) -> float:
    newest = 0.0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            newest = max(newest, file.stat().st_mtime)
    return newest


def _extension_is_stale() -> bool:
    built = LABEXT_OUT / "package.json"
    if not built.exists():
        return True
    words = subprocess.run([sys.executable, str(LABEXT_SRC / "scripts" / "words.py"), "--check"],
                           capture_output=True)
    if words.returncode != 0:
        return True
    inputs = [LABEXT_SRC / name for name in BUILD_INPUTS if (LABEXT_SRC / name).exists()]
    inputs.append(REPO / "kmagic" / "registry.py")
    return _newest_mtime(inputs) > built.stat().st_mtime


def _jlpm() -> list[str]:
    for candidate in (Path(sys.executable).parent / "jlpm", shutil.which("jlpm")):
        if candidate and Path(candidate).exists():
            return [str(candidate)]
    pytest.fail("jlpm not found: install jupyterlab or jupyter-builder in this environment to build the extension")


def build_labextension() -> None:
    """``jlpm install`` (when node_modules is missing) and ``jlpm build``, in labextension/."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               KMAGIC_PYTHON=sys.executable)
    jlpm = _jlpm()
    if not (LABEXT_SRC / "node_modules").exists():
        subprocess.run([*jlpm, "install"], cwd=LABEXT_SRC, env=env, check=True)
    subprocess.run([*jlpm, "build"], cwd=LABEXT_SRC, env=env, check=True)


@pytest.fixture(scope="session")
def built_labextension() -> Path:
    if _extension_is_stale():
        build_labextension()
    assert (LABEXT_OUT / "package.json").exists(), "the labextension build produced no package.json"
    return LABEXT_OUT


# -- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (make test installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# -- the server ---------------------------------------------------------------------------


@dataclass
class JupyterApp:
    """One running Jupyter server with a front end (``lab`` or ``notebook``)."""

    frontend: str
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path
    notebooks: list[str] = field(default_factory=list)

    def notebook_url(self, name: str) -> str:
        path = "lab/tree" if self.frontend == "lab" else "notebooks"
        return f"{self.url}{path}/{name}?token={self.token}"

    def write_notebook(self, name: str, cells: list[tuple[str, str]], kernel: str = "python3",
                       display_name: str = "Python 3 (ipykernel)") -> None:
        """Write ``name`` into the server's root: ``cells`` are ``(cell_type, source)`` pairs."""
        nb = {
            "cells": [_cell(kind, source) for kind, source in cells],
            "metadata": {
                "kernelspec": {"display_name": display_name, "language": "python", "name": kernel},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root / name).write_text(json.dumps(nb, indent=1), encoding="utf-8")

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def _cell(kind: str, source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "id": secrets.token_hex(4), "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_server(app: JupyterApp, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"Jupyter server exited ({app.process.returncode}):\n{app.log_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{app.url}api/status?token={app.token}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"Jupyter server did not answer within {timeout}s:\n{app.log_text()[-4000:]}")


#: The second kernel of the tests: ipykernel 7.4 (``make kernel-k7`` builds .venv-k7).
K7_PYTHON = Path(os.environ.get("KMAGIC_IPYKERNEL7_PYTHON") or REPO / ".venv-k7" / "bin" / "python")
K7_KERNEL, K7_DISPLAY = "kmagic-k7", "Python 3 (ipykernel 7)"


def register_k7_kernel(data: Path) -> bool:
    """Add the kernelspec ``kmagic-k7`` to a Jupyter data dir, if the ipykernel 7 environment exists."""
    if not K7_PYTHON.exists():
        return False
    spec = data / "kernels" / K7_KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(K7_PYTHON), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": K7_DISPLAY, "language": "python",
    }))
    return True


def start_jupyter(frontend: str, base: Path, extension: Path) -> JupyterApp:
    """Start JupyterLab (``lab``) or Notebook 7 (``notebook``) with everything in ``base``."""
    root, config, data, runtime, ipython = (base / name for name in ("root", "config", "data", "runtime", "ipython"))
    for folder in (root, config / "labconfig", data / "labextensions", runtime, ipython):
        folder.mkdir(parents=True, exist_ok=True)
    # The data dir comes first on jupyter_path: this copy of the extension wins
    # over any installed one, so the test always runs the source tree's build.
    (data / "labextensions" / EXTENSION_NAME).symlink_to(extension, target_is_directory=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps({
        "disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True},
        "exposeAppInBrowser": True,  # window.jupyterapp: the tests read the kernel status the page shows
    }))
    register_k7_kernel(data)
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(data),
        JUPYTER_RUNTIME_DIR=str(runtime),
        IPYTHONDIR=str(ipython),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.pop("JUPYTER_PATH", None)
    module = "jupyterlab" if frontend == "lab" else "notebook"
    log = base / f"{frontend}-server.log"
    command = [
        sys.executable, "-m", module,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        "--LabApp.extension_manager=readonly" if frontend == "lab" else "--ServerApp.log_level=INFO",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    app = JupyterApp(frontend, f"http://127.0.0.1:{port}/", token, root, process, log)
    try:
        _wait_for_server(app)
    except Exception:
        stop_jupyter(app)
        raise
    return app


def stop_jupyter(app: JupyterApp) -> None:
    if app.process.poll() is None:
        app.process.terminate()
        try:
            app.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait(timeout=10)


@contextlib.contextmanager
def running_jupyter(frontend: str, extension: Path) -> Iterator[JupyterApp]:
    # Not under pytest's tmp_path: the kernel must not see "pytest" in its server's
    # command line, or kmagic would (rightly) take it for a headless run.
    base = Path(tempfile.mkdtemp(prefix=f"kmagic-{frontend}-"))
    app = start_jupyter(frontend, base, extension)
    try:
        yield app
    finally:
        stop_jupyter(app)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(built_labextension: Path, browser: Any) -> Iterator[JupyterApp]:
    with running_jupyter("lab", built_labextension) as app:
        yield app


@pytest.fixture(scope="module")
def notebook7(built_labextension: Path, browser: Any) -> Iterator[JupyterApp]:
    try:
        import notebook  # noqa: F401
    except ImportError:
        pytest.skip("Notebook 7 (the `notebook` package) is not installed")
    with running_jupyter("notebook", built_labextension) as app:
        yield app


# -- pages --------------------------------------------------------------------------------


def open_page(browser: Any) -> Any:
    """A page in a fresh context; ``page.js_errors`` collects uncaught errors and console errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}\n{getattr(exc, 'stack', '') or ''}"))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    return page
