"""An architecture diagram as SVG, laid out here (no graphviz, no pydot, no Keras).

Layered drawing of a directed acyclic graph: each node sits on the row of its
longest path from an input; an edge that skips rows runs through invisible
waypoints so it bends around the boxes in between (a residual shortcut shows
as a side branch); rows are ordered by the mean position of their parents
(a few sweeps down and up) to keep crossings few. Merges are nodes with
several incoming edges, drawn with a distinct colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

BOX_WIDTH = 200
BOX_HEIGHT = 40
ROW_GAP = 26
COLUMN_GAP = 22
WAYPOINT_WIDTH = 14
MARGIN = 12

KIND_COLOURS = {
    "input": "#e3f2fd",
    "conv": "#e8f5e9",
    "dense": "#fff3e0",
    "recurrent": "#f3e5f5",
    "attention": "#fce4ec",
    "merge": "#fff9c4",
    "norm": "#eceff1",
    "pool": "#e0f7fa",
    "model": "#ede7f6",
    "other": "#f5f5f5",
}


@dataclass
class DiagramNode:
    """One box: a unique name, a short second line (class and shape), its parents."""

    name: str
    detail: str
    parents: list[str] = field(default_factory=list)
    kind: str = "other"


def kind_of(cls: str, n_parents: int) -> str:
    """A colour group for a Keras class name."""
    lowered = cls.lower()
    if cls == "InputLayer":
        return "input"
    if n_parents > 1:
        return "merge"
    for kind, words in (
        ("conv", ("conv",)),
        ("recurrent", ("lstm", "gru", "rnn", "bidirectional")),
        ("attention", ("attention",)),
        ("dense", ("dense", "embedding")),
        ("norm", ("normalization",)),
        ("pool", ("pool",)),
        ("model", ("functional", "sequential", "model")),
    ):
        if any(word in lowered for word in words):
            return kind
    return "other"


@dataclass
class _Slot:
    key: str
    row: int
    width: int
    node: DiagramNode | None = None
    x: float = 0.0


def _rows(nodes: list[DiagramNode]) -> dict[str, int]:
    """Row of every node: the longest path from a node without parents."""
    known = {n.name for n in nodes}
    row: dict[str, int] = {}
    for node in nodes:  # nodes arrive in topological order (Keras layer order)
        parents = [p for p in node.parents if p in known and p in row]
        row[node.name] = 1 + max((row[p] for p in parents), default=-1)
    return row


def _layout(nodes: list[DiagramNode]) -> tuple[list[list[_Slot]], list[list[str]]]:
    """Rows of slots (boxes and waypoints) and each edge's chain of slot keys."""
    row_of = _rows(nodes)
    slots: dict[str, _Slot] = {n.name: _Slot(n.name, row_of[n.name], BOX_WIDTH, n) for n in nodes}
    edges: list[list[str]] = []
    for node in nodes:
        for parent in dict.fromkeys(node.parents):
            if parent not in slots:
                continue
            chain = [parent]
            for row in range(row_of[parent] + 1, row_of[node.name]):
                key = f"{parent}->{node.name}@{row}"
                slots[key] = _Slot(key, row, WAYPOINT_WIDTH)
                chain.append(key)
            chain.append(node.name)
            edges.append(chain)
    depth = max((s.row for s in slots.values()), default=-1) + 1
    rows: list[list[_Slot]] = [[] for _ in range(depth)]
    for slot in slots.values():
        rows[slot.row].append(slot)
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for chain in edges:
        for a, b in zip(chain, chain[1:], strict=False):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
    _order(rows, up, down)
    _place(rows)
    return rows, edges


def _order(rows: list[list[_Slot]], up: dict[str, list[str]], down: dict[str, list[str]]) -> None:
    """Barycentre ordering: a few sweeps down (by parents) and up (by children)."""
    position = {slot.key: i for row in rows for i, slot in enumerate(row)}

    def sweep(sequence: list[list[_Slot]], neighbours: dict[str, list[str]]) -> None:
        for row in sequence:
            def centre(slot: _Slot) -> float:
                near = [position[k] for k in neighbours.get(slot.key, []) if k in position]
                return sum(near) / len(near) if near else position[slot.key]
            row.sort(key=centre)
            for i, slot in enumerate(row):
                position[slot.key] = i

    for _ in range(3):
        sweep(rows[1:], up)
        sweep(list(reversed(rows[:-1])), down)
    sweep(rows[1:], up)


def _place(rows: list[list[_Slot]]) -> None:
    """x of every slot: each row centred on the widest row."""
    widths = [sum(s.width for s in row) + COLUMN_GAP * max(0, len(row) - 1) for row in rows]
    total = max(widths, default=BOX_WIDTH)
    for row, width in zip(rows, widths, strict=False):
        x = MARGIN + (total - width) / 2
        for slot in row:
            slot.x = x + slot.width / 2
            x += slot.width + COLUMN_GAP


def _y(row: int) -> float:
    return MARGIN + row * (BOX_HEIGHT + ROW_GAP)


def _edge_path(points: list[tuple[float, float]]) -> str:
    """A smooth path (cubic segments, vertical tangents) through the points."""
    (x0, y0), rest = points[0], points[1:]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for x1, y1 in rest:
        mid = (y0 + y1) / 2
        parts.append(f"C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(parts)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _entry_offsets(edges: list[list[str]], slots: dict[str, _Slot]) -> list[float]:
    """Where each edge enters its target: merges spread their inputs along the top side."""
    by_target: dict[str, list[int]] = {}
    for number, chain in enumerate(edges):
        by_target.setdefault(chain[-1], []).append(number)
    offsets = [0.0] * len(edges)
    for numbers in by_target.values():
        numbers.sort(key=lambda n: slots[edges[n][-2]].x)
        step = min(28.0, BOX_WIDTH / (len(numbers) + 1))
        for rank, number in enumerate(numbers):
            offsets[number] = (rank - (len(numbers) - 1) / 2) * step
    return offsets


def render_svg(nodes: list[DiagramNode], *, scale: float = 1.0, max_width: float | None = None,
               title: str = "model") -> str:
    """The diagram as an SVG document string, drawn at ``scale`` and at most ``max_width`` pixels wide."""
    rows, edges = _layout(nodes)
    slots = {slot.key: slot for row in rows for slot in row}
    width = max((s.x + s.width / 2 for s in slots.values()), default=BOX_WIDTH) + MARGIN
    height = _y(len(rows)) - ROW_GAP + MARGIN
    if max_width is not None:
        scale = min(scale, max_width / width)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kmagic-diagram" role="img" '
        f'aria-label="{escape(title)} architecture" width="{width * scale:.0f}" height="{height * scale:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="kmagic-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#607d8b"/></marker></defs>',
    ]
    entries = _entry_offsets(edges, slots)
    for number, chain in enumerate(edges):
        points = []
        for index, key in enumerate(chain):
            slot = slots[key]
            top = _y(slot.row)
            if slot.node is None:
                points += [(slot.x, top), (slot.x, top + BOX_HEIGHT)]
            elif index == 0:
                points.append((slot.x, top + BOX_HEIGHT))
            else:
                points.append((slot.x + entries[number], top - 1))
        out.append(f'<path class="kmagic-edge" d="{_edge_path(points)}" fill="none" stroke="#607d8b" '
                   f'stroke-width="1.3" marker-end="url(#kmagic-arrow)"/>')
    for slot in slots.values():
        if slot.node is None:
            continue
        node = slot.node
        left, top = slot.x - BOX_WIDTH / 2, _y(slot.row)
        colour = KIND_COLOURS.get(node.kind, KIND_COLOURS["other"])
        radius = 18 if node.kind == "merge" else 5
        out.append(
            f'<g class="kmagic-node kmagic-{escape(node.kind)}" data-name="{escape(node.name)}">'
            f"<title>{escape(node.name)}: {escape(node.detail)}</title>"
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="{radius}" '
            f'fill="{colour}" stroke="#90a4ae"/>'
            f'<text x="{slot.x:.1f}" y="{top + 16:.1f}" text-anchor="middle" font-size="12" '
            f'font-weight="bold" fill="#263238">{escape(_truncate(node.name, 26))}</text>'
            f'<text x="{slot.x:.1f}" y="{top + 31:.1f}" text-anchor="middle" font-size="10" '
            f'fill="#455a64">{escape(_truncate(node.detail, 34))}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)
