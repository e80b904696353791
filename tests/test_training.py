"""kmagic.training: adapting preprocessing layers, inferred compile defaults, fit argument merging."""

from __future__ import annotations

import numpy as np
import pytest

import kmagic
from kmagic import datacheck, training
from kmagic.errors import KmagicDataError

keras = pytest.importorskip("keras")


def _functional(*layers, shape=(4,), dtype="float32"):
    inputs = keras.Input(shape, dtype=dtype)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


# ---------------------------------------------------------------- adapt

def test_normalization_reading_an_input_is_adapted_from_x() -> None:
    model = kmagic.build("input 3\nnormalize\ndense 1")
    x = np.random.default_rng(0).normal(5.0, 2.0, size=(200, 3)).astype("float32")
    assert [layer.name for layer in training.layers_to_adapt(model)] == [model.layers[1].name]
    assert training.adapt_preprocessing(model, x) == [model.layers[1].name]
    normalized = keras.Model(model.inputs, model.layers[1].output).predict(x, verbose=0)
    assert np.allclose(normalized.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(normalized.std(axis=0), 1, atol=1e-2)
    assert training.layers_to_adapt(model) == []  # adapted once, not again


def test_normalization_after_other_layers_sees_their_output() -> None:
    model = kmagic.build("input 2\nrescale 10\nnormalize\ndense 1")
    x = np.random.default_rng(1).uniform(0, 1, size=(100, 2)).astype("float32")
    training.adapt_preprocessing(model, x)
    norm = model.layers[2]
    assert type(norm).__name__ == "Normalization"
    assert np.allclose(np.ravel(norm.mean), (x * 10).mean(axis=0), rtol=1e-3)


def test_text_vectorization_and_string_lookup_are_adapted() -> None:
    text = np.array(["the cat sat", "the dog ran", "a cat ran"])
    model = _functional(keras.layers.TextVectorization(max_tokens=20, output_sequence_length=4),
                        keras.layers.Embedding(20, 2), keras.layers.GlobalAveragePooling1D(),
                        keras.layers.Dense(1), shape=(), dtype="string")
    adapted = training.adapt_preprocessing(model, text)
    assert adapted == [model.layers[1].name]
    assert "cat" in model.layers[1].get_vocabulary()

    lookup_model = _functional(keras.layers.StringLookup(), keras.layers.CategoryEncoding(6, output_mode="one_hot"),
                               shape=(), dtype="string")
    training.adapt_preprocessing(lookup_model, np.array(["a", "b", "a", "c"]))
    assert set(lookup_model.layers[1].get_vocabulary()) >= {"a", "b", "c"}


def test_layers_given_their_state_are_left_alone() -> None:
    model = _functional(keras.layers.Normalization(mean=0.0, variance=1.0), keras.layers.Dense(1))
    lookup = _functional(keras.layers.IntegerLookup(vocabulary=[1, 2, 3]), shape=(), dtype="int64")
    assert training.layers_to_adapt(model) == []
    assert training.layers_to_adapt(lookup) == []


def test_multi_input_adapts_from_the_right_input() -> None:
    a, b = keras.Input((2,), name="a"), keras.Input((3,), name="b")
    norm = keras.layers.Normalization()
    out = keras.layers.Concatenate()([norm(a), b])
    model = keras.Model([a, b], keras.layers.Dense(1)(out))
    xa = np.full((10, 2), 7.0, "float32")
    xb = np.zeros((10, 3), "float32")
    training.adapt_preprocessing(model, {"a": xa, "b": xb})
    assert np.allclose(np.ravel(norm.mean), 7.0)
    with pytest.raises(KmagicDataError, match="entry 'a'"):
        fresh = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([keras.layers.Normalization()(a), b])))
        training.adapt_preprocessing(fresh, {"b": xb})


# ---------------------------------------------------------------- compile defaults

@pytest.mark.parametrize(("body", "labels", "loss", "metrics"), [
    ("input 4\ndense 3 softmax", np.array([0, 2, 1]), "sparse_categorical_crossentropy", ["accuracy"]),
    ("input 4\ndense 3 softmax", np.array([[0], [2], [1]]), "sparse_categorical_crossentropy", ["accuracy"]),
    ("input 4\ndense 3 softmax", np.eye(3, dtype="float32"), "categorical_crossentropy", ["accuracy"]),
    ("input 4\ndense 3\nsoftmax", np.eye(3, dtype="float32"), "categorical_crossentropy", ["accuracy"]),
    ("input 4\ndense 1 sigmoid", np.array([0, 1, 1]), "binary_crossentropy", ["accuracy"]),
    ("input 4\ndense 1", np.array([0.5, 1.0, 2.0]), "mean_squared_error", []),
    ("input 4\ndense 2 relu", np.zeros((3, 2)), "mean_squared_error", []),
])
def test_inferred_loss(body: str, labels, loss: str, metrics: list[str]) -> None:
    model = kmagic.build(body)
    choice = training.infer_compile(model, labels)
    assert (choice.optimizer, choice.loss, choice.metrics) == ("adam", loss, metrics)
    assert choice.reasons and choice.describe().startswith(f"optimizer=adam, loss={loss}")


def test_multi_output_losses_are_keyed_by_output_name() -> None:
    model = kmagic.build("input 4 as x\ndense 3 softmax as kind\n@x\ndense 1 as size\noutput @kind @size")
    choice = training.infer_compile(model, {"kind": np.array([0, 1]), "size": np.array([0.3, 0.1])})
    assert choice.loss == {"kind": "sparse_categorical_crossentropy", "size": "mean_squared_error"}
    with pytest.raises(KmagicDataError, match="one label array per output"):
        training.infer_compile(model, np.array([0, 1]))


def test_ensure_compiled_compiles_once_and_keeps_a_compiled_model() -> None:
    model = kmagic.build("input 4\ndense 2 softmax")
    choice = training.ensure_compiled(model, np.array([0, 1]), steps_per_execution=2)
    assert choice is not None and model.compiled and model.steps_per_execution == 2
    assert training.ensure_compiled(model, np.array([0, 1])) is None
    compiled = kmagic.build("input 4\ndense 2 softmax\ncompile sgd mse")
    assert training.ensure_compiled(compiled, np.array([0, 1]), steps_per_execution=3) is None
    assert type(compiled.optimizer).__name__ == "SGD" and compiled.steps_per_execution == 3


def test_labels_required_to_infer() -> None:
    model = kmagic.build("input 4\ndense 2 softmax")
    with pytest.raises(KmagicDataError, match="expected labels Y"):
        training.infer_compile(model, None, np.zeros((2, 4)))


# ---------------------------------------------------------------- fit arguments

def test_fit_arguments_given_values_win_and_callbacks_add_up() -> None:
    stored_cb, given_cb = object(), object()
    defaults = {"epochs": 10, "batch_size": 64, "validation_split": 0.1, "callbacks": [stored_cb]}
    merged = training.fit_arguments(defaults, {"epochs": 2, "batch_size": None, "callbacks": [given_cb]})
    assert merged == {"epochs": 2, "batch_size": 64, "validation_split": 0.1, "callbacks": [stored_cb, given_cb]}
    merged = training.fit_arguments(defaults, {"validation_data": ("xv", "yv")})
    assert "validation_split" not in merged and merged["validation_data"] == ("xv", "yv")
    assert training.fit_arguments({}, {}) == {}


def test_epoch_text_callback_writes_lines_and_stops_on_nan() -> None:
    lines: list[str] = []
    model = kmagic.build("input 2\ndense 1\ncompile sgd(lr=1e30) mse")
    x = np.ones((8, 2), "float32") * 1e10
    y = np.ones((8,), "float32")
    model.fit(x, y, epochs=4, verbose=0, callbacks=[training.epoch_text_callback(lines.append, stop_on_nan=True)])
    assert lines[0].startswith("epoch 1/4 - ") and " - loss " in lines[0]  # the dashboard's text line
    assert any("training stopped" in line for line in lines)
    assert len([line for line in lines if line.startswith("epoch")]) < 4


def test_fit_data_check_reports_shape_and_count_mismatches() -> None:
    model = kmagic.build("input 4\ndense 2")
    datacheck.check_fit_data(model, np.zeros((5, 4)), np.zeros(5))
    with pytest.raises(KmagicDataError, match=r"shape \(n, 4\).*received an array of shape \(5, 3\)"):
        datacheck.check_fit_data(model, np.zeros((5, 3)), np.zeros(5))
    with pytest.raises(KmagicDataError, match=r"as many labels as input samples \(5\), received 4"):
        datacheck.check_fit_data(model, np.zeros((5, 4)), np.zeros(4))
    two = kmagic.build("input 4 as a\ninput 2 as b\nconcat @a @b\ndense 1")
    datacheck.check_fit_data(two, {"a": np.zeros((3, 4)), "b": np.zeros((3, 2))}, None)
    with pytest.raises(KmagicDataError, match="model input 'b'"):
        datacheck.check_fit_data(two, [np.zeros((3, 4)), np.zeros((3, 5))], None)
