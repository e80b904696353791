"""One test per private Keras/TensorFlow internal kmagic uses (all of them live in kmagic.keras_internals)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kmagic import keras_internals as internals
from tests.kmodel_cases import keras


@pytest.fixture(scope="module")
def k() -> Any:
    return keras()


def test_producer_is_the_layer_that_made_a_tensor(k: Any) -> None:
    inputs = k.Input((3,), name="x")
    dense = k.layers.Dense(2, name="d")
    outputs = dense(inputs)
    assert internals.producer(outputs) is dense
    assert internals.producer_name(outputs) == "d"
    assert internals.producer_name(inputs) == "x"
    assert internals.producer(np.zeros(3)) is None and internals.producer_name(np.zeros(3)) is None


def test_functional_graph_of_functional_sequential_and_subclassed_models(k: Any) -> None:
    inputs = k.Input((3,))
    functional = k.Model(inputs, k.layers.Dense(1)(inputs))
    assert internals.functional_graph(functional) is functional
    sequential = k.Sequential([k.Input((3,)), k.layers.Dense(1)])
    graph = internals.functional_graph(sequential)
    assert graph is not None and [layer.name for layer in graph.layers][-1] == sequential.layers[-1].name

    class Sub(k.Model):
        def call(self, x: Any) -> Any:
            return x

    assert internals.functional_graph(Sub()) is None


def test_layer_calls_pick_each_layers_call_in_this_model(k: Any) -> None:
    shared = k.layers.Dense(4, name="shared")
    a, b = k.Input((3,), name="a"), k.Input((3,), name="b")
    first = k.Model(a, shared(a))
    second = k.Model(b, k.layers.Dense(1, name="head")(shared(b)))
    calls = dict((layer.name, node) for layer, node in internals.layer_calls(second))
    assert [internals.producer_name(t) for t in calls["shared"].input_tensors] == ["b"]
    assert [internals.producer_name(t) for t in dict(
        (layer.name, node) for layer, node in internals.layer_calls(first))["shared"].input_tensors] == ["a"]
    assert internals.layer_calls(k.Sequential()) is None or internals.layer_calls(k.Sequential()) == []


@pytest.mark.parametrize("make, data, first", [
    (lambda k: k.layers.StringLookup(), ["b", "a", "b"], "b"),
    (lambda k: k.layers.IntegerLookup(), [7, 3, 7], 7),
    (lambda k: k.layers.TextVectorization(), ["b a b"], "b"),
])
def test_token_start_index_is_where_the_real_vocabulary_starts(k: Any, make: Any, data: list, first: Any) -> None:
    layer = make(k)
    layer.adapt(np.array(data))
    vocabulary = layer.get_vocabulary()
    start = internals.token_start_index(layer)
    assert start >= 1 and vocabulary[start] == first


def test_gpu_memory_limits_match_the_gpus_tensorflow_sees() -> None:
    from kmagic._keras import tf

    limits = internals.gpu_memory_limits()
    assert len(limits) == len(tf().config.list_physical_devices("GPU"))
    assert all(limit > 0 for limit in limits)


def test_keras2_batch_hook_checks_exist_on_tf_keras_callbacks() -> None:
    tf_keras = pytest.importorskip("tf_keras")
    callback = tf_keras.callbacks.Callback()
    for check in internals.KERAS2_BATCH_HOOK_CHECKS:
        assert getattr(callback, check)() is False  # a plain callback implements no batch hooks
    history = tf_keras.callbacks.ProgbarLogger()
    assert any(getattr(history, check)() for check in internals.KERAS2_BATCH_HOOK_CHECKS)


def test_run_through_graph_calls_every_layer_through_the_wrapper(k: Any) -> None:
    inputs = k.Input((3,), name="x")
    model = k.Model(inputs, k.layers.Dense(1, name="out")(k.layers.Dense(4, name="hidden")(inputs)))
    called: list[str] = []

    def wrap(layer: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            called.append(layer.name)
            return layer(*args, **kwargs)

        return call

    x = np.ones((2, 3), "float32")
    result = internals.run_through_graph(model, [k.ops.convert_to_tensor(x)], wrap)
    result = result[0] if isinstance(result, (list, tuple)) else result
    assert called == ["hidden", "out"]
    np.testing.assert_allclose(np.asarray(result), model.predict(x, verbose=0), rtol=1e-5)
