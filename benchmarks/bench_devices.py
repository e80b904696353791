"""kmagic ``auto`` device settings against default Keras ``fit``, on whatever device this is.

The same measurement as ``benchmarks/gpu.py`` (interleaved epochs, warm-up
excluded, median), in the ``run(quick)`` form ``benchmarks/run.py`` collects.
On a CPU ``auto`` means Keras's own defaults (float32, no XLA), so the ratio
should be about 1.0: kmagic adds no cost. The 1.5x goal is for a GPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu  # noqa: E402  (benchmarks/gpu.py, beside this file)

#: Sizes between the smoke run and the GPU run: big enough for a steady ratio on a small CPU.
CPU_SIZES = {
    "resnet": {"w1": 16, "w2": 32, "w3": 32, "blocks": 1, "more_blocks": 1, "samples": 1024, "batch": 64},
    "transformer": {"seq": 32, "vocab": 1000, "d": 32, "layers": 2, "heads": 2, "key_dim": 16, "ff": 64,
                    "classes": 4, "samples": 1024, "batch": 64},
}


def run(quick: bool = False) -> list[dict]:
    """One row per model: samples/s of kmagic auto over default Keras."""
    from kmagic import devices

    on_gpu = bool(devices.detect(with_memory=False).gpus)
    results = []
    for name in ("resnet", "transformer"):
        if quick:
            rows = gpu.measure(name, smoke=True, rounds=3)
        elif on_gpu:
            rows = gpu.measure(name)
        else:
            gpu.SIZES[name]["cpu"] = CPU_SIZES[name]
            rows = gpu.measure(name, size_name="cpu", rounds=6)
        default, auto = rows
        results.append({
            "benchmark": f"{name}: kmagic auto / keras default fit ({auto.precision}, XLA {auto.xla})",
            "value": round(auto.samples_per_s / default.samples_per_s, 3),
            "unit": "x samples/s",
            "goal": ">= 1.5 on an H200" if on_gpu else "about 1.0 on a CPU (>= 1.5 is the H200 goal)",
            "note": f"{default.samples_per_s:,.0f} vs {auto.samples_per_s:,.0f} samples/s, median of "
                    f"{auto.rounds} interleaved epochs" + (" (smoke sizes: tells the code runs, not its speed)" if quick else ""),
        })
    return results


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
