"""Saving and loading never lose or corrupt a file, and never run code from one."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import kmagic
from kmagic.errors import KmagicFileError

keras = pytest.importorskip("keras")

TEXT = "input 6\ndense 4 relu\ndense 2 softmax\ncompile adam scce"


@pytest.fixture(scope="module")
def model():
    return kmagic.build(TEXT, seed=0)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.slow  # trains or renders for seconds: not in make test-fast
@pytest.mark.parametrize("suffix", [".keras", ".h5", ".json"])
def test_interrupted_save_keeps_the_existing_file(model, tmp_path: Path, suffix: str, monkeypatch) -> None:
    path = tmp_path / f"m{suffix}"
    kmagic.save(model, path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(self, *args, **kwargs):
        Path(args[0]).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(type(model), "save", interrupted)
    monkeypatch.setattr(type(model), "save_weights", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kmagic.save(model, path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before, "no temporary file left behind and the old file untouched"
    monkeypatch.undo()
    restored = kmagic.load(path)
    x = np.linspace(0, 1, 12, dtype="float32").reshape(2, 6)
    assert np.allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))


def _lambda_model():
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda t: t * 2)(keras.layers.Dense(2)(inputs))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".json"])
def test_lambda_layers_are_refused_before_anything_runs(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lam{suffix}"
    model = _lambda_model()
    if suffix == ".json":
        path.write_text(model.to_json())
        model.save_weights(str(tmp_path / "lam.weights.h5"))
    else:
        model.save(str(path))
    with pytest.raises(KmagicFileError, match="refusing to load .*Lambda"):
        kmagic.load(path)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_truncated_files_get_a_clear_error(model, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"m{suffix}"
    kmagic.save(model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(KmagicFileError) as caught:
        kmagic.load(path)
    assert str(path) in str(caught.value)


def test_wrong_formats_and_missing_files(model, tmp_path: Path) -> None:
    wrong = tmp_path / "m.keras"
    wrong.write_text("not a zip")
    with pytest.raises(KmagicFileError, match="expected a .keras zip archive"):
        kmagic.load(wrong)
    json_path = tmp_path / "m.json"
    json_path.write_text("{not json")
    with pytest.raises(KmagicFileError, match="not valid JSON"):
        kmagic.load(json_path)
    json_path.write_text(model.to_json())
    with pytest.raises(KmagicFileError, match="weights file"):
        kmagic.load(json_path)
    with pytest.raises(KmagicFileError, match="does not exist"):
        kmagic.load(tmp_path / "absent.h5")
    with pytest.raises(KmagicFileError, match="expected a path ending in"):
        kmagic.save(model, tmp_path / "m.pkl")
    with pytest.raises(KmagicFileError, match="weights file"):
        kmagic.load(tmp_path / "m.weights.h5")


def test_unknown_custom_layers_get_a_clear_error(tmp_path: Path) -> None:
    @keras.saving.register_keras_serializable(package="kmagic_test_persist")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Doubler()(inputs))
    path = tmp_path / "custom.keras"
    kmagic.save(model, path)
    config = json.loads(model.to_json())
    assert "Doubler" in json.dumps(config)
    keras.saving.get_custom_objects().pop("kmagic_test_persist>Doubler")
    with pytest.raises(KmagicFileError, match="could not load"):
        kmagic.load(path)
    assert isinstance(kmagic.load(path, custom_objects={"kmagic_test_persist>Doubler": Doubler}), keras.Model)


def test_keras_deserialisation_failures_show_the_cause_not_the_config(tmp_path: Path) -> None:
    inputs = keras.Input((3,))
    config = json.loads(keras.Model(inputs, keras.layers.Dense(2)(inputs)).to_json())
    config["config"]["layers"][1]["config"]["units"] = "many"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save_weights(str(tmp_path / "bad.weights.h5"))
    with pytest.raises(KmagicFileError) as caught:
        kmagic.load(path)
    text = str(caught.value)
    assert "could not load" in text and "config=" not in text and len(text) < 600
