"""One self-contained HTML file that tells what a model is and how it trained (``%kreport``).

The file holds the model card (layer table and SVG diagram), the kmodel text, the training
curves of its last run (``kmagic.runs``) and the confusion matrix as embedded PNG images, and the environment (kmagic, Keras,
TensorFlow and Python versions, device, precision, seed). It needs no network, no JavaScript
and no file beside it, so it opens from disk in any browser and survives nbconvert.
"""

from __future__ import annotations

import base64
import platform
import time
from html import escape
from pathlib import Path
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#212121;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:24px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px}th,td{padding:2px 8px;text-align:left;border-bottom:1px solid #e0e0e0}
td.num{text-align:right}pre{background:#f5f5f5;padding:8px;font-size:12px;overflow:auto}
img{max-width:100%}
@media (prefers-color-scheme: dark){body{background:#121212;color:#e0e0e0}pre{background:#1e1e1e}
th,td{border-color:#333}.kmagic-card code{color:#b0bec5}}
"""


def environment(model: Any) -> dict[str, str]:
    """Versions, device, precision and seed a reader needs to reproduce the model."""
    import keras

    import kmagic
    from kmagic._keras import tf
    from kmagic.buildinfo import info_of

    info = info_of(model)
    device = dict(info.device)
    policy = getattr(getattr(model, "dtype_policy", None), "name", None)
    facts = {
        "kmagic": kmagic.__version__,
        "Keras": keras.__version__,
        "TensorFlow": tf().__version__,
        "Python": platform.python_version(),
        "device": str(device.get("device", "not recorded (not built by kmagic)")),
        "precision": str(device.get("precision", policy or "float32")),
        "seed": "not set" if info.seed is None else str(info.seed),
    }
    if "strategy" in device:
        facts["strategy"] = str(device["strategy"])
    return facts


def _png_img(data: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _history_of(model: Any, history: Any, name: str) -> Any:
    """The training record to draw: the one given, else the model's last run in ``kmagic.runs``,
    else the last ``fit`` Keras kept on the model."""
    from kmagic.run_log import RUNS

    if history is not None:
        return history
    mine = [run for run in RUNS if run.model in (name, model.name) and run.history]
    if mine:
        return mine[-1].history
    kept = getattr(model, "history", None)
    return kept if getattr(kept, "history", None) else None


def curves_png(history: Any) -> bytes:
    """Each metric per epoch (train and validation) from a Keras ``History`` or its dict."""
    from kmagic.widgets.plots import _figure, _grid, to_png

    series = dict(getattr(history, "history", history))
    names = [name for name in series if not name.startswith("val_")]
    rows, cols = _grid(len(names))
    fig = _figure(4.0 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        epochs = range(1, len(series[name]) + 1)
        ax.plot(epochs, series[name], label=name, color="#1976d2")
        if f"val_{name}" in series:
            ax.plot(range(1, len(series[f"val_{name}"]) + 1), series[f"val_{name}"], label=f"val_{name}",
                    color="#e65100")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return to_png(fig)


def _history_html(history: Any) -> str:
    if history is None:
        return "<p>Not trained in this kernel (no history).</p>"
    if hasattr(history, "metric_names"):  # kmagic's TrainingHistory
        from kmagic.widgets.curve_image import training_png

        return _png_img(training_png(history), "training curves")
    return _png_img(curves_png(history), "training curves")


def report(model: Any, *, history: Any = None, validation_data: Any = None, title: str | None = None) -> str:
    """The report of ``model`` as one self-contained HTML document (a string)."""
    from kmagic.buildinfo import info_of
    from kmagic.widgets.model_card import ModelCard

    card = ModelCard(model, widget=False)
    info = info_of(model)
    name = title or model.name
    sections = [
        f"<h1>{escape(name)}</h1>",
        f"<p>Report written {time.strftime('%Y-%m-%d %H:%M')} by kmagic.</p>",
        "<h2>Model</h2>", card.to_html(),
        "<h2>kmodel text</h2>",
        f"<pre>{escape(info.source.strip())}</pre>" if info.source.strip()
        else "<p>Not built from kmodel text.</p>",
        "<h2>Training</h2>", _history_html(_history_of(model, history, name)),
    ]
    if validation_data is not None:
        from kmagic.widgets.curve_image import confusion_png
        from kmagic.widgets.dashboard import confusion_matrix_of

        confusion = confusion_matrix_of(model, validation_data)
        if confusion is not None:
            sections += ["<h2>Confusion matrix (validation data)</h2>",
                         _png_img(confusion_png(*confusion), "confusion matrix")]
    facts = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in environment(model).items())
    sections += ["<h2>Environment</h2>", f"<table>{facts}</table>"]
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{escape(name)} — kmagic report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>\n")


def write_report(model: Any, path: str | Path, **options: Any) -> Path:
    """Write :func:`report` to ``path`` (folders created); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report(model, **options), encoding="utf-8")
    return target
