"""Each layer word of docs/language.md §3 against a hand-written Keras model.

Every case builds kmodel text with ``kmagic.build`` and the same model by
hand with Keras, then compares layer classes, parameter count, every layer's
output shape and every layer's config (names aside), so the activation,
padding, use_bias, return_sequences, mask_zero, ... the DSL sets are checked
too. Rank-generic words are tried on 1D, 2D and 3D inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

import kmagic
from tests.kmodel_cases import assert_same_model, chain, keras

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    hand: Callable[[Any], Any]  # keras.layers -> hand-written model
    namespace: dict[str, Any] = field(default_factory=dict)


SEQ, IMG, VOL = (16, 3), (8, 8, 3), (4, 4, 4, 2)
RANKS = {1: ("16x3", SEQ), 2: ("8x8x3", IMG), 3: ("4x4x4x2", VOL)}


def _generic(word: str, args: str, make: Callable[[Any, int], Any], ranks: tuple[int, ...] = (1, 2, 3)) -> list[Case]:
    """One case per rank for a rank-generic word; ``make(layers, rank)`` is the Keras layer."""
    return [Case(f"{word}-{rank}d", f"input {RANKS[rank][0]}\n{word} {args}".rstrip(),
                 lambda L, rank=rank, make=make: chain(RANKS[rank][1], make(L, rank)))
            for rank in ranks]


def _cls(L: Any, pattern: str, rank: int) -> Any:
    return getattr(L, pattern.format(rank))


CASES: list[Case] = [
    Case("dense", "input 8\ndense 16", lambda L: chain((8,), L.Dense(16))),
    Case("dense-activation-nobias", "input 8\ndense 16 relu nobias",
         lambda L: chain((8,), L.Dense(16, activation="relu", use_bias=False))),
    Case("dense-keywords", "input 8\ndense 16 kernel_initializer=he_normal kernel_regularizer=l2(1e-4)",
         lambda L: chain((8,), L.Dense(16, kernel_initializer="he_normal",
                                       kernel_regularizer=keras().regularizers.L2(1e-4)))),
    *_generic("conv", "4 3", lambda L, r: _cls(L, "Conv{}D", r)(4, 3)),
    Case("conv-strides-same-nobias", "input 8x8x3\nconv 4 3 2 same nobias tanh",
         lambda L: chain(IMG, L.Conv2D(4, 3, 2, padding="same", use_bias=False, activation="tanh"))),
    Case("conv-kernel-shape", "input 8x8x3\nconv 4 3x1", lambda L: chain(IMG, L.Conv2D(4, (3, 1)))),
    Case("conv-causal", "input 16x3\nconv 4 3 causal dilation_rate=2",
         lambda L: chain(SEQ, L.Conv1D(4, 3, padding="causal", dilation_rate=2))),
    Case("conv1d", "input 16x3\nconv1d 4 3 2 nobias", lambda L: chain(SEQ, L.Conv1D(4, 3, 2, use_bias=False))),
    Case("conv2d", "input 8x8x3\nconv2d 4 3 same relu",
         lambda L: chain(IMG, L.Conv2D(4, 3, padding="same", activation="relu"))),
    Case("conv3d", "input 4x4x4x2\nconv3d 4 3", lambda L: chain(VOL, L.Conv3D(4, 3))),
    *_generic("deconv", "4 3 2", lambda L, r: _cls(L, "Conv{}DTranspose", r)(4, 3, 2)),
    *_generic("sepconv", "4 3", lambda L, r: _cls(L, "SeparableConv{}D", r)(4, 3), ranks=(1, 2)),
    *_generic("dwconv", "3 2", lambda L, r: _cls(L, "DepthwiseConv{}D", r)(3, 2), ranks=(1, 2)),
    *_generic("maxpool", "2", lambda L, r: _cls(L, "MaxPooling{}D", r)(2)),
    Case("maxpool-strides-same", "input 8x8x3\nmaxpool 3 1 same",
         lambda L: chain(IMG, L.MaxPooling2D(3, 1, padding="same"))),
    *_generic("avgpool", "2", lambda L, r: _cls(L, "AveragePooling{}D", r)(2)),
    *_generic("gap", "", lambda L, r: _cls(L, "GlobalAveragePooling{}D", r)()),
    *_generic("gmp", "", lambda L, r: _cls(L, "GlobalMaxPooling{}D", r)()),
    *_generic("spatial_dropout", "0.2", lambda L, r: _cls(L, "SpatialDropout{}D", r)(0.2)),
    *_generic("upsample", "2", lambda L, r: _cls(L, "UpSampling{}D", r)(2)),
    *_generic("zeropad", "1", lambda L, r: _cls(L, "ZeroPadding{}D", r)(1)),
    *_generic("crop", "1", lambda L, r: _cls(L, "Cropping{}D", r)(1)),
    Case("flatten", "input 8x8x3\nflatten", lambda L: chain(IMG, L.Flatten())),
    Case("dropout", "input 16\ndropout 0.3", lambda L: chain((16,), L.Dropout(0.3))),
    Case("bn", "input 8x8x3\nbn", lambda L: chain(IMG, L.BatchNormalization())),
    Case("batchnorm", "input 16\nbatchnorm momentum=0.9", lambda L: chain((16,), L.BatchNormalization(momentum=0.9))),
    Case("ln", "input 10x8\nln", lambda L: chain((10, 8), L.LayerNormalization())),
    Case("layernorm", "input 16\nlayernorm epsilon=1e-5", lambda L: chain((16,), L.LayerNormalization(epsilon=1e-5))),
    Case("embedding-mask", "input ? dtype=int32\nembedding 100 8 mask",
         lambda L: chain((None,), L.Embedding(100, 8, mask_zero=True), dtype="int32")),
    Case("embed", "input 10 dtype=int32\nembed 100 8",
         lambda L: chain((10,), L.Embedding(100, 8), dtype="int32")),
    Case("lstm", "input 10x4\nlstm 16", lambda L: chain((10, 4), L.LSTM(16))),
    Case("lstm-seq-state", "input 10x4\nlstm 16 seq state",
         lambda L: chain((10, 4), L.LSTM(16, return_sequences=True, return_state=True))),
    Case("gru-seq", "input 10x4\ngru 16 seq", lambda L: chain((10, 4), L.GRU(16, return_sequences=True))),
    Case("gru-state", "input 10x4\ngru 16 state", lambda L: chain((10, 4), L.GRU(16, return_state=True))),
    Case("rnn", "input 10x4\nrnn 16 tanh", lambda L: chain((10, 4), L.SimpleRNN(16, activation="tanh"))),
    Case("bi-lstm", "input 10x4\nbi lstm 8 seq",
         lambda L: chain((10, 4), L.Bidirectional(L.LSTM(8, return_sequences=True)))),
    Case("bi-gru-merge", "input 10x4\nbi gru 8 merge=sum",
         lambda L: chain((10, 4), L.Bidirectional(L.GRU(8), merge_mode="sum"))),
    Case("bi-rnn-merge-ave", "input 10x4\nbi rnn 8 seq merge=ave",
         lambda L: chain((10, 4), L.Bidirectional(L.SimpleRNN(8, return_sequences=True), merge_mode="ave"))),
    Case("reshape-shape", "input 12\nreshape 3x4", lambda L: chain((12,), L.Reshape((3, 4)))),
    Case("reshape-tuple", "input 12\nreshape (2, 6)", lambda L: chain((12,), L.Reshape((2, 6)))),
    Case("permute", "input 3x4\npermute (2, 1)", lambda L: chain((3, 4), L.Permute((2, 1)))),
    Case("repeat_vector", "input 8\nrepeat_vector 3", lambda L: chain((8,), L.RepeatVector(3))),
    *[Case(f"activation-{word}", f"input 8\n{word}", lambda L, word=word: chain((8,), L.Activation(word)))
      for word in ("relu", "softmax", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "silu", "softplus",
                   "linear")],
    Case("leaky_relu", "input 8\nleaky_relu 0.1", lambda L: chain((8,), L.LeakyReLU(0.1))),
    Case("leaky_relu-default", "input 8\nleaky_relu", lambda L: chain((8,), L.LeakyReLU())),
    Case("prelu", "input 8x8x3\nprelu", lambda L: chain(IMG, L.PReLU())),
    Case("rescale", "input 8x8x3\nrescale 1/255", lambda L: chain(IMG, L.Rescaling(1 / 255))),
    Case("rescale-offset", "input 8x8x3\nrescale 1/127.5 -1", lambda L: chain(IMG, L.Rescaling(1 / 127.5, -1))),
    Case("normalize", "input 8x8x3\nnormalize", lambda L: chain(IMG, L.Normalization())),
    Case("normalize-axis", "input 10x4\nnormalize -1", lambda L: chain((10, 4), L.Normalization(-1))),
    Case("resize", "input 8x8x3\nresize 4 6", lambda L: chain(IMG, L.Resizing(4, 6))),
    Case("center_crop", "input 8x8x3\ncenter_crop 4 6", lambda L: chain(IMG, L.CenterCrop(4, 6))),
    Case("random_flip", "input 8x8x3\nrandom_flip horizontal", lambda L: chain(IMG, L.RandomFlip("horizontal"))),
    Case("random_rotation", "input 8x8x3\nrandom_rotation 0.1", lambda L: chain(IMG, L.RandomRotation(0.1))),
    Case("random_zoom", "input 8x8x3\nrandom_zoom 0.2", lambda L: chain(IMG, L.RandomZoom(0.2))),
    Case("random_contrast", "input 8x8x3\nrandom_contrast 0.3", lambda L: chain(IMG, L.RandomContrast(0.3))),
    Case("random_brightness", "input 8x8x3\nrandom_brightness 0.1",
         lambda L: chain(IMG, L.RandomBrightness(0.1))),
    Case("random_translation", "input 8x8x3\nrandom_translation 0.1 0.2",
         lambda L: chain(IMG, L.RandomTranslation(0.1, 0.2))),
    Case("text_vectorize-seq", "input ? dtype=string\ntext_vectorize 100 seq=8",
         lambda L: chain((None,), L.TextVectorization(100, output_sequence_length=8), dtype="string")),
    Case("text_vectorize-one-string", "input 1 dtype=string\ntext_vectorize 50 seq=6",
         lambda L: chain((1,), L.TextVectorization(50, output_sequence_length=6), dtype="string")),
    Case("one_hot", "input 1 dtype=int32\none_hot 10",
         lambda L: chain((1,), L.CategoryEncoding(10, output_mode="one_hot"), dtype="int32")),
    Case("string_lookup", "input 1 dtype=string\nstring_lookup",
         lambda L: chain((1,), L.StringLookup(), dtype="string")),
    Case("integer_lookup", "input 1 dtype=int64\ninteger_lookup",
         lambda L: chain((1,), L.IntegerLookup(), dtype="int64")),
    Case("hashing", "input 1 dtype=string\nhashing 16", lambda L: chain((1,), L.Hashing(16), dtype="string")),
    # Keras class names, any case, positional values in constructor-signature order
    Case("class-GaussianNoise", "input 8\nGaussianNoise 0.1", lambda L: chain((8,), L.GaussianNoise(0.1))),
    Case("class-lower-case", "input 8\ngaussiannoise 0.2", lambda L: chain((8,), L.GaussianNoise(0.2))),
    Case("class-upper-case-alias", "input 8\nDENSE 4 RELU", lambda L: chain((8,), L.Dense(4, activation="relu"))),
    Case("class-Conv2D-signature-order", "input 8x8x3\nConv2D 4 3 2 same",
         lambda L: chain(IMG, L.Conv2D(4, 3, 2, padding="same"))),
    Case("class-MaxPooling2D", "input 8x8x3\nmaxpooling2d 2 1", lambda L: chain(IMG, L.MaxPooling2D(2, 1))),
    Case("class-GaussianDropout-keyword", "input 8\nGaussianDropout rate=0.3",
         lambda L: chain((8,), L.GaussianDropout(0.3))),
    Case("class-LSTM-flag", "input 10x4\nLSTM 8 seq", lambda L: chain((10, 4), L.LSTM(8, return_sequences=True))),
    Case("class-Embedding-flag", "input 6 dtype=int32\nEmbedding 30 4 mask",
         lambda L: chain((6,), L.Embedding(30, 4, mask_zero=True), dtype="int32")),
    Case("class-UnitNormalization", "input 8\nUnitNormalization", lambda L: chain((8,), L.UnitNormalization())),
    Case("class-Activation-word", "input 8\nActivation tanh", lambda L: chain((8,), L.Activation("tanh"))),
    # bare activation words inside a layer
    *[Case(f"bare-activation-{word}", f"input 8\ndense 4 {word}",
           lambda L, word=word: chain((8,), L.Dense(4, activation=word)))
      for word in ("relu6", "leaky_relu", "hard_sigmoid", "log_softmax", "softsign", "mish", "exponential")],
    Case("activation-call-keyword", "input 8\ndense 4 activation=leaky_relu(0.2)",
         lambda L: chain((8,), L.Dense(4, activation=L.LeakyReLU(0.2)))),
    Case("padding-valid", "input 8x8x3\nconv 4 3 valid", lambda L: chain(IMG, L.Conv2D(4, 3, padding="valid"))),
    # constants, fractions, lists of values
    Case("constants", "input 8\ndense 4 use_bias=FALSE", lambda L: chain((8,), L.Dense(4, use_bias=False))),
    Case("input-none-tuple", "input (None, 6)\nlstm 4", lambda L: chain((None, 6), L.LSTM(4))),
    Case("input-question-shape", "input ?x6\ngru 4", lambda L: chain((None, 6), L.GRU(4))),
    # {expr} interpolation of values
    Case("interp-values", "input {shape}\ndense {cfg['units']} activation={act}\ndropout {rate}",
         lambda L: chain((8,), L.Dense(12, activation="tanh"), L.Dropout(0.25)),
         namespace={"shape": (8,), "cfg": {"units": 12}, "act": "tanh", "rate": 0.25}),
    Case("interp-tuple-kernel", "input 8x8x3\nconv {filters} {kernel} padding={pad}",
         lambda L: chain(IMG, L.Conv2D(5, (3, 1), padding="same")),
         namespace={"filters": 5, "kernel": (3, 1), "pad": "same"}),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_alias_matches_hand_written_keras(case: Case) -> None:
    built = kmagic.build(case.text, namespace=dict(case.namespace))
    hand = case.hand(keras().layers)
    assert_same_model(built, hand)


def test_every_alias_of_the_table_has_a_case() -> None:
    """Each word of the §3 table (but input and the merge words, tested below) is exercised above."""
    from kmagic import registry

    words = {case.text.splitlines()[-1].split()[0].lower() for case in CASES}
    words |= {case.id.split("-")[1] for case in CASES if case.id.startswith("activation-")}
    covered_elsewhere = {"input", "mha", "attention"} | {w for w, s in registry.LAYER_ALIASES.items() if s.merge}
    missing = set(registry.LAYER_ALIASES) - words - covered_elsewhere
    assert not missing


# ---------------------------------------------------------------------------- merge words, attention


MERGE_WORDS = {
    "add": lambda L: L.Add(), "subtract": lambda L: L.Subtract(), "multiply": lambda L: L.Multiply(),
    "average": lambda L: L.Average(), "maximum": lambda L: L.Maximum(), "minimum": lambda L: L.Minimum(),
    "concat": lambda L: L.Concatenate(), "dot": lambda L: L.Dot(axes=1),
}


@pytest.mark.parametrize("word", sorted(MERGE_WORDS))
def test_merge_word_with_two_references(word: str) -> None:
    k = keras()
    extra = " 1" if word == "dot" else ""
    built = kmagic.build(f"input 6 as a\ninput 6 as b\n{word}{extra} @a @b\ndense 2")
    a, b = k.Input((6,)), k.Input((6,))
    hand = k.Model([a, b], k.layers.Dense(2)(MERGE_WORDS[word](k.layers)([a, b])))
    assert_same_model(built, hand)


def test_merge_with_one_reference_reads_the_cursor_too() -> None:
    k = keras()
    built = kmagic.build("input 6 as a\ndense 6 as h\ndense 6\nadd @h")
    a = k.Input((6,))
    h = k.layers.Dense(6)(a)
    hand = k.Model(a, k.layers.Add()([k.layers.Dense(6)(h), h]))
    assert_same_model(built, hand)


def test_concat_with_axis_and_three_inputs() -> None:
    k = keras()
    built = kmagic.build("input 4x2 as a\ninput 4x3 as b\ninput 4x1 as c\nconcat @a @b @c axis=-1")
    a, b, c = k.Input((4, 2)), k.Input((4, 3)), k.Input((4, 1))
    hand = k.Model([a, b, c], k.layers.Concatenate(axis=-1)([a, b, c]))
    assert_same_model(built, hand)


@pytest.mark.parametrize("word", ["mha", "attention", "MultiHeadAttention"])
def test_self_attention(word: str) -> None:
    k = keras()
    built = kmagic.build(f"input 10x8\n{word} 2 4")
    x = k.Input((10, 8))
    hand = k.Model(x, k.layers.MultiHeadAttention(2, 4)(x, x))
    assert_same_model(built, hand)


def test_attention_with_query_and_value_references() -> None:
    k = keras()
    built = kmagic.build("input 10x8 as q\ninput 6x8 as v\nmha 2 4 @q @v dropout=0.1")
    q, v = k.Input((10, 8)), k.Input((6, 8))
    hand = k.Model([q, v], k.layers.MultiHeadAttention(2, 4, dropout=0.1)(q, v))
    assert_same_model(built, hand)


def test_attention_with_query_value_and_key() -> None:
    k = keras()
    built = kmagic.build("input 10x8 as q\ninput 6x8 as v\ninput 6x4 as kk\nattention 2 4 @q @v @kk")
    q, v, key = k.Input((10, 8)), k.Input((6, 8)), k.Input((6, 4))
    hand = k.Model([q, v, key], k.layers.MultiHeadAttention(2, 4)(q, v, key))
    assert_same_model(built, hand)


# ---------------------------------------------------------------------------- custom layers


def _custom_classes() -> tuple[type, type]:
    k = keras()

    @k.saving.register_keras_serializable(package="kmagic_test_aliases")
    class ScaleBy(k.layers.Layer):
        """Multiplies by a constant factor (registered, so the DSL knows its name)."""

        def __init__(self, factor: float = 2.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x: Any) -> Any:
            return x * self.factor

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "factor": self.factor}

    class TinyDense(k.layers.Layer):
        """A dense layer without bias, never registered: reachable only through {interpolation}."""

        def __init__(self, units: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.units = units

        def build(self, shape: Any) -> None:
            self.w = self.add_weight(shape=(shape[-1], self.units))

        def call(self, x: Any) -> Any:
            return x @ self.w

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "units": self.units}

    return ScaleBy, TinyDense


@pytest.fixture(scope="module")
def custom_layers() -> tuple[type, type]:
    return _custom_classes()


def test_registered_custom_layer_by_name(custom_layers: tuple[type, type]) -> None:
    scale_by, _ = custom_layers
    built = kmagic.build("input 8\nScaleBy 3.0\nscaleby factor=0.5\ndense 2")
    assert [type(layer) for layer in built.layers[1:3]] == [scale_by, scale_by]
    assert [layer.factor for layer in built.layers[1:3]] == [3.0, 0.5]
    hand = chain((8,), scale_by(3.0), scale_by(0.5), keras().layers.Dense(2))
    assert_same_model(built, hand)


def test_custom_layer_class_by_interpolation(custom_layers: tuple[type, type]) -> None:
    _, tiny_dense = custom_layers
    built = kmagic.build("input 8\n{TinyDense} 16 as tiny\nrelu", namespace={"TinyDense": tiny_dense})
    assert isinstance(built.get_layer("tiny"), tiny_dense)
    hand = chain((8,), tiny_dense(16), keras().layers.Activation("relu"))
    assert_same_model(built, hand)
    assert built.count_params() == 8 * 16


def test_custom_layer_instance_by_interpolation(custom_layers: tuple[type, type]) -> None:
    _, tiny_dense = custom_layers
    layer = tiny_dense(4)
    built = kmagic.build("input 8\n{layer}", namespace={"layer": layer})
    assert built.layers[-1] is layer
    assert built.count_params() == 32


# ---------------------------------------------------------------------------- known defects


def test_class_name_relu_takes_its_own_arguments() -> None:
    built = kmagic.build("input 8\nReLU 6.0")
    assert_same_model(built, chain((8,), keras().layers.ReLU(6.0)))


def test_class_name_softmax_takes_axis() -> None:
    built = kmagic.build("input 4x3\nSoftmax axis=1")
    assert_same_model(built, chain((4, 3), keras().layers.Softmax(axis=1)))
