"""TensorFlow's C++ start-up lines never reach a cell, whoever imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kmagic.quiet_import import install_quiet_tensorflow_import, uninstall_quiet_tensorflow_import


@pytest.mark.kernel
@pytest.mark.slow
def test_import_keras_after_load_ext_prints_nothing(nb_run) -> None:
    nb = nb_run(["%load_ext kmagic\nimport keras, sys\nprint('tensorflow' in sys.modules)"])
    outputs = nb.cells[0].outputs
    assert [o.get("name") for o in outputs] == ["stdout"], outputs
    assert outputs[0]["text"] == "True\n"


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_the_hook_silences_the_first_import_only_and_removes_itself() -> None:
    code = (
        "import sys\n"
        "from kmagic.quiet_import import install_quiet_tensorflow_import\n"
        "install_quiet_tensorflow_import()\n"
        "import tensorflow\n"
        "print(any(type(f).__name__ == '_QuietTensorFlowFinder' for f in sys.meta_path))\n"
        "print(tensorflow.constant(2).numpy() * 2)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "4"]
    assert "InitializeLog" not in result.stderr and "port.cc" not in result.stderr


def test_install_is_idempotent_and_uninstall_removes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as before TensorFlow's first import
    before = list(sys.meta_path)
    install_quiet_tensorflow_import()
    install_quiet_tensorflow_import()
    hooks = [f for f in sys.meta_path if type(f).__name__ == "_QuietTensorFlowFinder"]
    assert len(hooks) == 1 and sys.meta_path[0] is hooks[0]
    uninstall_quiet_tensorflow_import()
    assert sys.meta_path == before
