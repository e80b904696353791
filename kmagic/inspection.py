"""``kmagic.activations`` and ``kmagic.weights``: the views of ``%kactivations`` and ``%kweights`` as functions.

Each returns the view object: in a notebook it displays itself (the last
expression of a cell, or ``display(view)``); in plain Python its data is
there to read (``view.activations``, ``view.weights``, ``view.gradients``).
"""

from __future__ import annotations

from typing import Any

from kmagic.errors import KmagicValueError
from kmagic.model_check import require_model


def activations(model: Any, x: Any, *, layer: str | None = None, sample: int = 0) -> Any:
    """Every layer's output for the samples in ``x``: an activation explorer.

    ``layer`` and ``sample`` choose what it shows first; ``.activations`` maps
    each layer name to a numpy array (one row per sample).
    """
    from kmagic import datafeed
    from kmagic.widgets.activations import show_activations

    require_model(model)
    x = datafeed.prepare_inputs(model, x, "the input samples")
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
        raise KmagicValueError(f"expected sample to be a whole number >= 0, received {sample!r}")
    return show_activations(model, x, layer=layer, sample=sample)


def weights(model: Any, x: Any = None, y: Any = None) -> Any:
    """Per-layer weight histograms; gradient histograms of one batch too when ``x`` and ``y`` are given.

    ``.weights`` maps layer name -> variable name -> numpy array (``.gradients`` the same, or None).
    """
    from kmagic.widgets.weights import show_weights

    require_model(model)
    if (x is None) != (y is None):
        raise KmagicValueError("expected both x and y for gradient histograms (or neither), received only "
                               + ("x" if y is None else "y"))
    if x is not None:
        from kmagic import datafeed

        x = datafeed.prepare_inputs(model, x, "the inputs")
        y = datafeed.prepare_labels(model, y, "the labels")
    return show_weights(model, x=x, y=y)
