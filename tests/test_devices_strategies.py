"""Distribution strategies for real: each run in fresh processes (device setup is per process).

- ``mirrored``: MirroredStrategy over two logical CPU devices trains with two
  replicas and ends where single-device training with the same global batch ends.
- ``multiworker``: two worker processes on 127.0.0.1 ports (TF_CONFIG) build the
  same kmodel text, train it, and end with identical weights, equal to a
  single-process reference.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKERS = Path(__file__).resolve().parent / "device_workers"


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _result(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the worker printed no result:\n{output[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_mirrored_over_two_logical_cpus_trains_with_two_replicas() -> None:
    run = subprocess.run([sys.executable, str(WORKERS / "mirrored.py")], env=_env(), cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    result = _result(run.stdout)
    assert result["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert result["replicas"] == 2 and result["strategy_replicas"] == 2
    assert result["describe"]["strategy"] == "MirroredStrategy"
    assert result["describe"]["replicas"] == 2
    assert result["describe"]["jit"] == "off"
    # auto mirrors GPUs only: two logical CPUs keep the default strategy.
    assert result["auto"]["strategy"] == "default" and result["auto"]["replicas"] == 1
    # it trained, and like one device with the same global batch of 16
    assert result["moved"] > 1e-2
    assert result["loss"][-1] < result["loss"][0]
    assert result["max_difference_to_reference"] < 1e-5
    # XLA cannot run across the mirrored devices: a clear error, not a crash mid-fit
    assert "--jit on cannot run under --strategy mirrored with 2 replicas" in result["jit_on_error"]


@pytest.mark.slow
def test_two_workers_on_loopback_end_with_identical_weights(tmp_path: Path) -> None:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKERS / "multiworker.py"), str(tmp_path)], env=_env(TF_CONFIG=tf_config),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=150)
            assert proc.returncode == 0, stderr[-3000:]
            outputs.append(_result(stdout))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    chief, other = outputs
    for result in outputs:
        assert result["replicas"] == 2
        assert result["describe"]["strategy"] == "MultiWorkerMirroredStrategy"
        assert result["describe"]["workers"] == 2
        assert result["describe"]["keras"] == "tf_keras (Keras 2)"
        assert result["model_module"].startswith("tf_keras")
        assert result["leaky_alpha"] == pytest.approx(0.1)  # negative_slope translated to Keras 2's alpha
        assert result["epochs_seen"] == [0, 1, 2]  # the Keras 3 callback ran inside the Keras 2 fit
        assert result["moved"] > 1e-2
    assert chief["is_chief"] and not other["is_chief"]
    assert chief["loss"] == other["loss"]
    first, second = np.load(tmp_path / "weights-0.npz"), np.load(tmp_path / "weights-1.npz")
    assert list(first) == list(second)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    # synchronous data parallelism: the same weights as one process with the global batch
    assert chief["max_difference_to_reference"] < 1e-5
