"""Training time with the dashboard, as a ratio to a bare ``fit(verbose=0)``, in a real kernel.

One kernel (nbclient) runs every variant interleaved, in a shuffled order per
repetition, on the same model and data (weights reset before each fit): bare
fit, kmagic's Dashboard (widget messages, default refresh), the Dashboard's
text mode, livelossplot's ``PlotLossesKeras``, ``TensorBoard(update_freq='batch')``
and Keras's own progress bar. Each ratio is the median over repetitions of
(variant time / bare time in the same repetition).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import json, random, tempfile, time
import numpy as np, keras
from kmagic.widgets.dashboard import Dashboard
keras.utils.set_random_seed(0)
N, EPOCHS, BATCH = {n}, {epochs}, 64
rng = np.random.default_rng(0)
x = rng.normal(size=(N, 32)).astype("float32")
y = (x[:, :4].sum(1) > 0).astype("int64") + (x[:, 4] > 1).astype("int64")
model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dense(64, activation="relu"), keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[:512], y[:512], epochs=1, batch_size=BATCH, verbose=0, validation_split=0.1)
initial = model.get_weights()
results, cpu_results, extra = {{}}, {{}}, {{"bytes_per_s": [], "messages_per_s": [], "final_image_s": []}}

def make(variant):
    if variant == "bare":
        return [], 0
    if variant == "progbar":
        return [], 1
    if variant == "kmagic":
        return [Dashboard(frontend="widget", final_image=False, batch_size=BATCH)], 0
    if variant == "kmagic_text":
        return [Dashboard(frontend="text", final_image=False, batch_size=BATCH)], 0
    if variant == "livelossplot":
        from livelossplot import PlotLossesKeras
        return [PlotLossesKeras()], 0
    if variant == "tensorboard":
        return [keras.callbacks.TensorBoard(log_dir=tempfile.mkdtemp(), update_freq="batch")], 0

def timed(variant):
    callbacks, verbose = make(variant)
    model.set_weights(initial)
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, validation_split=0.1, verbose=verbose, callbacks=callbacks)
    seconds = time.perf_counter() - start
    results.setdefault(variant, []).append(seconds)
    cpu_results.setdefault(variant, []).append(time.process_time() - cpu)
    if variant == "kmagic":
        dash = callbacks[0]
        extra["bytes_per_s"].append(dash.bytes_sent / seconds)
        extra["messages_per_s"].append(dash.messages_sent / seconds)
        from kmagic.widgets.plots import training_png
        t0 = time.perf_counter(); training_png(dash.history); extra["final_image_s"].append(time.perf_counter() - t0)
"""

VARIANTS = ["bare", "kmagic", "kmagic_text", "livelossplot", "tensorboard", "progbar"]


def measure(reps: int, n: int, epochs: int) -> tuple[dict[str, list[float]], ...]:
    """Run the interleaved fits in one kernel: per-variant wall times, CPU times, the dashboard's extras."""
    import nbformat
    from nbclient import NotebookClient

    cells = [nbformat.v4.new_code_cell(SETUP.format(n=n, epochs=epochs))]
    for rep in range(reps):
        cells.append(nbformat.v4.new_code_cell(
            f"order = {VARIANTS!r}; random.Random({rep}).shuffle(order)\n"
            "for variant in order:\n    timed(variant)\n"
            "from IPython.display import clear_output; clear_output()"))
    cells.append(nbformat.v4.new_code_cell("print('RESULTS=' + json.dumps([results, cpu_results, extra]))"))
    nb = nbformat.v4.new_notebook(cells=cells)
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "KMAGIC_FRONTEND", "TF_CPP_MIN_LOG_LEVEL")}
    os.environ.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    os.environ.pop("KMAGIC_FRONTEND", None)
    try:
        NotebookClient(nb, timeout=1800, kernel_name="python3").execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    results, cpu_results, extra = json.loads(text.split("RESULTS=", 1)[1])
    return results, cpu_results, extra


def ratios(results: dict[str, list[float]]) -> dict[str, float]:
    """Median over repetitions of variant time / bare time of the same repetition."""
    bare = results["bare"]
    return {v: statistics.median(t / b for t, b in zip(results[v], bare, strict=True)) for v in results if v != "bare"}


def run(quick: bool = False) -> list[dict]:
    reps, n, epochs = (1, 2000, 1) if quick else (9, 20000, 2)
    results, cpu_results, extra = measure(reps, n, epochs)
    r, cpu = ratios(results), ratios(cpu_results)
    bare = statistics.median(results["bare"])
    note = f"{reps} interleaved reps, median; MLP 32-128-64-3, {n} samples, batch 64, {epochs} epochs; bare fit {bare:.2f} s"
    labels = {
        "kmagic": "dashboard (widget, default refresh 0.25 s)",
        "kmagic_text": "dashboard (text mode, headless)",
        "livelossplot": "livelossplot PlotLossesKeras",
        "tensorboard": "TensorBoard(update_freq='batch')",
        "progbar": "Keras progress bar (verbose=1)",
    }
    goals = {"kmagic": "<= 1.01 (must be <= 1.03)", "kmagic_text": "<= 1.01"}
    rows = []
    for variant, label in labels.items():
        rows.append({"benchmark": f"{label}: fit wall time / bare fit", "value": r[variant], "unit": "x",
                     "goal": goals.get(variant, "(comparison)"), "note": note})
        rows.append({"benchmark": f"{label}: kernel CPU time / bare fit's", "value": cpu[variant], "unit": "x",
                     "goal": goals.get(variant, "(comparison)"),
                     "note": "process CPU time of the kernel: less sensitive to other load on the machine"})
    rows += [
        {"benchmark": "dashboard: bytes sent to the front end per second of training",
         "value": statistics.median(extra["bytes_per_s"]), "unit": "B/s", "goal": "small",
         "note": f"{statistics.median(extra['messages_per_s']):.1f} messages/s, JSON of new points + status"},
        {"benchmark": "dashboard: final static image (one-off, after training)",
         "value": statistics.median(extra["final_image_s"]), "unit": "s", "goal": "(not in the ratios)",
         "note": "matplotlib Agg PNG of all curves"},
    ]
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['benchmark']}: {row['value']:.4g} {row['unit']}  (goal {row['goal']}; {row['note']})")
