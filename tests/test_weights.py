"""Weight and gradient histograms."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from kmagic._keras import keras, tf
from kmagic.errors import KmagicUsageError
from kmagic.widgets.weights import WeightsView, layer_gradients, layer_weights, show_weights
from tests.png_check import assert_drawn_png


def _model(compile_it: bool = True) -> Any:
    k = keras()
    k.utils.set_random_seed(2)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(6, activation="relu", name="hidden"),
                          k.layers.BatchNormalization(name="bn"), k.layers.Dense(3, activation="softmax", name="out")],
                         name="net")
    if compile_it:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def test_weights_are_the_models_variables() -> None:
    model = _model()
    weights = layer_weights(model)
    assert list(weights) == ["hidden", "bn", "out"]
    assert set(weights["hidden"]) == {"kernel", "bias"}
    assert set(weights["bn"]) == {"gamma", "beta", "moving_mean", "moving_variance"}
    np.testing.assert_array_equal(weights["hidden"]["kernel"], model.get_layer("hidden").kernel.numpy())


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_gradients_match_an_independent_tape_and_leave_the_model_unchanged() -> None:
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    grads = layer_gradients(model, x, y)
    assert set(grads) == {"hidden", "bn", "out"}
    assert set(grads["bn"]) == {"gamma", "beta"}  # trainable only
    loss_fn = keras().losses.SparseCategoricalCrossentropy()
    with tf().GradientTape() as tape:
        loss = loss_fn(y[:64], model(x[:64], training=False))
    expected = tape.gradient(loss, model.get_layer("out").kernel)
    np.testing.assert_allclose(grads["out"]["kernel"], expected.numpy(), rtol=1e-4, atol=1e-7)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_show_weights_views(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    x, y = _data()
    plain = show_weights(model)
    assert isinstance(plain, WeightsView) and plain.gradients is None
    assert "pass training data" in plain.summary()
    trained = show_weights(model, x, y)
    assert trained.gradients is not None and "|grad|" in trained.summary()
    for view in (plain, trained):
        assert_drawn_png(view.png(), min_width=50, min_height=50)
        assert_drawn_png(view.png("out"), min_width=50, min_height=50)
    monkeypatch.setenv("KMAGIC_FRONTEND", "text")
    bundle = trained._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/png"}
    assert_drawn_png(base64.b64decode(bundle["image/png"]), min_width=50, min_height=50)
    monkeypatch.setenv("KMAGIC_FRONTEND", "widget")
    assert "application/vnd.jupyter.widget-view+json" in trained._repr_mimebundle_()
    box = trained.widget()
    selector, _, image = box.children
    overview = bytes(image.value)
    selector.value = "hidden"
    assert bytes(image.value) != overview
    assert_drawn_png(bytes(image.value), min_width=50, min_height=50)


def test_gradients_need_a_loss() -> None:
    x, y = _data()
    with pytest.raises(KmagicUsageError, match="not compiled"):
        show_weights(_model(compile_it=False), x, y)
