"""The model card: per-layer facts, totals, multiply-adds, the SVG diagram, and its widget and static forms."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import kmagic
from kmagic.diagram import DiagramNode, render_svg
from kmagic.model_stats import model_stats
from kmagic.widgets.model_card import ModelCard
from tests.kmodel_cases import PROGRAMS

keras = pytest.importorskip("keras")
SVG = "{http://www.w3.org/2000/svg}"

MNIST = PROGRAMS["mnist_cnn"]
RESIDUAL = PROGRAMS["residual_32"]


def test_rows_totals_and_origins_of_a_kmodel() -> None:
    model = kmagic.build(MNIST, name="mnist")
    stats = model_stats(model)
    assert stats.parameters == 1_199_882 == model.count_params()
    assert [row.cls for row in stats.layers] == ["InputLayer", "Conv2D", "Conv2D", "MaxPooling2D", "Dropout",
                                                 "Flatten", "Dense", "Dropout", "Dense"]
    conv = stats.layers[1]
    assert conv.output_shape == "(None, 26, 26, 32)" and conv.trainable == 320 and conv.non_trainable == 0
    assert (conv.origin, conv.origin_line) == ("conv 32 3 relu", 2)
    assert stats.layers[-1].origin == "dense 10 softmax"
    assert stats.weight_bytes == 1_199_882 * 4
    assert stats.compiled.startswith("Adam, loss")
    assert stats.device["precision"] == "float32" and stats.device["device"] == "CPU"
    # multiply-adds, by hand: conv1 26*26*9*1*32, conv2 24*24*9*32*64, dense 9216*128, dense 128*10
    expected = 26 * 26 * 9 * 32 + 24 * 24 * 9 * 32 * 64 + 9216 * 128 + 128 * 10
    assert stats.macs == expected
    assert "MaxPooling2D" in stats.uncounted and "Dense" not in stats.uncounted


def test_non_trainable_parameters_and_merge_inputs() -> None:
    model = kmagic.build(RESIDUAL + "\n")
    stats = model_stats(model)
    assert stats.parameters == 5_258
    add = next(row for row in stats.layers if row.cls == "Add")
    assert add.is_merge and len(add.inputs) == 2
    bn_model = kmagic.build("input 4\ndense 3\nbn\ndense 1")
    bn_row = next(row for row in model_stats(bn_model).layers if row.cls == "BatchNormalization")
    assert (bn_row.trainable, bn_row.non_trainable) == (6, 6)


@pytest.mark.parametrize(("layer", "shape", "macs"), [
    (lambda: keras.layers.Dense(5), (7,), 35),
    (lambda: keras.layers.Dense(5), (3, 7), 105),  # applied per time step
    (lambda: keras.layers.Conv1D(4, 3), (10, 2), 8 * 3 * 2 * 4),
    (lambda: keras.layers.Conv2D(6, 3, groups=2), (5, 5, 4), 3 * 3 * 9 * 2 * 6),
    (lambda: keras.layers.Conv2DTranspose(3, 2, strides=2), (4, 4, 5), 16 * 4 * 5 * 3),
    (lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2), (5, 5, 4), 9 * 9 * 4 * 2),
    (lambda: keras.layers.SeparableConv2D(8, 3), (5, 5, 4), 9 * (9 * 4 + 4 * 8)),
    (lambda: keras.layers.LSTM(6), (5, 3), 5 * 4 * (3 * 6 + 6 * 6)),
    (lambda: keras.layers.GRU(6), (5, 3), 5 * 3 * (3 * 6 + 6 * 6)),
    (lambda: keras.layers.SimpleRNN(6), (5, 3), 5 * (3 * 6 + 6 * 6)),
    (lambda: keras.layers.Bidirectional(keras.layers.LSTM(6)), (5, 3), 2 * 5 * 4 * (3 * 6 + 6 * 6)),
    (lambda: keras.layers.Embedding(100, 8), (5,), None),
])
def test_multiply_adds_per_layer_kind(layer, shape, macs) -> None:
    inputs = keras.Input(shape)
    model = keras.Model(inputs, layer()(inputs))
    row = model_stats(model).layers[1]
    assert row.macs == macs


def test_attention_multiply_adds() -> None:
    query = keras.Input((4, 8))
    value = keras.Input((6, 8))
    out = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)(query, value)
    row = next(r for r in model_stats(keras.Model([query, value], out)).layers if r.cls == "MultiHeadAttention")
    heads, k = 2, 3
    projections = 4 * 8 * heads * k + 6 * 8 * heads * k + 6 * 8 * heads * k
    assert row.macs == projections + 4 * 6 * heads * (k + k) + 4 * heads * k * 8


def test_nested_model_counts_its_layers() -> None:
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(3)(inner_in), name="inner")
    outer_in = keras.Input((4,))
    outer = keras.Model(outer_in, keras.layers.Dense(2)(inner(outer_in)))
    stats = model_stats(outer)
    assert stats.macs == 4 * 3 + 3 * 2
    assert [row.cls for row in stats.layers] == ["InputLayer", "Functional", "Dense"]


def test_sequential_and_subclassed_models() -> None:
    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    stats = model_stats(seq)
    assert stats.graph_known and [r.cls for r in stats.layers] == ["InputLayer", "Dense", "Dense"]
    assert stats.parameters == seq.count_params()

    class Two(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = keras.layers.Dense(4)
            self.b = keras.layers.Dense(1)

        def call(self, x):
            return self.b(self.a(x))

    model = Two()
    model(np.zeros((1, 3), "float32"))
    stats = model_stats(model)
    assert not stats.graph_known
    assert [row.inputs for row in stats.layers] == [[], [stats.layers[0].name]]
    assert "text/html" in ModelCard(model, widget=False)._repr_mimebundle_()


# ---------------------------------------------------------------- the diagram

def _nodes_and_paths(svg: str):
    root = ET.fromstring(svg)
    nodes = {g.get("data-name"): g for g in root.iter(f"{SVG}g") if g.get("data-name")}
    paths = [p for p in root.iter(f"{SVG}path") if p.get("class") == "kmagic-edge"]
    return root, nodes, paths


def _box(group):
    rect = group.find(f"{SVG}rect")
    return float(rect.get("x")), float(rect.get("y")), float(rect.get("width")), float(rect.get("height"))


def test_diagram_draws_every_layer_and_edge_with_merges_visible() -> None:
    card = ModelCard(kmagic.build(RESIDUAL), plot=True)
    stats, svg = card.stats, card.svg()
    root, nodes, paths = _nodes_and_paths(svg)
    assert set(nodes) == {row.name for row in stats.layers}
    assert len(paths) == sum(len(row.inputs) for row in stats.layers)
    add = next(row.name for row in stats.layers if row.cls == "Add")
    assert "kmagic-merge" in nodes[add].get("class")
    # the shortcut bends around the residual body: some edge leaves the column of the boxes it skips
    lefts = [_box(group)[0] for group in nodes.values()]
    rights = [_box(group)[0] + _box(group)[2] for group in nodes.values()]
    xs = [float(v) for p in paths for v in re.findall(r"(-?\d+\.?\d*),", p.get("d"))]
    assert max(xs) > min(rights) or min(xs) < max(lefts)


def test_diagram_layers_are_in_rows_without_overlap() -> None:
    nodes = [
        DiagramNode("in", "Input", []),
        DiagramNode("a", "Dense", ["in"]), DiagramNode("b", "Dense", ["in"]), DiagramNode("c", "Dense", ["in"]),
        DiagramNode("cat", "Concatenate", ["a", "b", "c"], kind="merge"),
        DiagramNode("out", "Dense", ["cat", "in"]),
    ]
    _, groups, paths = _nodes_and_paths(render_svg(nodes))
    boxes = {name: _box(group) for name, group in groups.items()}
    assert boxes["a"][1] == boxes["b"][1] == boxes["c"][1] > boxes["in"][1]
    assert boxes["out"][1] > boxes["cat"][1] > boxes["a"][1]
    row = sorted(boxes[n] for n in "abc")
    assert all(left[0] + left[2] <= right[0] for left, right in zip(row, row[1:], strict=False))
    ends = {re.findall(r"(-?\d+\.?\d*),(-?\d+\.?\d*)", p.get("d"))[-1] for p in paths}
    assert len(ends) == len(paths)  # every edge ends at its own spot: three distinct inputs into the merge


def test_diagram_escapes_names_and_scales() -> None:
    svg = render_svg([DiagramNode("<x&y>", "A \"q\"", [])], scale=2.0, title="t<")
    root = ET.fromstring(svg)  # well-formed despite the characters
    assert float(root.get("width")) == 2 * float(root.get("viewBox").split()[2])
    small = ET.fromstring(render_svg([DiagramNode("n", "d", [])], scale=2.0, max_width=50))
    assert float(small.get("width")) == 50


# ---------------------------------------------------------------- the card

def test_static_card_is_complete() -> None:
    model = kmagic.build(MNIST, name="mnist")
    card = ModelCard(model, widget=False)
    bundle = card._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    html, text = bundle["text/html"], bundle["text/plain"]
    for needle in ("conv 32 3 relu", "(None, 26, 26, 32)", "1,199,882", "4.8 MB", "multiply-adds per sample",
                   "device CPU", "precision float32", "<svg", "Conv2D"):
        assert needle in html, needle
    for needle in ("conv 32 3 relu", "(None, 26, 26, 32)", "1,199,882", "4.8 MB", "multiply-adds per sample",
                   "device CPU", "inputs"):
        assert needle in text, needle
    assert len([line for line in text.splitlines() if "Conv2D" in line]) == 2


def test_widget_card_with_a_dummy_comm() -> None:
    import ipywidgets

    model = kmagic.build(RESIDUAL, name="res")
    card = ModelCard(model, widget=True, plot=True)
    bundle = card._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    widget = card.widget()
    assert view["model_id"] == widget.model_id
    assert {"text/html", "text/plain"} <= set(bundle)
    title, tabs = widget.children
    assert isinstance(tabs, ipywidgets.Tab)
    assert tabs.titles == ("Layers", "Diagram") and tabs.selected_index == 1  # --plot opens the diagram
    table, diagram = tabs.children
    assert "conv 16 3 same relu" in table.value and "<svg" in diagram.value
    state = widget.get_state()
    assert state["_view_name"] == "VBoxView" and "kmagic-card" in state["_dom_classes"]
    assert "res" in title.value
    assert card.widget() is widget


def test_card_of_a_model_not_built_by_kmagic_says_so() -> None:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    text = ModelCard(model, widget=False).to_text()
    assert "not built by kmagic" in text and "not yet" in text


# JupyterLab's theme variables as its light and dark themes set them (@jupyterlab/theme-*-extension).
THEMES = {
    "light": "--jp-ui-font-color1: rgba(0,0,0,0.87); --jp-content-font-color2: rgba(0,0,0,0.54); "
             "--jp-border-color2: #e0e0e0; background: #ffffff; color: rgba(0,0,0,0.87);",
    "dark": "--jp-ui-font-color1: rgba(255,255,255,0.87); --jp-content-font-color2: rgba(255,255,255,0.54); "
            "--jp-border-color2: #424242; background: #111111; color: rgba(255,255,255,0.87);",
}


def _contrast(rgb: list[float], background: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of a colour (alpha blended on the background) against the background."""
    *fg, alpha = (list(rgb) + [1.0])[:4]
    blended = [alpha * c + (1 - alpha) * b for c, b in zip(fg, background, strict=True)]

    def luminance(c: list[float]) -> float:
        lin = [(v / 255) / 12.92 if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(blended), luminance(list(background))), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.slow
@pytest.mark.skipif(not __import__("pathlib").Path("/usr/bin/chromium").exists(), reason="needs Chromium")
def test_card_text_is_readable_in_light_and_dark_themes() -> None:
    """Every text of the card, the "kmodel line" column included, has WCAG AA contrast (>= 4.5)
    on JupyterLab's light and dark backgrounds."""
    import concurrent.futures

    from playwright.sync_api import sync_playwright

    html = ModelCard(kmagic.build(MNIST, name="mnist"), widget=False).to_html()
    backgrounds = {"light": (255, 255, 255), "dark": (17, 17, 17)}
    colors = {}

    def drive() -> None:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            for theme, style in THEMES.items():
                page.set_content(f'<body style="{style}">{html}</body>')
                colors[theme] = page.evaluate("""() => [...document.querySelectorAll('.kmagic-card td, .kmagic-card th, .kmagic-card code')]
                    .map((n) => getComputedStyle(n).color.match(/[\\d.]+/g).map(Number))""")
            browser.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(drive).result()
    for theme, found in colors.items():
        assert len(found) > 20
        worst = min(_contrast(c, backgrounds[theme]) for c in found)
        assert worst >= 4.5, (theme, worst)
