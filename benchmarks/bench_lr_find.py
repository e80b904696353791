"""Does the learning-rate finder's suggestion train as well as the best rate of a grid?

Two reference problems, both shipped with scikit-learn (nothing downloaded):

- ``digits CNN``: the quickstart's CNN (conv 16, conv 32, dense 64, dropout) on the
  8×8 digits, 75 % train / 25 % validation, sparse categorical cross-entropy;
- ``diabetes regression``: an MLP (64-32-1) on the diabetes data (10 standardised
  features, standardised target), mean squared error.

For each: ``kmagic.lr_find`` (1e-7 → 10, 100 batches of 32) from the initial
weights, then 3 epochs of Adam from the same initial weights at the suggested
rate and at each rate of a 7-point grid 1e-5 … 1e-1 (log-spaced). The goal: the
suggestion's final validation loss within 1.5× of the grid's best.
"""

from __future__ import annotations

import time
from typing import Any

GRID = (1e-5, 10 ** -4.333, 10 ** -3.667, 1e-3, 10 ** -2.333, 10 ** -1.667, 1e-1)


def _digits() -> tuple[Any, ...]:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., np.newaxis]
    return train_test_split(x, digits.target, test_size=0.25, random_state=0, stratify=digits.target)


def _diabetes() -> tuple[Any, ...]:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    y = ((y - y.mean()) / y.std()).astype("float32")[:, None]
    return train_test_split(x, y, test_size=0.25, random_state=0)


PROBLEMS = {
    "digits CNN": (_digits, "input 8x8x1\nconv 16 3 same relu\nmaxpool 2\nconv 32 3 same relu\nmaxpool 2\n"
                            "flatten\ndense 64 relu\ndropout 0.25\ndense 10 softmax\n",
                   "sparse_categorical_crossentropy"),
    "diabetes regression": (_diabetes, "input 10\ndense 64 relu\ndense 32 relu\ndense 1\n", "mean_squared_error"),
}


def _final_val_loss(model: Any, initial: list[Any], loss: str, rate: float, data: tuple[Any, ...],
                    epochs: int) -> float:
    from kmagic._keras import keras

    k = keras()
    x_train, x_val, y_train, y_val = data
    model.set_weights(initial)
    model.compile(optimizer=k.optimizers.Adam(rate), loss=loss)
    k.utils.set_random_seed(0)
    history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=32, verbose=0)
    return float(history.history["val_loss"][-1])


def measure(name: str, quick: bool = False) -> dict[str, Any]:
    """The finder's suggestion and the final validation losses at it and over the grid, for one problem."""
    import kmagic
    from kmagic._keras import keras

    make_data, body, loss = PROBLEMS[name]
    data = make_data()
    model = kmagic.build(body, seed=0)
    model.compile(optimizer=keras().optimizers.Adam(1e-3), loss=loss)
    initial = model.get_weights()
    started = time.perf_counter()
    finding = kmagic.lr_find(model, data[0], data[2], steps=60 if quick else 100)
    finder_s = time.perf_counter() - started
    epochs = 1 if quick else 3
    grid = GRID[::3] if quick else GRID
    at_grid = {rate: _final_val_loss(model, initial, loss, rate, data, epochs) for rate in grid}
    suggested = _final_val_loss(model, initial, loss, finding.suggestion, data, epochs)
    best_rate = min(at_grid, key=at_grid.get)
    return {"name": name, "suggestion": finding.suggestion, "rule": finding.rule.split(":")[0],
            "suggested_loss": suggested, "grid": at_grid, "best_rate": best_rate, "best_loss": at_grid[best_rate],
            "finder_s": finder_s, "epochs": epochs}


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows = []
    for name in PROBLEMS:
        m = measure(name, quick)
        grid = ", ".join(f"{rate:.0e}: {value:.3f}" for rate, value in m["grid"].items())
        rows.append({
            "benchmark": f"lr finder, {name}: val loss at suggestion / grid's best ({m['epochs']} epochs)",
            "value": round(m["suggested_loss"] / m["best_loss"], 3), "unit": "x", "goal": "<= 1.5",
            "note": f"suggested {m['suggestion']:.2e} ({m['rule']}) -> {m['suggested_loss']:.4f}; best grid rate "
                    f"{m['best_rate']:.0e} -> {m['best_loss']:.4f}; grid {grid}; sweep {m['finder_s']:.1f} s"})
    return rows


if __name__ == "__main__":
    from benchmarks.run import table

    print(table(run()))
