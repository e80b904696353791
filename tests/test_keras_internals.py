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


def test_graph_layer_name_names_the_producer_of_a_graph_tensor(k: Any) -> None:
    inputs = k.Input((3,), name="x")
    outputs = k.layers.Dense(2, name="d")(inputs)
    assert internals.graph_layer_name(outputs) == "d" and internals.graph_layer_name(inputs) == "x"
    with pytest.raises(ValueError, match="symbolic tensor"):
        internals.graph_layer_name(np.zeros(3))


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


def test_uninitialized_variables_is_kerass_live_list_of_stateless_variables(k: Any) -> None:
    pending = internals.uninitialized_variables()
    assert isinstance(pending, list) and internals.uninitialized_variables() is pending
    before = len(pending)
    try:
        with k.StatelessScope(initialize_variables=False):
            variable = k.Variable(initializer="zeros", shape=(3,))
        assert any(v is variable for v in pending[before:])
    finally:
        del pending[before:]


def test_functional_model_classes_are_the_classes_of_functional_and_sequential_models(k: Any) -> None:
    functional, sequential = internals.functional_model_classes()
    inputs = k.Input((3,))
    assert type(k.Model(inputs, k.layers.Dense(1)(inputs))) is functional
    assert type(k.Sequential([k.Input((3,)), k.layers.Dense(1)])) is sequential


def test_operation_classes_are_the_op_layers_configs_name(k: Any) -> None:
    classes = internals.operation_classes(("numpy", "nn"))
    names = {cls.__name__ for cls in classes}
    assert {"Add", "Reshape", "Relu"} <= names
    assert "Operation" not in names and "Dense" not in names
    x = k.Input((2, 3))
    assert type(internals.producer(k.ops.reshape(x, (-1, 6)))) in classes


def test_registered_custom_objects_see_registrations_and_open_scopes(k: Any) -> None:
    @k.saving.register_keras_serializable(package="kmagic_internals_test")
    def registered_fn(x: Any) -> Any:
        return x

    def scoped_fn(x: Any) -> Any:
        return x

    assert internals.registered_custom_objects()["kmagic_internals_test>registered_fn"] is registered_fn
    assert "scoped" not in internals.registered_custom_objects()
    with k.saving.custom_object_scope({"scoped": scoped_fn}):
        assert internals.registered_custom_objects()["scoped"] is scoped_fn


def test_exported_symbol_finds_public_names_only(k: Any) -> None:
    assert internals.exported_symbol("keras.layers.Dense") is k.layers.Dense
    assert internals.exported_symbol("keras.activations.relu") is k.activations.relu
    assert internals.exported_symbol("keras.layers.NoSuchLayer") is None


def test_builtin_function_modules_hold_the_activations_losses_and_metrics(k: Any) -> None:
    families = internals.builtin_function_modules()
    assert {"activations", "losses", "metrics"} <= set(families)
    assert all(hasattr(k, family) for family in families)


def test_safe_mode_scope_turns_keras_safe_mode_on_for_the_block(k: Any) -> None:
    lambda_config = k.saving.serialize_keras_object(k.layers.Lambda(lambda x: x * 2))
    with pytest.raises(ValueError, match="(?i)safe"), internals.safe_mode_scope():
        k.saving.deserialize_keras_object(lambda_config, safe_mode=False)


def _compiled_model(k: Any) -> Any:
    inputs = k.Input((3,))
    model = k.Model(inputs, k.layers.Dense(1)(inputs))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 1), "float32"), verbose=0)  # the optimizer gets its state
    return model


def test_save_weights_skipping_leaves_the_optimizer_out_of_the_file(k: Any, tmp_path: Any) -> None:
    import h5py

    model = _compiled_model(k)
    whole, skipped = str(tmp_path / "whole.weights.h5"), str(tmp_path / "skipped.weights.h5")
    model.save_weights(whole)
    internals.save_weights_skipping(model, skipped, [model.optimizer])
    with h5py.File(whole, "r") as with_all, h5py.File(skipped, "r") as without:
        assert "optimizer" in with_all and "optimizer" not in without and "layers" in without


def test_load_weights_skipping_leaves_the_optimizer_as_it_is(k: Any, tmp_path: Any) -> None:
    model = _compiled_model(k)
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)  # weights and optimizer state
    fresh = _compiled_model(k)
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.optimizer.variables[0].assign(41)  # the iteration count, which the file holds as 1
    internals.load_weights_skipping(fresh, path, [fresh.optimizer])
    for got, want in zip(fresh.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert int(np.asarray(fresh.optimizer.variables[0])) == 41
    fresh.load_weights(path)  # without the skip, the state is read
    assert int(np.asarray(fresh.optimizer.variables[0])) == int(np.asarray(model.optimizer.variables[0]))


def test_compile_config_and_compile_config_kept(k: Any) -> None:
    inputs = k.Input((3,))
    assert internals.compile_config(k.Model(inputs, k.layers.Dense(1)(inputs))) is None
    model = _compiled_model(k)
    config = internals.compile_config(model)
    assert config is not None and config["loss"] == "mse" and config["metrics"] == ["mae"]
    before = dict(config)
    with internals.compile_config_kept(model):
        config.pop("optimizer")  # as Keras's HDF5 writer does, in place
        assert "optimizer" not in (internals.compile_config(model) or {})
    assert internals.compile_config(model) == before and "optimizer" in before


def test_raw_learning_rate_is_the_variable_or_the_schedule(k: Any) -> None:
    fixed = k.optimizers.Adam(learning_rate=0.25)
    rate = internals.raw_learning_rate(fixed)
    assert hasattr(rate, "assign") and float(np.asarray(rate)) == 0.25
    schedule = k.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert internals.raw_learning_rate(k.optimizers.SGD(learning_rate=schedule)) is schedule
    assert internals.raw_learning_rate(object()) is None


def test_callback_model_is_the_model_set_on_the_callback(k: Any) -> None:
    callback = k.callbacks.Callback()
    assert internals.callback_model(callback) is None
    inputs = k.Input((3,))
    model = k.Model(inputs, k.layers.Dense(1)(inputs))
    callback.set_model(model)
    assert internals.callback_model(callback) is model
