"""The training-step memory estimate (``%ksummary --batch-size``) against the measured peak.

Three models (a CNN, an LSTM, a transformer block), batch 64. The peak is what TensorFlow's
allocator reports for one ``train_on_batch`` after a warm-up step, from a reset of its peak
counter: on a GPU ``tf.config.experimental.get_memory_info("GPU:0")``, on a CPU the same call
with TensorFlow's BFC allocator switched on for the CPU (``TF_CPU_ALLOCATOR_USE_BFC=true``,
which must be set before TensorFlow starts, so each model is measured in a fresh process).
Ratio = estimate / measured peak; the goal is 0.75–1.25.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

MODELS = {
    "cnn": """
input 32x32x3
conv 32 3 same relu
conv 32 3 same relu
maxpool 2
conv 64 3 same relu
maxpool 2
flatten
dense 128 relu
dense 10 softmax
compile adam scce
""",
    "lstm": """
input 40x16
lstm 64 seq
lstm 64
dense 10 softmax
compile adam scce
""",
    "transformer": """
input 32x64 as tokens
mha 4 16 as att
add @att @tokens
ln as h
dense 128 relu
dense 64 as ff
add @ff @h
ln
gap
dense 10 softmax
compile adam scce
""",
}
BATCH = 64


def measure(name: str) -> dict:
    """Estimate and measured peak of one model (runs inside the worker process)."""
    import numpy as np

    import kmagic
    from kmagic._keras import tf
    from kmagic.cost import training_memory

    t = tf()
    device = "GPU:0" if t.config.list_physical_devices("GPU") else "CPU:0"
    model = kmagic.build(MODELS[name], name=name, seed=0)
    shape = (BATCH, *model.inputs[0].shape[1:])
    x = np.random.default_rng(0).random(shape).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, BATCH)
    model.train_on_batch(x, y)  # warm-up: variables, optimizer slots, traced step
    t.config.experimental.reset_memory_stats(device)
    model.train_on_batch(x, y)
    peak = t.config.experimental.get_memory_info(device)["peak"]
    estimate = training_memory(model, BATCH).total
    return {"model": name, "device": device, "estimate": estimate, "peak": peak}


def _worker(name: str) -> dict:
    env = dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC="true", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_cost", name], env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict]:
    rows = []
    for name in (["cnn"] if quick else list(MODELS)):
        result = _worker(name)
        ratio = result["estimate"] / result["peak"]
        rows.append({"benchmark": f"memory estimate / measured peak, {name} (batch {BATCH})", "value": ratio,
                     "unit": "×", "goal": "0.75–1.25",
                     "note": f"{result['estimate'] / 1e6:.1f} MB vs {result['peak'] / 1e6:.1f} MB on "
                             f"{result['device']}"})
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
