"""Save and load models as ``.keras``, ``.h5`` or ``.json`` (+ ``.weights.h5``), atomically and safely."""

from __future__ import annotations

import json
import logging
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kmagic import file_guard, json_pair, keras_internals
from kmagic.errors import KmagicFileError
from kmagic.json_pair import weights_path

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


__all__ = ["FORMATS", "load", "save", "weights_path"]


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


# ---------------------------------------------------------------------------------------------- saving
def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` by extension: .keras (whole model), .h5 (HDF5), .json (+ .weights.h5 beside it).

    What the file could not hold, or what :func:`load` would refuse, is refused
    before anything is written. Files go to temporary names and are renamed into
    place (the .json and its weights as one unit), so an interrupted save keeps
    the old model. A missing folder is created, and a line says so.
    """
    target = Path(path)
    kind = _format_of(target)
    config = _config_to_save(model, target)
    _check_target(target)
    if not target.parent.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KmagicFileError(f"could not save to '{target}': could not create its folder ({exc})") from None
        print(f"kmagic: created the folder {target.parent}")
    file_guard.remove_stale_temps(target.parent)
    try:
        if kind == ".json":
            json_pair.save_pair(target, config, lambda temp: _save_weights(model, temp))
        else:
            temp = file_guard.temp_name(target)
            try:
                with keras_internals.compile_config_kept(model), _quiet_legacy_notice():
                    model.save(str(temp))
                    if kind == ".h5":
                        _add_architecture(temp, model)
                os.replace(temp, target)
            finally:
                file_guard.release(temp)
    except KmagicFileError:
        raise
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise KmagicFileError(f"could not save to '{target}': {exc}") from None
    return target


def _config_to_save(model: Any, target: Path) -> dict[str, Any]:
    """The model's config as JSON data; refused here if JSON cannot hold it or load would refuse it."""
    from kmagic.safe_config import find_refusal

    try:
        config = json.loads(model.to_json())
    except (TypeError, ValueError, AttributeError, NotImplementedError) as exc:
        raise KmagicFileError(f"could not save to '{target}': the model's config cannot be written as JSON "
                              f"({_reason(exc)}); nothing was written") from None
    refusal = find_refusal(config)
    if refusal is not None and not refusal.missing:
        raise KmagicFileError(f"refusing to save to '{target}': {refusal.message()}, so loading the file would "
                              "be refused; nothing was written")
    return config


def _check_target(target: Path) -> None:
    if target.is_dir():
        raise KmagicFileError(f"expected a file path, received '{target}', which is a folder")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise KmagicFileError(f"could not save to '{target}': '{parent}' is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise KmagicFileError(f"could not save to '{target}': the folder '{parent}' is not writable")
            return


def _save_weights(model: Any, temp: Path) -> None:
    """Weights (and optimizer state, unless a failed fit left it half-built) to ``temp``."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and _broken_state(optimizer):
        keras_internals.save_weights_skipping(model, str(temp), [optimizer])
    else:
        model.save_weights(str(temp))


def _broken_state(optimizer: Any) -> bool:
    """True when an optimizer's variables do not hold values of their own shape (a fit that failed mid-build)."""
    try:
        for variable in getattr(optimizer, "variables", []):
            if tuple(variable.numpy().shape) != tuple(variable.shape):
                return True
    except Exception:  # noqa: BLE001 - unreadable state is broken state
        return True
    return False


#: Keras's legacy HDF5 config cannot describe op layers (the mask of ``embedding ... mask``);
#: kmagic stores the current architecture JSON beside it in the same file.
_H5_ARCHITECTURE = "kmagic_model_json"


def _add_architecture(path: Path, model: Any) -> None:
    import h5py

    with h5py.File(path, "a") as handle:
        handle.attrs[_H5_ARCHITECTURE] = model.to_json()


# ---------------------------------------------------------------------------------------------- loading
def load(path: str | os.PathLike[str], custom_objects: Mapping[str, Any] | None = None) -> Any:
    """Load a model saved by :func:`save` (or Keras). Runs no code from the file.

    Every class and function the config names is checked against an allow-list
    before Keras sees it (``kmagic.safe_config``), whatever Keras's global
    flags say, and Keras then runs in safe mode. Classes registered with
    ``keras.saving.register_keras_serializable`` load as they are; others are
    passed as ``custom_objects={"Name": Name}``. Only regular files are read,
    with bounded sizes. The result is always a model.
    """
    from kmagic._keras import keras

    source = Path(path)
    kind = _format_of(source)
    real = file_guard.regular_file(source)
    k = keras()
    custom = dict(custom_objects or {})
    loaders: dict[str, Callable[[], Any]] = {
        ".keras": lambda: _load_keras(k, real, source, custom),
        ".h5": lambda: _load_h5(k, real, source, custom),
        ".json": lambda: _load_json(k, real, source, custom),
    }
    try:
        with warnings.catch_warnings(), keras_internals.safe_mode_scope(), file_guard.private_tempdir():
            # An untrained model's optimizer has no state to restore; Keras warns about the count.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model = loaders[kind]()
    except KmagicFileError:
        raise
    except RecursionError:
        raise KmagicFileError(f"could not load '{source}': its config is nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - every failure to read becomes one clear error
        raise KmagicFileError(f"could not load '{source}' as a {kind} model: {_reason(exc)}") from None
    if not isinstance(model, k.Model):
        raise KmagicFileError(f"expected a model in '{source}', received a {type(model).__name__}")
    from kmagic import datafeed

    return datafeed.accept_everyday_data(model)  # predict/evaluate/fit take text and pandas, as after a build


def _parse_config(data: bytes | str, source: Path, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KmagicFileError(f"expected {what} in JSON, received '{source}', which is not valid JSON ({exc})") from None
    except RecursionError:
        raise KmagicFileError(f"expected {what} in JSON, received '{source}', which is nested too deeply") from None


def _checked(config: Any, source: Path, custom: dict[str, Any], *, model: bool = True) -> None:
    """Refuse a config with anything off the allow-list, or one that is not a model, before Keras reads it."""
    from kmagic._keras import keras
    from kmagic.safe_config import find_refusal, top_level_class

    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise KmagicFileError(f"expected a model config (a JSON object with a class_name) in '{source}', received "
                              f"{type(config).__name__ if not isinstance(config, dict) else 'an object without one'}")
    refusal = find_refusal(config, custom)
    if refusal is not None:
        lead = "could not load" if refusal.missing else "refusing to load"
        raise KmagicFileError(f"{lead} '{source}': {refusal.message()}")
    _alias_custom_objects(config, custom)
    _check_weight_size(config, source)
    if model:
        cls = top_level_class(config, custom)
        k = keras()
        if isinstance(cls, type) and not issubclass(cls, k.Model):
            raise KmagicFileError(f"expected a model in '{source}', received a single {config['class_name']} "
                                  "(not a model): wrap it in a model, e.g. keras.Sequential([layer]), and save that")


def _check_weight_size(config: Any, source: Path) -> None:
    """Refuse a config whose weights would need more memory than allowed, before Keras allocates them."""
    from kmagic.limits import estimate_weight_bytes, max_weight_bytes, readable_bytes

    needed, limit = estimate_weight_bytes(config), max_weight_bytes()
    if needed > limit:
        raise KmagicFileError(f"refusing to load '{source}': its weights need at least {readable_bytes(needed)} "
                              f"({needed // 4:,} parameters), more than the limit of {readable_bytes(limit)} "
                              "(%config KMagic.max_weight_bytes)")


def _alias_custom_objects(config: Any, custom: dict[str, Any]) -> None:
    """``custom_objects={"Scale": Scale}`` also answers to the registered name the file uses ("pkg>Scale")."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            name, registered = item.get("class_name"), item.get("registered_name")
            if isinstance(name, str) and isinstance(registered, str) and name in custom and registered not in custom:
                custom[registered] = custom[name]
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))


def _load_keras(k: Any, real: Path, source: Path, custom: dict[str, Any]) -> Any:
    if not zipfile.is_zipfile(real):
        raise KmagicFileError(f"expected a .keras zip archive, received '{source}', which is not one "
                              "(truncated, or another format renamed?)")
    try:
        with zipfile.ZipFile(real) as archive:
            file_guard.check_archive(archive, source)
            data = file_guard.read_member(archive, "config.json", source)
    except KeyError:
        raise KmagicFileError(f"expected a .keras archive with a config.json, received '{source}'") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise KmagicFileError(f"expected a readable .keras archive, received '{source}' ({exc})") from None
    config = _parse_config(data, source, "a .keras config.json")
    _checked(config, source, custom)
    return k.saving.load_model(str(real), custom_objects=custom, safe_mode=True, compile=True)


def _h5_attribute(handle: Any, name: str, source: Path) -> Any:
    """A JSON attribute of an HDF5 file, its size checked before it is read."""
    if name not in handle.attrs:
        return None
    size = handle.attrs.get_id(name).get_storage_size()
    if size > file_guard.MAX_CONFIG_BYTES:
        raise KmagicFileError(f"expected a model config of at most {file_guard.MAX_CONFIG_BYTES:,} bytes in "
                              f"'{source}', received an attribute '{name}' of {size:,} bytes")
    raw = handle.attrs[name]
    return _parse_config(raw.decode() if isinstance(raw, bytes) else str(raw), source, f"the '{name}' attribute")


def _load_h5(k: Any, real: Path, source: Path, custom: dict[str, Any]) -> Any:
    import h5py

    try:
        with h5py.File(real, "r") as handle:
            config = _h5_attribute(handle, "model_config", source)
            architecture = _h5_attribute(handle, _H5_ARCHITECTURE, source)
            training = _h5_attribute(handle, "training_config", source)
    except OSError as exc:
        raise KmagicFileError(f"expected an HDF5 model file, received '{source}', which is not one ({exc})") from None
    if config is None:
        raise KmagicFileError(f"expected an HDF5 file with a model in it, received '{source}', which has no "
                              "model_config (a weights-only file?)")
    _checked(config, source, custom)
    if training is not None:
        _checked_training(training, source, custom)
    if architecture is None:
        return k.saving.load_model(str(real), custom_objects=custom, safe_mode=True, compile=True)
    _checked(architecture, source, custom)
    model = k.models.model_from_json(json.dumps(architecture), custom_objects=custom)
    model.load_weights(str(real))
    _compile_like(k, model, training)
    return model


def _checked_training(training: Any, source: Path, custom: dict[str, Any]) -> None:
    from kmagic.safe_config import find_refusal

    refusal = find_refusal(training, custom)
    if refusal is not None:
        lead = "could not load" if refusal.missing else "refusing to load"
        raise KmagicFileError(f"{lead} '{source}': in its training config, {refusal.message()}")


def _compile_like(k: Any, model: Any, training: Any) -> None:
    """Compile a model rebuilt from HDF5 the way it was saved, when the file says how."""
    if not isinstance(training, dict):
        return
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


def _load_json(k: Any, real: Path, source: Path, custom: dict[str, Any]) -> Any:
    config = _parse_config(file_guard.read_bounded(real), source, "a model architecture")
    _checked(config, source, custom)
    weights = json_pair.find_weights(source, config)
    if isinstance(config, dict):
        config.pop(json_pair.PAIR_KEY, None)
    model = k.models.model_from_json(json.dumps(config), custom_objects=custom)
    try:
        model.load_weights(str(weights))
    except ValueError as exc:
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None or "optimizer" not in str(exc).lower():
            raise
        # The optimizer's saved state does not fit (a fit that failed half-way): keep the weights, not the state.
        keras_internals.load_weights_skipping(model, str(weights), [optimizer])
    return model


def _reason(exc: BaseException) -> str:
    """The first line of Keras's message, and the next one when the first only announces it ("...:")."""
    text = str(exc)
    if "Exception encountered:" in text:  # Keras's "could not be deserialized properly ... config=...": the cause
        text = text.rsplit("Exception encountered:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    text = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return text if len(text) <= 400 else text[:397] + "..."
