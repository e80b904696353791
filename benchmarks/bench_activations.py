"""Activation capture time, as a ratio to one ``model.predict`` on the same batch.

A 7-layer CNN and a batch of 64. Both are warmed up first (the multi-output
model is built and cached on the first capture; ``predict`` traces its
function on the first call); then capture and predict alternate, and the ratio
is the median of (capture time / predict time) over the pairs. The one-off
first capture (building the multi-output model) is reported on its own.
"""

from __future__ import annotations

import statistics
import sys
import time


def _cnn():
    from kmagic._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    return k.Sequential([
        k.Input((28, 28, 1)),
        k.layers.Conv2D(16, 3, activation="relu"),
        k.layers.MaxPooling2D(),
        k.layers.Conv2D(32, 3, activation="relu"),
        k.layers.MaxPooling2D(),
        k.layers.Flatten(),
        k.layers.Dense(64, activation="relu"),
        k.layers.Dense(10, activation="softmax"),
    ], name="cnn7")


def run(quick: bool = False) -> list[dict]:
    import numpy as np

    from kmagic.widgets import activations

    model = _cnn()
    x = np.random.default_rng(0).random((64, 28, 28, 1)).astype("float32")
    start = time.perf_counter()
    activations.capture_activations(model, x)
    first = time.perf_counter() - start
    model.predict(x, verbose=0)
    pairs = 5 if quick else 40
    ratios, capture_times, predict_times = [], [], []
    for i in range(pairs):
        order = ("capture", "predict") if i % 2 == 0 else ("predict", "capture")
        times = {}
        for what in order:
            start = time.perf_counter()
            if what == "capture":
                activations.capture_activations(model, x)
            else:
                model.predict(x, verbose=0)
            times[what] = time.perf_counter() - start
        ratios.append(times["capture"] / times["predict"])
        capture_times.append(times["capture"])
        predict_times.append(times["predict"])
    note = (f"7-layer CNN, batch 64, median of {pairs} alternating pairs; capture "
            f"{statistics.median(capture_times) * 1e3:.1f} ms, predict {statistics.median(predict_times) * 1e3:.1f} ms")
    return [
        {"benchmark": "activations: capture all layers / model.predict (same batch)",
         "value": statistics.median(ratios), "unit": "x", "goal": "<= 1.0", "note": note},
        {"benchmark": "activations: first capture (builds and caches the multi-output model)",
         "value": first, "unit": "s", "goal": "(one-off)", "note": "includes the first eager call"},
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['benchmark']}: {row['value']:.4g} {row['unit']}  (goal {row['goal']}; {row['note']})")
