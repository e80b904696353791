"""What the resource limits cost, and how fast a program over them is refused.

- ``weight_check_build_time_ratio``: ``kmagic.build`` of a small CNN with the
  per-layer weight estimate (a shape-only copy of each layer built in a Keras
  ``StatelessScope``) over the same build with the estimate switched off;
  interleaved, alternating order, median of the per-repetition ratios.
- ``oversized_program_refusal_ratio``: the time to refuse ``repeat 10000:
  dense 1`` (over ``kmagic.limits.MAX_LAYERS``) over the time to build
  ``repeat 100: dense 1``; issue 11 measured 68 s and 1.7 GB before the refusal
  existed.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from typing import Any

CNN = ("input 28x28x1\nconv 32 3 relu\nmaxpool 2\nconv 64 3 relu\nmaxpool 2\nflatten\ndropout 0.5\n"
       "dense 10 softmax\ncompile adam scce")


def _build_time(body: str) -> float:
    import kmagic

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kmagic.build(body)
    return time.perf_counter() - start


def _weight_check(quick: bool) -> dict[str, Any]:
    from kmagic import limits

    measure = limits.layer_weight_bytes
    _build_time(CNN)  # imports and first-build costs, outside the timings
    ratios = []
    for repeat in range(3 if quick else 9):
        times = {}
        for checked in ((True, False) if repeat % 2 == 0 else (False, True)):
            limits.layer_weight_bytes = measure if checked else (lambda *args, **kwargs: None)
            try:
                times[checked] = _build_time(CNN)
            finally:
                limits.layer_weight_bytes = measure
        ratios.append(times[True] / times[False])
    return {"benchmark": "weight_check_build_time_ratio", "value": round(statistics.median(ratios), 3), "unit": "x",
            "goal": "<= 1.3", "note": "8-line CNN, estimate on / off, interleaved; noisy on a shared machine"}


def _refusal(quick: bool) -> dict[str, Any]:
    import kmagic

    small = _build_time("input 4\nrepeat 100: dense 1")
    start = time.perf_counter()
    with contextlib.suppress(kmagic.KmagicError):
        kmagic.build("input 4\nrepeat 10000: dense 1")
    refused = time.perf_counter() - start
    return {"benchmark": "oversized_program_refusal_ratio", "value": round(refused / small, 3), "unit": "x",
            "goal": "< 1", "note": f"refusing 10,000 layers ({refused:.2f} s) / building 100 ({small:.2f} s)"}


def run(quick: bool = False) -> list[dict[str, Any]]:
    return [_weight_check(quick), _refusal(quick)]
