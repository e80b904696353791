"""``%kexport`` / ``kmagic.export`` of models that use notebook objects: code that runs, or a refusal by name.

Every file written here is run on its own with ``python FILE`` in a
subprocess: a written file never fails with NameError.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from IPython.utils.capture import capture_output

import kmagic
from kmagic.errors import KmagicFileError, KmagicValueError
from kmagic.exporting import free_names

_RUN = ("import runpy, sys; m = runpy.run_path(sys.argv[1])['model']; "
        "print(m.count_params(), sum(int(np.prod(w.shape)) for w in m.trainable_weights), m.compiled)")


def _run_file(path: Path, extra_path: Path | None = None) -> list[str]:
    """``python`` on the written file (in a fresh process): parameters, trainable parameters, compiled."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (extra_path,) if p is not None)
    plain = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, env=env,
                           cwd=path.parent)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "Total params" in plain.stdout  # run as __main__ it prints the summary
    counted = subprocess.run([sys.executable, "-c", "import numpy as np; " + _RUN, str(path)], capture_output=True,
                             text=True, timeout=300, env=env, cwd=path.parent)
    assert counted.returncode == 0, counted.stderr[-2000:]
    return counted.stdout.split()[-3:]


def _counts(model) -> list[str]:
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return [str(model.count_params()), str(trainable), str(model.compiled)]


@pytest.fixture
def helper_module(tmp_path, monkeypatch):
    """An importable module of the user's own (a .py file beside the notebook) with a layer and a function."""
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "mylayers.py").write_text(textwrap.dedent("""
        import keras


        class Scale(keras.layers.Layer):
            def __init__(self, factor=2.0, **kwargs):
                super().__init__(**kwargs)
                self.factor = factor

            def call(self, x):
                return x * self.factor

            def get_config(self):
                return {**super().get_config(), "factor": self.factor}


        def swish2(x):
            return x * keras.ops.sigmoid(2 * x)
    """))
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("mylayers", None)


def test_a_frozen_base_model_is_rebuilt_and_the_file_runs(shell, tmp_path) -> None:
    shell.run_cell("%%kmodel base --quiet\ninput 8\ndense 16 relu\ndense 8 relu")
    shell.run_cell("base.trainable = False")
    shell.run_cell("%%kmodel tl --quiet\ninput 8\n{base}\ndense 3 softmax\ncompile adam scce metrics=[accuracy]")
    target = tmp_path / "tl_model.py"
    with capture_output() as captured:
        shell.run_line_magic("kexport", f"tl --to {target}")
    assert f"wrote {target}" in captured.stdout
    source = target.read_text()
    assert "def build_base():" in source and "base = build_base()" in source and "base.trainable = False" in source
    assert "x = base(inputs)" in source
    assert _run_file(target) == _counts(shell.user_ns["tl"])


def test_imports_for_what_can_be_imported(shell, tmp_path, helper_module) -> None:
    shell.run_cell("import mylayers\nfrom mylayers import Scale\nimport keras\n"
                   "extra = keras.layers.Dense(5, activation='tanh')\nopt = keras.optimizers.SGD(learning_rate=0.05)")
    shell.run_cell("%%kmodel net --quiet\ninput 4\n{Scale} 3\n{mylayers.Scale}\ndense 6 activation={mylayers.swish2}\n"
                   "{extra}\ndense 2\ncompile {opt} mse")
    source = kmagic.export(shell.user_ns["net"], tmp_path / "net_model.py")
    assert "from mylayers import Scale" in source and "import mylayers" in source
    assert "extra = keras.saving.deserialize_keras_object({" in source
    assert "opt = keras.saving.deserialize_keras_object({" in source
    assert not free_names(source) - {"np"}  # nothing left undefined
    assert _run_file(tmp_path / "net_model.py", helper_module) == _counts(shell.user_ns["net"])


def test_a_class_reached_through_a_module_is_imported(tmp_path) -> None:
    model = kmagic.build("input 4\ndense 2 dtype={np.float32}", namespace={"np": np})
    source = kmagic.export(model)
    assert "from numpy import float32" in source and "dtype=float32" in source
    exec(compile(source, "<export>", "exec"), {})  # noqa: S102 - the code under test


def test_a_class_defined_in_the_notebook_is_refused_by_name(shell, tmp_path) -> None:
    shell.run_cell(textwrap.dedent("""
        import keras
        class Doubler(keras.layers.Layer):
            def call(self, x):
                return x * 2
        def my_init(shape, dtype=None):
            return keras.ops.ones(shape, dtype=dtype)
        table = np.zeros(3)
    """).replace("table = np.zeros(3)", "import numpy as np\ntable = np.zeros(3)"))
    shell.run_cell("%%kmodel net --quiet\ninput 4\n{Doubler}\ndense 3 kernel_initializer={my_init}\n"
                   "dense 2 bias_initializer={keras.initializers.Constant(table[0])}")
    target = tmp_path / "net_model.py"
    with pytest.raises(KmagicValueError) as caught:
        shell.run_line_magic("kexport", f"net --to {target}")
    message = str(caught.value)
    assert "Doubler (a class defined in the notebook)" in message
    assert "my_init (a function defined in the notebook)" in message and "table (a ndarray value)" in message
    assert "Move classes and functions into a .py module" in message
    assert not target.exists()  # nothing written
    with pytest.raises(KmagicValueError, match="Doubler"):
        shell.run_line_magic("kexport", "net")


def test_keras_objects_with_array_configs_are_rebuilt_and_other_values_refused(tmp_path) -> None:
    import keras

    weights = np.full((4, 2), 0.5, "float32")
    model = kmagic.build("input 4\ndense 2 kernel_initializer={init}",
                         namespace={"init": keras.initializers.Constant(weights)})
    assert "init = keras.saving.deserialize_keras_object({" in kmagic.export(model, tmp_path / "m.py")
    rate = np.float32(0.25)  # a number computed with numpy is not a Python literal
    model = kmagic.build("input 4\ndropout {rate}\ndense 2", namespace={"rate": rate})
    with pytest.raises(KmagicValueError, match=r"rate \(a float32 value\)"):
        kmagic.export(model)


class _Subclassed:
    """Made a keras.Model subclass on first use (Keras is imported lazily)."""

    @staticmethod
    def make():
        import keras

        class Twice(keras.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.dense = keras.layers.Dense(3)

            def call(self, x):
                return self.dense(x) * 2

        model = Twice(name="twice")
        model(np.zeros((1, 4), "float32"))
        return model


def test_a_keras_model_used_as_a_layer_that_kmodel_cannot_write_is_refused(tmp_path) -> None:
    twice = _Subclassed.make()
    outer = kmagic.build("input 4\n{twice}\ndense 1", namespace={"twice": twice})
    with pytest.raises(KmagicValueError, match=r"twice \(a Keras model kmagic cannot write as code: .*subclassed"):
        kmagic.export(outer, tmp_path / "outer.py")
    assert not (tmp_path / "outer.py").exists()


def test_export_of_text_with_a_namespace_and_of_a_plain_keras_base(tmp_path) -> None:
    import keras

    base = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="relu")], name="plain_base")
    base.trainable = False
    text = "input 5\n{base}\ndense 2 softmax\ncompile adam scce"
    target = tmp_path / "from_text.py"
    source = kmagic.export(text, str(target), namespace={"base": base})
    assert target.read_text() == source and "def build_base():" in source
    model = kmagic.build(text, namespace={"base": base})
    assert _run_file(target) == _counts(model)


def test_export_mistakes(tmp_path) -> None:
    with pytest.raises(KmagicValueError, match="expected a Keras model or kmodel text"):
        kmagic.export(42)
    model = kmagic.build("input 3\ndense 1")
    with pytest.raises(KmagicFileError, match="missing folder"):
        kmagic.export(model, tmp_path / "no" / "such" / "m.py")


def test_free_names() -> None:
    source = "import keras\ndef f():\n    return g(1)\nh = lambda x: tf.sin(x) + x\nclass A:\n    y = q\nz = f()\n"
    assert free_names(source) == {"g", "tf", "q"}
