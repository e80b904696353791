"""What %kfit's safety nets cost: the NaN guard's weight snapshots, and the data checks.

- ``nan_guard_snapshot_share``: the share of a guarded fit's wall time spent
  copying weights and optimizer state (``Dashboard(stop_on_nan=True)``:
  snapshots at each epoch start and every second, capped at 1%), measured
  inside the fit, so it does not depend on machine noise.
- ``nan_guard_fit_time_ratio``: fit time with the guard over the same dashboard
  without it, interleaved, alternating order, median of the per-repetition
  ratios (noisy on a shared machine: read it with the share above).
- ``data_checks``: ``kmagic.datacheck.check_fit_data`` on MNIST-sized arrays
  (60,000 × 784 float32 inputs, integer labels, a compiled softmax model), as a
  ratio to one ``np.isfinite(x).all()`` pass over the same inputs (the cheapest
  possible NaN check), and in milliseconds.
"""

from __future__ import annotations

import statistics
import time
from typing import Any


def _guard_cost(quick: bool) -> list[dict[str, Any]]:
    import numpy as np

    from kmagic._keras import keras
    from kmagic.widgets.dashboard import Dashboard

    k = keras()
    k.utils.set_random_seed(0)
    n, epochs, repeats = (2048, 2, 5) if quick else (8192, 3, 7)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 64)).astype("float32")
    y = (x[:, :4].sum(1) > 0).astype("int64")
    model = k.Sequential([k.Input((64,)), k.layers.Dense(512, activation="relu"),
                          k.layers.Dense(512, activation="relu"), k.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:256], y[:256], epochs=1, batch_size=32, verbose=0)  # trace once, outside the timings
    initial = model.get_weights()
    ratios, copies, shares = [], [], []
    for repeat in range(repeats):
        times = {}
        order = (False, True) if repeat % 2 == 0 else (True, False)
        for guarded in order:
            model.set_weights(initial)
            dash = Dashboard(show=False, stop_on_nan=guarded)
            start = time.perf_counter()
            model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[dash])
            times[guarded] = time.perf_counter() - start
            if guarded:
                copies.append((dash.snapshots.copies, dash.snapshots.seconds))
                shares.append(dash.snapshots.seconds / times[True])
        ratios.append(times[True] / times[False])
    count, seconds = copies[-1]
    return [
        {"benchmark": "nan_guard_snapshot_share", "value": round(100 * statistics.median(shares), 2), "unit": "%",
         "goal": "<= 1", "note": f"{count} snapshots ({seconds * 1e3:.1f} ms) in a {epochs}-epoch fit of "
                                 f"{model.count_params():,} params (+ Adam state)"},
        {"benchmark": "nan_guard_fit_time_ratio", "value": round(statistics.median(ratios), 3), "unit": "x",
         "goal": "<= 1.02", "note": f"Dashboard(stop_on_nan=True) / stop_on_nan=False, {n} samples, "
                                    "interleaved; noisy on a shared machine"},
    ]


def _check_cost(quick: bool) -> list[dict[str, Any]]:
    import numpy as np

    import kmagic
    from kmagic import datacheck

    n = 10_000 if quick else 60_000
    rng = np.random.default_rng(0)
    x = rng.random((n, 784), dtype="float32")
    y = rng.integers(0, 10, n)
    model = kmagic.build("input 784\ndense 64 relu\ndense 10 softmax\ncompile adam scce")
    checks, baseline = [], []
    for _ in range(5):
        start = time.perf_counter()
        datacheck.check_fit_data(model, x, y, validation_split=0.1)
        checks.append(time.perf_counter() - start)
        start = time.perf_counter()
        bool(np.isfinite(x).all())
        baseline.append(time.perf_counter() - start)
    check = statistics.median(checks)
    return [
        {"benchmark": "data_checks_ms", "value": round(check * 1e3, 1), "unit": "ms", "goal": "< 1% of an epoch",
         "note": f"check_fit_data on {n:,} x 784 float32 + labels"},
        {"benchmark": "data_checks_vs_isfinite", "value": round(check / statistics.median(baseline), 2),
         "unit": "x", "goal": "<= 3", "note": "one np.isfinite(x).all() pass = 1"},
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The rows for benchmarks/run.py's table."""
    return [*_guard_cost(quick), *_check_cost(quick)]


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
