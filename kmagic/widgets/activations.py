"""The activation explorer (``%kactivations NAME X``): every layer's output for a batch.

All outputs come from one forward pass of one multi-output Keras model
(``keras.Model(model.inputs, [layer.output, ...])``, public APIs only), built
once per model and cached. Views by output kind: a feature-map grid for
convolutional outputs, a heatmap for sequences, bars and a histogram for dense
outputs; every view is also a static PNG.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from kmagic.errors import KmagicDataError, KmagicUsageError

_CHUNK = 256
_OVERVIEW_LIMIT = 24
_MODELS: weakref.WeakKeyDictionary[Any, tuple[list[str], Any]] = weakref.WeakKeyDictionary()


def activation_model(model: Any) -> tuple[list[str], Any]:
    """``(names, multi_output_model)`` for ``model``'s layers (cached per model)."""
    cached = _MODELS.get(model)
    if cached is not None:
        return cached
    from kmagic._keras import keras

    k = keras()
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise KmagicUsageError(
            f"model '{model.name}' has no defined inputs, so its layers' outputs cannot be read",
            hint="build it with an input shape (an Input layer, or %%kmodel --input), or call it once on data",
        )
    names: list[str] = []
    outputs: list[Any] = []
    for layer in model.layers:
        if isinstance(layer, k.layers.InputLayer):
            continue
        try:
            out = layer.output
        except (AttributeError, ValueError):  # a layer shared between several calls
            continue
        if isinstance(out, (list, tuple)):
            for i, tensor in enumerate(out):
                names.append(f"{layer.name}[{i}]")
                outputs.append(tensor)
        elif isinstance(out, dict):
            for key, tensor in out.items():
                names.append(f"{layer.name}[{key}]")
                outputs.append(tensor)
        else:
            names.append(layer.name)
            outputs.append(out)
    if not outputs:
        raise KmagicUsageError(f"model '{model.name}' has no layer outputs to show")
    if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
        inputs = inputs[0]  # so a plain array matches the model's input structure
    multi = k.Model(inputs=inputs, outputs=outputs, name=f"{model.name}_activations")
    _MODELS[model] = (names, multi)
    return names, multi


def capture_activations(model: Any, x: Any) -> dict[str, Any]:
    """Every layer's output for the samples in ``x``: ``{layer name: numpy array}``.

    One forward pass (in inference mode) of one multi-output model, in chunks of
    256 samples for large inputs.
    """
    import numpy as np

    names, multi = activation_model(model)
    n = _length(x)
    parts: list[list[Any]] = []
    for start in range(0, n, _CHUNK):
        chunk = _slice(x, start, start + _CHUNK) if n > _CHUNK else x
        try:
            outs = multi(chunk, training=False)
        except (ValueError, TypeError) as exc:
            raise KmagicDataError(
                f"the samples do not fit model '{model.name}': {str(exc).splitlines()[0]}",
                hint=f"expected inputs shaped {', '.join(str(tuple(t.shape)) for t in multi.inputs)}",
            ) from exc
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        parts.append([np.asarray(o) for o in outs])
    result: dict[str, Any] = {}
    for i, name in enumerate(names):
        arrays = [p[i] for p in parts]
        value = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        result[name] = value.astype("float32") if value.dtype.kind == "f" and value.dtype.itemsize < 4 else value
    return result


def _length(x: Any) -> int:
    if isinstance(x, Mapping):
        return _length(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return _length(x[0])
    try:
        return int(x.shape[0])
    except (AttributeError, IndexError, TypeError) as exc:
        raise KmagicDataError("expected the samples as an array (or a list/dict of arrays) with a batch axis") from exc


def _slice(x: Any, start: int, stop: int) -> Any:
    if isinstance(x, Mapping):
        return {k: v[start:stop] for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(v[start:stop] for v in x)
    return x[start:stop]


def describe(value: Any) -> str:
    """What view a layer output gets, for the selector: ``conv``/``sequence``/``dense``."""
    from kmagic.widgets.plots import activation_kind

    return {"conv": "feature maps", "sequence": "heatmap", "dense": "bars + histogram"}.get(
        activation_kind(value.shape[1:]), "histogram")


class ActivationExplorer:
    """A layer selector and a sample selector over captured activations, with a static PNG fallback."""

    def __init__(self, model_name: str, activations: dict[str, Any], layer: str | None = None, sample: int = 0):
        self.model_name = model_name
        self.activations = activations
        first = next(iter(activations.values()))
        self.samples = int(first.shape[0])
        if layer is not None and layer not in activations:
            from kmagic.errors import KmagicNameError, did_you_mean

            raise KmagicNameError(f"model '{model_name}' has no layer '{layer}'",
                                  hint=did_you_mean(layer, list(activations)))
        if not 0 <= sample < self.samples:
            raise KmagicUsageError(f"sample {sample} is out of range: X holds {self.samples} sample(s)")
        self.layer = layer
        self.sample = sample
        self._widget: Any = None

    def png(self, layer: str | None = None, sample: int | None = None) -> bytes:
        """The static image: one layer in detail, or an overview of the layers."""
        from kmagic.widgets.plots import activations_png

        layer = self.layer if layer is None else layer
        sample = self.sample if sample is None else sample
        shown = self.activations
        if layer is None and len(shown) > _OVERVIEW_LIMIT:
            shown = dict(list(shown.items())[:_OVERVIEW_LIMIT])
        return activations_png(shown, sample, layer)

    def summary(self) -> str:
        """One line per layer: name, output shape, view."""
        lines = [f"Activations of model '{self.model_name}' for {self.samples} sample(s):"]
        for name, value in self.activations.items():
            lines.append(f"  {name:<28} {str(tuple(value.shape[1:])):<18} {describe(value)}")
        return "\n".join(lines)

    def widget(self) -> Any:
        """The interactive view (core ipywidgets: works in every widget front end)."""
        if self._widget is None:
            self._widget = _explorer_widget(self)
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return _bundle(self, self.summary())


def _bundle(view: Any, text: str) -> dict[str, Any]:
    """Widget (when a widget front end is likely) + PNG + text, so every front end shows something."""
    import base64

    from kmagic.widgets.dashboard import detect_frontend

    bundle: dict[str, Any] = {"text/plain": text, "image/png": base64.b64encode(view.png()).decode("ascii")}
    if detect_frontend() == "widget":
        widget_bundle = view.widget()._repr_mimebundle_()
        if isinstance(widget_bundle, tuple):
            widget_bundle = widget_bundle[0]
        bundle.update({k: v for k, v in widget_bundle.items() if k != "text/plain"})
    return bundle


def _explorer_widget(view: ActivationExplorer) -> Any:
    import html

    import ipywidgets as w

    options = [("all layers (overview)", "")] + [
        (f"{name}  {tuple(v.shape[1:])}  {describe(v)}", name) for name, v in view.activations.items()]
    layer = w.Dropdown(options=options, value=view.layer or "", description="layer",
                       layout=w.Layout(width="460px"))
    sample = w.IntSlider(value=view.sample, min=0, max=max(view.samples - 1, 0), description="sample",
                         disabled=view.samples <= 1, continuous_update=False)
    header = w.HTML()
    image = w.Image(format="png", layout=w.Layout(max_width="100%"))

    def redraw(_change: Any = None) -> None:
        name = layer.value or None
        shown = name or ", ".join(list(view.activations)[:_OVERVIEW_LIMIT])
        header.value = (f"<b>{html.escape(view.model_name)}</b> · sample {sample.value} · "
                        f"<span>{html.escape(shown)}</span>")
        image.value = view.png(name, sample.value)

    layer.observe(redraw, names="value")
    sample.observe(redraw, names="value")
    redraw()
    box = w.VBox([w.HBox([layer, sample]), header, image])
    box.add_class("kmagic-activations")
    return box


def show_activations(model: Any, x: Any, layer: str | None = None, sample: int = 0) -> ActivationExplorer:
    """The activation explorer for the samples in ``x`` (display the returned object)."""
    return ActivationExplorer(getattr(model, "name", "model"), capture_activations(model, x), layer, sample)
