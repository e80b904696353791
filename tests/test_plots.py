"""The static training image: a run stopped early is drawn over the epochs it ran."""

from __future__ import annotations

from unittest import mock

from kmagic.callbacks.history import TrainingHistory
from kmagic.widgets import plots
from tests.png_check import assert_drawn_png


def _history(planned: int, ran: int, stop: str | None) -> TrainingHistory:
    history = TrainingHistory()
    history.start(epochs=planned, steps=2, batch_size=4)
    for epoch in range(ran):
        history.begin_epoch(epoch, 0.01)
        for step in range(2):
            history.add_batch(epoch, step, {"loss": 1.0 / (epoch + step + 1)})
        history.add_epoch(epoch, {"loss": 1.0 / (epoch + 1)})
    history.finish(stop)
    return history


def _xlim(history: TrainingHistory) -> tuple[float, float]:
    limits = []
    original = plots._curve_panel

    def spy(ax, hist, name):
        original(ax, hist, name)
        limits.append(ax.get_xlim())

    with mock.patch.object(plots, "_curve_panel", spy):
        assert_drawn_png(plots.training_png(history))
    return limits[0]


def test_stopped_run_is_drawn_over_the_epochs_it_ran() -> None:
    stopped = _history(planned=400, ran=3, stop="Stop button")
    assert stopped.stopped_early
    assert _xlim(stopped)[1] <= 3


def test_finished_run_spans_the_planned_epochs() -> None:
    finished = _history(planned=5, ran=5, stop=None)
    assert _xlim(finished)[1] == 5
