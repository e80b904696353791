"""Model files: saves that keep the old model (a .json pair as one unit, SIGKILL included), bounded reads of
regular files only, temp files and extraction folders removed, custom objects, single layers, f1 models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kmagic
from kmagic import file_guard
from kmagic.errors import KmagicFileError

keras = pytest.importorskip("keras")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _constant_model(units: int, value: float) -> Any:
    """A model whose every weight is ``value``: a loaded pair is consistent when units and values agree."""
    model = kmagic.build(f"input 3\ndense {units}\ncompile adam mse", seed=0)
    for weight in model.weights:
        weight.assign(np.full(weight.shape, value, dtype="float32"))
    return model


def _identity(model: Any) -> tuple[int, float]:
    """(units, the single value all weights hold); fails when the weights are mixed."""
    values = np.concatenate([np.ravel(w) for w in model.get_weights()])
    assert np.all(values == values[0]), "weights from two different saves"
    return int(model.output_shape[-1]), float(values[0])


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------------- point 5: the .json pair
def test_point5_a_value_json_cannot_hold_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "m.json"
    kmagic.save(_constant_model(2, 1.0), path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    model = _constant_model(2, 2.0)
    original = type(model.layers[-1]).get_config

    def with_fraction(layer: Any) -> dict[str, Any]:
        return {**original(layer), "ratio": Fraction(1, 3)}

    with monkeypatch.context() as patch:
        patch.setattr(type(model.layers[-1]), "get_config", with_fraction)
        with pytest.raises(KmagicFileError, match="cannot be written as JSON.*nothing was written"):
            kmagic.save(model, path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert _identity(kmagic.load(path)) == (2, 1.0)


def test_point5_a_save_cut_between_the_two_renames_still_loads_the_old_pair(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "m.json"
    kmagic.save(_constant_model(2, 1.0), path)
    real_replace = os.replace
    calls: list[str] = []

    def cut_after_weights(src: Any, dst: Any) -> None:
        calls.append(str(dst))
        if str(dst) == str(path):
            raise KeyboardInterrupt  # the JSON rename never happens: new weights beside the old JSON
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cut_after_weights)
    with pytest.raises(KeyboardInterrupt):
        kmagic.save(_constant_model(3, 2.0), path)
    monkeypatch.undo()
    assert str(tmp_path / "m.weights.h5") in calls, "the weights were switched first"
    assert _identity(kmagic.load(path)) == (2, 1.0)
    kmagic.save(_constant_model(3, 3.0), path)
    assert _identity(kmagic.load(path)) == (3, 3.0)
    assert _hidden(tmp_path) == [], "kept copies and temp files removed by the next save"


_KILLER = """
import os, signal, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, kmagic
path, mode, point = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = kmagic.build("input 3\\ndense 3\\ncompile adam mse", seed=0)
for w in model.weights:
    w.assign(np.full(w.shape, 2.0, dtype="float32"))
real, count = os.replace, [0]
def replace(src, dst):
    count[0] += 1
    if count[0] == point:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
if mode == "loop":
    print("ready", flush=True)
    value = 2.0
    while True:
        value += 1
        for w in model.weights:
            w.assign(np.full(w.shape, value, dtype="float32"))
        kmagic.save(model, path)
kmagic.save(model, path)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_killer(path: Path, mode: str, point: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-c", _KILLER, str(path), mode, str(point)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


@pytest.mark.parametrize("point", [1, 2, 3, 4], ids=["keeping-old", "before-weights", "before-json", "after-json"])
def test_point5_sigkill_at_each_step_of_a_json_save_leaves_a_loadable_pair(tmp_path: Path, point: int) -> None:
    path = tmp_path / "m.json"
    kmagic.save(_constant_model(2, 1.0), path)
    process = _run_killer(path, "once", point)
    assert process.wait(timeout=300) == -signal.SIGKILL
    assert _identity(kmagic.load(path)) in ((2, 1.0), (3, 2.0))
    kmagic.save(_constant_model(2, 5.0), path)
    assert _identity(kmagic.load(path)) == (2, 5.0)
    assert _hidden(tmp_path) == []


@pytest.mark.slow
def test_point5_sigkill_at_random_moments_of_repeated_json_saves(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    kmagic.save(_constant_model(2, 1.0), path)
    rng = np.random.default_rng(0)
    for _ in range(3):
        process = _run_killer(path, "loop", 0)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.5, 2.0)))
        process.kill()
        process.wait(timeout=60)
        units, value = _identity(kmagic.load(path))
        assert (units, value) == (2, 1.0) or units == 3


# ---------------------------------------------------------------------------------- point 7: temp files
def test_point7_a_killed_keras_save_leaves_a_temp_file_that_the_next_save_removes(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    process = _run_killer(path, "once", 1)  # killed just before the temp file is renamed into place
    assert process.wait(timeout=300) == -signal.SIGKILL
    left = _hidden(tmp_path)
    assert len(left) == 1 and ".kmagic-" in left[0] and left[0].endswith(".tmp.keras")
    (tmp_path / ".m.9tqdtf_l.tmp.keras").write_bytes(b"from an older kmagic")
    (tmp_path / ".notes.txt").write_text("the user's own hidden file")
    kmagic.save(_constant_model(2, 1.0), path)
    assert _hidden(tmp_path) == [".notes.txt"]


def test_point7_a_running_saves_temp_file_is_not_removed(tmp_path: Path) -> None:
    live = file_guard.temp_name(tmp_path / "other.keras")
    live.write_bytes(b"being written")
    try:
        kmagic.save(_constant_model(2, 1.0), tmp_path / "m.keras")
        assert live.exists()
    finally:
        file_guard.release(live)


def _string_lookup_model(words: list[str], units: int) -> Any:
    inputs = keras.Input((1,), dtype="string")
    ids = keras.layers.StringLookup(vocabulary=words)(inputs)
    return keras.Model(inputs, keras.layers.Dense(units)(keras.layers.CategoryEncoding(len(words) + 1)(ids)))


def test_point7_extraction_folders_are_removed_after_a_failed_load(tmp_path: Path) -> None:
    good, other = tmp_path / "good.keras", tmp_path / "other.keras"
    _string_lookup_model([f"w{i}" for i in range(50)], 2).save(str(good))
    _string_lookup_model([f"w{i}" for i in range(9)], 4).save(str(other))
    mixed = tmp_path / "mixed.keras"
    with zipfile.ZipFile(good) as first, zipfile.ZipFile(other) as second, zipfile.ZipFile(mixed, "w") as out:
        for name in first.namelist():
            out.writestr(name, (second if name == "model.weights.h5" else first).read(name))
    temp_root = Path(tempfile.gettempdir())
    before = set(temp_root.iterdir())
    with pytest.raises(KmagicFileError):
        kmagic.load(mixed)
    assert isinstance(kmagic.load(good), keras.Model)
    assert set(temp_root.iterdir()) == before, "no extracted archive left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.keras", "mixed.keras", "other.keras"]


# ---------------------------------------------------------------------------------- points 8, 9: resources
def test_point8_a_zip_bomb_config_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    kmagic.save(_constant_model(2, 1.0), path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != "config.json"}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("config.json", "w", force_zip64=True) as handle:
            chunk = b" " * (1 << 20)
            for _ in range(300):  # 300 MiB of spaces, about 300 KB on disk
                handle.write(chunk)
        for name, data in members.items():
            archive.writestr(name, data)
    assert path.stat().st_size < 2_000_000
    started = time.perf_counter()
    with pytest.raises(KmagicFileError, match="zip bomb|at most"):
        kmagic.load(path)
    assert time.perf_counter() - started < 5


def test_point8_too_many_members_and_an_oversized_config_are_refused(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "many.keras"
    kmagic.save(_constant_model(2, 1.0), path)
    monkeypatch.setattr(file_guard, "MAX_ZIP_MEMBERS", 3)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("assets/extra.txt", "x")
    with pytest.raises(KmagicFileError, match="at most 3 members"):
        kmagic.load(path)
    monkeypatch.setattr(file_guard, "MAX_CONFIG_BYTES", 100)
    json_path = tmp_path / "m.json"
    kmagic.save(_constant_model(2, 1.0), json_path)
    with pytest.raises(KmagicFileError, match="at most 100 bytes"):
        kmagic.load(json_path)


def _load_in_thread(path: Path) -> BaseException | None:
    """Load in a thread; fail the test if it has not finished in 30 s (a blocked or endless read)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            kmagic.load(path)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), f"loading {path.name} did not return"
    return outcome[0]


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".json"])
def test_point9_a_link_to_dev_zero_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"m{suffix}"
    path.symlink_to("/dev/zero")
    error = _load_in_thread(path)
    assert isinstance(error, KmagicFileError) and "character device" in str(error)


def test_point9_weights_beside_a_json_that_link_to_dev_zero_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    kmagic.save(_constant_model(2, 1.0), path)
    (tmp_path / "m.weights.h5").unlink()
    (tmp_path / "m.weights.h5").symlink_to("/dev/zero")
    error = _load_in_thread(path)
    assert isinstance(error, KmagicFileError) and "character device" in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("suffix", [".keras", ".h5", ".json"])
def test_point9_a_fifo_is_refused_without_blocking(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"m{suffix}"
    os.mkfifo(path)
    error = _load_in_thread(path)
    assert isinstance(error, KmagicFileError) and "FIFO" in str(error)


def test_point9_a_link_to_a_regular_file_still_loads(tmp_path: Path) -> None:
    target = tmp_path / "real.keras"
    kmagic.save(_constant_model(2, 1.0), target)
    (tmp_path / "link.keras").symlink_to(target)
    assert _identity(kmagic.load(tmp_path / "link.keras")) == (2, 1.0)


# ---------------------------------------------------------------------------------- point 14: single layers
@pytest.mark.parametrize("suffix", [".json", ".keras"])
def test_point14_a_single_layer_config_is_refused_not_returned(tmp_path: Path, suffix: str) -> None:
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    text = json.dumps(keras.saving.serialize_keras_object(layer))
    path = tmp_path / f"layer{suffix}"
    if suffix == ".json":
        path.write_text(text)
        layer_model = keras.Sequential([keras.Input((3,)), layer])
        layer_model.save_weights(str(tmp_path / "layer.weights.h5"))
    else:
        kmagic.save(_constant_model(2, 1.0), path)
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        members["config.json"] = text.encode()
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    with pytest.raises(KmagicFileError, match="expected a model .* received a single Dense"):
        kmagic.load(path)


# ---------------------------------------------------------------------------------- issue 12, point 6: custom objects
def test_custom_objects_registered_class_loads_with_no_argument(tmp_path: Path) -> None:
    @keras.saving.register_keras_serializable(package="kmagic_test_files")
    class Scale(keras.layers.Layer):
        def call(self, x):
            return x * 3

    try:
        inputs = keras.Input((2,))
        model = keras.Model(inputs, Scale()(inputs))
        for suffix in (".keras", ".json", ".h5"):
            kmagic.save(model, tmp_path / f"m{suffix}")
            loaded = kmagic.load(tmp_path / f"m{suffix}")
            assert np.allclose(loaded.predict(np.ones((1, 2), "float32"), verbose=0), 3)
    finally:
        keras.saving.get_custom_objects().pop("kmagic_test_files>Scale")


class Halve(keras.layers.Layer):
    """A class defined in a notebook: not registered."""

    def call(self, x):
        return x / 2


def test_custom_objects_notebook_class_through_the_argument_and_missing_class_named(tmp_path: Path) -> None:
    inputs = keras.Input((2,))
    model = keras.Model(inputs, Halve()(inputs))
    for suffix in (".keras", ".json"):
        path = tmp_path / f"m{suffix}"
        kmagic.save(model, path)
        with pytest.raises(KmagicFileError) as caught:
            kmagic.load(path)
        assert "could not load" in str(caught.value) and "Halve" in str(caught.value)
        assert "custom_objects={'Halve': Halve}" in str(caught.value)
        loaded = kmagic.load(path, custom_objects={"Halve": Halve})
        assert np.allclose(loaded.predict(np.ones((1, 2), "float32"), verbose=0), 0.5)


def test_kload_custom_objects_option(shell, tmp_path: Path) -> None:
    inputs = keras.Input((2,))
    shell.user_ns.update(model=keras.Model(inputs, Halve()(inputs)), Halve=Halve, folder=str(tmp_path))
    shell.run_line_magic("ksave", "model {folder}/h.keras")
    with pytest.raises(KmagicFileError, match="Halve"):
        shell.run_cell(f"%kload back {tmp_path}/h.keras")
    shell.run_cell(f"%kload back {tmp_path}/h.keras --custom-objects {{{{'Halve': Halve}}}}")
    assert isinstance(shell.user_ns["back"], keras.Model)
    with pytest.raises(kmagic.KmagicError, match="expected --custom-objects to be a dict"):
        shell.run_cell(f"%kload again {tmp_path}/h.keras --custom-objects {{[Halve]}}")


# ---------------------------------------------------------------------------------- issue 12, point 7 and f1
def test_f1_model_after_a_failed_fit_saves_and_loads_as_json(tmp_path: Path) -> None:
    model = kmagic.build("input 4\ndense 1 sigmoid\ncompile adam bce metrics=[f1]", seed=0)
    x = np.random.default_rng(0).random((16, 4), dtype="float32")
    with pytest.raises(Exception):  # noqa: B017 - Keras's FBetaScore refuses 1-D labels mid-fit
        # Keras's own fit: the one kmagic puts on its models would shape the labels for f1
        type(model).fit(model, x, (x[:, 0] > 0.5).astype("float32"), epochs=1, verbose=0)
    path = tmp_path / "f1b.json"
    kmagic.save(model, path)
    loaded = kmagic.load(path)
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.fit(x, (x[:, :1] > 0.5).astype("float32"), epochs=1, verbose=0)


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".json"])
def test_saving_a_trained_model_prints_no_optimizer_warning(tmp_path: Path, suffix: str, capfd) -> None:
    model = kmagic.build("input 4\ndense 2 softmax\ncompile adam scce", seed=0)
    x = np.random.default_rng(0).random((16, 4), dtype="float32")
    model.fit(x, (x[:, 0] > 0.5).astype("int32"), epochs=1, verbose=0)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kmagic.save(model, tmp_path / f"m{suffix}")
    assert not [w for w in caught if "optimizer" in str(w.message)]
    assert "Skipping variable loading" not in "".join(capfd.readouterr())
    loaded = kmagic.load(tmp_path / f"m{suffix}")
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_saving_to_a_missing_folder_creates_it_and_says_so(tmp_path: Path, capsys) -> None:
    path = tmp_path / "no" / "such" / "dir" / "m.json"
    kmagic.save(_constant_model(2, 1.0), path)
    assert f"created the folder {path.parent}" in capsys.readouterr().out
    assert _identity(kmagic.load(path)) == (2, 1.0)


def test_json_save_refuses_what_its_load_would_refuse(tmp_path: Path) -> None:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(keras.ops.negative)(inputs))
    with pytest.raises(KmagicFileError, match="refusing to save .*Lambda.*nothing was written"):
        kmagic.save(model, tmp_path / "no" / "m.json")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- point 10, for loaded configs
def test_a_loaded_config_whose_weights_are_too_large_is_refused_before_allocating(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    from kmagic import limits

    monkeypatch.setattr(limits, "_max_weight_bytes", 10**9)
    path = tmp_path / "big.json"
    kmagic.save(_constant_model(2, 1.0), path)
    config = json.loads(path.read_text())
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["units"] = 150_000_000
    path.write_text(json.dumps(config))
    assert len(path.read_bytes()) < 10_000
    with pytest.raises(KmagicFileError, match=r"need at least 2\.4 GB \(600,000,000 parameters\), more than the "
                                              r"limit of 1\.0 GB \(%config KMagic.max_weight_bytes\)"):
        kmagic.load(path)


@pytest.mark.slow
@pytest.mark.kernel
def test_custom_objects_in_real_kernels_same_and_fresh(nb_run, tmp_path: Path) -> None:
    from conftest import outputs_of

    define = ("import keras\nimport numpy as np\n"
              "@keras.saving.register_keras_serializable(package='nb')\n"
              "class Triple(keras.layers.Layer):\n    def call(self, x):\n        return x * 3\n"
              "class Scale(keras.layers.Layer):\n    def call(self, x):\n        return x * 2\n")
    first = nb_run(["%load_ext kmagic", define,
                    "reg = keras.Sequential([keras.Input((2,)), Triple()])\n"
                    "nb = keras.Sequential([keras.Input((2,)), Scale()])",
                    f"%ksave reg {tmp_path}/reg.keras\n%ksave nb {tmp_path}/nb.json",
                    f"%kload nb2 {tmp_path}/nb.json --custom-objects {{{{'Scale': Scale}}}}\n"
                    "print(nb2.predict(np.ones((1, 2)), verbose=0).tolist())",
                    ], allow_errors=False)
    assert "[[2.0, 2.0]]" in outputs_of(first.cells[4], "stream")[-1]["text"]
    fresh = nb_run(["%load_ext kmagic", define,
                    f"%kload reg {tmp_path}/reg.keras\nprint(type(reg).__name__)",
                    f"%kload nb {tmp_path}/nb.json",
                    f"%kload nb {tmp_path}/nb.json --custom-objects {{{{'Scale': Scale}}}}\nprint('loaded', nb.name)"])
    assert "Sequential" in outputs_of(fresh.cells[2], "stream")[-1]["text"]
    (error,) = outputs_of(fresh.cells[3], "error")
    assert error["ename"] == "KmagicFileError" and "'Scale'" in error["evalue"]
    assert "custom_objects={'Scale': Scale}" in error["evalue"]
    assert "loaded" in outputs_of(fresh.cells[4], "stream")[-1]["text"]
