"""``kmagic.compile`` and ``%kcompile``: compile again with a body's compile words, keeping the weights.

The fine-tuning step: a frozen base, the head trained, the base unfrozen, then
a recompile with a lower learning rate, and training again moves the base.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import kmagic
from kmagic.errors import KmagicError, KmagicNameError, KmagicUsageError, KmagicValueError
from tests.conftest import outputs_of

BASE = "input 6\ndense 12 relu\ndense 8 relu"
HEAD = "input 6\n{base}\ndense 3 softmax\ncompile adam(lr=0.01) scce metrics=[accuracy]"


def _data(n: int = 48) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")


def _transfer() -> tuple[Any, Any, dict[str, Any]]:
    base = kmagic.build(BASE, name="base", seed=0)
    base.trainable = False
    namespace = {"base": base}
    return base, kmagic.build(HEAD, name="head", namespace=namespace, seed=0), namespace


def _values(variables: list[Any]) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables]


def _same(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_compile_keeps_weights_lowers_the_rate_and_keeps_what_the_words_leave_out() -> None:
    base, head, namespace = _transfer()
    x, y = _data()
    frozen = _values(base.weights)
    head.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _same(frozen, _values(base.weights))  # the head trained alone
    assert len(head.trainable_weights) == 2
    before = _values(head.weights)

    base.trainable = True
    assert kmagic.compile(head, "adam(lr=1e-5)", namespace=namespace) is head

    assert _same(before, _values(head.weights))  # weights kept
    assert float(head.optimizer.learning_rate) == pytest.approx(1e-5)
    assert head.loss == "sparse_categorical_crossentropy"
    assert head.get_compile_config()["metrics"] == ["accuracy"]
    assert len(head.trainable_weights) == 6  # the unfrozen base trains now
    history = head.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert "accuracy" in history.history
    assert not _same(frozen, _values(base.weights))  # fine-tuned


def test_compile_takes_a_whole_compile_line_or_a_list_of_words() -> None:
    _, head, namespace = _transfer()
    kmagic.compile(head, "compile sgd(lr=0.5) mse", namespace=namespace)
    assert type(head.optimizer).__name__ == "SGD" and float(head.optimizer.learning_rate) == pytest.approx(0.5)
    assert head.loss == "mean_squared_error"
    kmagic.compile(head, ["rmsprop(lr=0.001)", "scce", "metrics=[accuracy, auc]"])
    assert type(head.optimizer).__name__ == "RMSprop" and head.loss == "sparse_categorical_crossentropy"
    assert len(head.get_compile_config()["metrics"]) == 2


def test_an_optimizer_left_out_is_a_fresh_one_of_the_same_kind() -> None:
    _, head, namespace = _transfer()
    old = head.optimizer
    kmagic.compile(head, "loss=mse", namespace=namespace)
    assert head.optimizer is not old and type(head.optimizer) is type(old)
    assert float(head.optimizer.learning_rate) == pytest.approx(0.01)
    assert head.loss == "mean_squared_error"


def test_a_model_never_compiled_gets_the_body_defaults() -> None:
    model = kmagic.build("input 4\ndense 2", seed=0)
    assert not model.compiled
    kmagic.compile(model, "loss=mse")
    assert model.compiled and type(model.optimizer).__name__ == "Adam" and model.loss == "mean_squared_error"


def test_a_plain_keras_model_and_an_interpolated_optimizer() -> None:
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("adam", "mae")
    weights = _values(model.weights)
    optimizer = keras.optimizers.SGD(learning_rate=0.125)
    kmagic.compile(model, "{opt}", namespace={"opt": optimizer})
    assert model.optimizer is optimizer and model.loss == "mae"
    assert _same(weights, _values(model.weights))


def test_notebook_functions_in_the_last_compile() -> None:
    import keras

    def my_loss(y_true: Any, y_pred: Any) -> Any:
        return keras.ops.mean(keras.ops.abs(y_true - y_pred))

    def my_metric(y_true: Any, y_pred: Any) -> Any:
        return keras.ops.max(keras.ops.abs(y_true - y_pred))

    namespace = {"my_loss": my_loss, "my_metric": my_metric}
    model = kmagic.build("input 3\ndense 1\ncompile adam {my_loss}", namespace=namespace)
    kmagic.compile(model, "adam(lr=1e-4)")
    assert model.loss is my_loss  # Keras cannot rebuild it from its config: the same function is kept
    model = kmagic.build("input 3\ndense 1\ncompile adam mse metrics=[{my_metric}]", namespace=namespace)
    with pytest.raises(KmagicValueError, match="could not keep the metrics of the last compile") as caught:
        kmagic.compile(model, "adam(lr=1e-4)")
    assert "Give it in the compile words: metrics=..." in str(caught.value)
    kmagic.compile(model, "adam(lr=1e-4) metrics=[{my_metric}]", namespace=namespace)  # given: nothing to keep
    x = np.ones((4, 3), "float32")
    assert "my_metric" in model.fit(x, np.ones(4, "float32"), epochs=1, verbose=0).history


def test_mistakes_are_kmagic_errors_with_positions() -> None:
    _, head, namespace = _transfer()
    with pytest.raises(KmagicNameError, match="unknown optimizer 'adamm'") as caught:
        kmagic.compile(head, "adamm(lr=1e-5) scce", namespace=namespace)
    assert caught.value.column == len("compile ") + 1 and "Did you mean 'adam'" in str(caught.value)
    with pytest.raises(KmagicNameError, match="unknown compile setting 'metric'"):
        kmagic.compile(head, "adam metric=[accuracy]")
    with pytest.raises(KmagicUsageError, match="received nothing"):
        kmagic.compile(head, "  ")
    with pytest.raises(KmagicUsageError, match="one compile line"):
        kmagic.compile(head, "adam\ndense 3")
    with pytest.raises(KmagicValueError, match="expected a Keras model"):
        kmagic.compile("head", "adam")
    with pytest.raises(KmagicError, match="expected at most two values"):
        kmagic.compile(head, "adam scce mse")
    assert float(head.optimizer.learning_rate) == pytest.approx(0.01)  # a refused recompile changed nothing


def test_export_writes_the_new_compile() -> None:
    _, head, namespace = _transfer()
    kmagic.compile(head, "adam(lr=1e-5)", namespace=namespace)
    assert "model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-05), " \
           "loss='sparse_categorical_crossentropy', metrics=['accuracy'])" in kmagic.export(head)


def test_kmagic_compile_stays_callable_and_the_module_importable() -> None:
    import kmagic.compile as module

    assert module is kmagic.compile and callable(kmagic.compile)
    assert module.build_program is not None


def test_kmagic_compile_imports_no_tensorflow() -> None:
    code = "import sys, kmagic; kmagic.compile; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr


# ---------------------------------------------------------------- %kcompile in a real shell


def test_kcompile_magic_fine_tunes(shell) -> None:
    shell.run_cell(f"%%kmodel base --quiet\n{BASE}")
    shell.run_cell("base.trainable = False")
    shell.run_cell(f"%%kmodel head --quiet\n{HEAD}")
    x, y = _data()
    shell.user_ns.update(X=x, y=y)
    shell.run_line_magic("kfit", "head X y --epochs 1 --no-dashboard")
    head = shell.user_ns["head"]
    before = _values(head.weights)
    shell.run_cell("base.trainable = True")
    with capture_output() as captured:
        shell.run_line_magic("kcompile", "head adam(lr=1e-5) scce metrics=[accuracy]")
    assert "compiled head with optimizer Adam(learning_rate=1e-05), loss sparse_categorical_crossentropy; " \
           "weights kept" in captured.stdout
    assert _same(before, _values(head.weights))
    assert len(head.trainable_weights) == 6
    shell.run_line_magic("kfit", "head X y --epochs 1 --no-dashboard")
    assert len(shell.user_ns["head_history"].history["loss"]) == 1


def test_kcompile_magic_takes_expressions_and_reports_mistakes(shell) -> None:
    shell.run_cell("%%kmodel net --quiet\ninput 4\ndense 2\ncompile adam mse")
    shell.run_cell("import keras\nopt = keras.optimizers.SGD(0.25)\nmodels = {'n': net}")
    shell.run_line_magic("kcompile", "{models['n']} {opt}")
    assert shell.user_ns["net"].optimizer is shell.user_ns["opt"]
    with pytest.raises(KmagicUsageError, match="received nothing"):
        shell.run_cell("%kcompile")
    with pytest.raises(KmagicUsageError, match="compile words"):
        shell.run_cell("%kcompile net")
    with pytest.raises(KmagicNameError, match="not defined"):
        shell.run_cell("%kcompile nett adam")
    with pytest.raises(KmagicNameError, match="unknown loss 'msee'"):
        shell.run_cell("%kcompile net adam msee")
    assert "kcompile" in shell.magics_manager.magics["line"]
    assert "compile line" in shell.object_inspect_text("%kcompile")


@pytest.mark.slow
@pytest.mark.kernel
def test_kcompile_and_kexport_in_a_kernel(nb_run, tmp_path) -> None:
    target = tmp_path / "head_model.py"
    notebook = nb_run([
        "%load_ext kmagic",
        f"%%kmodel base --quiet\n{BASE}",
        "base.trainable = False",
        f"%%kmodel head --quiet\n{HEAD}",
        "import numpy as np\nX = np.random.default_rng(0).normal(size=(32, 6)).astype('float32')\n"
        "y = (X[:, 0] > 0).astype('int64')\n%kfit head X y --epochs 1 --no-dashboard",
        "base.trainable = True\n%kcompile head adam(lr=1e-5)",
        "%kfit head X y --epochs 1 --no-dashboard\n"
        "print(len(head.trainable_weights), round(float(head.optimizer.learning_rate), 8))",
        f"%kexport head --to {target}",
    ], allow_errors=False)
    assert "weights kept" in "".join(o["text"] for o in outputs_of(notebook.cells[5], "stream"))
    assert "6 1e-05" in "".join(o["text"] for o in outputs_of(notebook.cells[6], "stream"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, str(target)], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "def build_base():" in target.read_text() and "learning_rate=1e-05" in target.read_text()


_MIRRORED = """
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import kmagic

model = kmagic.build("input 4\\ndense 8 relu\\ndense 1 sigmoid\\ncompile adam bce metrics=[accuracy]",
                     strategy="mirrored", seed=0)
x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
model.fit(x, y, epochs=1, batch_size=8, verbose=0)
kmagic.compile(model, "adam(lr=1e-4) metrics=[accuracy, auc]")
history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
print("RESULT", model.distribute_strategy.num_replicas_in_sync, sorted(history.history))
"""


def test_compile_again_under_a_mirrored_strategy() -> None:
    """Optimizer and metrics made by the recompile live in the model's strategy (two logical CPUs)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RESULT 2 ['accuracy', 'auc', 'loss']" in run.stdout
