"""benchmarks/gpu.py runs unchanged on a CPU with --smoke and prints its one table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_smoke_runs_on_a_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke", "--models", "transformer",
                          "--rounds", "2", "--json", str(out)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("device: CPU; median of 1 epochs after one warm-up epoch")
    assert lines[1].split()[:4] == ["model", "setup", "params", "precision"]
    body = [line.split() for line in lines[3:]]
    assert [row[:3] for row in body] == [["transformer", "keras", "default"], ["transformer", "kmagic", "auto"]]
    data = json.loads(out.read_text())
    default, auto = data["rows"]
    assert default["params"] == auto["params"] > 0
    assert (default["precision"], auto["precision"]) == ("float32", "float32")  # auto on a CPU = Keras defaults
    assert default["samples_per_s"] > 0 and auto["samples_per_s"] > 0
    assert default["speedup"] == 1.0 and auto["peak_gpu_mib"] is None


def test_gpu_benchmark_refuses_unknown_models() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke", "--models", "vgg"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "unknown model(s) ['vgg']" in run.stderr
