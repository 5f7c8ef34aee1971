"""Atomic writes: a file is either the old one, or the complete new one, never half-written."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename."""
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    """Pretty JSON, written atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode()))


def load_torch(path: str | os.PathLike, fmt: str, version: int | tuple[int, ...], error: type[Exception],
               what: str) -> dict:
    """Load a file written by :func:`save_torch` and check its ``format`` and ``version`` keys.

    ``version`` is the version expected, or a tuple of the versions this release can read.

    Every failure (missing, truncated, another kind of file, another version) raises ``error``
    with a one-line message that names ``what`` and the path.
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise error(f"{what} {path} is truncated or corrupt ({type(exc).__name__})") from None
    except Exception as exc:  # unpickling errors of unexpected content
        raise error(f"{path} is not a spexphormer {what} ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise error(f"{path} is not a spexphormer {what}")
    versions = version if isinstance(version, tuple) else (version,)
    if payload.get("version") not in versions:
        expected = " or ".join(map(str, versions))
        raise error(f"{what} {path} has format version {payload.get('version')}, this release reads {expected}"
                    + (": it was written by an older spexphormer; run it again" if
                       isinstance(payload.get("version"), int) and payload["version"] < min(versions) else ""))
    return payload
