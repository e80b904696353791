"""The worked examples of docs/language.md §9 build exactly as stated, and match hand-written Keras."""

from __future__ import annotations

import numpy as np
import pytest

import kmagic
from tests.kmodel_cases import PROGRAMS

keras = pytest.importorskip("keras")
layers = keras.layers

MNIST_CNN = PROGRAMS["mnist_cnn"]
TEXT_CLASSIFIER = PROGRAMS["text_classifier"]
RESIDUAL = PROGRAMS["residual_32"]


def _mnist_by_hand() -> keras.Model:
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def _text_by_hand() -> keras.Model:
    inputs = keras.Input((None,), dtype="int32")
    x = layers.Embedding(10000, 64, mask_zero=True)(inputs)
    x = layers.Bidirectional(layers.LSTM(32, return_sequences=True))(x)
    x = layers.LSTM(16)(x)
    return keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))


def _residual_by_hand() -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    y = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(16, 3, padding="same")(y)
    x = layers.Activation("relu")(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


EXAMPLES = [
    ("mnist_cnn", MNIST_CNN, 1_199_882, _mnist_by_hand),
    ("text_classifier", TEXT_CLASSIFIER, 670_033, _text_by_hand),
    ("residual", RESIDUAL, 5_258, _residual_by_hand),
]


def _shapes(model: keras.Model) -> list[tuple]:
    return [tuple(layer.output.shape) for layer in model.layers]


@pytest.mark.parametrize(("name", "text", "params", "by_hand"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_worked_example(name: str, text: str, params: int, by_hand) -> None:
    model = kmagic.build(text)
    reference = by_hand()
    assert model.count_params() == params
    assert reference.count_params() == params
    assert _shapes(model) == _shapes(reference)
    assert [type(layer).__name__ for layer in model.layers] == [type(layer).__name__ for layer in reference.layers]


def test_compile_lines_compile_the_model() -> None:
    cnn = kmagic.build(MNIST_CNN)
    assert type(cnn.optimizer).__name__ == "Adam"
    assert cnn.loss == "categorical_crossentropy"
    text = kmagic.build(TEXT_CLASSIFIER)
    assert type(text.optimizer).__name__ == "RMSprop"
    assert text.loss == "binary_crossentropy"
    assert getattr(kmagic.build(RESIDUAL), "optimizer", None) is None


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_the_text_classifier_trains_on_token_ids() -> None:
    model = kmagic.build(TEXT_CLASSIFIER, seed=0)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 10000, size=(16, 12)).astype("int32")
    y = rng.integers(0, 2, size=(16, 1))
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_seed_makes_builds_reproducible() -> None:
    first = kmagic.build(RESIDUAL, seed=7).get_weights()
    second = kmagic.build(RESIDUAL, seed=7).get_weights()
    other = kmagic.build(RESIDUAL, seed=8).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_build_warns_about_statements_that_reach_no_output() -> None:
    from kmagic.errors import KmagicWarning

    with pytest.warns(KmagicWarning, match=r"line 3: dropout 0.1; line 4: dense 8 nobias"):
        model = kmagic.build("input 8 as a\ndense 8 as h\ndropout 0.1\ndense 8 nobias\nadd @h @a\ndense 2")
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense", "Add", "Dense"]
