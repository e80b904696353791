"""Save and load models as ``.keras``, ``.h5`` or ``.json`` (+ ``.weights.h5``), atomically and safely."""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kmagic.errors import KmagicFileError
from kmagic.registry import CODE_LAYER_CLASSES

FORMATS = (".keras", ".h5", ".json")


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".weights.h5"):
        raise KmagicFileError(f"expected a model file (.keras, .h5 or .json), received a weights file '{path}': "
                              "load the .json beside it instead")
    for suffix in FORMATS:
        if name.endswith(suffix):
            return suffix
    raise KmagicFileError(f"expected a path ending in .keras, .h5 or .json, received '{path}'")


def weights_path(json_path: Path) -> Path:
    """Where the weights of a ``.json`` architecture file live."""
    return json_path.with_name(json_path.name[: -len(".json")] + ".weights.h5")


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Write to a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(handle)
    os.unlink(temp_name)
    temp = Path(temp_name)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


@contextmanager
def _quiet_legacy_notice() -> Iterator[None]:
    """The user chose .h5 on purpose: hide Keras's "HDF5 is legacy" log line."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)


@contextmanager
def _compile_config_kept(model: Any) -> Iterator[None]:
    """Keras's HDF5 writer pops the optimizer out of the model's compile config in place;
    put it back, so a later save of the same model still records its optimizer."""
    holder = getattr(model, "_compile_config", None)
    config = getattr(holder, "config", None)
    kept = copy.deepcopy(config) if isinstance(config, dict) else None
    try:
        yield
    finally:
        if kept is not None:
            holder.config = kept


def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` by extension: .keras (whole model), .h5 (HDF5), .json (+ .weights.h5 beside it).

    Each file is written to a temporary name and renamed into place, so an
    interrupted save never corrupts an existing file.
    """
    target = Path(path)
    kind = _format_of(target)
    try:
        if kind == ".json":
            with _atomic(weights_path(target)) as temp_weights:
                model.save_weights(str(temp_weights))
            with _atomic(target) as temp_json:
                temp_json.write_text(model.to_json(indent=2))
        else:
            with _atomic(target) as temp, _compile_config_kept(model), _quiet_legacy_notice():
                model.save(str(temp))
                if kind == ".h5":
                    _add_architecture(temp, model)
    except KmagicFileError:
        raise
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise KmagicFileError(f"could not save to '{target}': {exc}") from None
    return target


#: Keras's legacy HDF5 config cannot describe op layers (the mask of ``embedding ... mask``);
#: kmagic stores the current architecture JSON beside it in the same file.
_H5_ARCHITECTURE = "kmagic_model_json"


def _add_architecture(path: Path, model: Any) -> None:
    import h5py

    with h5py.File(path, "a") as handle:
        handle.attrs[_H5_ARCHITECTURE] = model.to_json()


def load(path: str | os.PathLike[str], custom_objects: dict[str, Any] | None = None) -> Any:
    """Load a model saved by :func:`save` (or Keras). Runs no code from the file.

    Lambda layers (Python code stored in the file) are refused before
    anything is deserialised.
    """
    from kmagic._keras import keras

    source = Path(path)
    kind = _format_of(source)
    if not source.exists():
        raise KmagicFileError(f"expected an existing file, received '{source}', which does not exist")
    k = keras()
    loaders: dict[str, Callable[[], Any]] = {
        ".keras": lambda: _load_keras(k, source, custom_objects),
        ".h5": lambda: _load_h5(k, source, custom_objects),
        ".json": lambda: _load_json(k, source, custom_objects),
    }
    try:
        with warnings.catch_warnings():
            # An untrained model's optimizer has no state to restore; Keras warns about the count.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return loaders[kind]()
    except KmagicFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure to read becomes one clear error
        raise KmagicFileError(f"could not load '{source}' as a {kind} model: {_reason(exc)}") from None


def _load_keras(k: Any, source: Path, custom_objects: dict[str, Any] | None) -> Any:
    if not zipfile.is_zipfile(source):
        raise KmagicFileError(f"expected a .keras zip archive, received '{source}', which is not one "
                              "(truncated, or another format renamed?)")
    with zipfile.ZipFile(source) as archive:
        try:
            config = json.loads(archive.read("config.json"))
        except (KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise KmagicFileError(f"expected a .keras archive with a config.json, received '{source}' "
                                  f"({exc})") from None
    _refuse_code(config, source)
    return k.saving.load_model(str(source), custom_objects=custom_objects, safe_mode=True, compile=True)


def _load_h5(k: Any, source: Path, custom_objects: dict[str, Any] | None) -> Any:
    import h5py

    try:
        with h5py.File(source, "r") as handle:
            raw = handle.attrs.get("model_config")
            architecture = handle.attrs.get(_H5_ARCHITECTURE)
    except OSError as exc:
        raise KmagicFileError(f"expected an HDF5 model file, received '{source}', which is not one ({exc})") from None
    if raw is None:
        raise KmagicFileError(f"expected an HDF5 file with a model in it, received '{source}', which has no "
                              "model_config (a weights-only file?)")
    config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    _refuse_code(config, source)
    if architecture is None:
        return k.saving.load_model(str(source), custom_objects=custom_objects, safe_mode=True, compile=True)
    current = json.loads(architecture.decode() if isinstance(architecture, bytes) else architecture)
    _refuse_code(current, source)
    model = k.models.model_from_json(json.dumps(current), custom_objects=custom_objects)
    model.load_weights(str(source))
    _compile_like(k, model, handle_path=source)
    return model


def _compile_like(k: Any, model: Any, handle_path: Path) -> None:
    """Compile a model rebuilt from HDF5 the way it was saved, when the file says how."""
    import h5py

    with h5py.File(handle_path, "r") as handle:
        raw = handle.attrs.get("training_config")
    if raw is None:
        return
    training = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    try:
        model.compile(optimizer=k.optimizers.deserialize(training["optimizer_config"]),
                      loss=training.get("loss"), metrics=_plain_metrics(training.get("metrics")))
    except Exception:  # noqa: BLE001 - an uncompilable training config leaves the model uncompiled
        return


def _plain_metrics(metrics: Any) -> Any:
    """Metric names only: object configs in old HDF5 files are dropped rather than half-restored."""
    if not isinstance(metrics, list):
        return None
    return [m for m in metrics if isinstance(m, str)] or None


def _load_json(k: Any, source: Path, custom_objects: dict[str, Any] | None) -> Any:
    try:
        config = json.loads(source.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KmagicFileError(f"expected a model architecture in JSON, received '{source}', which is not "
                              f"valid JSON ({exc})") from None
    _refuse_code(config, source)
    weights = weights_path(source)
    if not weights.exists():
        raise KmagicFileError(f"expected the weights file '{weights}' beside '{source}', received nothing there")
    model = k.models.model_from_json(json.dumps(config), custom_objects=custom_objects)
    model.load_weights(str(weights))
    return model


def _refuse_code(config: Any, source: Path) -> None:
    """Refuse files whose config holds Python code (Lambda layers and the like)."""
    for class_name in _class_names(config):
        if class_name in CODE_LAYER_CLASSES:
            raise KmagicFileError(f"refusing to load '{source}': it contains a {class_name} layer, whose Python "
                                  "code would run on loading; rebuild the model without it")


def _class_names(config: Any) -> Iterator[str]:
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class_name"), str):
                yield item["class_name"]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
