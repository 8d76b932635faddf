"""The persistent cache of compiled programs: serialized XLA executables in a folder on disk,
keyed by the compile spec, the limits and the build (nabla's engine and language code, the
versions of JAX, jaxlib, NumPy and SymPy, and the CPU's architecture and instruction-set
flags, which XLA compiles for).

A restarted server, or another replica sharing the folder, then loads the executable of a
program compiled before instead of parsing, tracing and compiling it again. (JAX's own
persistent compilation cache was tried first: an executable it loads cannot be serialized
again for the server process, which then fails to run it with "Function ... not found".)
What is in the folder is unpickled and run as machine code, so the folder is trusted
code: ``check_folder`` refuses one that another user owns or that group or others can
write to, and the service then runs without the persistent cache.

This module imports nothing heavy at its top: the server resolves and checks the folder
once (``resolve_folder``), and each compile worker is given it (``enable``) before its
first compile.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import platform
import stat
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_folder: Path | None = None  # of this process, once enabled
_max_bytes = 0  # entries beyond it are pruned, the least recently used first
_build: str | None = None

#: The code an executable depends on: a change to any of it makes every key new.
_SOURCES = ("app/config.py", "app/engine", "app/language")


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/nabla``, else ``~/.cache/nabla``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nabla"


def resolve_folder(setting: str | None) -> str | None:
    """The folder to use, created 0700 if missing, or None when the persistent cache is off
    (``setting`` is "") or the folder is refused (logged as a warning)."""
    if setting == "":
        return None
    folder = Path(setting) if setting is not None else default_folder()
    try:
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)
            folder.chmod(0o700)  # mkdir's mode is masked by the umask
        refusal = check_folder(folder)
    except OSError as error:
        refusal = f"it cannot be created or read ({error})"
    if refusal is not None:
        logger.warning("the persistent compile cache is off: the folder %s is refused, "
                       "because %s (NABLA_CACHE_DIR)", folder, refusal)
        return None
    return str(folder.resolve())


def check_folder(folder: Path) -> str | None:
    """Why ``folder`` cannot hold trusted code, or None: it must be a directory owned by
    this process's user, which neither group nor others can write to."""
    info = folder.stat()
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    if info.st_uid != os.geteuid():
        return f"another user (uid {info.st_uid}) owns it"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others can write to it (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def enable(folder: str | None, max_bytes: int = 1024**3) -> None:
    """Use ``folder`` (already checked by ``resolve_folder``) in this process, keeping its
    entries within ``max_bytes``; None: off."""
    global _folder, _max_bytes
    _folder = None if folder is None else Path(folder)
    _max_bytes = max_bytes


def build_id() -> str:
    """A digest of the code and library versions that compiled executables depend on."""
    global _build
    if _build is None:
        from importlib.metadata import version

        digest = hashlib.sha256()
        for package in ("jax", "jaxlib", "numpy", "sympy"):
            digest.update(f"{package}={version(package)}\n".encode())
        # XLA compiles for the host's instruction set: replicas on other CPUs get other keys.
        digest.update(platform.machine().encode())
        digest.update(_cpu_flags().encode())
        root = Path(__file__).resolve().parents[2]
        for source in _SOURCES:
            path = root / source
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for file in files:
                if file.suffix in (".py", ".lark") and file.is_file():
                    digest.update(str(file.relative_to(root)).encode())
                    digest.update(file.read_bytes())
        _build = digest.hexdigest()
    return _build


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def _path(key: object, limits: object) -> Path | None:
    if _folder is None:
        return None
    text = f"{build_id()}\n{key!r}\n{limits!r}".encode()
    return _folder / f"{hashlib.sha256(text).hexdigest()}.xla"


def read(key: object, limits: object) -> Any | None:
    """What ``write`` stored for ``key`` under ``limits``, or None (no entry, cache off, or
    an entry that cannot be read: it is then compiled again and overwritten)."""
    path = _path(key, limits)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    try:
        return pickle.loads(data)  # noqa: S301 - a folder only this user can write to
    except Exception:
        logger.warning("unreadable entry %s in the persistent compile cache", path.name)
        return None


def write(key: object, limits: object, value: Any) -> None:
    """Store ``value`` for ``key`` under ``limits``, atomically (replicas may share the folder)."""
    path = _path(key, limits)
    if path is None:
        return
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "wb") as sink:
            sink.write(pickle.dumps(value))
        os.replace(temporary, path)
        prune(path.parent, _max_bytes)
    except OSError as error:
        logger.warning("could not write to the persistent compile cache: %s", error)
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temporary)


def prune(folder: Path, max_bytes: int) -> None:
    """Delete the least recently used entries of ``folder`` until they fit in ``max_bytes``
    (down to nine tenths of it, so that pruning is rare). Replicas sharing the folder may
    prune at once: an entry already gone is skipped."""
    entries = []
    for path in folder.glob("*.xla"):
        with contextlib.suppress(OSError):
            info = path.stat()
            entries.append((info.st_mtime, info.st_size, path))
    total = sum(size for _, size, _ in entries)
    if total <= max_bytes:
        return
    for _, size, path in sorted(entries, key=lambda entry: entry[0]):
        if total <= max_bytes * 0.9:
            break
        with contextlib.suppress(OSError):
            path.unlink()
        total -= size
