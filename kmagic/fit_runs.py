"""What ``%kfit`` does around its fit(s) for runs: ``--repeat N`` seeds, ``--compare`` views, the run context."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from kmagic import run_log
from kmagic.run_log import Run


class FitRuns:
    """One ``%kfit`` line: the seeds to train with, the runs they recorded, and what is shown afterwards.

    ``repeat``: train that many times, from fresh initial weights drawn with seeds
    0..N-1; the model keeps the weights of the best run (best ``val_loss``, else
    ``loss``). ``compare``: the earlier runs of the same model, drawn faded under
    the live curves and in the final image.
    """

    def __init__(self, model: Any, name: str, options: dict[str, Any], *, repeat: int | None = None,
                 compare: bool = False, seed: int | None = None, route: str = "%kfit") -> None:
        from kmagic.widgets.runs_view import runs_to_compare

        self.model, self.name, self.route = model, name, route
        self.options = {k: v for k, v in options.items() if v is not None}
        self.repeat = repeat
        self.seed = seed
        self.earlier: list[Run] = runs_to_compare(True, model, (name,)) if compare else []
        self.compare = compare
        self.runs: list[Run] = []
        self.best: Run | None = None
        self._best_weights: list[Any] | None = None
        self.group = f"repeat {repeat}x of {name}" if repeat else ""

    def seeds(self) -> Iterator[int | None]:
        """The seed of each fit; with ``repeat`` the model gets fresh weights before each one."""
        if not self.repeat:
            yield self.seed
            return
        from kmagic.run_repeat import fresh_start

        for seed in range(self.repeat):
            fresh_start(self.model, seed)
            print(f"kmagic: {self.name} from fresh initial weights, seed {seed} ({seed + 1} of {self.repeat})")
            yield seed

    @contextlib.contextmanager
    def recording(self, seed: int | None) -> Iterator[None]:
        """Around one ``model.fit``: the run's facts; with ``repeat`` the best weights so far are kept."""
        with run_log.recording(model=self.name, options=self.options, seed=seed, route=self.route,
                               group=self.group) as context:
            yield
        self.runs.extend(context["runs"])
        if self.repeat and context["runs"]:
            from kmagic.run_repeat import is_better, monitor_of, weights_of

            run = context["runs"][-1]
            if is_better(run, self.best, monitor_of([run])):
                self.best, self._best_weights = run, weights_of(self.model)

    def faded(self) -> list[dict[str, Any]]:
        """The earlier runs as the dashboard's faded series (empty without ``--compare``)."""
        from kmagic.widgets.runs_view import faded_series

        return faded_series(self.earlier) if self.earlier else []

    def finish(self) -> None:
        """After the last fit: the best run's weights back into the model (``repeat``), and the views."""
        from IPython.display import display as show

        from kmagic.widgets import runs_view
        if self.repeat and self.runs:
            from kmagic.run_repeat import monitor_of, set_weights

            if self._best_weights is not None:  # every run of one line has the same metrics
                set_weights(self.model, self._best_weights)
            show(runs_view.RepeatView(self.runs, self.best, monitor_of(self.runs)))
        if self.compare and self.runs:
            if not self.earlier:
                print(f"kmagic: no earlier runs of {self.name} to compare with yet")
                return
            show(runs_view.CompareView(self.earlier, self.runs[-1]))
