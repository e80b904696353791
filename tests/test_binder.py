"""Binder, rehearsed: a fresh environment built only from ``binder/`` runs the notebooks.

mybinder.org cannot run here, so this test repeats what repo2docker does with
this repository: a new virtual environment, ``pip install -r
binder/requirements.txt``, then ``binder/postBuild`` from a copy of the
repository's files (tracked and untracked-but-not-ignored, as a clone would
have them after a commit). It then checks that the JupyterLab extension is
installed and runs nbval on ``01_quickstart`` and ``09_errors`` with a kernel
from that environment (the other notebooks run in ``make test``; running all
of them here would double the suite's notebook time).

It costs a fresh TensorFlow install (2-4 minutes from pip's cache, longer the
first time, when pip downloads it). pip's own cache is reused; the copy reuses
``labextension/node_modules`` from the working tree when there is one, as a
developer machine would (Binder downloads them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["notebooks/01_quickstart.ipynb", "notebooks/09_errors.ipynb"]
KERNEL_NAME = "kmagic-binder"
_NETWORK_TROUBLE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                    "No matching distribution found", "Could not find a version that satisfies")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _repository_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def _copy_repository(target: Path) -> None:
    for name in _repository_files():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, destination)
    node_modules = REPO / "labextension" / "node_modules"
    if node_modules.is_dir():
        (target / "labextension" / "node_modules").symlink_to(node_modules, target_is_directory=True)


def _run(command: list[str], *, cwd: Path, env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        output = result.stdout[-6000:] + result.stderr[-6000:]
        if what == "pip install -r binder/requirements.txt" and any(t in output for t in _NETWORK_TROUBLE):
            pytest.skip(f"the package index cannot be reached from here: {what} failed")
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{output}")
    return result


@pytest.mark.kernel
def test_binder_environment_runs_the_notebooks(tmp_path: Path) -> None:
    repo = tmp_path / "kmagic"
    _copy_repository(repo)
    environment = tmp_path / "binder-env"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_NO_CACHE_DIR")}
    env["PATH"] = f"{environment / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(environment)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"

    _run([str(python), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], cwd=repo, env=env,
         what="pip install -r binder/requirements.txt")
    _run(["bash", "binder/postBuild"], cwd=repo, env=env, what="binder/postBuild")

    extensions = _run([str(environment / "bin" / "jupyter"), "labextension", "list"], cwd=repo, env=env,
                      what="jupyter labextension list")
    listing = extensions.stdout + extensions.stderr
    assert "kmagic-labextension" in listing and "enabled" in listing, listing
    installed = _run([str(python), "-c", "import kmagic, sys; print(kmagic.__file__)"], cwd=tmp_path, env=env,
                     what="import kmagic")
    assert str(environment) in installed.stdout, f"kmagic imported from {installed.stdout!r}, not the Binder env"

    # A kernel from the Binder environment; nbval itself comes from the test environment.
    kernels = tmp_path / "jupyter-data"
    spec = kernels / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kmagic (Binder environment)", "language": "python",
    }))
    nbval_env = dict(env)
    nbval_env["PATH"] = os.environ.get("PATH", "")
    nbval_env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(kernels), os.environ.get("JUPYTER_PATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-kernel-name", KERNEL_NAME, *NOTEBOOKS],
        cwd=repo, env=nbval_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
