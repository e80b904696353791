"""Round trips: kmodel -> Python (``to_python``), Keras -> kmodel (``from_keras``), and save/load.

- The Python that ``to_python`` writes, run on its own, builds a model equal
  to ``kmagic.build``'s (layer classes, parameters, shapes, configs).
- ``from_keras`` text builds a model equal to the one it was written from,
  for kmagic-built models and hand-written Sequential and functional ones;
  what kmodel cannot express is refused with a KmagicError.
- ``save``/``load`` in .keras, .h5 and .json keep weights and predictions;
  files with Python code in them, truncated files and files in another
  format than their name says are refused with a KmagicError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kmagic
from tests.kmodel_cases import (
    PROGRAMS,
    assert_same_model,
    assert_same_structure,
    chain,
    hand_programs,
    keras,
    layer_classes,
    layer_configs,
    layer_shapes,
    sample_inputs,
)
from tests.test_aliases import CASES as ALIAS_CASES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FORMATS = (".keras", ".h5", ".json")


def _run_python(source: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "kmagic_generated"}
    exec(compile(source, "<to_python>", "exec"), namespace)  # noqa: S102 - the code under test
    return namespace["model"]


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """Each program of kmodel_cases.PROGRAMS built once, with a fixed seed."""
    return {name: kmagic.build(text, seed=0) for name, text in PROGRAMS.items()}


def test_worked_examples_have_the_documented_parameter_counts(built: dict[str, Any]) -> None:
    counts = {name: built[name].count_params() for name in ("mnist_cnn", "text_classifier", "residual_32")}
    assert counts == {"mnist_cnn": 1_199_882, "text_classifier": 670_033, "residual_32": 5_258}


# ---------------------------------------------------------------------------- to_python


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_to_python_builds_the_same_model(name: str, built: dict[str, Any]) -> None:
    source = kmagic.to_python(PROGRAMS[name])
    assert "kmagic" not in source.replace("written out by kmagic", "")
    generated = _run_python(source)
    assert_same_model(generated, built[name])


@pytest.mark.parametrize("name", ["mnist_cnn", "text_classifier", "multi_io"])
def test_to_python_compiles_like_the_program(name: str, built: dict[str, Any]) -> None:
    generated = _run_python(kmagic.to_python(PROGRAMS[name]))
    model = built[name]
    assert type(generated.optimizer) is type(model.optimizer)
    assert generated.loss == model.loss
    metrics = [m if isinstance(m, str) else m["class_name"] for m in _flat(model.get_compile_config()["metrics"])]
    assert [m if isinstance(m, str) else m["class_name"]
            for m in _flat(generated.get_compile_config()["metrics"])] == metrics


def _flat(value: Any) -> list[Any]:
    if isinstance(value, dict) and "class_name" not in value:
        return [item for v in value.values() for item in _flat(v)]
    if isinstance(value, list | tuple):
        return [item for v in value for item in _flat(v)]
    return [value]


@pytest.mark.parametrize("case", ALIAS_CASES, ids=[case.id for case in ALIAS_CASES])
def test_to_python_of_every_alias_case(case: Any) -> None:
    generated = _run_python(kmagic.to_python(case.text, namespace=dict(case.namespace)))
    assert_same_model(generated, kmagic.build(case.text, namespace=dict(case.namespace)))


def test_to_python_writes_fit_settings_and_blocks_out() -> None:
    source = kmagic.to_python("block twice(n):\n    dense n\n    dense n\ninput 4\ntwice 3\n"
                              "compile sgd mse\nfit epochs=2 batch_size=8")
    assert "model.fit(x, y, epochs=2, batch_size=8)" in source
    model = _run_python(source)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense", "Dense"]
    assert type(model.optimizer).__name__ == "SGD"


def test_to_python_with_interpolated_custom_layer_needs_its_name() -> None:
    k = keras()

    class Doubler(k.layers.Layer):
        def call(self, x: Any) -> Any:
            return x * 2

    source = kmagic.to_python("input 4\n{Doubler}\ndense 2", namespace={"Doubler": Doubler})
    assert "Doubler()" in source
    namespace: dict[str, Any] = {"Doubler": Doubler}
    exec(compile(source, "<to_python>", "exec"), namespace)  # noqa: S102
    assert type(namespace["model"].layers[1]) is Doubler


# ---------------------------------------------------------------------------- from_keras


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_from_keras_of_a_built_program(name: str, built: dict[str, Any]) -> None:
    model = built[name]
    rebuilt = kmagic.build(kmagic.from_keras(model))
    assert_same_model(rebuilt, model)


@pytest.mark.parametrize("case", ALIAS_CASES, ids=[case.id for case in ALIAS_CASES])
def test_from_keras_of_every_hand_written_alias_model(case: Any) -> None:
    hand = case.hand(keras().layers)
    assert_same_model(kmagic.build(kmagic.from_keras(hand)), hand)


@pytest.mark.parametrize("name", sorted(hand_programs()))
def test_from_keras_of_hand_written_functional_models(name: str) -> None:
    hand = hand_programs()[name]()
    assert_same_model(kmagic.build(kmagic.from_keras(hand)), hand)


def test_from_keras_of_a_sequential_model() -> None:
    k = keras()
    L = k.layers
    model = k.Sequential([
        k.Input((8, 8, 3)),
        L.Conv2D(4, 3, padding="same", activation="relu"),
        L.BatchNormalization(),
        L.MaxPooling2D(),
        L.Flatten(),
        L.Dropout(0.2),
        L.Dense(3, activation="softmax", use_bias=False),
    ])
    text = kmagic.from_keras(model)
    assert text.splitlines()[0] == "input 8x8x3"
    rebuilt = kmagic.build(text)
    _assert_same_as_sequential(rebuilt, model)
    assert [layer.get_config()["activation"] for layer in rebuilt.layers if "activation" in layer.get_config()] == [
        "relu", "softmax"]


def test_from_keras_of_a_sequential_without_input_layer_object() -> None:
    k = keras()
    model = k.Sequential([k.layers.Dense(4, activation="tanh"), k.layers.Dense(1)])
    model.build((None, 6))
    _assert_same_as_sequential(kmagic.build(kmagic.from_keras(model)), model)


def _assert_same_as_sequential(rebuilt: Any, sequential: Any) -> None:
    """A functional model equal to a Sequential one (whose .layers leave out the input layer)."""
    assert type(rebuilt.layers[0]).__name__ == "InputLayer"
    assert layer_classes(rebuilt)[1:] == layer_classes(sequential)
    assert layer_shapes(rebuilt)[1:] == layer_shapes(sequential)
    assert layer_configs(rebuilt)[1:] == layer_configs(sequential)
    assert rebuilt.count_params() == sequential.count_params()


def test_from_keras_of_a_functional_model_with_branches_and_names() -> None:
    k = keras()
    L = k.layers
    image = k.Input((8, 8, 3), name="image")
    meta = k.Input((2,), name="meta")
    a = L.Conv2D(4, 1, name="left")(image)
    b = L.Conv2D(4, 3, padding="same", name="right")(image)
    x = L.GlobalMaxPooling2D()(L.Add()([a, b]))
    x = L.Concatenate()([x, meta])
    out = L.Dense(2, activation="softmax", name="label")(x)
    aux = L.Dense(1, name="score")(x)
    model = k.Model([image, meta], [out, aux])
    text = kmagic.from_keras(model)
    rebuilt = kmagic.build(text)
    assert_same_model(rebuilt, model)
    assert rebuilt.output_names == ["label", "score"]


def test_from_keras_of_a_registered_custom_layer() -> None:
    k = keras()

    @k.saving.register_keras_serializable(package="kmagic_test_roundtrip")
    class Shift(k.layers.Layer):
        def __init__(self, by: float = 1.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.by = by

        def call(self, x: Any) -> Any:
            return x + self.by

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "by": self.by}

    hand = chain((4,), Shift(2.5), k.layers.Dense(2))
    rebuilt = kmagic.build(kmagic.from_keras(hand))
    assert_same_model(rebuilt, hand)
    assert rebuilt.layers[1].by == 2.5


def test_from_keras_refuses_a_subclassed_model() -> None:
    k = keras()

    class Net(k.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = k.layers.Dense(2)

        def call(self, x: Any) -> Any:
            return self.dense(x)

    model = Net()
    model(np.zeros((1, 4), dtype="float32"))
    with pytest.raises(kmagic.KmagicError, match="subclassed"):
        kmagic.from_keras(model)


def test_from_keras_refuses_a_lambda_layer() -> None:
    k = keras()
    model = chain((4,), k.layers.Lambda(lambda x: x * 2), k.layers.Dense(2))
    with pytest.raises(kmagic.KmagicError, match="Lambda"):
        kmagic.from_keras(model)


def test_from_keras_refuses_a_shared_layer_and_non_models() -> None:
    k = keras()
    shared = k.layers.Dense(3)
    x = k.Input((3,))
    with pytest.raises(kmagic.KmagicError, match="shared"):
        kmagic.from_keras(k.Model(x, shared(shared(x))))
    with pytest.raises(kmagic.KmagicError, match="keras.Model"):
        kmagic.from_keras(k.layers.Dense(3))
    with pytest.raises(kmagic.KmagicError, match="input"):
        kmagic.from_keras(k.Sequential([k.layers.Dense(3)]))


# ---------------------------------------------------------------------------- save / load


SAVED = ["mnist_cnn", "text_classifier", "multi_io", "residual_project", "inception", "bi_lstm", "mha",
         "embedding_mask", "blocks"]


def _predictions(model: Any, x: Any) -> list[np.ndarray]:
    """The model's outputs for ``x`` (called directly: no tf.function tracing as in predict)."""
    out = model(x, training=False)
    return [np.asarray(o) for o in out] if isinstance(out, list | tuple) else [np.asarray(out)]


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("name", SAVED)
def test_save_and_load_keep_weights_and_predictions(name: str, suffix: str, built: dict[str, Any],
                                                     tmp_path: Path) -> None:
    model = built[name]
    path = tmp_path / f"model{suffix}"
    assert kmagic.save(model, path) == path
    loaded = kmagic.load(path)
    assert_same_structure(loaded, model)
    for before, after in zip(model.get_weights(), loaded.get_weights(), strict=True):
        assert np.array_equal(before, after)
    x = sample_inputs(model)
    for before, after in zip(_predictions(model, x), _predictions(loaded, x), strict=True):
        assert np.allclose(before, after, atol=1e-6)
    if suffix == ".json":
        assert (tmp_path / "model.weights.h5").exists()


@pytest.mark.parametrize("suffix", FORMATS)
def test_load_keeps_the_compile_settings(suffix: str, tmp_path: Path) -> None:
    model = kmagic.build("input 6\ndense 3 softmax\ncompile sgd(lr=0.05) cce metrics=[accuracy]", seed=0)
    path = tmp_path / f"model{suffix}"
    kmagic.save(model, path)
    loaded = kmagic.load(path)
    assert type(loaded.optimizer).__name__ == "SGD"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.05)
    assert loaded.loss == "categorical_crossentropy"


def test_saving_h5_does_not_change_what_a_later_json_save_holds(tmp_path: Path) -> None:
    model = kmagic.build("input 6\ndense 3 softmax\ncompile sgd cce", seed=0)
    kmagic.save(model, tmp_path / "first.h5")
    kmagic.save(model, tmp_path / "then.json")
    assert type(kmagic.load(tmp_path / "then.json").optimizer).__name__ == "SGD"


def test_saved_model_keeps_registered_custom_layers(tmp_path: Path) -> None:
    k = keras()

    @k.saving.register_keras_serializable(package="kmagic_test_roundtrip")
    class Halve(k.layers.Layer):
        def call(self, x: Any) -> Any:
            return x * 0.5

    model = kmagic.build("input 4\ndense 3\nhalve", seed=0)
    for suffix in FORMATS:
        path = tmp_path / f"custom{suffix}"
        kmagic.save(model, path)
        loaded = kmagic.load(path)
        assert type(loaded.layers[-1]) is Halve
        x = sample_inputs(model)
        assert np.allclose(_predictions(model, x)[0], _predictions(loaded, x)[0])


@pytest.fixture(scope="module")
def lambda_model() -> Any:
    k = keras()
    return chain((4,), k.layers.Lambda(lambda x: x + 1), k.layers.Dense(2))


@pytest.mark.parametrize("suffix", FORMATS)
def test_loading_a_file_with_a_lambda_layer_is_refused(suffix: str, lambda_model: Any, tmp_path: Path) -> None:
    path = tmp_path / f"lambda{suffix}"
    with pytest.raises(kmagic.KmagicError, match="refusing to save.*Lambda"):
        kmagic.save(lambda_model, path)  # what load refuses is not written
    if suffix == ".json":
        path.write_text(lambda_model.to_json())
        lambda_model.save_weights(str(tmp_path / "lambda.weights.h5"))
    else:
        lambda_model.save(str(path))
    with pytest.raises(kmagic.KmagicError, match="Lambda"):
        kmagic.load(path)


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_truncated_file_is_refused(suffix: str, built: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / f"cut{suffix}"
    kmagic.save(built["multi_io"], path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(kmagic.KmagicError):
        kmagic.load(path)


def test_truncated_weights_beside_json_are_refused(built: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    kmagic.save(built["multi_io"], path)
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(kmagic.KmagicError):
        kmagic.load(path)


@pytest.mark.parametrize("actual, named", [(".h5", ".keras"), (".keras", ".h5"), (".keras", ".json"),
                                           (".json", ".h5"), (".json", ".keras")])
def test_a_file_in_another_format_than_its_name_is_refused(actual: str, named: str, built: dict[str, Any],
                                                           tmp_path: Path) -> None:
    source = tmp_path / f"real{actual}"
    kmagic.save(built["multi_io"], source)
    target = tmp_path / f"renamed{named}"
    target.write_bytes(source.read_bytes())
    with pytest.raises(kmagic.KmagicError):
        kmagic.load(target)


@pytest.mark.parametrize("name", ["notes.txt", "model.weights.h5", "missing.keras"])
def test_unknown_extension_weights_file_and_missing_file_are_refused(name: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "model.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(kmagic.KmagicError):
        kmagic.load(tmp_path / name)


def test_an_interrupted_save_leaves_the_old_file(built: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    kmagic.save(built["multi_io"], path)
    before = path.read_bytes()

    class Broken:
        def save(self, _path: str) -> None:
            raise OSError("disk full")

    with pytest.raises(kmagic.KmagicError):
        kmagic.save(Broken(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
