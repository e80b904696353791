"""Static PNG images (matplotlib, Agg, no pyplot state) for saved notebooks and headless runs.

The training curves, which the user waits for after every fit, are drawn
faster with Pillow in :mod:`kmagic.widgets.curve_image`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np


TRAIN, VAL, BATCH, BEST, LR = "#1f77b4", "#ff7f0e", "#9ecae1", "#2ca02c", "#9467bd"


#: Titles, labels, ticks, frames and legends of every static image: a mid grey that reads on
#: light, dark and high-contrast backgrounds (4.5:1 on white, about 4:1 on JupyterLab's dark
#: background), because the images are drawn on a transparent background and so take the
#: theme's own colour, also after a theme switch.
NEUTRAL = "#767676"


def _figure(width: float, height: float,
            layout: Literal["constrained", "compressed", "tight"] | None = "constrained") -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=90, layout=layout)


def _neutral_colours(fig: Any) -> None:
    """Frame and text colours that read on any theme; the data's own colours stay."""
    legends = list(fig.legends)
    for ax in fig.axes:
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            text.set_color(NEUTRAL)
        ax.tick_params(colors=NEUTRAL, which="both")
        for spine in ax.spines.values():
            spine.set_edgecolor(NEUTRAL)
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
    for legend in legends:
        legend.get_frame().set_facecolor("none")
        legend.get_frame().set_edgecolor(NEUTRAL)
        for text in legend.get_texts():
            if text.get_color() in ("black", "#000000", "k"):
                text.set_color(NEUTRAL)
    for text in fig.texts:  # the figure's title (suptitle)
        text.set_color(NEUTRAL)


def to_png(fig: Any, fast: bool = False) -> bytes:
    """Render a matplotlib Figure to PNG bytes on a transparent background, with frame and text
    colours that read on light and dark themes (``fast``: light zlib compression)."""
    _neutral_colours(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", transparent=True, pil_kwargs={"compress_level": 1} if fast else None)
    return buf.getvalue()


def _grid(n: int, columns: int = 3) -> tuple[int, int]:
    cols = max(1, min(columns, n))
    return math.ceil(n / cols), cols


# -- activations -----------------------------------------------------------------


def tile_channels(fmap: np.ndarray, limit: int = 64) -> np.ndarray:
    """(H, W, C) feature maps as one (rows*H, cols*W) mosaic, each channel normalised, NaN between tiles."""
    import numpy as np

    h, w, c = fmap.shape
    c = min(c, limit)
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    mosaic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, dtype="float32")
    for k in range(c):
        tile = fmap[:, :, k].astype("float32")
        lo, hi = float(np.nanmin(tile)), float(np.nanmax(tile))
        tile = (tile - lo) / (hi - lo) if hi > lo else np.zeros_like(tile)
        r, q = divmod(k, cols)
        mosaic[r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = tile
    return mosaic


def activation_kind(shape: Sequence[int]) -> str:
    """How to show one sample's output of this shape: ``conv``, ``sequence``, ``dense`` or ``other``."""
    rank = len(shape)
    if rank == 3 or rank == 4:
        return "conv"
    if rank == 2:
        return "sequence"
    if rank == 1:
        return "dense"
    return "other"


def draw_activation(ax: Any, name: str, value: np.ndarray, fig: Any = None, compact: bool = False) -> None:
    """One sample's output of one layer on ``ax``, by kind."""
    import numpy as np

    value = np.asarray(value, dtype="float32")
    kind = activation_kind(value.shape)
    shape = "×".join(str(d) for d in value.shape)
    if kind == "conv":
        if value.ndim == 4:  # 3D conv: the middle depth slice
            value = value[value.shape[0] // 2]
        mosaic = tile_channels(value, limit=16 if compact else 64)
        ax.imshow(np.ma.masked_invalid(mosaic), cmap="viridis", interpolation="nearest")
        ax.set_axis_off()
        shown = min(value.shape[-1], 16 if compact else 64)
        ax.set_title(f"{name}  {shape}  ({shown} of {value.shape[-1]} maps)", fontsize=8)
    elif kind == "sequence":
        im = ax.imshow(value.T, aspect="auto", cmap="magma", interpolation="nearest")
        ax.set_xlabel("time step", fontsize=7)
        ax.set_ylabel("feature", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_title(f"{name}  {shape}", fontsize=8)
        if fig is not None and not compact:
            fig.colorbar(im, ax=ax, shrink=0.8)
    else:
        flat = value.ravel()
        if kind == "dense" and flat.size <= 128:
            ax.bar(range(flat.size), flat, color=TRAIN, width=0.85)
            ax.set_xlabel("unit", fontsize=7)
        else:
            ax.hist(flat[np.isfinite(flat)], bins=40, color=TRAIN)
            ax.set_xlabel("value", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_title(f"{name}  {shape}", fontsize=8)


def activations_png(acts: dict[str, np.ndarray], sample: int, layer: str | None = None) -> bytes:
    """One layer in detail (with a histogram beside dense outputs), or every layer compactly."""
    import numpy as np

    if layer is not None:
        value = np.asarray(acts[layer][sample], dtype="float32")
        kind = activation_kind(value.shape)
        if kind == "dense":
            fig = _figure(9, 3)
            ax1, ax2 = fig.subplots(1, 2)
            draw_activation(ax1, layer, value, fig)
            ax2.hist(value.ravel()[np.isfinite(value.ravel())], bins=30, color=VAL)
            ax2.set_title("histogram", fontsize=8)
            ax2.tick_params(labelsize=7)
        else:
            fig = _figure(7, 5.5 if kind == "conv" else 3.6)
            draw_activation(fig.subplots(), layer, value, fig)
        fig.suptitle(f"sample {sample}", fontsize=9)
        return to_png(fig)
    names = list(acts)
    rows, cols = _grid(len(names), 3)
    fig = _figure(4.0 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        draw_activation(ax, name, acts[name][sample], fig, compact=True)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"activations of sample {sample}", fontsize=10)
    return to_png(fig)


# -- weights and gradients ---------------------------------------------------------


def histograms_png(groups: dict[str, dict[str, np.ndarray]], title: str, color: str = TRAIN) -> bytes:
    """One histogram per (layer, variable): ``groups[layer][variable] = values``."""
    import numpy as np

    items = [(layer, var, vals) for layer, vs in groups.items() for var, vals in vs.items()]
    if not items:
        fig = _figure(5, 1.2)
        fig.text(0.5, 0.5, f"{title}: nothing to show", ha="center", va="center")
        return to_png(fig)
    rows, cols = _grid(len(items), 3)
    fig = _figure(3.7 * cols, 2.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (layer, var, vals) in zip(axes, items, strict=False):
        flat = np.asarray(vals, dtype="float64").ravel()
        finite = flat[np.isfinite(flat)]
        ax.hist(finite, bins=40, color=color)
        std = float(finite.std()) if finite.size else float("nan")
        ax.set_title(f"{layer}/{var}  n={flat.size}  σ={std:.3g}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(items) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return to_png(fig)
