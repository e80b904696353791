"""GPU training throughput: default Keras ``fit`` against kmagic's ``auto`` device settings.

One script for a lent GPU machine (``python benchmarks/gpu.py``); ``--smoke``
runs the same code with tiny sizes on a CPU in well under a minute.

For each model (a ResNet-style CNN on 32x32x3 images, a small transformer
encoder on token ids) the same kmodel text is built twice:

- **keras default**: ``kmagic.build(text, strategy="none", precision="float32")``
  gives plain Keras layers with Keras's default dtype; it is then compiled with
  ``model.compile(optimizer, loss)`` and nothing else, so XLA is whatever Keras
  3 decides by default (``jit_compile="auto"``: on with one GPU, off on a CPU);
- **kmagic auto**: ``kmagic.build(text + compile line)`` with every device
  option on ``auto`` (precision policy, XLA, strategy).

Both train on the same in-memory ``tf.data`` pipeline (fixed batch size, last
partial batch dropped, prefetch). Rounds are interleaved (one epoch of each
setup per round) so drift on the machine hits both; round 0 compiles and
warms up and is excluded; samples/s is the median over the other rounds.
Peak GPU memory is TensorFlow's allocator peak during that setup's epochs
(``tf.config.experimental.get_memory_info``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESNET = """
block basic(w):
    residual:
        conv w 3 same nobias | bn | relu
        conv w 3 same nobias | bn
    relu
block down(w):
    residual project:
        conv w 3 same strides=2 nobias | bn | relu
        conv w 3 same nobias | bn
    relu
input 32x32x3
conv {w1} 3 same nobias | bn | relu
repeat {blocks}: basic {w1}
down {w2}
repeat {more_blocks}: basic {w2}
down {w3}
repeat {more_blocks}: basic {w3}
gap
dense 10 softmax
"""

TRANSFORMER = """
input {seq} dtype=int32
embedding {vocab} {d}
repeat {layers}:
    residual:
        mha {heads} {key_dim}
    ln
    residual:
        dense {ff} gelu
        dense {d}
    ln
gap
dense {classes} softmax
"""

COMPILE = "compile adam scce"

#: Sizes per model: the full benchmark and the CPU smoke run.
SIZES: dict[str, dict[str, dict[str, int]]] = {
    "resnet": {
        "full": {"w1": 64, "w2": 128, "w3": 256, "blocks": 2, "more_blocks": 1,
                 "samples": 25600, "batch": 256},
        "smoke": {"w1": 8, "w2": 8, "w3": 16, "blocks": 1, "more_blocks": 1, "samples": 128, "batch": 32},
    },
    "transformer": {
        "full": {"seq": 128, "vocab": 8000, "d": 256, "layers": 4, "heads": 4, "key_dim": 64, "ff": 1024,
                 "classes": 4, "samples": 16384, "batch": 128},
        "smoke": {"seq": 16, "vocab": 200, "d": 16, "layers": 1, "heads": 2, "key_dim": 8, "ff": 32,
                  "classes": 4, "samples": 128, "batch": 32},
    },
}
TEXTS = {"resnet": RESNET, "transformer": TRANSFORMER}


@dataclass
class Row:
    """One line of the table."""

    model: str
    setup: str
    params: int
    precision: str
    xla: str
    strategy: str
    samples_per_s: float
    speedup: float
    peak_gpu_mib: float | None
    rounds: int


def _dataset(model_name: str, size: dict[str, int]) -> Any:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    n = size["samples"]
    if model_name == "resnet":
        x = rng.random((n, 32, 32, 3), dtype=np.float32)
        y = rng.integers(0, 10, n).astype("int32")
    else:
        x = rng.integers(1, size["vocab"], (n, size["seq"])).astype("int32")
        y = rng.integers(0, size["classes"], n).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(size["batch"], drop_remainder=True).prefetch(
        tf.data.AUTOTUNE)


def _models(model_name: str, size: dict[str, int]) -> dict[str, Any]:
    import kmagic
    from kmagic._keras import keras

    text = TEXTS[model_name].format(**size)
    default = kmagic.build(text, name=f"{model_name}_default", strategy="none", precision="float32", seed=0)
    default.compile(optimizer=keras().optimizers.Adam(), loss="sparse_categorical_crossentropy")
    auto = kmagic.build(text + COMPILE, name=f"{model_name}_auto", seed=0)
    if default.count_params() != auto.count_params():
        raise AssertionError("the two setups built different models")
    return {"keras default": default, "kmagic auto": auto}


class _EpochTimer:
    """Wall time of each epoch, measured from the callback hooks (the last batch has synced)."""

    def __init__(self) -> None:
        from kmagic._keras import keras

        timer = self

        class Callback(keras().callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                timer.start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                timer.seconds.append(time.perf_counter() - timer.start)

        self.start = 0.0
        self.seconds: list[float] = []
        self.callback = Callback()


def _gpu_memory() -> tuple[Any, Any]:
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return (lambda: None), (lambda: None)

    def reset() -> None:
        tf.config.experimental.reset_memory_stats("GPU:0")

    def peak() -> float:
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20

    return reset, peak


def measure(model_name: str, smoke: bool = False, rounds: int | None = None,
            size_name: str | None = None) -> list[Row]:
    """Interleaved epochs of both setups on one model; the two table rows (default Keras first)."""
    from kmagic.buildinfo import info_of

    size = SIZES[model_name][size_name or ("smoke" if smoke else "full")]
    rounds = rounds or (3 if smoke else 7)
    data = _dataset(model_name, size)
    models = _models(model_name, size)
    steps = size["samples"] // size["batch"]
    timers = {name: _EpochTimer() for name in models}
    peaks: dict[str, list[float]] = {name: [] for name in models}
    reset, peak = _gpu_memory()
    for round_index in range(rounds):
        for name, model in models.items():
            reset()
            model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[timers[name].callback])
            if round_index > 0 and (value := peak()) is not None:
                peaks[name].append(value)
    rows = []
    base = None
    for name, model in models.items():
        measured = timers[name].seconds[1:]  # round 0 traced, compiled and warmed up
        rate = steps * size["batch"] / statistics.median(measured)
        base = base or rate
        device = info_of(model).device
        precision = device["precision"] if name == "kmagic auto" else model.dtype_policy.name
        strategy = device["strategy"] if name == "kmagic auto" else "none"
        rows.append(Row(model_name, name, model.count_params(), precision, "on" if model.jit_compile else "off",
                        strategy, rate, rate / base, max(peaks[name]) if peaks[name] else None, len(measured)))
    return rows


def table(rows: list[Row], device: str) -> str:
    """The one table the script prints."""
    header = ("model", "setup", "params", "precision", "XLA", "strategy", "samples/s", "speedup", "peak GPU MiB")
    lines = [tuple(str(v) for v in (
        r.model, r.setup, f"{r.params:,}", r.precision, r.xla, r.strategy, f"{r.samples_per_s:,.0f}",
        f"{r.speedup:.2f}x", "-" if r.peak_gpu_mib is None else f"{r.peak_gpu_mib:,.0f}")) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = [f"device: {device}; median of {rows[0].rounds} epochs after one warm-up epoch; goal: kmagic auto "
           ">= 1.5x keras default on an H200"]
    out.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in lines)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, runs on a CPU in seconds")
    parser.add_argument("--models", default="resnet,transformer", help="comma-separated: resnet, transformer")
    parser.add_argument("--rounds", type=int, default=None, help="epochs per setup, the first is warm-up")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in TEXTS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}: expected resnet, transformer")
    if args.rounds is not None and args.rounds < 2:
        parser.error("--rounds must be at least 2 (the first one is warm-up)")

    from kmagic import devices

    device = devices.detect().summary()
    rows = [row for name in names for row in measure(name, smoke=args.smoke, rounds=args.rounds)]
    print(table(rows, device))
    if args.json:
        args.json.write_text(json.dumps({"device": device, "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
