"""Magic benchmarks: ``%load_ext kmagic`` in fresh shells, and the cost of ``%%kmodel`` over ``kmagic.build``.

- load: each repetition starts a fresh Python, makes an ``InteractiveShell`` and
  times ``%load_ext kmagic`` (the package import included, its bytecode cached
  as after an install, whatever ``PYTHONDONTWRITEBYTECODE`` says); ``%load_ext
  tensorboard`` is timed the same way, alternating with it, as the reference
  an extension user knows. Median of the repetitions.
- %%kmodel: in one process, the same body through ``kmagic.build`` and through
  the ``%%kmodel`` magic (``run_cell_magic``, so IPython's own cell machinery
  is not counted) with ``--quiet`` and with the model card rendered to every
  MIME type, interleaved in rotating order, garbage collected outside the
  timings; the overhead is the difference of the medians.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_LOAD_SCRIPT = """
import sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
start, cpu = time.perf_counter(), time.process_time()
ip.run_line_magic("load_ext", sys.argv[1])
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
heavy = [m for m in ("tensorflow", "keras", "numpy", "matplotlib", "ipywidgets") if m in sys.modules]
print(elapsed, cpu, ",".join(heavy) or "-")
"""

BODY = """input 28x28x1
conv 16 3 relu
maxpool 2
residual:
    conv 16 3 same relu
    conv 16 3 same
flatten
dense 64 relu
dense 10 softmax
"""


def _load_once(extension: str) -> tuple[float, float, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # As after an install: bytecode is cached (the first run writes it), not compiled on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, extension], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=120, check=True).stdout.split()
    return float(out[0]), float(out[1]), out[2]


def _has_tensorboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def bench_load(repetitions: int) -> list[dict]:
    kmagic_times: list[float] = []
    cpu_times: list[float] = []
    board_times: list[float] = []
    heavy = "-"
    board = _has_tensorboard()
    _load_once("kmagic")  # warm-up: writes kmagic's bytecode cache, as pip install does
    for _ in range(repetitions):
        elapsed, cpu, heavy_now = _load_once("kmagic")
        kmagic_times.append(elapsed)
        cpu_times.append(cpu)
        heavy = heavy_now if heavy_now != "-" else heavy
        if board:
            board_times.append(_load_once("tensorboard")[0])
    median = statistics.median(kmagic_times)
    rows = [{
        "benchmark": "%load_ext kmagic (fresh shell)",
        "value": median,
        "unit": "s",
        "goal": "< 0.05 s",
        "note": f"median of {repetitions} fresh interpreters (CPU time {statistics.median(cpu_times):.4f} s); "
                f"heavy modules imported: {heavy}",
    }]
    if board_times:
        reference = statistics.median(board_times)
        rows.append({
            "benchmark": "%load_ext kmagic / %load_ext tensorboard",
            "value": median / reference,
            "unit": "x",
            "goal": "context",
            "note": f"tensorboard median {reference:.4f} s, alternated with kmagic",
        })
    return rows


def bench_kmodel(repetitions: int) -> list[dict]:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    import kmagic

    shell = InteractiveShell.instance()
    if "kmagic" not in shell.extension_manager.loaded:
        shell.run_line_magic("load_ext", "kmagic")

    def quiet() -> None:
        shell.run_cell_magic("kmodel", "bench_net --quiet", BODY)

    def card() -> None:
        shell.run_cell_magic("kmodel", "bench_net", BODY)

    for _ in range(3):  # warm up: TensorFlow import, Keras's first-call caches, IPython's caches
        with capture_output():
            kmagic.build(BODY, name="bench_net")
            quiet()
            card()
    times: dict[str, list[float]] = {"build": [], "quiet": [], "card": []}
    runs = [("build", lambda: kmagic.build(BODY, name="bench_net")),
            ("quiet", quiet), ("card", card)]
    for repetition in range(repetitions):
        for key, run in runs[repetition % 3:] + runs[:repetition % 3]:  # rotate the order
            shell.user_ns.pop("bench_net", None)
            gc.collect()  # earlier models are freed outside the timings
            gc.disable()
            start = time.perf_counter()
            with capture_output():
                kept = run()
            times[key].append(time.perf_counter() - start)
            del kept
            gc.enable()
    build, quiet, card = (statistics.median(times[k]) for k in ("build", "quiet", "card"))
    return [
        {"benchmark": "kmagic.build (residual CNN, 9 statements)", "value": build * 1000, "unit": "ms",
         "goal": "reference", "note": f"median of {repetitions}"},
        {"benchmark": "%%kmodel --quiet overhead over kmagic.build", "value": (quiet - build) * 1000, "unit": "ms",
         "goal": "< 10 ms", "note": f"ratio {quiet / build:.2f}x; line parsing, binding"},
        {"benchmark": "%%kmodel with model card, overhead over kmagic.build", "value": (card - build) * 1000,
         "unit": "ms", "goal": "< 100 ms", "note": f"ratio {card / build:.2f}x; card stats, SVG, HTML, text"},
    ]


def run(quick: bool = False) -> list[dict]:
    """The magic benchmark rows (quick: fewer repetitions)."""
    return bench_load(3 if quick else 9) + bench_kmodel(5 if quick else 11)


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
