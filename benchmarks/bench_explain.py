"""``kmagic.explain`` (saliency + Grad-CAM: one forward and one backward pass) against one ``predict``.

The 7-layer CNN of the activation benchmark on a batch of 64; both warmed up, then alternated,
and the ratio is the median of (explain time / predict time) over the pairs. Goal: ≤ 3×.
"""

from __future__ import annotations

import statistics
import time


def run(quick: bool = False) -> list[dict]:
    import numpy as np

    from benchmarks.bench_activations import _cnn
    from kmagic.attribution import explain

    model = _cnn()
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    explain(model, x)
    model.predict(x, verbose=0)
    ratios = []
    for i in range(5 if quick else 30):
        times = {}
        for what in (("explain", "predict") if i % 2 == 0 else ("predict", "explain")):
            start = time.perf_counter()
            if what == "explain":
                explain(model, x)
            else:
                model.predict(x, verbose=0)
            times[what] = time.perf_counter() - start
        ratios.append(times["explain"] / times["predict"])
    return [{"benchmark": "explain (saliency + Grad-CAM) / one predict, CNN, batch 64",
             "value": statistics.median(ratios), "unit": "×", "goal": "≤ 3",
             "note": f"median of {len(ratios)} alternated pairs"}]
