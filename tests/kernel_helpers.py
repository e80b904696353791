"""Helpers for tests that drive a real kernel through jupyter_client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def kernel_env(*drop: str, **extra: str) -> dict[str, str]:
    """This process's environment for a kernel that imports kmagic from the repo, less ``drop``."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


def user_expression(kc: Any, expression: str) -> str:
    """The ``text/plain`` repr of ``expression`` evaluated in the kernel behind ``kc``."""
    reply = kc.execute_interactive("", user_expressions={"v": expression}, timeout=60)
    value = reply["content"]["user_expressions"]["v"]
    assert value["status"] == "ok", value
    return value["data"]["text/plain"]
