"""A ``.json`` architecture and its ``.weights.h5`` replaced as one unit, and read back as a matching pair.

Both files carry the same random token (``kmagic_pair``: a top-level JSON key,
an attribute of the weights file). A save writes both to temporary names,
keeps the old weights under a hidden name made from the old token, then
renames the weights and the JSON into place and removes the kept copy. A save
killed between the two renames leaves the old JSON beside the new weights; a
load sees the tokens differ and reads the kept copy, whose token matches.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kmagic.errors import KmagicFileError
from kmagic.file_guard import read_bounded, regular_file, release, temp_name

PAIR_KEY = "kmagic_pair"
_NO_TOKEN = "none"


def weights_path(json_path: Path) -> Path:
    """Where the weights of a ``.json`` architecture file live."""
    return json_path.with_name(json_path.name[: -len(".json")] + ".weights.h5")


def _kept_path(json_path: Path, token: str) -> Path:
    weights = weights_path(json_path)
    return weights.with_name(f".{weights.name}.kmagic-prev-{token}.weights.h5")


def _kept_copies(json_path: Path) -> list[Path]:
    weights = weights_path(json_path)
    return sorted(weights.parent.glob(f".{weights.name}.kmagic-prev-*.weights.h5"))


def json_token(config: Any) -> str:
    token = config.get(PAIR_KEY) if isinstance(config, dict) else None
    return token if isinstance(token, str) and token.isalnum() else _NO_TOKEN


def weights_token(path: Path) -> str | None:
    """The token stored in a weights file, "none" for a file without one, None for an unreadable file."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            value = handle.attrs.get(PAIR_KEY)
    except (OSError, ValueError):
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value if isinstance(value, str) else _NO_TOKEN


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _current_token(json_path: Path) -> str | None:
    try:
        return json_token(json.loads(read_bounded(regular_file(json_path))))
    except (KmagicFileError, OSError, ValueError, RecursionError):
        return None


def save_pair(json_path: Path, config: dict[str, Any], write_weights: Callable[[Path], None]) -> None:
    """Write ``config`` to ``json_path`` and the weights beside it, replacing an old pair as one unit."""
    import h5py

    token = secrets.token_hex(8)
    text = json.dumps({**config, PAIR_KEY: token}, indent=2)
    weights = weights_path(json_path)
    temp_weights, temp_json = temp_name(weights), temp_name(json_path)
    try:
        write_weights(temp_weights)
        with h5py.File(temp_weights, "a") as handle:
            handle.attrs[PAIR_KEY] = token
        _fsync(temp_weights)
        temp_json.write_text(text, encoding="utf-8")
        _fsync(temp_json)
        _keep_old_weights(json_path)
        os.replace(temp_weights, weights)
        os.replace(temp_json, json_path)
        _fsync(json_path.parent)
    finally:
        release(temp_weights)
        release(temp_json)
    for kept in _kept_copies(json_path):
        with contextlib.suppress(OSError):
            kept.unlink()


def _keep_old_weights(json_path: Path) -> None:
    """Keep the weights the current JSON names under a hidden name until the new pair is in place."""
    old = _current_token(json_path)
    weights = weights_path(json_path)
    if old is None or not weights.is_file():
        return
    kept = _kept_path(json_path, old)
    if weights_token(weights) != old:
        return  # an earlier save was cut between its renames: the kept copy (if any) is the right one
    temp = temp_name(kept)
    try:
        try:
            os.link(weights, temp)
        except OSError:
            import shutil

            shutil.copyfile(weights, temp)
        os.replace(temp, kept)
    finally:
        release(temp)


def find_weights(json_path: Path, config: Any) -> Path:
    """The weights file that belongs to this JSON: beside it, or the copy kept by a save that was cut short."""
    token = json_token(config)
    weights = weights_path(json_path)
    present = weights.exists() or weights.is_symlink()
    found = weights_token(regular_file(weights, "a weights file")) if present else None
    if present and found == token:
        return weights
    kept = _kept_path(json_path, token)
    if kept.is_file():
        return regular_file(kept, "a weights file")
    if present and found in (_NO_TOKEN, None):
        return weights  # written by something else (plain Keras): use it as it is
    if present:
        raise KmagicFileError(f"expected the weights saved with '{json_path}' in '{weights}', received weights "
                              "from another save (the two files do not belong together); save the model again")
    raise KmagicFileError(f"expected the weights file '{weights}' beside '{json_path}', received nothing there")
