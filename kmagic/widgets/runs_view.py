"""Views of runs and of the learning-rate finder: static PNGs, readable text, and faded series for the dashboard.

- :func:`compare_png` / :func:`compare_text`: runs drawn together metric by metric
  (``%kcompare``, ``%kfit --compare``), each legend entry saying what sets the run apart;
- :func:`repeat_png` / :func:`repeat_text`: the mean and min–max band per metric over
  repeated runs (``%kfit --repeat``);
- :func:`lr_png`: the finder's smoothed loss against the learning rate, log axis;
- :func:`faded_series`: earlier runs as plain series for ``Dashboard(compare=...)``;
- :class:`CompareView`, :class:`RepeatView`, :class:`FinderView`: what the magics display,
  a widget (metric selector, image, text) where a widget front end is likely, else the PNG
  and the text (see ``kmagic.widgets.activations._bundle``).

Images use matplotlib's current style (``plt.style.use("dark_background")`` gives dark
images); the widgets are ipywidgets, which follow the JupyterLab theme.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from kmagic.run_log import RUNS, Run, _fmt, differences
from kmagic.widgets.plots import BEST, LR, TRAIN, VAL, _figure, _grid, to_png

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def metric_names(runs: list[Run]) -> list[str]:
    """Base metric names over all runs (``loss`` first, no ``val_`` prefix)."""
    names: list[str] = []
    for run in runs:
        for key in run.history:
            base = key.removeprefix("val_")
            if base not in names and base not in ("learning_rate", "lr"):
                names.append(base)
    if "loss" in names:
        names.remove("loss")
        names.insert(0, "loss")
    return names


def legend_labels(runs: list[Run]) -> dict[int, str]:
    """``run 3 (optimizer=SGD)``: each run's name and what differs from the others."""
    diffs = differences(runs)
    return {run.id: run.name + (f" ({', '.join(diffs[run.id])})" if diffs[run.id] else "") for run in runs}


# ---------------------------------------------------------------- compare


def compare_png(runs: list[Run], current: Run | None = None, metric: str | None = None) -> bytes:
    """Every metric of ``runs`` in one panel each (train solid, validation dashed); ``current`` drawn on top,
    the others faded (``--compare``), or all in full colour when ``current`` is None (``%kcompare``)."""
    shown = [*runs, current] if current is not None else list(runs)
    names = [metric] if metric else (metric_names(shown) or ["loss"])
    labels = legend_labels(shown)
    rows, cols = _grid(len(names))
    fig = _figure(max(4.2 * cols, 8.4), 3.0 * rows + 0.18 * (len(shown) + 2))  # room for a one-column legend
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        for index, run in enumerate(shown):
            faded = current is not None and run is not current
            color = "#999999" if faded else PALETTE[index % len(PALETTE)]
            alpha, width = (0.45, 1.2) if faded else (1.0, 1.8)
            xs = list(range(1, run.epochs + 1))
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                ys = _nan(run.history.get(key))
                if ys:
                    label = labels[run.id] + (" val" if key.startswith("val_") else "")
                    ax.plot(xs[: len(ys)], ys, style, marker="o", ms=2.5, color=color, alpha=alpha, lw=width,
                            label=label)
        ax.set_title(name, fontsize=10)
        _epoch_axis(ax)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="#999999" if current is not None and run is not current
                      else PALETTE[i % len(PALETTE)], lw=1.8) for i, run in enumerate(shown)]
    texts = [textwrap.shorten(labels[run.id], 120, placeholder=" …") for run in shown]
    if any(f"val_{name}" in run.history for run in shown for name in names):
        handles += [Line2D([], [], color="#444444", lw=1.4), Line2D([], [], color="#444444", lw=1.4, ls="--")]
        texts += ["train", "validation"]
    fig.legend(handles, texts, loc="outside lower center", fontsize=7,
               ncol=1 if max(len(t) for t in texts) > 45 else min(3, len(texts)))
    title = f"{len(shown)} runs" + (f" · {current.name} over earlier runs (grey)" if current is not None else "")
    fig.suptitle(title, fontsize=10)
    return to_png(fig)


def compare_text(runs: list[Run]) -> str:
    """Readable comparison: one line per run (what differs, final and best metrics), then the best run per metric."""
    if not runs:
        return "no runs to compare"
    labels = legend_labels(runs)
    lines = []
    for run in runs:
        finals = ", ".join(f"{k} {_fmt(v)}" for k, v in run.final.items())
        lines.append(f"{labels[run.id]}: {run.epochs} epoch(s); final {finals}")
    for key in sorted({k for r in runs for k in r.best}):
        best = RUNS.best_cells([f"best {key}"], [[r.best.get(key)] for r in runs])
        winners = [runs[row].name for row, _ in sorted(best)]
        if winners:
            lines.append(f"best {key}: {', '.join(winners)} ({_fmt(runs[sorted(best)[0][0]].best[key])})")
    return "\n".join(lines)


# ---------------------------------------------------------------- repeat


def band(runs: list[Run], key: str) -> tuple[list[float], list[float], list[float]]:
    """Per epoch: mean, minimum and maximum of ``key`` over the runs that reached that epoch."""
    length = max((len(r.history.get(key) or []) for r in runs), default=0)
    mean, low, high = [], [], []
    for epoch in range(length):
        reached = [r.history[key][epoch] for r in runs if key in r.history and epoch < len(r.history[key])]
        values = [v for v in reached if v is not None and math.isfinite(v)]
        if not values:
            mean.append(math.nan)
            low.append(math.nan)
            high.append(math.nan)
            continue
        mean.append(sum(values) / len(values))
        low.append(min(values))
        high.append(max(values))
    return mean, low, high


def repeat_png(runs: list[Run], best: Run | None = None, metric: str | None = None) -> bytes:
    """The mean (line) and min–max band (shaded) of each metric over repeated runs, train and validation."""
    names = [metric] if metric else (metric_names(runs) or ["loss"])
    rows, cols = _grid(len(names))
    fig = _figure(4.2 * cols, 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        for key, color, label in ((name, TRAIN, "train"), (f"val_{name}", VAL, "validation")):
            if not any(key in r.history for r in runs):
                continue
            mean, low, high = band(runs, key)
            xs = list(range(1, len(mean) + 1))
            ax.fill_between(xs, low, high, color=color, alpha=0.2, lw=0, label=f"{label} min–max")
            ax.plot(xs, mean, "o-", color=color, lw=1.8, ms=3, label=f"{label} mean of {len(runs)}")
        ax.set_title(name, fontsize=10)
        _epoch_axis(ax)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    seeds = ", ".join(str(r.seed) for r in runs)
    title = f"{len(runs)} runs, seeds {seeds}"
    if best is not None:
        title += f" · the model keeps {best.name} (seed {best.seed})"
    fig.suptitle(title, fontsize=10)
    return to_png(fig)


def repeat_text(runs: list[Run], best: Run | None = None, monitor: str = "") -> str:
    """Per final metric: mean, min and max over the runs; then which run the model kept."""
    lines = [f"{len(runs)} runs with seeds {', '.join(str(r.seed) for r in runs)}: final value mean [min, max]"]
    keys: list[str] = []
    for run in runs:
        keys.extend(k for k in run.final if k not in keys)
    for key in keys:
        values = [v for r in runs if (v := r.final.get(key)) is not None]
        if values:
            lines.append(f"  {key}: {_fmt(sum(values) / len(values))} [{_fmt(min(values))}, {_fmt(max(values))}]")
    if best is not None:
        lines.append(f"the model keeps the weights of {best.name} (seed {best.seed}, final {monitor} "
                     f"{_fmt(best.final.get(monitor))}, the best of the {len(runs)})")
    return "\n".join(lines)


# ---------------------------------------------------------------- the dashboard's faded curves


def runs_to_compare(compare: Any, model: Any = None, names: tuple[str, ...] = ()) -> list[Run]:
    """``compare`` as a list of runs: True (earlier runs of this model), run ids, or runs."""
    if compare is None or compare is False:
        return []
    if compare is True:
        wanted = {*names, getattr(model, "name", None)} - {None}
        return [run for run in RUNS if run.model in wanted]
    items = compare if isinstance(compare, (list, tuple)) else [compare]
    return [item if isinstance(item, Run) else RUNS.get(item) for item in items]


def faded_series(runs: list[Run]) -> list[dict[str, Any]]:
    """Plain series for the dashboard's ``compare`` trait: per run a label, epoch numbers and epoch values."""
    labels = legend_labels(runs)
    out = []
    for run in runs:
        out.append({"label": labels[run.id], "x": list(range(1, run.epochs + 1)),
                    "y": {k: [v if v is not None else None for v in vs] for k, vs in run.history.items()}})
    return out


# ---------------------------------------------------------------- the learning-rate finder


def lr_png(finding: Any) -> bytes:
    """Loss against learning rate (log axis): raw points faint, smoothed line, each rule's rate marked."""
    fig = _figure(6.0, 3.6)
    ax = fig.subplots()
    if finding.lrs:
        ax.plot(finding.lrs, _nan(finding.losses), ".", color=TRAIN, alpha=0.25, ms=3, label="loss per batch")
        ax.plot(finding.lrs, _nan(finding.smoothed), "-", color=TRAIN, lw=2, label="smoothed loss")
        finite = [v for v in finding.smoothed if v is not None and math.isfinite(v)]
        if finite:
            low, high = min(finite), max(finite[: max(1, len(finite) // 10)] + [min(finite)])
            ax.set_ylim(low - 0.1 * (high - low + 1e-12), max(finite[0], high) + 0.2 * (high - low + 1e-12))
    ax.set_xscale("log")
    marks = {"valley": BEST, "steepest descent": LR}
    for rule, rate in finding.suggestions.items():
        chosen = rate == finding.suggestion and finding.rule.startswith(rule.split()[0])
        ax.axvline(rate, color=marks.get(rule, VAL), ls="-" if chosen else ":", lw=1.6 if chosen else 1.1,
                   label=f"{rule} {rate:.2e}" + (" (suggested)" if chosen else ""))
    ax.set_xlabel("learning rate (log scale)", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, loc="best")
    title = "learning-rate finder" + (f" · {finding.model}" if finding.model else "")
    if finding.stopped:
        title += " · stopped: loss exploded"
    ax.set_title(title, fontsize=10)
    return to_png(fig)


def _epoch_axis(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _nan(values: list[float | None] | None) -> list[float]:
    return [math.nan if v is None else v for v in (values or [])]


def compare_series(compare: Any, model: Any = None) -> list[dict[str, Any]]:
    """What ``Dashboard(compare=...)`` sends: series dicts as given, or those of the runs ``compare`` names."""
    if isinstance(compare, (list, tuple)) and compare and all(isinstance(item, dict) for item in compare):
        return list(compare)
    return faded_series(runs_to_compare(compare, model))


# ---------------------------------------------------------------- views: widget + PNG + text


class _View:
    """A notebook view: a widget where a widget front end is likely, always a PNG and readable text."""

    def png(self, metric: str | None = None) -> bytes:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def metrics(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        return self.text()

    def widget(self) -> Any:
        """An ipywidgets box: a metric selector (where there are several) above the image and the text."""
        import html

        import ipywidgets as w

        image = w.Image(value=self.png(), format="png", layout=w.Layout(max_width="100%"))
        text = w.HTML(f"<pre style='margin:2px 0;font-size:11px'>{html.escape(self.text())}</pre>")
        parts: list[Any] = []
        if len(self.metrics()) > 1:
            choice = w.Dropdown(options=[("all metrics", "")] + [(m, m) for m in self.metrics()],
                                description="metric", layout=w.Layout(width="300px"))
            choice.observe(lambda _change: setattr(image, "value", self.png(choice.value or None)), names="value")
            parts.append(choice)
        box = w.VBox([*parts, image, text])
        box.add_class("kmagic-runs-view")
        return box

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from kmagic.widgets.activations import _bundle

        return _bundle(self, self.text())


class CompareView(_View):
    """Runs drawn together (``%kcompare``), or a new run over earlier ones (``--compare``)."""

    def __init__(self, runs: list[Run], current: Run | None = None) -> None:
        self.runs, self.current = list(runs), current

    def metrics(self) -> list[str]:
        return metric_names([*self.runs, *([self.current] if self.current else [])])

    def png(self, metric: str | None = None) -> bytes:
        return compare_png(self.runs, self.current, metric)

    def text(self) -> str:
        return compare_text([*self.runs, *([self.current] if self.current else [])])


class RepeatView(_View):
    """The mean and min–max band over the runs of one ``--repeat``."""

    def __init__(self, runs: list[Run], best: Run | None, monitor: str) -> None:
        self.runs, self.best, self.monitor = list(runs), best, monitor

    def metrics(self) -> list[str]:
        return metric_names(self.runs)

    def png(self, metric: str | None = None) -> bytes:
        return repeat_png(self.runs, self.best, metric)

    def text(self) -> str:
        return repeat_text(self.runs, self.best, self.monitor)


class FinderView(_View):
    """The learning-rate finder's plot and text."""

    def __init__(self, finding: Any) -> None:
        self.finding = finding

    def png(self, metric: str | None = None) -> bytes:
        return lr_png(self.finding)

    def text(self) -> str:
        return self.finding.text()
