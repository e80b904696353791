"""The activation explorer on a conv, a sequence and a dense model."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from kmagic._keras import keras
from kmagic.errors import KmagicDataError, KmagicNameError, KmagicUsageError
from kmagic.widgets.activations import (
    ActivationExplorer,
    activation_model,
    capture_activations,
    show_activations,
)
from kmagic.widgets.plots import activation_kind
from tests.png_check import assert_drawn_png


def _conv() -> Any:
    k = keras()
    k.utils.set_random_seed(1)
    return k.Sequential([
        k.Input((12, 12, 1)),
        k.layers.Conv2D(4, 3, activation="relu", name="conv"),
        k.layers.MaxPooling2D(name="pool"),
        k.layers.Flatten(name="flat"),
        k.layers.Dense(3, activation="softmax", name="out"),
    ], name="cnn")


def _sequence() -> Any:
    k = keras()
    inputs = k.Input((7, 5))
    seq = k.layers.Conv1D(6, 3, padding="same", name="conv1d")(inputs)
    seq = k.layers.LSTM(4, return_sequences=True, name="lstm")(seq)
    out = k.layers.Dense(2, name="head")(k.layers.GlobalAveragePooling1D(name="gap")(seq))
    return k.Model(inputs, out, name="seq")


def _dense() -> Any:
    k = keras()
    return k.Sequential([k.Input((5,)), k.layers.Dense(8, activation="relu", name="hidden"),
                         k.layers.Dense(1, name="y")], name="mlp")


CASES = {
    "conv": (_conv, (6, 12, 12, 1), {"conv": "conv", "pool": "conv", "flat": "dense", "out": "dense"}),
    "sequence": (_sequence, (6, 7, 5), {"conv1d": "sequence", "lstm": "sequence", "gap": "dense", "head": "dense"}),
    "dense": (_dense, (6, 5), {"hidden": "dense", "y": "dense"}),
}


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@pytest.mark.parametrize("case", list(CASES))
def test_capture_matches_each_layer_and_the_model(case: str) -> None:
    make, shape, kinds = CASES[case]
    model = make()
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    acts = capture_activations(model, x)
    assert list(acts) == list(kinds)
    for name, kind in kinds.items():
        assert acts[name].shape[0] == shape[0]
        assert activation_kind(acts[name].shape[1:]) == kind
    # The last layer's activation is the model's output.
    np.testing.assert_allclose(acts[list(kinds)[-1]], model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    # One hidden layer checked against a sub-model built independently.
    name = list(kinds)[0]
    k = keras()
    reference = k.Model(model.inputs[0], model.get_layer(name).output)(x)
    np.testing.assert_allclose(acts[name], np.asarray(reference), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@pytest.mark.parametrize("case", list(CASES))
def test_every_view_renders_a_static_image_and_a_widget(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, shape, kinds = CASES[case]
    model = make()
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    view = show_activations(model, x, sample=2)
    assert isinstance(view, ActivationExplorer)
    for layer in [None, *kinds]:
        assert_drawn_png(view.png(layer, 1), min_width=50, min_height=50)
    monkeypatch.setenv("KMAGIC_FRONTEND", "text")
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/png"}
    assert_drawn_png(base64.b64decode(bundle["image/png"]), min_width=50, min_height=50)
    assert all(name in bundle["text/plain"] for name in kinds)
    monkeypatch.setenv("KMAGIC_FRONTEND", "widget")
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "image/png" in bundle
    box = view.widget()
    selector, slider = box.children[0].children
    image = box.children[2]
    assert [value for _, value in selector.options][1:] == list(kinds)
    overview = image.value
    selector.value = list(kinds)[0]
    assert bytes(image.value) != bytes(overview)
    assert_drawn_png(bytes(image.value), min_width=50, min_height=50)
    before = bytes(image.value)
    slider.value = 4
    assert bytes(image.value) != before and "sample 4" in box.children[1].value


def test_the_multi_output_model_is_built_once_per_model() -> None:
    model = _dense()
    first = activation_model(model)[1]
    capture_activations(model, np.zeros((3, 5), "float32"))
    assert activation_model(model)[1] is first
    assert activation_model(_dense())[1] is not first


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_large_inputs_are_captured_in_chunks() -> None:
    model = _dense()
    x = np.random.default_rng(0).normal(size=(600, 5)).astype("float32")
    acts = capture_activations(model, x)
    assert acts["y"].shape == (600, 1)
    np.testing.assert_allclose(acts["y"], model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_user_errors_are_kmagic_errors() -> None:
    model = _dense()
    x = np.zeros((3, 5), "float32")
    with pytest.raises(KmagicNameError, match="hiden") as err:
        show_activations(model, x, layer="hiden")
    assert "hidden" in str(err.value)
    with pytest.raises(KmagicUsageError, match="out of range"):
        show_activations(model, x, sample=3)
    with pytest.raises(KmagicDataError):
        capture_activations(model, np.zeros((3, 4), "float32"))
    k = keras()
    with pytest.raises(KmagicUsageError, match="no defined inputs"):
        capture_activations(k.Sequential([k.layers.Dense(2)]), x)
