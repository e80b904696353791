"""Cost before training, explanations, the HTML report and model diffs, on real models.

Models: a CNN, a nested model, a multi-input model, a text model, mixed precision. Magics run
through a real InteractiveShell (the ``shell`` fixture).
"""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import kmagic
from kmagic.attribution import explain
from kmagic.cost import OPTIMIZER_SLOTS, layer_times, optimizer_slots, training_memory
from kmagic.errors import KmagicError, KmagicUsageError
from kmagic.model_diff import diff
from kmagic.reporting import report
from kmagic.widgets.explain_view import ExplainView, explanation_png

CNN = """
input 8x8x1
conv 8 3 same relu
conv 8 3 same relu as last_conv
gap
dense 10 softmax
compile adam scce metrics=[accuracy]
"""
TEXT_MODEL = """
input () dtype=string
text_vectorize 40 seq=5
embedding 40 8
gap
dense 1 sigmoid
compile adam bce
"""
TEXTS = np.array(["good movie great", "bad film awful", "great good fun", "awful bad dull"], dtype=object)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images[:200] / 16.0)[..., None].astype("float32"), data.target[:200]


@pytest.fixture(scope="module")
def cnn(digits):
    model = kmagic.build(CNN, name="cnn", seed=0)
    model.fit(*digits, epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def text_model():
    model = kmagic.build(TEXT_MODEL, name="textclf", seed=0)
    model.layers[1].adapt(TEXTS)
    model.fit(TEXTS, np.array([1, 0, 1, 0]), epochs=30, verbose=0)
    return model


# ---------------------------------------------------------------- memory estimate

def _dense_by_hand(batch: int) -> int:
    """Dense 4 -> 3 -> 2 with Adam at float32, counted by hand from the documented formula."""
    weights = (4 * 3 + 3) + (3 * 2 + 2)
    activations = batch * (4 + 3 + 2)  # the input batch and both layers' outputs
    backward = batch * (4 + 3)  # the larger layer call's input and output: the first dense
    return 4 * (weights + weights + 2 * weights + activations + backward)


def test_memory_formula_matches_a_count_by_hand() -> None:
    model = kmagic.build("input 4\ndense 3\ndense 2\ncompile adam mse")
    estimate = training_memory(model, 16)
    assert estimate.total == _dense_by_hand(16)
    assert estimate.part("gradients") == estimate.part("weights") == 4 * 23
    assert estimate.part("optimizer") == 2 * 4 * 23
    assert [row.name for row in estimate.layers] == [layer.name for layer in model.layers
                                                     if type(layer).__name__ != "InputLayer"]


def test_memory_grows_with_batch_size_only_in_activations() -> None:
    model = kmagic.build(CNN)
    small, large = training_memory(model, 8), training_memory(model, 64)
    assert small.part("weights") == large.part("weights")
    assert large.part("activations") == 8 * small.part("activations")


def test_optimizer_slots_follow_the_optimizer() -> None:
    keras = pytest.importorskip("keras")
    assert optimizer_slots(keras.optimizers.SGD()) == ("SGD", 0)
    assert optimizer_slots(keras.optimizers.SGD(momentum=0.9)) == ("SGD", 1)
    assert optimizer_slots(keras.optimizers.Adam(amsgrad=True)) == ("Adam", 3)
    assert optimizer_slots(None) == ("Adam", OPTIMIZER_SLOTS["Adam"])
    model = kmagic.build("input 4\ndense 3\ncompile sgd mse")
    assert training_memory(model, 4).part("optimizer") == 0


def test_mixed_precision_halves_activations_not_weights() -> None:
    full = kmagic.build(CNN, precision="float32")
    mixed = kmagic.build(CNN, precision="mixed_float16")
    a, b = training_memory(full, 32), training_memory(mixed, 32)
    assert b.compute_dtype == "float16"
    assert a.part("weights") == b.part("weights")
    inner_a = sum(row.activations for row in a.layers)
    inner_b = sum(row.activations for row in b.layers)
    assert math.isclose(inner_b, inner_a / 2, rel_tol=0.01)


def test_memory_of_nested_and_recurrent_models() -> None:
    inner = kmagic.build("input 6\ndense 5 relu\ndense 4", name="inner")
    outer = kmagic.build("input 6\n{inner}\ndense 2", name="outer", namespace={"inner": inner})
    estimate = training_memory(outer, 10)
    assert estimate.part("weights") == 4 * outer.count_params()
    recurrent = kmagic.build("input 12x3\nlstm 5\ndense 1")
    lstm = training_memory(recurrent, 2).layers[0]
    assert lstm.activations == 4 * 2 * (5 + 7 * 12 * 5)  # its output, and 7 values per unit and step


def test_ksummary_batch_size_and_profile(shell, digits) -> None:
    shell.run_cell("%%kmodel net --input 8x8x1 --batch-size 32\nconv 4 3 relu\nflatten\ndense 10 softmax")
    shell.user_ns["xb"] = digits[0][:16]
    with capture_output() as captured:
        shell.run_line_magic("ksummary", "net --batch-size 64 --profile xb")
    text = captured.outputs[-1].data["text/plain"]
    assert "train memory (batch 64)" in text and "forward time" in text
    assert "per training step at batch size 64" in text
    times = re.findall(r"([\d.]+) ms", text)
    assert len(times) >= 3 and all(float(t) > 0 for t in times)
    assert "<span style=\"display:inline-block" in captured.outputs[-1].data["text/html"]


def test_layer_times_cover_every_layer_of_a_multi_input_model() -> None:
    model = kmagic.build("input 4 as a\ninput 3 as b\nconcat @a @b\ndense 2")
    times = layer_times(model, [np.ones((8, 4), "float32"), np.ones((8, 3), "float32")], repeats=3, warmup=1)
    assert set(times) == {layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"}
    assert all(value > 0 for value in times.values())


def test_profile_refuses_a_model_without_a_graph() -> None:
    keras = pytest.importorskip("keras")
    with pytest.raises(KmagicUsageError, match="no layer graph"):
        layer_times(keras.Sequential([keras.layers.Dense(2)]), np.ones((2, 3)))


# ---------------------------------------------------------------- explain

def test_explain_image_model_gives_saliency_and_gradcam(cnn, digits) -> None:
    x = digits[0][:4]
    result = explain(cnn, x)
    assert result.saliency.shape == x.shape
    assert result.gradcam.shape == (4, 8, 8)
    assert result.gradcam_layer == "last_conv"
    assert result.targets == list(cnn.predict(x, verbose=0).argmax(axis=1))
    for maps in (result.saliency, result.gradcam):
        assert all(np.ptp(sample) > 0 for sample in maps)  # not constant
    assert result.gradcam.min() >= 0.0 and result.gradcam.max() <= 1.0 + 1e-6


def test_explain_target_changes_the_attribution(cnn, digits) -> None:
    x = digits[0][:2]
    a, b = explain(cnn, x, target=1), explain(cnn, x, target=7)
    assert a.targets == [1, 1] and b.targets == [7, 7]
    assert not np.allclose(a.saliency, b.saliency)
    with pytest.raises(KmagicUsageError, match="between 0 and 9"):
        explain(cnn, x, target=12)


def test_explain_png_is_a_real_image_of_the_right_size(cnn, digits) -> None:
    from io import BytesIO

    from matplotlib.image import imread

    picture = imread(BytesIO(explanation_png(explain(cnn, digits[0][:3]))))
    height, width = picture.shape[:2]
    assert height > 500 and width > 600  # three rows of three panels at 90 dpi
    assert picture[..., :3].std() > 0.05


def test_explain_text_model_colours_tokens(text_model) -> None:
    result = explain(text_model, TEXTS[:2])
    assert result.tokens[0] == ["good", "movie", "great"]
    assert len(result.token_scores[0]) == 3 and any(s != 0 for s in result.token_scores[0])
    view = ExplainView(result)
    html = view._repr_mimebundle_()["text/html"]
    assert html.count("<span") == 3 + 3 and "awful" in html
    assert "tokens for it" in view.to_text()


def test_kactivations_explain_in_a_shell(shell, cnn, digits) -> None:
    shell.user_ns.update(cnn=cnn, xs=digits[0][:3])
    with capture_output() as captured:
        shell.run_line_magic("kactivations", "cnn xs --explain --target 3")
    bundle = captured.outputs[-1].data
    assert "image/png" in bundle
    assert bundle["text/plain"].count("class 3") == 3


# ---------------------------------------------------------------- report

class _Resources(HTMLParser):
    """Every attribute that could load something: src, href, and CSS url(...) / @import."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("src", "href", "data", "poster") and value:
                self.references.append(value)


def test_report_is_self_contained(cnn, digits) -> None:
    html = report(cnn, validation_data=digits)
    parser = _Resources()
    parser.feed(html)
    assert parser.scripts == 0
    assert parser.references and all(ref.startswith("data:image/png;base64,") for ref in parser.references)
    assert re.findall(r"url\(([^)]*)\)", html) == ["#kmagic-arrow"] * len(re.findall(r"url\(", html))
    assert "@import" not in html  # only the diagram's arrow marker, inside the document
    assert html.count("data:image/png") == 2  # curves and confusion matrix
    for fact in ("kmagic", "Keras", "TensorFlow", "Python", "precision", "seed"):
        assert f"<th>{fact}</th>" in html
    assert "<th>seed</th><td>0</td>" in html
    assert "conv 8 3 same relu as last_conv" in html
    assert "<svg" in html


def test_kreport_writes_a_file_that_survives_nbconvert(shell, cnn, tmp_path) -> None:
    shell.user_ns["cnn"] = cnn
    target = tmp_path / "out" / "cnn.html"
    shell.run_line_magic("kreport", f"cnn --to {target}")
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Training" in html
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "x", outputs=[nbformat.v4.new_output("display_data", data={"text/html": html})])])
    converted, _ = HTMLExporter().from_notebook_node(notebook)
    assert "conv 8 3 same relu as last_conv" in converted


def test_report_of_an_untrained_keras_model() -> None:
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    html = report(model)
    assert "Not trained in this kernel" in html and "Not built from kmodel text" in html


# ---------------------------------------------------------------- diff

def test_diff_of_two_texts() -> None:
    before = "input 8\ndense 16 relu\ndense 2 softmax"
    after = "input 8\ndense 32 relu\ndropout 0.5\ndense 2 softmax"
    result = diff(before, after, names=("v1", "v2"))
    kinds = [(row.kind, row.details[0] if row.details else "") for row in result.layers]
    assert ("added", "Dropout") in kinds
    changed = [row for row in result.layers if row.kind == "changed"]
    assert any("units 16 -> 32" in row.details for row in changed)
    assert result.parameters == (8 * 16 + 16 + 16 * 2 + 2, 8 * 32 + 32 + 32 * 2 + 2)
    assert "+dense 32 relu" in result.text and "-dense 16 relu" in result.text
    text = result.to_text()
    assert "parameters: 178 -> 354 (+176)" in text


def test_diff_of_a_model_and_itself_is_empty(cnn) -> None:
    result = diff(cnn, cnn)
    assert result.changed == [] and result.parameters[0] == result.parameters[1]


def test_kdiff_in_a_shell_with_a_model_and_a_text(shell) -> None:
    shell.run_cell("%%kmodel small --quiet\ninput 4\ndense 2")
    shell.user_ns["bigger"] = "input 4\ndense 8 relu\ndense 2"
    with capture_output() as captured:
        shell.run_line_magic("kdiff", "small bigger")
    bundle = captured.outputs[-1].data
    assert "small -> bigger" in bundle["text/plain"]
    assert "+ dense" in bundle["text/plain"] and "<table>" in bundle["text/html"]


def test_kdiff_refuses_what_is_not_a_model(shell) -> None:
    shell.user_ns["number"] = 3
    with pytest.raises(KmagicError, match="expected a Keras model or kmodel text"):
        shell.run_line_magic("kdiff", "number number")


def test_public_names_are_the_functions() -> None:
    import kmagic.attribution
    import kmagic.model_diff
    import kmagic.reporting

    assert kmagic.explain is kmagic.attribution.explain
    assert kmagic.report is kmagic.reporting.report
    assert kmagic.diff is kmagic.model_diff.diff
