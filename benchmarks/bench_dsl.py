"""The language's costs: parse time of a long program, and build time against hand-written Keras."""

from __future__ import annotations

import gc
import statistics
import time
import warnings

LAYERS = 100


def long_program(lines: int) -> str:
    """A realistic program of about ``lines`` lines: blocks, chains, comments, calls."""
    body = ["input 32x32x3", "block unit(f, k=3):", "    conv f k same relu nobias | bn", "    dropout 0.1"]
    while len(body) < lines - 2:
        body += [
            "conv 16 3 same relu kernel_regularizer=l2(1e-4)   # a comment",
            "residual:",
            "    conv 16 3 same relu | bn",
            "    conv 16 3 same",
            "unit 16 k=3",
            "concat:",
            "    branch: conv 8 1 relu",
            "    branch: maxpool 3 strides=1 same | conv 8 1 relu",
        ]
    body += ["gap", "dense 10 softmax", "compile adam(lr=1e-3) scce metrics=[accuracy, auc]"]
    return "\n".join(body[:lines])


def deep_text(n: int = LAYERS) -> str:
    return "\n".join(["input 64"] + ["dense 64 relu"] * (n - 1) + ["dense 10 softmax"])


def deep_by_hand(n: int = LAYERS):
    import keras
    from keras import layers

    inputs = keras.Input((64,))
    x = inputs
    for _ in range(n - 1):
        x = layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def _time(fn, repeat: int, clock=time.perf_counter) -> list[float]:
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return times


def run(quick: bool = False) -> list[dict]:
    import kmagic

    text = long_program(1000)
    kmagic.parse(text)  # grammar load, caches
    parse_times = _time(lambda: kmagic.parse(text), 3 if quick else 9)

    warnings.simplefilter("ignore")
    deep = deep_text()
    kmagic.build(deep)
    deep_by_hand()
    reps = 3 if quick else 25
    ours, theirs = [], []
    for rep in range(reps):  # interleaved, order alternating, garbage collected first: drift hits both alike
        pair = [(ours, lambda: kmagic.build(deep)), (theirs, deep_by_hand)]
        for times, fn in pair if rep % 2 == 0 else reversed(pair):
            gc.collect()
            times += _time(fn, 1, clock=time.process_time)
    # CPU time of this process: building is single-threaded Python, and other load on the
    # machine then barely moves the ratio (wall-clock ratios here swung from 0.89 to 1.21).
    ratio = statistics.median(ours) / statistics.median(theirs)
    return [
        {"benchmark": "parse a 1,000-line program", "value": statistics.median(parse_times) * 1000, "unit": "ms",
         "goal": "-", "note": f"median of {len(parse_times)}"},
        {"benchmark": f"build {LAYERS}-layer model / Keras by hand (CPU time)", "value": ratio, "unit": "x",
         "goal": "<= 1.05", "note": f"medians {statistics.median(ours) * 1000:.0f} vs "
                                   f"{statistics.median(theirs) * 1000:.0f} ms, {reps} interleaved"},
    ]
