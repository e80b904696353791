"""Block forms, names, inputs/outputs and training settings of docs/language.md §4-§6 against hand-written Keras.

Structural cases compare layer classes, parameter count, every layer's output
shape and config with a Keras functional model written by hand; ``compile``
and ``fit`` cases check the optimizer, losses, metrics and stored fit
defaults the model ends up with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kmagic
from kmagic.buildinfo import info_of
from kmagic.dsl.check import parse_block
from tests.kmodel_cases import PROGRAMS, assert_same_model, hand_programs, keras

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def k() -> Any:
    return keras()


@pytest.fixture(scope="module")
def L(k: Any) -> Any:  # noqa: N802 - reads like keras.layers in the hand-written models
    return k.layers


# ---------------------------------------------------------------------------- repeat


@pytest.mark.parametrize("text", [
    "input 8x8x3\nrepeat 3:\n    conv 4 3 same relu\n    bn\ngap",
    "input 8x8x3\nrepeat 3: conv 4 3 same relu | bn\ngap",
], ids=["indented", "inline"])
def test_repeat(text: str, k: Any, L: Any) -> None:
    inputs = k.Input((8, 8, 3))
    x = inputs
    for _ in range(3):
        x = L.BatchNormalization()(L.Conv2D(4, 3, padding="same", activation="relu")(x))
    hand = k.Model(inputs, L.GlobalAveragePooling2D()(x))
    assert_same_model(kmagic.build(text), hand)


def test_nested_repeat(k: Any, L: Any) -> None:
    built = kmagic.build("input 8\nrepeat 2:\n    repeat 3: dense 4 relu\n    dropout 0.1")
    inputs = k.Input((8,))
    x = inputs
    for _ in range(2):
        for _ in range(3):
            x = L.Dense(4, activation="relu")(x)
        x = L.Dropout(0.1)(x)
    assert_same_model(built, k.Model(inputs, x))


def test_names_inside_repeat_are_scoped_per_round(k: Any, L: Any) -> None:
    built = kmagic.build("input 6\nrepeat 2:\n    dense 6 relu as h\n    dense 6\n    add @h")
    inputs = k.Input((6,))
    x = inputs
    for _ in range(2):
        h = L.Dense(6, activation="relu")(x)
        x = L.Add()([L.Dense(6)(h), h])
    assert_same_model(built, k.Model(inputs, x))


# ---------------------------------------------------------------------------- residual


def test_residual_worked_example() -> None:
    built = kmagic.build(PROGRAMS["residual_32"])
    assert built.count_params() == 5258
    assert_same_model(built, hand_programs()["residual_32"]())


def test_residual_on_dense(k: Any, L: Any) -> None:
    built = kmagic.build("input 16\nresidual:\n    dense 16 relu\n    dense 16")
    inputs = k.Input((16,))
    y = L.Dense(16)(L.Dense(16, activation="relu")(inputs))
    assert_same_model(built, k.Model(inputs, L.Add()([inputs, y])))


def test_residual_project_conv_shortcut(k: Any, L: Any) -> None:
    built = kmagic.build("input 8x8x3\nconv 4 3 same\nresidual project:\n    conv 8 3 same strides=2\n"
                         "    conv 8 3 same\ngap")
    inputs = k.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same")(inputs)
    y = L.Conv2D(8, 3, padding="same")(L.Conv2D(8, 3, padding="same", strides=2)(x))
    shortcut = L.Conv2D(8, 1, strides=(2, 2), padding="same")(x)
    hand = k.Model(inputs, L.GlobalAveragePooling2D()(L.Add()([shortcut, y])))
    assert_same_model(built, hand)


def test_residual_project_dense_shortcut(k: Any, L: Any) -> None:
    built = kmagic.build("input 16\nresidual project:\n    dense 8 relu\ndense 2")
    inputs = k.Input((16,))
    y = L.Dense(8, activation="relu")(inputs)
    shortcut = L.Dense(8)(inputs)
    hand = k.Model(inputs, L.Dense(2)(L.Add()([shortcut, y])))
    assert_same_model(built, hand)


def test_residual_project_keeps_an_identity_shortcut_when_shapes_match(k: Any, L: Any) -> None:
    built = kmagic.build("input 16\nresidual project:\n    dense 16 relu")
    inputs = k.Input((16,))
    assert_same_model(built, k.Model(inputs, L.Add()([inputs, L.Dense(16, activation="relu")(inputs)])))


def test_residual_with_changed_shape_and_no_project_is_an_error() -> None:
    with pytest.raises(kmagic.KmagicError, match="residual project"):
        kmagic.build("input 16\nresidual:\n    dense 8")


def test_residual_named_with_as(k: Any, L: Any) -> None:
    built = kmagic.build("input 6\nresidual as r:\n    dense 6 relu\ndense 6\nadd @r")
    inputs = k.Input((6,))
    r = L.Add()([inputs, L.Dense(6, activation="relu")(inputs)])
    assert_same_model(built, k.Model(inputs, L.Add()([L.Dense(6)(r), r])))
    assert type(built.get_layer("r")).__name__ == "Add"


def test_repeat_and_branch_named_with_as(k: Any, L: Any) -> None:
    built = kmagic.build("input 6\nrepeat 2 as deep: dense 6 relu\nconcat as both:\n    branch as left: dense 2\n"
                         "    branch: dense 3\nadd @deep @deep\nconcat @left @both")
    inputs = k.Input((6,))
    deep = L.Dense(6, activation="relu")(L.Dense(6, activation="relu")(inputs))
    left = L.Dense(2)(deep)
    both = L.Concatenate()([left, L.Dense(3)(deep)])
    L.Add()([deep, deep])  # read by nothing after: not part of the model
    assert_same_model(built, k.Model(inputs, L.Concatenate()([left, both])))


# ---------------------------------------------------------------------------- merge blocks


MERGE_BLOCKS = {"concat": "Concatenate", "add": "Add", "multiply": "Multiply", "average": "Average",
                "maximum": "Maximum"}


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@pytest.mark.parametrize("word", sorted(MERGE_BLOCKS))
def test_merge_block_with_branches(word: str, k: Any, L: Any) -> None:
    built = kmagic.build(f"input 8x8x3\n{word}:\n    branch: conv 4 1 relu\n    branch:\n"
                         "        conv 4 1 relu\n        conv 4 3 same\n    branch: maxpool 3 strides=1 same | conv 4 1\n"
                         "gap")
    inputs = k.Input((8, 8, 3))
    a = L.Conv2D(4, 1, activation="relu")(inputs)
    b = L.Conv2D(4, 3, padding="same")(L.Conv2D(4, 1, activation="relu")(inputs))
    c = L.Conv2D(4, 1)(L.MaxPooling2D(3, strides=1, padding="same")(inputs))
    merged = getattr(L, MERGE_BLOCKS[word])()([a, b, c])
    assert_same_model(built, k.Model(inputs, L.GlobalAveragePooling2D()(merged)))


def test_inception_program() -> None:
    built = kmagic.build(PROGRAMS["inception"])
    assert built.layers[-3].__class__.__name__ == "Concatenate"
    assert tuple(built.layers[-3].output.shape) == (None, 8, 8, 12)


def test_concat_block_with_axis_and_empty_branch(k: Any, L: Any) -> None:
    """A branch can pass its input on unchanged (``branch: identity``-style, via a no-op layer)."""
    built = kmagic.build("input 5x3\nconcat axis=1:\n    branch: dense 3\n    branch: dropout 0.1")
    inputs = k.Input((5, 3))
    merged = L.Concatenate(axis=1)([L.Dense(3)(inputs), L.Dropout(0.1)(inputs)])
    assert_same_model(built, k.Model(inputs, merged))


# ---------------------------------------------------------------------------- user blocks


DOWN = "block down(f, k=3):\n    conv f k same relu\n    bn\n    maxpool 2\n"


def _down(L: Any, x: Any, f: int, k: int = 3) -> Any:
    x = L.Conv2D(f, k, padding="same", activation="relu")(x)
    return L.MaxPooling2D(2)(L.BatchNormalization()(x))


@pytest.mark.parametrize("uses", [
    "down 4\ndown 8 k=1",
    "down 4 3\ndown 8 1",
    "down f=4\ndown k=1 f=8",
], ids=["positional-then-keyword", "all-positional", "all-keywords"])
def test_block_with_parameters(uses: str, k: Any, L: Any) -> None:
    built = kmagic.build(DOWN + "input 8x8x3\n" + uses)
    inputs = k.Input((8, 8, 3))
    assert_same_model(built, k.Model(inputs, _down(L, _down(L, inputs, 4), 8, k=1)))


def test_block_defined_after_its_use_and_without_parameters(k: Any, L: Any) -> None:
    built = kmagic.build("input 8x8x3\nhead\nblock head:\n    gap\n    dense 10 softmax")
    inputs = k.Input((8, 8, 3))
    hand = k.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(inputs)))
    assert_same_model(built, hand)


def test_nested_blocks(k: Any, L: Any) -> None:
    built = kmagic.build("block unit(f):\n    conv f 3 same relu\n    bn\n"
                         "block stage(f, pool=2):\n    unit f\n    unit f\n    maxpool pool\n"
                         "input 8x8x3\nstage 4\nstage 8 pool=1")
    inputs = k.Input((8, 8, 3))
    x = inputs
    for filters, pool in ((4, 2), (8, 1)):
        for _ in range(2):
            x = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", activation="relu")(x))
        x = L.MaxPooling2D(pool)(x)
    assert_same_model(built, k.Model(inputs, x))


def test_block_output_named_with_as(k: Any, L: Any) -> None:
    built = kmagic.build("block mlp(n):\n    dense n relu\n    dense n\ninput 6\nmlp 6 as m\ndense 6\nadd @m")
    inputs = k.Input((6,))
    m = L.Dense(6)(L.Dense(6, activation="relu")(inputs))
    assert_same_model(built, k.Model(inputs, L.Add()([L.Dense(6)(m), m])))


def test_block_parameter_inside_a_tuple_and_keyword(k: Any, L: Any) -> None:
    built = kmagic.build("block c(f, s):\n    conv f (s, 1) strides=s\ninput 8x8x3\nc 4 2")
    inputs = k.Input((8, 8, 3))
    assert_same_model(built, k.Model(inputs, L.Conv2D(4, (2, 1), strides=2)(inputs)))


def test_kblock_style_definition_passed_with_blocks(k: Any, L: Any) -> None:
    down = parse_block("down(f, k=3)", "conv f k same relu\nbn\nmaxpool 2")
    twice = parse_block("twice(f)", "down f\ndown f k=1", blocks={"down": down})
    built = kmagic.build("input 8x8x3\ntwice 4", blocks={"down": down, "twice": twice})
    inputs = k.Input((8, 8, 3))
    assert_same_model(built, k.Model(inputs, _down(L, _down(L, inputs, 4), 4, k=1)))


def test_kblock_definition_is_not_changed_by_a_build() -> None:
    down = parse_block("down(f)", "dense f")
    blocks = {"down": down}
    kmagic.build("input 4\ndown 3", blocks=blocks)
    assert blocks == {"down": down}
    assert kmagic.build("input 4\ndown 5", blocks=blocks).count_params() == 25


# ---------------------------------------------------------------------------- names, cursor, inputs, outputs


def test_references_cursor_and_layer_names(k: Any, L: Any) -> None:
    built = kmagic.build("input 8 as x\ndense 6 relu as first\ndense 4 as second\n@first\ndense 4 as third\n"
                         "add @second @third as total")
    x = k.Input((8,))
    first = L.Dense(6, activation="relu")(x)
    hand = k.Model(x, L.Add()([L.Dense(4)(first), L.Dense(4)(first)]))
    assert_same_model(built, hand)
    for name in ("x", "first", "second", "third", "total"):
        assert built.get_layer(name).name == name
    assert type(built.get_layer("total")).__name__ == "Add"


def test_several_inputs_and_outputs() -> None:
    built = kmagic.build(PROGRAMS["multi_io"])
    hand = hand_programs()["multi_io"]()
    assert_same_model(built, hand)
    assert built.output_names == ["out", "aux"]
    assert [tuple(t.shape) for t in built.inputs] == [(None, 8), (None, 4)]


def test_output_line_picks_and_orders_outputs(k: Any, L: Any) -> None:
    built = kmagic.build("input 4\ndense 3 as a\ndense 2 as b\ndense 1\noutput @b @a")
    x = k.Input((4,))
    a = L.Dense(3)(x)
    b = L.Dense(2)(a)
    L.Dense(1)(b)  # not an output: not in the model
    assert [tuple(t.shape) for t in built.outputs] == [(None, 2), (None, 3)]
    assert_same_model(built, k.Model(x, [b, a]))


@pytest.mark.parametrize("shape", ["8x8x3", (8, 8, 3), [8, 8, 3]], ids=["text", "tuple", "list"])
def test_input_shape_option_when_the_body_has_no_input(shape: Any, k: Any, L: Any) -> None:
    built = kmagic.build("conv 4 3 relu\ngap\ndense 2", input_shape=shape)
    inputs = k.Input((8, 8, 3))
    hand = k.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(L.Conv2D(4, 3, activation="relu")(inputs))))
    assert_same_model(built, hand)


def test_input_shape_option_as_one_number(k: Any, L: Any) -> None:
    built = kmagic.build("dense 4", input_shape=12)
    inputs = k.Input((12,))
    assert_same_model(built, k.Model(inputs, L.Dense(4)(inputs)))


def test_no_input_and_no_option_is_an_error() -> None:
    with pytest.raises(kmagic.KmagicError, match="input"):
        kmagic.build("dense 4")


# ---------------------------------------------------------------------------- compile


def _compiled(settings: str, head: str = "input 8\ndense 4 softmax") -> Any:
    return kmagic.build(f"{head}\n{settings}")


@pytest.mark.parametrize("word, cls, extra", [
    ("sgd", "SGD", {"momentum": 0.0}),
    ("momentum", "SGD", {"momentum": 0.9}),
    ("rmsprop", "RMSprop", {}),
    ("adagrad", "Adagrad", {}),
    ("adadelta", "Adadelta", {}),
    ("adam", "Adam", {}),
    ("adamw", "AdamW", {}),
    ("adamax", "Adamax", {}),
    ("nadam", "Nadam", {}),
    ("lion", "Lion", {}),
    ("ftrl", "Ftrl", {}),
])
def test_optimizer_words(word: str, cls: str, extra: dict[str, float], k: Any) -> None:
    model = _compiled(f"compile {word} mse")
    assert type(model.optimizer).__name__ == cls
    assert isinstance(model.optimizer, getattr(k.optimizers, cls))
    for key, value in extra.items():
        assert float(getattr(model.optimizer, key)) == pytest.approx(value)


@pytest.mark.parametrize("settings", [
    "compile adam(lr=0.01) cce",
    "compile adam(learning_rate=0.01) loss=cce",
    "compile optimizer=adam(lr=0.01) loss=categorical_crossentropy",
    "compile adam(0.01) cce",
], ids=["positional-lr", "mixed", "keywords", "positional-learning-rate"])
def test_compile_forms(settings: str) -> None:
    model = _compiled(settings)
    assert type(model.optimizer).__name__ == "Adam"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert model.loss == "categorical_crossentropy"


def test_compile_without_optimizer_uses_adam() -> None:
    model = _compiled("compile loss=mse")
    assert type(model.optimizer).__name__ == "Adam"
    assert model.loss == "mean_squared_error"


LOSS_WORDS = {
    "mse": "mean_squared_error", "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error", "huber": "huber", "logcosh": "log_cosh",
    "bce": "binary_crossentropy", "cce": "categorical_crossentropy",
    "scce": "sparse_categorical_crossentropy", "kld": "kl_divergence", "kl_divergence": "kl_divergence",
    "cosine": "cosine_similarity", "hinge": "hinge", "squared_hinge": "squared_hinge", "poisson": "poisson",
    "categorical_hinge": "categorical_hinge", "binary_focal_crossentropy": "binary_focal_crossentropy",
}


@pytest.mark.parametrize("word", sorted(LOSS_WORDS))
def test_loss_words(word: str, k: Any) -> None:
    model = _compiled(f"compile adam {word}")
    assert model.loss == LOSS_WORDS[word]
    assert callable(k.losses.get(model.loss))


def test_loss_call_builds_a_loss_object(k: Any) -> None:
    model = _compiled("compile adam huber(delta=2.0)")
    assert isinstance(model.loss, k.losses.Huber)
    # an error of 1.5 is inside delta=2 (quadratic: 0.5 * 1.5**2), outside the default delta=1 (1.0)
    assert float(model.loss(np.array([[0.0]]), np.array([[1.5]]))) == pytest.approx(1.125)


def test_dict_losses_for_several_outputs() -> None:
    model = kmagic.build(PROGRAMS["multi_io"].replace(
        "compile adam loss=dict(out=cce, aux=bce) metrics=dict(out=[accuracy], aux=[auc])",
        "compile adam loss=dict(out=cce, aux=bce) loss_weights=dict(out=1.0, aux=0.5)"))
    assert model.loss == {"out": "categorical_crossentropy", "aux": "binary_crossentropy"}
    assert model.get_compile_config()["loss_weights"] == {"out": 1.0, "aux": 0.5}


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_dict_losses_train_on_several_outputs() -> None:
    model = kmagic.build(PROGRAMS["multi_io"], seed=0)
    rng = np.random.default_rng(0)
    x = [rng.random((16, 8), dtype="float32"), rng.random((16, 4), dtype="float32")]
    y = {"out": np.eye(3, dtype="float32")[rng.integers(0, 3, 16)], "aux": rng.integers(0, 2, (16, 1))}
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert {"loss", "out_loss", "aux_loss", "out_accuracy"} <= set(history.history)
    assert any(key.startswith("aux_auc") for key in history.history)


METRIC_WORDS = {
    "accuracy": "accuracy", "acc": "accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1Score",
    "auc": "AUC", "iou(num_classes=3)": "MeanIoU", "rmse": "RootMeanSquaredError", "mae": "MeanAbsoluteError",
    "mse": "MeanSquaredError", "top_k(k=5)": "TopKCategoricalAccuracy",
}


def _metric_kind(entry: Any) -> str:
    return entry if isinstance(entry, str) else entry["class_name"]


@pytest.mark.parametrize("word", sorted(METRIC_WORDS))
def test_metric_words(word: str) -> None:
    model = _compiled(f"compile adam mse metrics=[{word}]")
    (entry,) = model.get_compile_config()["metrics"]
    assert _metric_kind(entry) == METRIC_WORDS[word]


def test_metric_arguments_reach_keras() -> None:
    model = _compiled("compile adam mse metrics=[iou(num_classes=3), top_k(k=2), auc(curve='PR')]")
    iou, top_k, auc = model.get_compile_config()["metrics"]
    assert iou["config"]["num_classes"] == 3
    assert top_k["config"]["k"] == 2
    assert auc["config"]["curve"] == "PR"


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_compiled_metrics_train(k: Any) -> None:
    model = kmagic.build("input 6\ndense 4 softmax\ncompile adam cce metrics=[acc, f1, auc, top_k(k=2), precision]",
                         seed=0)
    rng = np.random.default_rng(1)
    x, y = rng.random((12, 6), dtype="float32"), np.eye(4, dtype="float32")[rng.integers(0, 4, 12)]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    for name in ("accuracy", "f1_score", "auc", "top_k_categorical_accuracy", "precision"):
        assert any(key == name or key.startswith(name + "_") for key in logs), (name, sorted(logs))


# ---------------------------------------------------------------------------- fit


def test_fit_defaults_and_callback_words(tmp_path: Path, k: Any) -> None:
    checkpoint, log = tmp_path / "best.keras", tmp_path / "log.csv"
    model = _compiled(f"fit epochs=3 batch_size=4 validation_split=0.25 shuffle=false "
                      f"callbacks=[early_stopping(patience=3), reduce_lr(factor=0.5), checkpoint('{checkpoint}'), "
                      f"csv_log('{log}'), terminate_on_nan]")
    defaults = info_of(model).fit_defaults
    assert {key: defaults[key] for key in ("epochs", "batch_size", "validation_split", "shuffle")} == {
        "epochs": 3, "batch_size": 4, "validation_split": 0.25, "shuffle": False}
    stop, reduce, save, csv, nan = defaults["callbacks"]
    assert isinstance(stop, k.callbacks.EarlyStopping) and stop.patience == 3
    assert isinstance(reduce, k.callbacks.ReduceLROnPlateau) and reduce.factor == 0.5
    assert isinstance(save, k.callbacks.ModelCheckpoint) and save.filepath == str(checkpoint)
    assert isinstance(csv, k.callbacks.CSVLogger) and csv.filename == str(log)
    assert isinstance(nan, k.callbacks.TerminateOnNaN)


def test_fit_callbacks_monitor_positional(k: Any) -> None:
    model = _compiled("fit callbacks=[early_stopping('loss', patience=1)]")
    (stop,) = info_of(model).fit_defaults["callbacks"]
    assert stop.monitor == "loss" and stop.patience == 1


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
def test_fit_defaults_run_with_keras_fit(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    model = kmagic.build(f"input 4\ndense 2 softmax\ncompile adam scce\nfit epochs=2 batch_size=4 "
                         f"callbacks=[csv_log('{log}'), terminate_on_nan]", seed=0)
    rng = np.random.default_rng(2)
    history = model.fit(rng.random((8, 4), dtype="float32"), rng.integers(0, 2, 8), verbose=0,
                        **info_of(model).fit_defaults)
    assert len(history.history["loss"]) == 2
    assert len(log.read_text().splitlines()) == 3


def test_model_without_fit_has_no_defaults() -> None:
    assert info_of(_compiled("compile adam mse")).fit_defaults == {}


# ---------------------------------------------------------------------------- seed


def test_seed_makes_builds_reproducible() -> None:
    text = "input 8x8x3\nconv 4 3 relu\ngap\ndense 3\nbn"
    first, again, other = (kmagic.build(text, seed=seed) for seed in (0, 0, 1))
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), again.get_weights(), strict=True))
    assert not np.array_equal(first.get_weights()[0], other.get_weights()[0])
    assert not np.array_equal(first.get_weights()[2], other.get_weights()[2])


def test_seed_must_be_a_non_negative_integer() -> None:
    for seed in (-1, 1.5, "0"):
        with pytest.raises(kmagic.KmagicError, match="seed"):
            kmagic.build("input 2\ndense 1", seed=seed)


# ---------------------------------------------------------------------------- known defects


def test_references_on_a_merge_block_header_are_not_ignored() -> None:
    with pytest.raises(kmagic.KmagicError):
        kmagic.build("input 6\nconcat @nowhere:\n    branch: dense 2\n    branch: dense 3")


def test_origin_text_keeps_a_trailing_call() -> None:
    model = kmagic.build("input 8\ndense 4 kernel_regularizer=l2(1e-4)")
    texts = [origin.text for origin in info_of(model).origins.values()]
    assert "dense 4 kernel_regularizer=l2(1e-4)" in texts
