"""What changed between two models (``%kdiff A B``): layers, totals and the kmodel text.

Either side is a Keras model or kmodel text (built first). Layers are paired in graph order by
their classes (the longest common sequence, as ``difflib`` pairs lines); a paired layer is
"changed" when its class, an argument of its configuration, its output shape or its parameter
count differs. Totals compare parameters and multiply-adds per sample; the text diff compares
the kmodel text of each side (the text it was built from, else :func:`kmagic.from_keras`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from html import escape
from typing import Any

from kmagic.errors import KmagicError

#: Configuration keys that say nothing about what a layer computes.
_IGNORED_KEYS = {"name", "dtype"}


@dataclass
class LayerChange:
    """One row of the diff: a layer kept, changed, added or removed."""

    kind: str
    before: str | None
    after: str | None
    details: list[str] = field(default_factory=list)


@dataclass
class ModelDiff:
    """The comparison of model ``a`` with model ``b``."""

    a: str
    b: str
    layers: list[LayerChange]
    parameters: tuple[int, int]
    macs: tuple[int, int]
    text: list[str]

    @property
    def changed(self) -> list[LayerChange]:
        return [row for row in self.layers if row.kind != "same"]

    def to_text(self) -> str:
        lines = [f"{self.a} -> {self.b}: {len(self.changed)} layer change(s)"]
        marks = {"added": "+", "removed": "-", "changed": "~"}
        for row in self.changed:
            label = row.after if row.kind == "added" else row.before
            if row.kind == "changed" and row.before != row.after:
                label = f"{row.before} -> {row.after}"
            lines.append(f"  {marks[row.kind]} {label}" + (f": {'; '.join(row.details)}" if row.details else ""))
        lines.append(f"parameters: {self.parameters[0]:,} -> {self.parameters[1]:,} "
                     f"({self.parameters[1] - self.parameters[0]:+,})")
        lines.append(f"multiply-adds per sample: {self.macs[0]:,} -> {self.macs[1]:,} "
                     f"({self.macs[1] - self.macs[0]:+,})")
        if self.text:
            lines += ["", "kmodel text:", *self.text]
        return "\n".join(lines)

    def to_html(self) -> str:
        colours = {"added": "#2e7d32", "removed": "#c62828", "changed": "#ef6c00", "same": "inherit"}
        rows = "".join(
            f'<tr style="color:{colours[r.kind]}"><td>{r.kind}</td><td>{escape(r.before or "")}</td>'
            f"<td>{escape(r.after or '')}</td><td>{escape('; '.join(r.details))}</td></tr>"
            for r in self.layers
        )
        totals = (f"<tr><th>parameters</th><td>{self.parameters[0]:,}</td><td>{self.parameters[1]:,}</td>"
                  f"<td>{self.parameters[1] - self.parameters[0]:+,}</td></tr>"
                  f"<tr><th>multiply-adds per sample</th><td>{self.macs[0]:,}</td><td>{self.macs[1]:,}</td>"
                  f"<td>{self.macs[1] - self.macs[0]:+,}</td></tr>")
        text = "".join(f'<div style="color:{_line_colour(line)}">{escape(line) or "&nbsp;"}</div>'
                       for line in self.text)
        return (f'<div class="kmagic-diff"><b>{escape(self.a)} → {escape(self.b)}</b>'
                f"<table><thead><tr><th></th><th>{escape(self.a)}</th><th>{escape(self.b)}</th><th>what differs</th>"
                f"</tr></thead><tbody>{rows}</tbody></table>"
                f'<table style="margin-top:6px">{totals}</table>'
                f'<pre style="font-size:12px">{text}</pre></div>')

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": self.to_text(), "text/html": self.to_html()}

    def __repr__(self) -> str:
        return self.to_text()


def _line_colour(line: str) -> str:
    if line.startswith("+") and not line.startswith("+++"):
        return "#2e7d32"
    if line.startswith("-") and not line.startswith("---"):
        return "#c62828"
    return "inherit"


def _as_model(side: Any, namespace: dict[str, Any] | None, label: str) -> Any:
    if isinstance(side, str):
        from kmagic.compile import build

        return build(side, name=label, namespace=namespace)
    if not all(hasattr(side, attr) for attr in ("layers", "count_params")):
        raise KmagicError(f"expected a Keras model or kmodel text to compare, received {type(side).__name__}")
    return side


def _text_of(model: Any) -> str:
    from kmagic.buildinfo import info_of

    source = info_of(model).source
    if source.strip():
        return source.strip() + "\n"
    try:
        from kmagic.codegen import from_keras

        return from_keras(model)
    except KmagicError:
        return ""


def _config(layer: Any) -> dict[str, Any]:
    try:
        config = layer.get_config()
    except (NotImplementedError, TypeError):
        return {}
    return {key: value for key, value in config.items() if key not in _IGNORED_KEYS}


def _compare(before: Any, after: Any, stats_a: Any, stats_b: Any) -> LayerChange:
    details = []
    if type(before) is not type(after):
        details.append(f"class {type(before).__name__} -> {type(after).__name__}")
    else:
        config_a, config_b = _config(before), _config(after)
        for key in sorted(set(config_a) | set(config_b)):
            if repr(config_a.get(key)) != repr(config_b.get(key)):
                details.append(f"{key} {_short(config_a.get(key))} -> {_short(config_b.get(key))}")
    if stats_a.output_shape != stats_b.output_shape:
        details.append(f"output {stats_a.output_shape} -> {stats_b.output_shape}")
    params_a, params_b = stats_a.trainable + stats_a.non_trainable, stats_b.trainable + stats_b.non_trainable
    if params_a != params_b:
        details.append(f"parameters {params_a:,} -> {params_b:,}")
    return LayerChange("changed" if details else "same", before.name, after.name, details)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _pair(layers_a: list[Any], layers_b: list[Any], key: Any, compare: Any) -> list[LayerChange]:
    """Pair layers by ``key`` (class and configuration), then the rest of each gap by class."""
    matcher = difflib.SequenceMatcher(a=[key(x) for x in layers_a], b=[key(x) for x in layers_b], autojunk=False)
    changes: list[LayerChange] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        gap_a, gap_b = layers_a[i1:i2], layers_b[j1:j2]
        if tag == "equal":
            changes += [compare(x, y) for x, y in zip(gap_a, gap_b, strict=True)]
        elif key is _class_key:
            pairs = min(len(gap_a), len(gap_b)) if tag == "replace" else 0
            changes += [compare(x, y) for x, y in zip(gap_a[:pairs], gap_b[:pairs], strict=True)]
            changes += [LayerChange("removed", x.name, None, [type(x).__name__]) for x in gap_a[pairs:]]
            changes += [LayerChange("added", None, y.name, [type(y).__name__]) for y in gap_b[pairs:]]
        else:
            changes += _pair(gap_a, gap_b, _class_key, compare)
    return changes


def _class_key(layer: Any) -> str:
    return type(layer).__name__


def diff(a: Any, b: Any, *, namespace: dict[str, Any] | None = None, names: tuple[str, str] | None = None) -> ModelDiff:
    """Compare two models (or kmodel texts): layers, totals and text."""
    from kmagic.model_stats import layer_calls, model_stats

    label_a, label_b = names or ("a", "b")
    model_a, model_b = _as_model(a, namespace, label_a), _as_model(b, namespace, label_b)
    stats_a, stats_b = model_stats(model_a), model_stats(model_b)
    layers_a = [layer for layer, _ in layer_calls(model_a)]
    layers_b = [layer for layer, _ in layer_calls(model_b)]
    rows_a = {row.name: row for row in stats_a.layers}
    rows_b = {row.name: row for row in stats_b.layers}
    changes = _pair(layers_a, layers_b, lambda layer: (type(layer).__name__, repr(_config(layer))),
                    lambda before, after: _compare(before, after, rows_a[before.name], rows_b[after.name]))
    text = list(difflib.unified_diff(_text_of(model_a).splitlines(), _text_of(model_b).splitlines(),
                                     fromfile=label_a, tofile=label_b, lineterm=""))
    return ModelDiff(a=label_a, b=label_b, layers=changes, parameters=(stats_a.parameters, stats_b.parameters),
                     macs=(stats_a.macs, stats_b.macs), text=text)
