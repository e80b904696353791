"""Bounded, regular-file-only reads of model files, private extraction folders, and kmagic's temp names."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from kmagic.errors import KmagicFileError

#: Largest model config (config.json, the .json file, an HDF5 config attribute) kmagic reads.
MAX_CONFIG_BYTES = 64 * 1024 * 1024
#: Most members a .keras archive may hold (Keras writes 3 plus one per asset file).
MAX_ZIP_MEMBERS = 10_000
#: A member larger than this must not expand more than MAX_ZIP_RATIO times its stored size.
ZIP_RATIO_FLOOR_BYTES = 1024 * 1024
MAX_ZIP_RATIO = 100

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def regular_file(path: Path, what: str = "a model file") -> Path:
    """``path`` with links resolved, refused unless it is a regular file (never opened otherwise)."""
    real = Path(os.path.realpath(path))
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise KmagicFileError(f"expected an existing file, received '{path}', which does not exist") from None
    except OSError as exc:
        raise KmagicFileError(f"expected {what} that can be read, received '{path}' ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        shown = f"'{path}'" if real == Path(path).absolute() else f"'{path}' (a link to '{real}')"
        raise KmagicFileError(f"expected {what} (a regular file), received {shown}, which is {_kind(info.st_mode)}")
    return real


def read_bounded(path: Path, limit: int | None = None, what: str = "a model config") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; opened without blocking, checked after opening."""
    limit = MAX_CONFIG_BYTES if limit is None else limit
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KmagicFileError(f"expected {what} in a regular file, received '{path}', which is "
                                  f"{_kind(info.st_mode)}")
        if info.st_size > limit:
            raise KmagicFileError(f"expected {what} of at most {limit:,} bytes, received '{path}' of "
                                  f"{info.st_size:,} bytes")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise KmagicFileError(f"expected {what} of at most {limit:,} bytes, received '{path}', which grew past it")
    return data


def check_archive(archive: zipfile.ZipFile, source: Path) -> None:
    """Refuse archives with too many members or members that inflate like a zip bomb (before reading any)."""
    members = archive.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise KmagicFileError(f"expected a .keras archive of at most {MAX_ZIP_MEMBERS:,} members, received "
                              f"'{source}' with {len(members):,}")
    for info in members:
        if info.file_size > ZIP_RATIO_FLOOR_BYTES and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise KmagicFileError(f"refusing to load '{source}': its member '{info.filename}' would inflate from "
                                  f"{info.compress_size:,} to {info.file_size:,} bytes (more than {MAX_ZIP_RATIO}x; "
                                  "a zip bomb?)")


def read_member(archive: zipfile.ZipFile, name: str, source: Path, limit: int | None = None) -> bytes:
    """One archive member, refused above ``limit`` bytes before and while reading."""
    limit = MAX_CONFIG_BYTES if limit is None else limit
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise KmagicFileError(f"expected a {name} of at most {limit:,} bytes in '{source}', received one of "
                              f"{info.file_size:,} bytes")
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise KmagicFileError(f"expected a {name} of at most {limit:,} bytes in '{source}', received more")
    return data


_TEMPDIR_LOCK = threading.RLock()


@contextmanager
def private_tempdir() -> Iterator[Path]:
    """Point ``tempfile`` at a fresh folder while Keras loads, and always remove it (and what Keras extracted)."""
    folder = Path(tempfile.mkdtemp(prefix="kmagic-load-"))
    with _TEMPDIR_LOCK:
        previous = tempfile.tempdir
        tempfile.tempdir = str(folder)
        try:
            yield folder
        finally:
            tempfile.tempdir = previous
            shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- temporary names beside the target
_SUFFIXES = r"(?:\.keras|\.h5|\.json|\.weights\.h5)"
#: ``.NAME.kmagic-PID-RANDOM.tmp.SUFFIX``: a file being written by process PID.
_TEMP = re.compile(rf"^\..+\.kmagic-(\d+)-[a-z0-9_]+\.tmp{_SUFFIXES}$")
#: Names of older kmagic versions (``.m.9tqdtf_l.tmp.keras``): always stale.
_OLD_TEMP = re.compile(rf"^\..+\.[a-z0-9_]{{8}}\.tmp{_SUFFIXES}$")
_ACTIVE: set[str] = set()


def temp_name(target: Path) -> Path:
    """A fresh temporary path beside ``target``, named so that a later save can tell it is stale."""
    suffix = ".weights.h5" if target.name.endswith(".weights.h5") else target.suffix
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.kmagic-{os.getpid()}-", suffix=f".tmp{suffix}",
                                    dir=target.parent)
    os.close(handle)
    os.unlink(name)
    _ACTIVE.add(os.path.abspath(name))
    return Path(name)


def release(temp: Path) -> None:
    """Forget (and remove, if still there) a temporary file of :func:`temp_name`."""
    _ACTIVE.discard(os.path.abspath(temp))
    with suppress(FileNotFoundError):
        temp.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove kmagic's temporary files left in ``folder`` by a save that was killed; return them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        stale = (match is not None and not _alive(int(match.group(1)))) or (
            match is None and _OLD_TEMP.match(entry.name) is not None)
        if match is not None and int(match.group(1)) == os.getpid() and os.path.abspath(entry.path) not in _ACTIVE:
            stale = True
        if stale and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                continue
    return removed
