"""Every fit is a run: plain records of each training kept in the kernel (``kmagic.runs``).

Any :class:`~kmagic.callbacks.recorder.TrainingRecorder` (the dashboard, the
epoch-text recorder of ``%kfit --no-dashboard``, :class:`RunRecorder`) claims the
fit it sees first and, when training ends, appends one :class:`Run` to
:data:`RUNS`. A fit with two recorders is recorded once. What ``%kfit`` and
``kmagic.fit`` know and Keras does not (the variable name, the fit options as
given, the seed) travels in :func:`recording`, a context around ``model.fit``.

Nothing here imports Keras, TensorFlow or numpy: a run holds floats, strings,
lists and dicts only, so it can be printed, compared, exported to CSV/JSON and
kept after ``%reload_ext kmagic`` (this module is not reloaded).
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import hashlib
import io
import json
import math
import time
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from kmagic.callbacks.history import monitor_mode
from kmagic.errors import KmagicValueError, did_you_mean

#: Per-batch points kept per series in a run (evenly spaced; the last one always kept).
MAX_BATCH_POINTS = 200
#: Runs kept per kernel; the oldest are dropped first.
MAX_RUNS = 500

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("kmagic_run_context", default=None)


@dataclass
class Run:
    """One fit, in plain data (no Keras objects).

    ``history`` holds the per-epoch series (``val_*`` for validation), ``batches``
    the per-batch running means downsampled to at most :data:`MAX_BATCH_POINTS`
    (``x`` in epochs). ``final`` and ``best`` hold each epoch metric's last and
    best value (the best is the maximum for accuracy-like metrics).
    """

    id: int
    model: str
    text: str = ""
    config_hash: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    precision: str = ""
    device: str = ""
    route: str = "callback"
    group: str = ""
    started: str = ""
    duration: float = 0.0
    epochs: int = 0
    stop_reason: str | None = None
    final: dict[str, float | None] = field(default_factory=dict)
    best: dict[str, float | None] = field(default_factory=dict)
    history: dict[str, list[float | None]] = field(default_factory=dict)
    batches: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``run 3``: how tables and legends name it."""
        return f"run {self.id}"

    def summary(self) -> str:
        """One readable line: id, model, epochs, final metrics."""
        finals = ", ".join(f"{k} {_fmt(v)}" for k, v in self.final.items())
        stop = f", stopped: {self.stop_reason}" if self.stop_reason else ""
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"{self.name}: {self.model}, {self.epochs} epoch(s){seed}{stop}; {finals}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        return f"<Run {self.summary()}>"


class RunList:
    """``kmagic.runs``: the runs of this kernel, oldest first; a read-only sequence.

    ``runs[-1]`` is the latest, ``runs.get(3)`` the run with id 3,
    ``runs.of("net")`` the runs of a model, ``runs.frame()`` a pandas DataFrame,
    ``runs.to_csv()`` / ``runs.to_json()`` text (or a file with ``path=``),
    ``runs.clear()`` forgets them.
    """

    def __init__(self, limit: int = MAX_RUNS) -> None:
        self._runs: list[Run] = []
        self._next_id = 1
        self.limit = limit

    # -- sequence ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(list(self._runs))

    def __getitem__(self, index: Any) -> Any:
        return self._runs[index]

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return self.html()

    # -- writing ---------------------------------------------------------------------
    def add(self, run: Run) -> Run:
        """Append a run (its id is assigned here); the oldest are dropped past ``limit``."""
        run.id = self._next_id
        self._next_id += 1
        self._runs.append(run)
        del self._runs[: max(0, len(self._runs) - self.limit)]
        return run

    def clear(self, restart_ids: bool = False) -> None:
        """Forget every run; ids keep counting up unless ``restart_ids``."""
        self._runs.clear()
        if restart_ids:
            self._next_id = 1

    # -- reading ---------------------------------------------------------------------
    def get(self, key: Any) -> Run:
        """The run with this id (``3``, ``"3"``, ``"run 3"``, ``"r3"``); a KmagicValueError names the ids there are."""
        text = str(key).strip().lower().removeprefix("run").removeprefix("r").strip().lstrip("#")
        for run in self._runs:
            if text == str(run.id):
                return run
        known = ", ".join(str(r.id) for r in self._runs) or "none yet"
        raise KmagicValueError(f"expected the id of a recorded run, received {key!r} (runs recorded: {known})")

    def of(self, model: str) -> list[Run]:
        """The runs of the model with this name (variable name or Keras name), oldest first."""
        return [run for run in self._runs if run.model == model]

    def rows(self, runs: list[Run] | None = None) -> tuple[list[str], list[list[Any]]]:
        """The table ``%kruns`` shows: a header and one row per run."""
        runs = list(self._runs) if runs is None else runs
        metrics: list[str] = []
        for run in runs:
            for name in run.final:
                if name not in metrics:
                    metrics.append(name)
        metrics.sort(key=lambda m: (m.startswith("val_"), m != m.removeprefix("val_") and "loss" not in m,
                                    "loss" not in m))
        header = ["run", "model", "epochs", "seed", "options", *[f"final {m}" for m in metrics],
                  *[f"best {m}" for m in metrics], "stop"]
        rows = []
        for run in runs:
            rows.append([run.id, run.model, run.epochs, "" if run.seed is None else run.seed,
                         _options_text(run.options), *[run.final.get(m) for m in metrics],
                         *[run.best.get(m) for m in metrics], run.stop_reason or ""])
        return header, rows

    def best_cells(self, header: list[str], rows: list[list[Any]]) -> set[tuple[int, int]]:
        """(row, column) of the best value in each metric column (min for losses, max for accuracies)."""
        marked: set[tuple[int, int]] = set()
        for col, title in enumerate(header):
            if not title.startswith(("final ", "best ")):
                continue
            metric = title.split(" ", 1)[1]
            values = [(r, row[col]) for r, row in enumerate(rows) if _is_number(row[col])]
            if len(values) < 2:
                continue
            pick = min if monitor_mode(metric) == "min" else max
            best = pick(v for _, v in values)
            marked.update((r, col) for r, v in values if v == best)
        return marked

    def text(self, runs: list[Run] | None = None) -> str:
        """The runs as an aligned text table; the best value per metric column has a ``*``."""
        if not (self._runs if runs is None else runs):
            return "no runs recorded yet (every %kfit, kmagic.fit and Dashboard fit records one)"
        header, rows = self.rows(runs)
        best = self.best_cells(header, rows)
        cells = [header] + [[_cell(v) + ("*" if (r, c) in best else "") for c, v in enumerate(row)]
                            for r, row in enumerate(rows)]
        widths = [max(len(row[c]) for row in cells) for c in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]
        return "\n".join(lines) + "\n(* best in its column)"

    def html(self, runs: list[Run] | None = None) -> str:
        """The runs as an HTML table; the best value per metric column is bold and marked."""
        import html as _html

        if not (self._runs if runs is None else runs):
            return f"<p>{_html.escape(self.text(runs))}</p>"
        header, rows = self.rows(runs)
        best = self.best_cells(header, rows)
        head = "".join(f"<th>{_html.escape(h)}</th>" for h in header)
        body = []
        for r, row in enumerate(rows):
            tds = []
            for c, value in enumerate(row):
                text = _html.escape(_cell(value))
                if (r, c) in best:
                    tds.append(f'<td class="kmagic-best" title="best in this column"><b>{text}</b> ★</td>')
                else:
                    tds.append(f"<td>{text}</td>")
            body.append(f"<tr>{''.join(tds)}</tr>")
        return (f'<table class="kmagic-runs"><thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table>")

    # -- export ----------------------------------------------------------------------
    def records(self, runs: list[Run] | None = None) -> list[dict[str, Any]]:
        """One flat dict per run (options, final and best metrics as columns; no series)."""
        out = []
        for run in (self._runs if runs is None else runs):
            row: dict[str, Any] = {"id": run.id, "model": run.model, "route": run.route, "group": run.group,
                                   "started": run.started, "duration": round(run.duration, 3), "epochs": run.epochs,
                                   "seed": run.seed, "precision": run.precision, "device": run.device,
                                   "stop_reason": run.stop_reason, "config_hash": run.config_hash}
            row.update({f"option {k}": v for k, v in run.options.items()})
            row.update({f"final {k}": v for k, v in run.final.items()})
            row.update({f"best {k}": v for k, v in run.best.items()})
            out.append(row)
        return out

    def frame(self) -> Any:
        """A pandas DataFrame, one row per run (index: run id); needs pandas."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise KmagicValueError("expected pandas to be installed for runs.frame(), received an ImportError: "
                                   "use runs.to_csv() or runs.to_json() without it") from exc
        return pd.DataFrame.from_records(self.records()).set_index("id") if self._runs else pd.DataFrame()

    def to_csv(self, path: str | None = None) -> str:
        """The :meth:`records` as CSV text (also written to ``path`` when given)."""
        records = self.records()
        columns: list[str] = []
        for row in records:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in records:
            writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
        return _written(buffer.getvalue(), path)

    def to_json(self, path: str | None = None) -> str:
        """Every run in full (series included) as JSON text (also written to ``path`` when given)."""
        return _written(json.dumps([run.as_dict() for run in self._runs], indent=1, allow_nan=False), path)

    @staticmethod
    def from_json(text: str) -> list[Run]:
        """Runs read back from :meth:`to_json` text."""
        return [Run(**item) for item in json.loads(text)]


#: ``kmagic.runs``.
RUNS = RunList()


# ---------------------------------------------------------------- what the routes tell the recorder


@contextlib.contextmanager
def recording(**context: Any) -> Iterator[dict[str, Any]]:
    """Facts for the run(s) recorded inside: ``model`` (the name), ``options``, ``seed``, ``route``, ``group``.

    ``%kfit`` and ``kmagic.fit`` wrap ``model.fit`` in it; the dict yielded
    collects the runs recorded inside under ``"runs"``. Nested, the enclosing
    one's facts win (``%kfit`` calling ``kmagic.fit`` records the route
    ``%kfit``) and every enclosing dict collects the runs too.
    """
    outer = _CONTEXT.get() or {}
    merged = {**context, **{k: v for k, v in outer.items() if v is not None and k not in ("runs", "_outer")},
              "runs": [], "_outer": outer or None}
    token = _CONTEXT.set(merged)
    try:
        yield merged
    finally:
        _CONTEXT.reset(token)


_CLAIMS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def begin(recorder: Any) -> None:
    """Called by a TrainingRecorder at train begin: the first recorder of a fit owns its run.

    The callbacks of one fit share Keras's ``params`` dict (a new one per fit),
    so a claim left by a fit that never ended (an error with no clean-up) does
    not stop the next fit from being recorded.
    """
    model = getattr(recorder, "model", None)
    if model is None:
        return
    params = getattr(recorder, "params", None)
    try:
        claim = _CLAIMS.get(model)
        if claim is not None and params is not None and claim[1] is params and claim[0] is not recorder:
            recorder._run_start = None
            return
        _CLAIMS[model] = (recorder, params)
    except TypeError:  # a model that cannot be weakly referenced: record anyway
        pass
    history = recorder.history
    recorder._run_start = (len(history.epoch_x), len(history.batch_x), time.time(), time.monotonic(),
                           _CONTEXT.get())


def end(recorder: Any) -> Run | None:
    """Called by a TrainingRecorder when its fit ends (normally or not): record the run it owns."""
    start = getattr(recorder, "_run_start", None)
    if start is None:
        return None
    recorder._run_start = None
    model = getattr(recorder, "model", None)
    with contextlib.suppress(TypeError, KeyError):
        if (_CLAIMS.get(model) or (None,))[0] is recorder:
            del _CLAIMS[model]
    try:
        run = run_of(recorder.history, model, start, recorder.params or {})
    except Exception:  # a record must never break training; what it could not read stays empty
        return None
    RUNS.add(run)
    context = start[4]
    while context:
        context["runs"].append(run)
        context = context.get("_outer")
    return run


def run_of(history: Any, model: Any, start: tuple[Any, ...], params: dict[str, Any]) -> Run:
    """The Run for the part of ``history`` after ``start`` (epochs, batches, wall time, monotonic time, context)."""
    first_epoch, first_batch, wall, mono, context = start
    context = context or {}
    epoch = {k: v[first_epoch:] for k, v in history.epoch.items()}
    epoch = {k: v for k, v in epoch.items() if any(math.isfinite(x) for x in v)}
    final, best = {}, {}
    for name, series in epoch.items():
        finite = [x for x in series if math.isfinite(x)]
        final[name] = _clean(series[-1]) if series else None
        if finite:
            best[name] = (min if monitor_mode(name) == "min" else max)(finite)
    batch_x = history.batch_x[first_batch:]
    keep = _downsample(len(batch_x))
    offset = float(first_epoch)
    batches: dict[str, list[float | None]] = {"x": [round(batch_x[i] - offset, 4) for i in keep]}
    for name, series in history.batch.items():
        part = series[first_batch:]
        if name in ("learning_rate", "lr") or not any(math.isfinite(x) for x in part):
            continue
        batches[name] = [_clean(part[i]) for i in keep]
    info = _model_facts(model)
    options = dict(info.pop("options"))
    options.update({k: _plain(v) for k, v in (context.get("options") or {}).items()})
    options.setdefault("epochs", params.get("epochs"))
    options = {k: v for k, v in options.items() if v is not None}
    stopped = history.stop_reason if history.stopped_early else None
    return Run(id=0, model=str(context.get("model") or info.pop("name")), options=options,
               seed=context.get("seed"), route=str(context.get("route") or "callback"),
               group=str(context.get("group") or ""),
               started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall)),
               duration=max(0.0, (history.ended_at or time.monotonic()) - mono),
               epochs=len(history.epoch_x) - first_epoch, stop_reason=stopped, final=final, best=best,
               history={k: [_clean(x) for x in v] for k, v in epoch.items()}, batches=batches,
               text=info["text"], config_hash=info["config_hash"], precision=info["precision"],
               device=info["device"])


def _model_facts(model: Any) -> dict[str, Any]:
    from kmagic.buildinfo import info_of

    facts: dict[str, Any] = {"name": getattr(model, "name", "model"), "text": "", "config_hash": "",
                             "precision": "", "device": "", "options": {}}
    if model is None:
        return facts
    info = info_of(model)
    facts["text"] = info.source or ""
    facts["precision"] = str(info.device.get("precision") or getattr(getattr(model, "dtype_policy", None),
                                                                        "name", "") or "")
    facts["device"] = str(info.device.get("device") or "")
    with contextlib.suppress(Exception):
        config = json.dumps(model.get_config(), sort_keys=True, default=str)
        facts["config_hash"] = hashlib.sha1(config.encode()).hexdigest()[:12]
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        facts["options"]["optimizer"] = type(getattr(optimizer, "inner_optimizer", optimizer)).__name__
        with contextlib.suppress(Exception):
            facts["options"]["learning_rate"] = float(f"{float(optimizer.learning_rate.numpy()):.6g}")
    loss = getattr(model, "loss", None)
    if loss is not None:
        facts["options"]["loss"] = _plain(loss)
    return facts


# ---------------------------------------------------------------- small helpers


def differences(runs: list[Run]) -> dict[int, list[str]]:
    """For each run, what sets it apart from the others: options, seed and kmodel text lines."""
    out: dict[int, list[str]] = {run.id: [] for run in runs}
    if len(runs) < 2:
        return out
    keys = sorted({k for run in runs for k in run.options} | {"seed"})
    for key in keys:
        values = [run.seed if key == "seed" else run.options.get(key) for run in runs]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            for run, value in zip(runs, values, strict=True):
                out[run.id].append(f"{key}={_cell(value) if value is not None else '-'}")
    if any(run.model != runs[0].model for run in runs):
        for run in runs:
            out[run.id].insert(0, run.model)
    texts = [set(_lines(run.text)) for run in runs]
    if len({frozenset(t) for t in texts}) > 1:
        common = set.intersection(*texts)
        for run, lines in zip(runs, texts, strict=True):
            own = [line for line in _lines(run.text) if line in lines - common]
            out[run.id].extend(f"'{line}'" for line in own[:3])
    return out


def _lines(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def _downsample(n: int, limit: int = MAX_BATCH_POINTS) -> list[int]:
    if n <= limit:
        return list(range(n))
    step = (n - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)})


def _clean(value: float) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: Any) -> Any:
    """A JSON-able stand-in for an option value (names for Keras objects, arrays by shape)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(hasattr(v, "shape") for v in value):
            return "(" + ", ".join(f"array{tuple(v.shape)}" for v in value) + ")"
        return [_plain(v) for v in value]
    if hasattr(value, "shape"):
        return f"array{tuple(value.shape)}"
    return getattr(value, "name", None) or getattr(value, "__name__", None) or type(value).__name__


def _options_text(options: dict[str, Any]) -> str:
    shown = {k: v for k, v in options.items() if k not in ("verbose",)}
    return ", ".join(f"{k}={_cell(v)}" for k, v in shown.items())


def _fmt(value: Any) -> str:
    if not _is_number(value):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4f}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return _fmt(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _written(text: str, path: str | None) -> str:
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    return text


def unknown_model(name: str) -> KmagicValueError:
    """The error for a model name with no runs."""
    models = sorted({run.model for run in RUNS})
    return KmagicValueError(f"expected the name of a model with recorded runs, received {name!r} "
                            f"(models with runs: {', '.join(models) or 'none yet'})",
                            hint=did_you_mean(name, models))
