"""The dashboard's final image of the training curves, drawn with Pillow in milliseconds.

The user waits for this image at the end of every fit (it is what a saved
notebook, nbconvert HTML and GitHub show), so it is drawn directly with
Pillow instead of matplotlib: about 10 ms instead of 120-180 ms. Everything
is drawn at twice the size and halved at the end, which smooths the lines.
The background is transparent and frames and text are a neutral grey, as in
every other static image (see :mod:`kmagic.widgets.plots`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kmagic.widgets.plots import BATCH, BEST, LR, NEUTRAL, TRAIN, VAL

if TYPE_CHECKING:
    import numpy as np

    from kmagic.callbacks.history import TrainingHistory

#: Drawing scale: everything is drawn this many times larger, then reduced.
SCALE = 2
PANEL_WIDTH, PANEL_HEIGHT = 360, 250
TITLE_HEIGHT, LEGEND_HEIGHT = 22, 18
#: Inside a panel: room for the y tick labels, the title, the x ticks and label.
LEFT, RIGHT, TOP, BOTTOM = 50, 14, 22, 34
GRID_ALPHA = 64

#: Points per curve at most (about two per pixel of a panel).
MAX_IMAGE_POINTS = 800

Colour = tuple[int, int, int, int]
Box = tuple[float, float, float, float]  # left, top, right, bottom (unscaled pixels)


def rgba(hex_colour: str, alpha: int = 255) -> Colour:
    """``"#1f77b4"`` as an RGBA tuple."""
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16), alpha


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    """Pillow's built-in scalable font at ``size`` pixels (already scaled)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


@lru_cache(maxsize=512)
def _text_mask(text: str, size: int, anchor: str) -> tuple[Any, int, int]:
    """The coverage mask of ``text`` and its offset from the anchor point; cached, because tick
    labels, titles and legends repeat from one image to the next."""
    from PIL import Image, ImageDraw

    font = _font(size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text, anchor=anchor))
    mask = Image.new("L", (max(1, right - left + 2), max(1, bottom - top + 2)), 0)
    ImageDraw.Draw(mask).text((-left + 1, -top + 1), text, fill=255, font=font, anchor=anchor)
    return mask, left - 1, top - 1


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """The most round ticks (steps of 1, 2, 2.5 or 5 × 10^k) inside [low, high], at most ``count``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    magnitude = 10.0 ** math.floor(math.log10((high - low) / max(1, count)))
    for step in (m * magnitude * 10**k for k in (0, 1, 2) for m in (1, 2, 2.5, 5)):
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        if last - first + 1 <= count:
            return [round(k * step, 12) for k in range(first, last + 1)]
    return [low, high]


def tick_label(value: float, step: float) -> str:
    """A tick value with as many decimals as its step needs."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    decimals += 1 if step > 0 and round(step / 10 ** math.floor(math.log10(step)), 6) == 2.5 else 0
    return f"{value:.{decimals}f}"


class Canvas:
    """A transparent RGBA image drawn at :data:`SCALE`, addressed in unscaled pixels."""

    def __init__(self, width: int, height: int) -> None:
        from PIL import Image, ImageDraw

        self.width, self.height = width, height
        # Transparent, but grey underneath: halving the image then blends edges toward grey (the
        # colour of the frames and text), never toward black. Drawing replaces pixels (no blending),
        # so a translucent colour keeps its own alpha on the transparent background.
        self.image = Image.new("RGBA", (width * SCALE, height * SCALE), rgba(NEUTRAL, 0))
        self.draw = ImageDraw.Draw(self.image)

    def line(self, points: Sequence[tuple[float, float]], colour: Colour, width: float = 1.0,
             dash: tuple[float, float] | None = None) -> None:
        """A polyline (solid, or dashed with ``dash = (on, off)`` lengths)."""
        scaled = [(x * SCALE, y * SCALE) for x, y in points]
        w = max(1, round(width * SCALE))
        if dash is None:
            if len(scaled) > 1:
                self.draw.line(scaled, fill=colour, width=w, joint="curve" if len(scaled) < 200 else None)
            return
        for start, end in zip(scaled, scaled[1:], strict=False):
            self._dashed(start, end, colour, w, (dash[0] * SCALE, dash[1] * SCALE))

    def _dashed(self, start: tuple[float, float], end: tuple[float, float], colour: Colour, width: int,
                dash: tuple[float, float]) -> None:
        length = math.dist(start, end)
        if length == 0:
            return
        dx, dy = (end[0] - start[0]) / length, (end[1] - start[1]) / length
        position = 0.0
        while position < length:
            stop = min(position + dash[0], length)
            self.draw.line([(start[0] + dx * position, start[1] + dy * position),
                            (start[0] + dx * stop, start[1] + dy * stop)], fill=colour, width=width)
            position += dash[0] + dash[1]

    def dots(self, points: Sequence[tuple[float, float]], colour: Colour, radius: float) -> None:
        """Filled circles (markers)."""
        r = radius * SCALE
        for x, y in points:
            self.draw.ellipse((x * SCALE - r, y * SCALE - r, x * SCALE + r, y * SCALE + r), fill=colour)

    def rectangle(self, box: Box, fill: Colour | None = None, outline: Colour | None = None) -> None:
        """A rectangle, filled and/or outlined (1 px)."""
        left, top, right, bottom = (v * SCALE for v in box)
        self.draw.rectangle((left, top, right, bottom), fill=fill, outline=outline, width=SCALE)

    def text(self, xy: tuple[float, float], text: str, size: int, colour: Colour, anchor: str = "la") -> None:
        """Text at ``xy`` with a Pillow anchor (``"la"`` left-top, ``"mm"`` centre, ``"rm"`` right-middle...)."""
        mask, left, top = _text_mask(text, size * SCALE, anchor)
        self.image.paste(colour, (round(xy[0] * SCALE + left), round(xy[1] * SCALE + top)), mask)

    def text_width(self, text: str, size: int) -> float:
        """The width of ``text`` in unscaled pixels."""
        return float(_font(size * SCALE).getlength(text)) / SCALE

    def vertical_text(self, xy: tuple[float, float], text: str, size: int, colour: Colour) -> None:
        """Text read bottom to top whose top-left corner (after turning) is at ``xy``."""
        mask, _, _ = _text_mask(text, size * SCALE, "la")
        self.image.paste(colour, (int(xy[0] * SCALE), int(xy[1] * SCALE)), mask.rotate(90, expand=True))

    def png(self) -> bytes:
        """The image at its final size, as PNG bytes."""
        import numpy as np
        from PIL import Image

        from kmagic.widgets.png_writer import encode_rgba

        # Band by band: Pillow's RGBA reduce premultiplies alpha first, which costs more than drawing.
        halved = Image.merge("RGBA", [band.reduce(SCALE) for band in self.image.split()])
        return encode_rgba(np.asarray(halved))


class Axes:
    """Data-to-pixel mapping of one panel's plot area."""

    def __init__(self, box: Box, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.box, self.x_range, self.y_range = box, x_range, y_range

    def point(self, x: Any, y: Any) -> tuple[Any, Any]:
        """The pixel of data point (x, y); numpy arrays of points map element-wise."""
        left, top, right, bottom = self.box
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)


# -- the training curves ----------------------------------------------------------------


def training_png(history: TrainingHistory, confusion: tuple[np.ndarray, list[str]] | None = None) -> bytes:
    """The final curves of every metric (train per batch and per epoch, validation, best epoch,
    learning-rate changes), plus the confusion matrix when given, as PNG bytes."""
    names = history.metric_names() or ["loss"]
    panels = len(names) + (1 if confusion is not None else 0)
    cols = max(1, min(3, panels))
    rows = math.ceil(panels / cols)
    top = TITLE_HEIGHT + LEGEND_HEIGHT
    canvas = Canvas(cols * PANEL_WIDTH, top + rows * PANEL_HEIGHT)
    canvas.text((6, 5), _title(history), 12, rgba(NEUTRAL))
    series = {name: _series(history, name) for name in names}
    for index, name in enumerate(names):
        row, col = divmod(index, cols)
        _curve_panel(canvas, _panel_box(row, col, top), history, series[name], name)
    if confusion is not None:
        row, col = divmod(len(names), cols)
        _confusion_panel(canvas, _panel_box(row, col, top), *confusion)
    _legend(canvas, _legend_entries(history, series), TITLE_HEIGHT)
    return canvas.png()


def _panel_box(row: int, col: int, top: int) -> Box:
    left, upper = col * PANEL_WIDTH, top + row * PANEL_HEIGHT
    return left + LEFT, upper + TOP, left + PANEL_WIDTH - RIGHT, upper + PANEL_HEIGHT - BOTTOM


def _title(history: TrainingHistory) -> str:
    from kmagic.widgets.frontend import test_mode

    title = f"{len(history.epoch_x)} epoch(s)"
    if not test_mode():  # KMAGIC_TEST_MODE: no timings, so the image is the same run after run
        title += f" in {history.elapsed:.1f} s"
    if history.best_epoch is not None and history.best_value is not None:
        title += f" · best {history.monitor} {history.best_value:.4g} at epoch {history.best_epoch}"
    if history.stopped_early:
        where = history.where_stopped()
        title += f" · stopped{' at ' + where if where else ''}: {history.stop_reason}"
    if history.nan_detected:
        title += " · loss became NaN/inf"
    return title


def _series(history: TrainingHistory, name: str) -> list[tuple[Sequence[float], Sequence[float], str]]:
    """(xs, ys, kind) of every curve drawn in ``name``'s panel."""
    found: list[tuple[Sequence[float], Sequence[float], str]] = []
    if name in history.batch and history.batch_x:
        found.append((*_thinned(history.batch_x, history.batch[name]), "batch"))
    if name in history.epoch:
        found.append((history.epoch_x, history.epoch[name], "train"))
    if f"val_{name}" in history.epoch:
        found.append((history.epoch_x, history.epoch[f"val_{name}"], "val"))
    return found


def _thinned(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_IMAGE_POINTS) -> tuple[list[float], list[float]]:
    """Every k-th point (and the last) so that at most ``limit`` remain."""
    n = min(len(xs), len(ys))
    step = max(1, math.ceil(n / limit))
    index = list(range(0, n, step))
    if index and index[-1] != n - 1:
        index.append(n - 1)
    return [xs[i] for i in index], [ys[i] for i in index]


def _y_range(series: list[tuple[Sequence[float], Sequence[float], str]]) -> tuple[float, float]:
    import numpy as np

    values = np.asarray([y for _, ys, _ in series for y in ys if y is not None], dtype="float64")
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.05 or abs(high) * 0.05 or 0.5
    return low - pad, high + pad


def epoch_extent(history: TrainingHistory) -> int:
    """The last epoch on the x-axis: a run stopped early is drawn over the epochs it ran, not the
    ones it planned."""
    ran = max(history.epoch_x, default=0)
    return max(ran if history.stopped_early else history.epochs_planned, ran, 1)


def _curve_panel(canvas: Canvas, box: Box, history: TrainingHistory,
                 series: list[tuple[Sequence[float], Sequence[float], str]], name: str) -> None:
    x_high = epoch_extent(history)
    axes = Axes(box, (0.0, float(x_high)), _y_range(series))
    _frame(canvas, axes, name, x_ticks=[t for t in nice_ticks(0, x_high, 6) if t == int(t)])
    styles = {"batch": (BATCH, 1.0, 0.0), "train": (TRAIN, 1.8, 2.2), "val": (VAL, 1.8, 2.2)}
    for xs, ys, kind in series:
        colour, width, radius = styles[kind]
        for run in _finite_runs(axes, xs, ys):
            canvas.line(run, rgba(colour), width)
            if radius:
                canvas.dots(run, rgba(colour), radius)
    left, top, right, bottom = box
    if history.best_epoch is not None:
        x = axes.point(history.best_epoch, 0)[0]
        canvas.line([(x, top), (x, bottom)], rgba(BEST), 1.2, dash=(5, 3))
    for epoch, value in history.lr[1:]:
        x = axes.point(epoch - 1, 0)[0]
        canvas.line([(x, top), (x, bottom)], rgba(LR), 1.0, dash=(1.5, 2.5))
        canvas.vertical_text((x + 2, top + 2), f"lr {value:.3g}", 8, rgba(LR))


def _finite_runs(axes: Axes, xs: Sequence[float], ys: Sequence[float]) -> list[list[tuple[float, float]]]:
    """The points as pixels, split where a value is missing or not finite."""
    import numpy as np

    x = np.asarray(xs, dtype="float64")
    y = np.asarray([math.nan if v is None else v for v in ys] if None in ys else ys, dtype="float64")
    px, py = axes.point(x, y)  # the same mapping, on whole arrays
    finite = np.isfinite(py)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.astype("int8"), [0]))))
    points = np.column_stack((px, py))
    return [[(a, b) for a, b in points[start:end].tolist()] for start, end in zip(edges[::2], edges[1::2],
                                                                                  strict=True)]


def _frame(canvas: Canvas, axes: Axes, title: str, x_ticks: list[float]) -> None:
    """Grid, frame, tick labels, title and x label of one curve panel."""
    left, top, right, bottom = axes.box
    grey, grid = rgba(NEUTRAL), rgba(NEUTRAL, GRID_ALPHA)
    y_ticks = nice_ticks(*axes.y_range, 5)
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for value in y_ticks:
        y = axes.point(0, value)[1]
        canvas.line([(left, y), (right, y)], grid)
        canvas.text((left - 4, y), tick_label(value, y_step), 9, grey, anchor="rm")
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    for value in x_ticks:
        x = axes.point(value, 0)[0]
        canvas.line([(x, top), (x, bottom)], grid)
        canvas.text((x, bottom + 4), tick_label(value, x_step), 9, grey, anchor="mt")
    canvas.rectangle(axes.box, outline=grey)
    canvas.text(((left + right) / 2, top - 5), title, 11, grey, anchor="md")
    canvas.text(((left + right) / 2, bottom + 18), "epoch", 9, grey, anchor="mt")


def _legend_entries(history: TrainingHistory,
                    series: dict[str, list[tuple[Sequence[float], Sequence[float], str]]]) -> list[tuple[str, str, bool]]:
    """(label, colour, dashed) of the series the panels show."""
    kinds = {kind for panel in series.values() for _, _, kind in panel}
    entries = [(label, colour, False) for kind, label, colour in (
        ("batch", "train (batch, epoch mean so far)", BATCH), ("train", "train (epoch)", TRAIN),
        ("val", "validation", VAL)) if kind in kinds]
    if history.best_epoch is not None:
        entries.append((f"best epoch ({history.best_epoch})", BEST, True))
    return entries


def _legend(canvas: Canvas, entries: list[tuple[str, str, bool]], y: float) -> None:
    """One legend for the whole image, right-aligned under the title."""
    x = canvas.width - 8.0
    for label, colour, dashed in reversed(entries):
        x -= canvas.text_width(label, 9)
        canvas.text((x, y + 8), label, 9, rgba(NEUTRAL), anchor="lm")
        canvas.line([(x - 22, y + 8), (x - 4, y + 8)], rgba(colour), 1.8, dash=(4, 2.5) if dashed else None)
        x -= 34


# -- the confusion matrix ------------------------------------------------------------------


def confusion_png(matrix: np.ndarray, labels: list[str]) -> bytes:
    """The confusion matrix alone, as PNG bytes."""
    canvas = Canvas(PANEL_WIDTH, PANEL_HEIGHT + 10)
    _confusion_panel(canvas, (LEFT, TOP + 10, PANEL_WIDTH - RIGHT, PANEL_HEIGHT + 10 - BOTTOM), matrix, labels)
    return canvas.png()


def _blue(fraction: float) -> Colour:
    """A white-to-dark-blue ramp like matplotlib's ``Blues``."""
    light, dark = (247, 251, 255), (8, 48, 107)
    f = min(1.0, max(0.0, fraction))
    red, green, blue = (round(a + (b - a) * f) for a, b in zip(light, dark, strict=True))
    return red, green, blue, 255


def _confusion_panel(canvas: Canvas, box: Box, matrix: np.ndarray, labels: list[str]) -> None:
    left, top, right, bottom = box
    n = int(matrix.shape[0])
    side = min(right - left, bottom - top)
    cell = side / max(n, 1)
    grey = rgba(NEUTRAL)
    highest = float(matrix.max()) or 1.0
    for i in range(n):
        for j in range(n):
            share = float(matrix[i, j]) / highest
            cell_box = (left + j * cell, top + i * cell, left + (j + 1) * cell, top + (i + 1) * cell)
            canvas.rectangle(cell_box, fill=_blue(share))
            if n <= 12:
                ink = (255, 255, 255, 255) if share > 0.5 else (0, 0, 0, 255)
                canvas.text(((cell_box[0] + cell_box[2]) / 2, (cell_box[1] + cell_box[3]) / 2),
                            str(int(matrix[i, j])), 8, ink, anchor="mm")
        if n <= 20:
            canvas.text((left - 3, top + (i + 0.5) * cell), str(labels[i])[:6], 8, grey, anchor="rm")
            canvas.text((left + (i + 0.5) * cell, top + side + 3), str(labels[i])[:6], 8, grey, anchor="mt")
    canvas.rectangle((left, top, left + side, top + side), outline=grey)
    canvas.text(((left + right) / 2, top - 5), "confusion matrix (validation)", 11, grey, anchor="md")
    canvas.text((left + side / 2, top + side + 16), "predicted", 9, grey, anchor="mt")
    canvas.vertical_text((left - 44, top + side / 2 - 10), "true", 9, grey)
