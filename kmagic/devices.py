"""Devices, precision policy, XLA and distribution strategies for ``build``.

Minimal first version: the default strategy, an explicit or float32 precision
policy and an explicit XLA setting. The GPU/strategy work fills this in behind
the same interface (:func:`resolve`, :class:`DeviceSetup`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kmagic.errors import KmagicDeviceError, did_you_mean

STRATEGIES = ("auto", "none", "mirrored", "multiworker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_CHOICES = ("auto", "on", "off")


@dataclass
class DeviceSetup:
    """The device choices one model is built and compiled under."""

    strategy_name: str = "default"
    strategy: Any = None
    replicas: int = 1
    precision: str = "float32"
    jit: bool = False
    device: str = "CPU"
    extra: dict[str, Any] = field(default_factory=dict)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build and compile inside this context (the strategy's scope)."""
        if self.strategy is None:
            yield
        else:
            with self.strategy.scope():
                yield

    def layer_dtype(self, is_output: bool) -> str | None:
        """The dtype policy for a layer: None keeps Keras's default."""
        if self.precision == "float32":
            return None
        return "float32" if is_output else self.precision

    def keras_module(self) -> Any:
        """The Keras namespace to build with (Keras 3 unless a strategy needs another)."""
        from kmagic._keras import keras

        return keras()

    def describe(self) -> dict[str, Any]:
        """What the model card and ``%kdevice`` show."""
        return {
            "device": self.device,
            "strategy": self.strategy_name,
            "replicas": self.replicas,
            "precision": self.precision,
            "jit": "on" if self.jit else "off",
        }


def _check_choice(kind: str, value: str, choices: tuple[str, ...]) -> str:
    value = str(value).lower()
    if value not in choices:
        raise KmagicDeviceError(
            f"unknown {kind} '{value}': expected one of {', '.join(choices)}",
            hint=did_you_mean(value, choices),
        )
    return value


def resolve(strategy: str | None = None, precision: str | None = None, jit: str | bool | None = None) -> DeviceSetup:
    """Turn the user's ``strategy``/``precision``/``jit`` choices into a DeviceSetup."""
    strategy_name = _check_choice("strategy", strategy or "auto", STRATEGIES)
    precision_name = _check_choice("precision", precision or "auto", PRECISIONS)
    if isinstance(jit, bool):
        jit_on = jit
    else:
        jit_on = _check_choice("jit setting", jit or "auto", JIT_CHOICES) == "on"
    if strategy_name not in ("auto", "none"):
        raise KmagicDeviceError(f"strategy '{strategy_name}' is not available in this build of kmagic")
    return DeviceSetup(
        strategy_name="default" if strategy_name == "auto" else "none",
        precision="float32" if precision_name == "auto" else precision_name,
        jit=jit_on,
    )
