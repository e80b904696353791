"""Weight views (``%kweights NAME``): per-layer histograms of the weights and, given
training data, of the gradients from one batch; a static PNG fallback."""

from __future__ import annotations

from typing import Any

from kmagic.errors import KmagicDataError, KmagicUsageError

GRADIENT_BATCH = 64


def layer_weights(model: Any) -> dict[str, dict[str, Any]]:
    """``{layer name: {variable name: numpy array}}`` for the layers that have weights."""
    out: dict[str, dict[str, Any]] = {}
    for layer in model.layers:
        names = _names(layer.weights)
        variables = {name: v.numpy() for name, v in zip(names, layer.weights, strict=True)}
        if variables:
            out[layer.name] = variables
    return out


def _names(variables: list[Any]) -> list[str]:
    """Short variable names (``kernel``), or paths where short names repeat (a nested model)."""
    short = [_short(v) for v in variables]
    if len(set(short)) == len(short):
        return short
    return [str(getattr(v, "path", "") or _short(v)) for v in variables]


def layer_gradients(model: Any, x: Any, y: Any, batch: int = GRADIENT_BATCH) -> dict[str, dict[str, Any]]:
    """Gradients of the compiled loss w.r.t. each trainable variable, on the first ``batch`` samples.

    Runs the model in inference mode (``training=False``), so BatchNormalization
    statistics and other state are left as they are; dropout is off.
    """
    from kmagic._keras import tf

    if getattr(model, "loss", None) is None and not getattr(model, "compiled", False):
        raise KmagicUsageError(f"model '{model.name}' is not compiled, so there is no loss to differentiate",
                               hint="train it with %kfit first (or compile it)")
    xb, yb = _head(x, batch), _head(y, batch)
    variables = model.trainable_variables
    try:
        with tf().GradientTape() as tape:
            y_pred = model(xb, training=False)
            loss = model.compute_loss(x=xb, y=yb, y_pred=y_pred, training=False)
    except (ValueError, TypeError) as exc:
        raise KmagicDataError(f"cannot compute the loss of model '{model.name}' on this data: "
                              f"{str(exc).splitlines()[0]}") from exc
    grads = tape.gradient(loss, variables)
    owner: dict[int, tuple[str, str]] = {}
    for layer in model.layers:
        for name, v in zip(_names(layer.weights), layer.weights, strict=True):
            owner[id(v)] = (layer.name, name)
    out: dict[str, dict[str, Any]] = {}
    for variable, grad in zip(variables, grads, strict=True):
        if grad is None:
            continue
        layer, name = owner.get(id(variable), ("model", _short(variable)))
        out.setdefault(layer, {})[name] = tf().convert_to_tensor(grad).numpy()
    return out


def _short(variable: Any) -> str:
    return str(getattr(variable, "name", "") or getattr(variable, "path", "")).split("/")[-1]


def _head(data: Any, n: int) -> Any:
    if isinstance(data, dict):
        return {k: v[:n] for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(v[:n] for v in data)
    return data[:n]


class WeightsView:
    """Weight (and gradient) histograms per layer, with a layer selector and a static PNG."""

    def __init__(self, model_name: str, weights: dict[str, dict[str, Any]],
                 gradients: dict[str, dict[str, Any]] | None = None) -> None:
        self.model_name = model_name
        self.weights = weights
        self.gradients = gradients
        self._widget: Any = None

    def png(self, layer: str | None = None) -> bytes:
        """Histograms of one layer (weights above gradients) or of every layer."""
        from kmagic.widgets.plots import VAL, histograms_png

        def pick(groups: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {layer: groups[layer]} if layer is not None and layer in groups else (
                {} if layer is not None else groups)

        if self.gradients is None:
            return histograms_png(pick(self.weights), f"weights of '{self.model_name}'")
        merged: dict[str, dict[str, Any]] = {}
        for name, variables in pick(self.weights).items():
            merged[name] = dict(variables)
            for var, values in self.gradients.get(name, {}).items():
                merged[name][f"∇{var}"] = values
        return histograms_png(merged, f"weights and gradients (∇, one batch) of '{self.model_name}'", VAL)

    def summary(self) -> str:
        """One line per variable: shape, mean, standard deviation (and the gradient's)."""
        lines = [f"Weights of model '{self.model_name}':"]
        for layer, variables in self.weights.items():
            for var, values in variables.items():
                line = f"  {layer + '/' + var:<34} {str(values.shape):<16} mean {values.mean():+.3g}  std {values.std():.3g}"
                if self.gradients and var in self.gradients.get(layer, {}):
                    g = self.gradients[layer][var]
                    line += f"  |grad| mean {abs(g).mean():.3g}"
                lines.append(line)
        if self.gradients is None:
            lines.append("  (pass training data to see gradient histograms: %kweights NAME X Y)")
        return "\n".join(lines)

    def widget(self) -> Any:
        if self._widget is None:
            self._widget = _weights_widget(self)
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from kmagic.widgets.activations import _bundle

        return _bundle(self, self.summary())


def _weights_widget(view: WeightsView) -> Any:
    import html

    import ipywidgets as w

    layer = w.Dropdown(options=[("all layers", "")] + [(name, name) for name in view.weights],
                       description="layer", layout=w.Layout(width="360px"))
    note = "with gradients from one batch" if view.gradients is not None else "weights only (no training data given)"
    header = w.HTML(f"<b>{html.escape(view.model_name)}</b> · {note}")
    image = w.Image(format="png", layout=w.Layout(max_width="100%"))

    def redraw(_change: Any = None) -> None:
        image.value = view.png(layer.value or None)

    layer.observe(redraw, names="value")
    redraw()
    box = w.VBox([layer, header, image])
    box.add_class("kmagic-weights")
    return box


def show_weights(model: Any, x: Any = None, y: Any = None) -> WeightsView:
    """Weight histograms of ``model``; gradient histograms too when ``x`` and ``y`` are given."""
    weights = layer_weights(model)
    if not weights:
        raise KmagicUsageError(f"model '{getattr(model, 'name', 'model')}' has no weights yet",
                               hint="build it with an input shape first")
    gradients = layer_gradients(model, x, y) if x is not None and y is not None else None
    return WeightsView(getattr(model, "name", "model"), weights, gradients)
