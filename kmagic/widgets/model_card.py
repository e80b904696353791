"""The model card: a widget with a complete static fallback (HTML table + SVG, and text).

``ModelCard(model)`` displays itself through ``_repr_mimebundle_``: the
widget view (a tab for the layer table, a tab for the diagram) when a widget
front end is attached (not under nbconvert, nbval or a terminal), and always ``text/html`` and ``text/plain`` with
the same content, so a saved notebook, nbconvert or a terminal shows it all.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from kmagic.diagram import DiagramNode, kind_of, render_svg
from kmagic.model_stats import LayerStats, ModelStats, human_bytes, human_count, model_stats

if TYPE_CHECKING:
    from kmagic.cost import MemoryEstimate

#: The diagram beside the table: a thumbnail at most this wide; ``--plot`` draws it at PLOT_SCALE.
CARD_DIAGRAM_WIDTH = 360
CARD_SCALE = 0.75
PLOT_SCALE = 1.5
#: Colours from JupyterLab's theme variables (light, dark, high contrast), light fallbacks elsewhere.
_CSS = (
    "<style>.kmagic-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px;"
    "color:var(--jp-ui-font-color1,inherit)}"
    ".kmagic-card table{border-collapse:collapse;font-size:inherit;color:inherit}"
    ".kmagic-card th,.kmagic-card td{padding:2px 8px;text-align:left;"
    "border-bottom:1px solid var(--jp-border-color2,#e0e0e0);vertical-align:top;color:inherit;background:none}"
    ".kmagic-card td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".kmagic-card code{font-size:11px;color:var(--jp-content-font-color2,#37474f);background:none}</style>"
)


def diagram_nodes(stats: ModelStats) -> list[DiagramNode]:
    """The diagram's boxes for a model: name, class and output shape, parents."""
    return [
        DiagramNode(row.name, f"{row.cls} {row.output_shape}", row.inputs, kind_of(row.cls, len(row.inputs)))
        for row in stats.layers
    ]


def _macs(row: LayerStats) -> str:
    return "–" if row.macs is None else f"{row.macs:,}"


def _device_line(device: dict[str, Any]) -> str:
    order = ("device", "strategy", "replicas", "precision", "jit")
    keys = [k for k in order if k in device] + [k for k in device if k not in order]
    return ", ".join(f"{k} {device[k]}" for k in keys)


def _time_text(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.3g} ms"


def _time_bar(seconds: float | None, longest: float) -> str:
    if seconds is None or longest <= 0:
        return ""
    width = max(1, round(80 * seconds / longest))
    return (f'<span style="display:inline-block;width:{width}px;height:8px;margin-left:4px;'
            f'background:var(--jp-brand-color1,#1976d2)"></span>')


def _totals(stats: ModelStats) -> list[tuple[str, str]]:
    totals = [
        ("parameters", f"{stats.parameters:,} ({stats.trainable:,} trainable, {stats.non_trainable:,} not)"),
        ("weight memory", human_bytes(stats.weight_bytes)),
        ("multiply-adds per sample", f"{stats.macs:,} ({human_count(stats.macs)})"),
        ("built for", _device_line(stats.device)),
        ("compiled", stats.compiled or "not yet (%kfit compiles with inferred defaults)"),
    ]
    if stats.uncounted:
        totals.insert(3, ("counted as 0 multiply-adds", ", ".join(stats.uncounted)))
    return totals


class ModelCard:
    """A model's card: rows per layer, totals, diagram, device. Displays itself."""

    def __init__(self, model: Any, *, plot: bool = False, widget: bool | None = None,
                 memory: MemoryEstimate | None = None, times: dict[str, float] | None = None) -> None:
        self.stats = model_stats(model)
        self.plot = plot
        self.widget_mode = widget
        self.memory = memory
        self.times = times
        self._widget: Any = None

    # ---------------------------------------------------------------- cost columns
    def _extra_header(self) -> tuple[str, ...]:
        return ((f"train memory (batch {self.memory.batch_size})",) if self.memory else ()) + \
            (("forward time",) if self.times is not None else ())

    def _extra_cells(self, row: LayerStats) -> tuple[str, ...]:
        cells: tuple[str, ...] = ()
        if self.memory is not None:
            costs = {cost.name: cost for cost in self.memory.layers}
            cells += (human_bytes(costs[row.name].total) if row.name in costs else "",)
        if self.times is not None:
            cells += (_time_text(self.times.get(row.name)),)
        return cells

    def _extra_html(self, row: LayerStats) -> str:
        cells = self._extra_cells(row)
        if self.times is not None:
            longest = max(self.times.values(), default=0.0)
            cells = (*cells[:-1], cells[-1] + _time_bar(self.times.get(row.name), longest))
        return "".join(f'<td class="num">{cell}</td>' for cell in cells)

    def _cost_totals(self) -> list[tuple[str, str]]:
        totals = []
        if self.memory is not None:
            totals.append(("training step memory", self.memory.describe()))
        if self.times is not None:
            totals.append(("forward time, all layers", _time_text(sum(self.times.values()))))
        return totals

    # ---------------------------------------------------------------- pieces
    def svg(self, full_size: bool | None = None) -> str:
        """The architecture diagram (SVG text); small in the card, full size with ``plot``."""
        large = self.plot if full_size is None else full_size
        if large:
            return render_svg(diagram_nodes(self.stats), scale=PLOT_SCALE, title=self.stats.name)
        return render_svg(diagram_nodes(self.stats), scale=CARD_SCALE, max_width=CARD_DIAGRAM_WIDTH,
                          title=self.stats.name)

    def table_html(self) -> str:
        """The layer table and the totals as HTML."""
        head = "".join(f"<th>{h}</th>" for h in
                       ("layer", "class", "output shape", "trainable", "non-trainable", "mult-adds",
                        "inputs", "kmodel line", *self._extra_header()))
        body = []
        for row in self.stats.layers:
            origin = (f"<code>{row.origin_line}: {escape(row.origin)}</code>" if row.origin else "")
            body.append(
                f"<tr><td>{escape(row.name)}</td><td>{escape(row.cls)}</td>"
                f'<td style="white-space:nowrap">{escape(row.output_shape)}</td>'
                f'<td class="num">{row.trainable:,}</td><td class="num">{row.non_trainable:,}</td>'
                f'<td class="num">{_macs(row)}</td><td>{escape(", ".join(row.inputs))}</td><td>{origin}</td>'
                f"{self._extra_html(row)}</tr>"
            )
        totals = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                         for k, v in _totals(self.stats) + self._cost_totals())
        return (f'<table class="kmagic-layers"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
                f'</table><table class="kmagic-totals" style="margin-top:6px">{totals}</table>')

    def title_html(self) -> str:
        return f"<b>{escape(self.stats.name)}</b> <span>({escape(self.stats.cls)})</span>"

    # ---------------------------------------------------------------- static forms
    def to_html(self) -> str:
        """The complete static card: title, table, totals, diagram."""
        diagram = f'<div class="kmagic-diagram-box">{self.svg()}</div>'
        if self.plot:
            return f'<div class="kmagic-card">{_CSS}{self.title_html()}{diagram}{self.table_html()}</div>'
        return (f'<div class="kmagic-card">{_CSS}{self.title_html()}'
                f'<div style="display:flex;gap:16px;align-items:flex-start">'
                f"<div>{self.table_html()}</div>{diagram}</div></div>")

    def to_text(self) -> str:
        """The card as plain text: a table with an inputs column (the graph), totals, device."""
        header = ("layer", "class", "output shape", "trainable", "non-train", "mult-adds", "inputs", "kmodel line",
                  *self._extra_header())
        rows = [header] + [
            (r.name, r.cls, r.output_shape, f"{r.trainable:,}", f"{r.non_trainable:,}", _macs(r),
             ", ".join(r.inputs), f"{r.origin_line}: {r.origin}" if r.origin else "", *self._extra_cells(r))
            for r in self.stats.layers
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [f"Model {self.stats.name} ({self.stats.cls})"]
        for index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
            if index == 0:
                lines.append("  ".join("-" * width for width in widths))
        lines.append("")
        lines += [f"{k}: {v}" for k, v in _totals(self.stats) + self._cost_totals()]
        return "\n".join(lines)

    # ---------------------------------------------------------------- widget
    def widget(self) -> Any:
        """The ipywidgets form: title, then a tab with the table and a tab with the diagram."""
        if self._widget is None:
            import ipywidgets as w

            tabs = w.Tab(children=[w.HTML(_CSS + self.table_html()), w.HTML(self.svg(full_size=True))])
            tabs.titles = ("Layers", "Diagram")
            tabs.selected_index = 1 if self.plot else 0
            self._widget = w.VBox([w.HTML(self.title_html()), tabs], layout=w.Layout(width="100%"))
            self._widget.add_class("kmagic-card")
        return self._widget

    def _use_widget(self) -> bool:
        if self.widget_mode is not None:
            return self.widget_mode
        return widgets_reachable()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if self._use_widget():
            bundle.update(self.widget()._repr_mimebundle_())
        bundle["text/html"] = self.to_html()
        bundle["text/plain"] = self.to_text()
        return bundle

    def __repr__(self) -> str:
        return self.to_text()


def widgets_reachable() -> bool:
    """Whether a widget front end is attached (:func:`~kmagic.widgets.frontend.detect_frontend`:
    a kernel not run by nbconvert/nbclient/nbval/pytest, or ``KMAGIC_FRONTEND=widget``) and
    ipywidgets is installed. Headless runs then get the static HTML and text only."""
    from kmagic.widgets.frontend import detect_frontend

    if detect_frontend() != "widget":
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True
