"""Shared helpers for the equivalence tests: compare a kmagic-built model with hand-written Keras.

A model built from kmodel text and its hand-written Keras twin are "the same"
when they have the same layer classes in the same order, the same parameter
count, the same output shape for every layer, and the same layer configs
(names aside). :func:`assert_same_model` checks all four.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", module="keras")

#: Config keys that legitimately differ between two equal models.
_IGNORED_CONFIG_KEYS = {"name"}


def keras() -> Any:
    """The Keras module kmagic builds with."""
    from kmagic._keras import keras as load

    return load()


def chain(shape: tuple[int | None, ...], *layers: Any, dtype: str | None = None) -> Any:
    """A functional model: one input of ``shape``, then ``layers`` one after another.

    A layer that returns several tensors (``return_state``) passes on its first,
    as a kmodel statement does.
    """
    k = keras()
    inputs = k.Input(shape=shape, dtype=dtype) if dtype else k.Input(shape=shape)
    x = inputs
    for layer in layers:
        x = layer(x)
        if isinstance(x, list | tuple):
            x = x[0]
    return k.Model(inputs, x)


def _shape(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_shape(v) for v in value]
    return tuple(value.shape)


def layer_shapes(model: Any) -> list[Any]:
    """Every layer's output shape (a list of shapes for a layer with several outputs)."""
    return [_shape(layer.output) for layer in model.layers]


def layer_classes(model: Any) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def output_shapes(model: Any) -> list[tuple[int | None, ...]]:
    return [tuple(t.shape) for t in model.outputs]


def clean_config(value: Any) -> Any:
    """A layer config without names (at any depth), for comparing two models' layers."""
    if isinstance(value, dict):
        return {k: clean_config(v) for k, v in value.items() if k not in _IGNORED_CONFIG_KEYS}
    if isinstance(value, list | tuple):
        return [clean_config(v) for v in value]
    return value


def layer_configs(model: Any) -> list[Any]:
    return [clean_config(layer.get_config()) for layer in model.layers]


def assert_same_model(built: Any, hand: Any, *, configs: bool = True) -> None:
    """``built`` and ``hand`` have the same layers, parameters, shapes (and configs)."""
    assert layer_classes(built) == layer_classes(hand)
    assert built.count_params() == hand.count_params()
    assert layer_shapes(built) == layer_shapes(hand)
    assert output_shapes(built) == output_shapes(hand)
    if configs:
        for mine, theirs, layer in zip(layer_configs(built), layer_configs(hand), built.layers, strict=True):
            assert mine == theirs, f"config of {layer.name} ({type(layer).__name__})"


def assert_same_structure(first: Any, second: Any) -> None:
    """Same layer classes, parameter count and shapes (for models rebuilt from text or code)."""
    assert layer_classes(first) == layer_classes(second)
    assert first.count_params() == second.count_params()
    assert layer_shapes(first) == layer_shapes(second)
    assert output_shapes(first) == output_shapes(second)


def sample_inputs(model: Any, batch: int = 3, seed: int = 0) -> Any:
    """Random inputs that fit ``model`` (integers below 20 for integer inputs; ? sizes become 5)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = (batch, *[5 if d is None else d for d in tensor.shape[1:]])
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(1, 20, size=shape).astype(str(tensor.dtype)))
        else:
            arrays.append(rng.random(shape, dtype="float32"))
    return arrays[0] if len(arrays) == 1 else arrays


#: kmodel programs used by several test files: name -> text.
PROGRAMS: dict[str, str] = {
    "mnist_cnn": """\
input 28x28x1
conv 32 3 relu
conv 64 3 relu
maxpool 2
dropout 0.25
flatten
dense 128 relu
dropout 0.5
dense 10 softmax
compile adam cce metrics=[accuracy]
""",
    "text_classifier": """\
input ?           dtype=int32     # a sequence of token ids
embedding 10000 64 mask
bi lstm 32 seq
lstm 16
dense 1 sigmoid
compile rmsprop bce metrics=[accuracy, auc]
""",
    "residual_32": """\
input 32x32x3
conv 16 3 same relu
residual:
    conv 16 3 same relu
    conv 16 3 same
relu
gap
dense 10 softmax
""",
    "multi_io": """\
input 8 as tokens
input 4 as meta
@tokens
dense 6 relu as text
concat @text @meta
dense 3 softmax as out
dense 1 sigmoid @text as aux
output @out @aux
compile adam loss=dict(out=cce, aux=bce) metrics=dict(out=[accuracy], aux=[auc])
""",
    "residual_project": """\
input 8x8x3
conv 4 3 same relu
residual project:
    conv 8 3 same strides=2
    conv 8 3 same
gap
residual project:
    dense 6 relu
dense 2 softmax
""",
    "inception": """\
input 8x8x3
concat:
    branch: conv 4 1 relu
    branch:
        conv 4 1 relu
        conv 4 3 same relu
    branch: maxpool 3 strides=1 same | conv 4 1 relu
gap
dense 2 softmax
""",
    "bi_lstm": """\
input 10x4
bi lstm 8 seq merge=sum
bi gru 4
dense 1
""",
    "mha": """\
input 10x8 as q
input 6x8 as v
mha 2 4 @q @v as att
add @q @att
ln
gap
dense 2 softmax
""",
    "embedding_mask": """\
input ? dtype=int32
embedding 50 8 mask
lstm 4 seq state
gru 4
dense 1 sigmoid
""",
    "blocks": """\
block down(f, k=3):
    conv f k same relu
    bn
    maxpool 2
input 8x8x3
down 4
down 8 k=1
repeat 2: conv 8 3 same | leaky_relu 0.2
gap
dense 3 softmax
""",
}


def hand_programs() -> dict[str, Callable[[], Any]]:
    """Hand-written Keras models equal to some of :data:`PROGRAMS`."""
    k = keras()
    L = k.layers

    def residual_32() -> Any:
        inputs = k.Input((32, 32, 3))
        x = L.Conv2D(16, 3, padding="same", activation="relu")(inputs)
        y = L.Conv2D(16, 3, padding="same", activation="relu")(x)
        y = L.Conv2D(16, 3, padding="same")(y)
        x = L.Add()([x, y])
        x = L.Activation("relu")(x)
        x = L.GlobalAveragePooling2D()(x)
        return k.Model(inputs, L.Dense(10, activation="softmax")(x))

    def multi_io() -> Any:
        tokens, meta = k.Input((8,)), k.Input((4,))
        text = L.Dense(6, activation="relu")(tokens)
        out = L.Dense(3, activation="softmax")(L.Concatenate()([text, meta]))
        aux = L.Dense(1, activation="sigmoid")(text)
        return k.Model([tokens, meta], [out, aux])

    return {
        "mnist_cnn": lambda: chain(
            (28, 28, 1), L.Conv2D(32, 3, activation="relu"), L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2), L.Dropout(0.25), L.Flatten(), L.Dense(128, activation="relu"), L.Dropout(0.5),
            L.Dense(10, activation="softmax")),
        "text_classifier": lambda: chain(
            (None,), L.Embedding(10000, 64, mask_zero=True), L.Bidirectional(L.LSTM(32, return_sequences=True)),
            L.LSTM(16), L.Dense(1, activation="sigmoid"), dtype="int32"),
        "residual_32": residual_32,
        "multi_io": multi_io,
    }


def ids(cases: Sequence[Any]) -> list[str]:
    return [case.id for case in cases]
