"""A callback that only records the run (``kmagic.runs``): for a fit shown by nothing else."""

from __future__ import annotations

from kmagic.callbacks.recorder import TrainingRecorder


class RunRecorder(TrainingRecorder):
    """``model.fit(..., callbacks=[RunRecorder()])`` appends one run to ``kmagic.runs``; shows nothing.

    Any :class:`TrainingRecorder` (the dashboard, ``%kfit``'s epoch text) records
    the run already; a fit with several recorders is recorded once.
    """

    def __init__(self) -> None:
        super().__init__(refresh_interval=None)
