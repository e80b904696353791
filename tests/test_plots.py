"""The final training image (Pillow): its extent, ticks, transparency, missing values, confusion matrix."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from kmagic.callbacks.history import TrainingHistory
from kmagic.widgets import curve_image
from kmagic.widgets.curve_image import confusion_png, epoch_extent, nice_ticks, tick_label, training_png
from tests.png_check import assert_drawn_png


def _history(planned: int, ran: int, stop: str | None, loss: float | None = None) -> TrainingHistory:
    history = TrainingHistory(monitor="loss")
    history.start(epochs=planned, steps=2, batch_size=4)
    for epoch in range(ran):
        history.begin_epoch(epoch, 0.01 if epoch < 2 else 0.001)
        for step in range(2):
            history.add_batch(epoch, step, {"loss": loss if loss is not None else 1.0 / (epoch + step + 1)})
        history.add_epoch(epoch, {"loss": loss if loss is not None else 1.0 / (epoch + 1),
                                  "val_loss": 1.2 / (epoch + 1)})
    history.finish(stop)
    return history


def _rgba(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode == "RGBA"
        return np.asarray(image)


def test_stopped_run_is_drawn_over_the_epochs_it_ran() -> None:
    stopped = _history(planned=400, ran=3, stop="Stop button")
    assert stopped.stopped_early
    assert epoch_extent(stopped) == 3
    assert_drawn_png(training_png(stopped))


def test_finished_run_spans_the_planned_epochs() -> None:
    assert epoch_extent(_history(planned=5, ran=5, stop=None)) == 5
    assert epoch_extent(_history(planned=0, ran=0, stop=None)) == 1


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0, 10, [0, 2.5, 5, 7.5, 10]),
    (0.41, 0.97, [0.5, 0.6, 0.7, 0.8, 0.9]),
    (-3, 3, [-2, 0, 2]),
    (0, 60, [0, 20, 40, 60]),
])
def test_nice_ticks_are_round_and_inside_the_range(low: float, high: float, expected: list[float]) -> None:
    ticks = nice_ticks(low, high, 5)
    assert ticks == pytest.approx(expected)
    assert all(low - 1e-9 <= t <= high + 1e-9 for t in ticks)


def test_nice_ticks_of_an_empty_or_broken_range() -> None:
    assert nice_ticks(2.0, 2.0) == [2.0]
    assert nice_ticks(math.nan, 1.0) == []


def test_tick_labels_show_the_decimals_their_step_needs() -> None:
    assert [tick_label(v, 0.1) for v in (0.5, 0.6)] == ["0.5", "0.6"]
    assert tick_label(7.5, 2.5) == "7.5"
    assert tick_label(20, 20) == "20"
    assert tick_label(0, 0.25) == "0"
    assert tick_label(0.0002, 0.0001) == "0.0002"


def test_the_image_is_transparent_with_grey_text_and_the_series_colours() -> None:
    pixels = _rgba(training_png(_history(planned=4, ran=4, stop=None)))
    height, width = pixels.shape[:2]
    # One metric (loss, with its validation): one panel under the title and the legend.
    assert (width, height) == (curve_image.PANEL_WIDTH,
                               curve_image.TITLE_HEIGHT + curve_image.LEGEND_HEIGHT + curve_image.PANEL_HEIGHT)
    alpha = pixels[..., 3]
    assert alpha[0, 0] == 0 and (alpha == 0).mean() > 0.6, "the background must stay transparent"
    opaque = pixels[alpha == 255][:, :3]
    colours = {tuple(int(c) for c in row) for row in opaque}
    for hex_colour in (curve_image.NEUTRAL, curve_image.TRAIN, curve_image.VAL):
        assert curve_image.rgba(hex_colour)[:3] in colours, hex_colour


def test_nan_losses_break_the_curve_instead_of_failing() -> None:
    history = _history(planned=3, ran=3, stop=None, loss=math.nan)
    history.nan_detected = True
    assert_drawn_png(training_png(history))
    runs = curve_image._finite_runs(curve_image.Axes((0, 0, 10, 10), (0, 3), (0, 1)),
                                    [0, 1, 2, 3], [0.5, math.nan, 0.2, 0.3])
    assert [len(run) for run in runs] == [1, 2]


def test_learning_rate_changes_and_the_confusion_matrix_are_drawn() -> None:
    history = _history(planned=4, ran=4, stop=None)
    assert len(history.lr) == 2
    matrix = np.array([[5, 1], [0, 7]])
    with_matrix = _rgba(training_png(history, (matrix, ["cat", "dog"])))
    without = _rgba(training_png(history))
    assert with_matrix.shape[1] > without.shape[1]  # a third panel
    lr_purple = curve_image.rgba(curve_image.LR)[:3]
    assert (np.abs(without[..., :3].astype(int) - lr_purple).sum(-1) < 30).any()
    alone = _rgba(confusion_png(matrix, ["cat", "dog"]))
    darkest = curve_image._blue(1.0)[:3]
    assert (np.abs(alone[..., :3].astype(int) - darkest).sum(-1) < 10).any()


def test_a_long_run_is_thinned_to_the_image_budget() -> None:
    xs = list(range(10_000))
    thin_x, thin_y = curve_image._thinned(xs, xs)
    assert len(thin_x) <= curve_image.MAX_IMAGE_POINTS + 1 and thin_x[-1] == 9_999 and thin_y == thin_x


def test_the_png_writer_round_trips_through_pillow() -> None:
    from PIL import Image

    from kmagic.widgets.png_writer import encode_rgba

    pixels = np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    with Image.open(io.BytesIO(encode_rgba(pixels))) as image:
        assert image.mode == "RGBA" and image.size == (5, 7)
        assert np.array_equal(np.asarray(image), pixels)
    with pytest.raises(ValueError, match=r"expected a \(height, width, 4\) uint8 array"):
        encode_rgba(pixels[..., :3])


@pytest.mark.parametrize("values", [
    [1e30, -1e30, 5.0], [1e-12, 1.000000000001e-12], [math.inf, 1.0, -math.inf], [0.0, 0.0], [math.nan] * 3,
])
def test_extreme_values_still_draw(values: list[float]) -> None:
    history = TrainingHistory(monitor="loss")
    history.start(epochs=len(values), steps=1, batch_size=1)
    for epoch, value in enumerate(values):
        history.begin_epoch(epoch, None)
        history.add_batch(epoch, 0, {"loss": value})
        history.add_epoch(epoch, {"loss": value})
    history.finish(None)
    assert_drawn_png(training_png(history))


def test_a_run_stopped_inside_its_first_epoch_draws_its_batches() -> None:
    history = TrainingHistory(monitor="loss")
    history.start(epochs=50, steps=10, batch_size=1)
    history.begin_epoch(0, 0.01)
    for step in range(4):
        history.add_batch(0, step, {"loss": 1.0 - step / 10})
    history.finish("Stop button")
    assert epoch_extent(history) == 1
    pixels = _rgba(training_png(history))
    batch_blue = curve_image.rgba(curve_image.BATCH)[:3]
    assert (np.abs(pixels[..., :3].astype(int) - batch_blue).sum(-1) < 20).any()
