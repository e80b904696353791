"""What kmagic knows about a model it built: kept beside the model, not inside it."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LayerOrigin:
    """The DSL statement that made a Keras layer."""

    line: int
    column: int
    text: str


@dataclass
class BuildInfo:
    """Facts about one built model that Keras itself does not keep.

    ``origins`` maps a Keras layer name to the DSL statement that made it;
    ``fit_defaults`` holds the ``fit`` statement's keywords for ``%kfit``;
    ``device`` is the description of the device setup the model was built for
    (device, strategy, replicas, precision, jit); ``source`` is the body text;
    ``recording`` how the model was built, for code export (a ``compile.Recording``).
    """

    source: str = ""
    origins: dict[str, LayerOrigin] = field(default_factory=dict)
    fit_defaults: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    compiled_by_dsl: bool = False
    setup: Any = None
    recording: Any = None


_INFOS: weakref.WeakKeyDictionary[Any, BuildInfo] = weakref.WeakKeyDictionary()


def attach(model: Any, info: BuildInfo) -> None:
    """Remember ``info`` for ``model`` for as long as the model lives."""
    _INFOS[model] = info


def info_of(model: Any) -> BuildInfo:
    """The BuildInfo of ``model``; an empty one for a model kmagic did not build."""
    info = _INFOS.get(model)
    if info is None:
        info = BuildInfo()
        _INFOS[model] = info
    return info
