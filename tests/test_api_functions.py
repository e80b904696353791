"""The Python API behind the view magics: ``kmagic.activations`` and ``kmagic.weights``.

The magics parse their line and call these; here they are called directly,
and the magic and the function are checked to give the same data.
"""

from __future__ import annotations

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import kmagic
from kmagic.errors import KmagicNameError, KmagicValueError

BODY = "input 6\ndense 5 relu\ndense 3 softmax\ncompile adam scce"


@pytest.fixture
def model_and_data():
    model = kmagic.build(BODY, name="net", seed=0)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    return model, x, np.array([0, 1, 2, 1])


def test_activations_returns_a_displayable_view_with_the_arrays(model_and_data) -> None:
    model, x, _ = model_and_data
    hidden, output = (layer.name for layer in model.layers[1:])
    view = kmagic.activations(model, x, layer=output, sample=2)
    assert list(view.activations) == [hidden, output]
    assert view.activations[hidden].shape == (4, 5)
    expected = model.predict(x, verbose=0)
    assert np.allclose(view.activations[output], expected, atol=1e-6)
    bundle = view._repr_mimebundle_()
    assert "net" in bundle["text/plain"] and "image/png" in bundle


def test_activations_mistakes(model_and_data) -> None:
    model, x, _ = model_and_data
    with pytest.raises(KmagicValueError, match="expected a Keras model, received str"):
        kmagic.activations("net", x)
    with pytest.raises(KmagicValueError, match="sample"):
        kmagic.activations(model, x, sample=-1)
    with pytest.raises(KmagicNameError, match="no layer 'dens'"):
        kmagic.activations(model, x, layer="dens")


def test_weights_and_gradients(model_and_data) -> None:
    model, x, y = model_and_data
    hidden, output = (layer.name for layer in model.layers[1:])
    view = kmagic.weights(model)
    assert set(view.weights) == {hidden, output} and view.gradients is None
    assert np.array_equal(view.weights[hidden]["kernel"], model.layers[1].kernel.numpy())
    with_gradients = kmagic.weights(model, x, y)
    assert with_gradients.gradients[output]["kernel"].shape == (5, 3)
    with pytest.raises(KmagicValueError, match="both x and y"):
        kmagic.weights(model, x)
    with pytest.raises(KmagicValueError, match="expected a Keras model"):
        kmagic.weights(None)


def test_the_magics_show_what_the_functions_return(shell, model_and_data) -> None:
    model, x, y = model_and_data
    shell.user_ns.update(net=model, X=x, y=y)
    with capture_output() as captured:
        shell.run_line_magic("kactivations", "net X --sample 1")
    assert captured.outputs[-1].data["text/plain"] == kmagic.activations(model, x, sample=1).summary()
    with capture_output() as captured:
        shell.run_line_magic("kweights", "net X y")
    assert captured.outputs[-1].data["text/plain"] == kmagic.weights(model, x, y).summary()


def test_the_api_names_load_lazily() -> None:
    import subprocess
    import sys

    code = ("import sys, kmagic; [getattr(kmagic, n) for n in ('export', 'activations', 'weights')]; "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
