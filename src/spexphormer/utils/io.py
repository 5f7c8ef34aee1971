"""Atomic writes: a file is either the old one, or the complete new one, never half-written."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from spexphormer.errors import WriteError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


TEMP_SUFFIX = ".spxtmp"  # temporary files are ".<name>.<pid>.<random>.spxtmp" beside their target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writers killed mid-write (e.g. SIGKILL) left in ``folder``.

    A temporary file names its writer's pid; it is stale when that process no longer exists.
    Returns the removed paths.
    """
    removed = []
    for tmp in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        parts = tmp.name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) != os.getpid() and not _alive(int(parts[1])):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _write_error(path: Path, exc: OSError) -> WriteError:
    return WriteError(f"cannot write {path}: {exc.strerror or exc} (the previous file, if any, is unchanged)")


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it into place.

    An ``OSError`` (a full disk, a read-only folder) raises :class:`~spexphormer.errors.WriteError`
    and leaves the previous file untouched; stale temporary files of dead writers are removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    return path


class _Recording:
    """A write-only file wrapper that keeps the OSError torch.save would turn into a vague RuntimeError."""

    def __init__(self, handle) -> None:
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename."""
    def write(handle) -> None:
        recording = _Recording(handle)
        try:
            torch.save(obj, recording)
        except RuntimeError:
            if recording.error is not None:
                raise recording.error from None
            raise

    return atomic_write(path, write)


def strict_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    """Pretty, strict JSON (NaN and infinities written as null), written atomically."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"
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
