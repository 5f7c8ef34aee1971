"""Every file the tool writes: atomically where it replaces one, and never through a link.

Two rules hold for every path written here (README, "Reliability"):

* a path that is a symbolic link (dangling or not), a device, a FIFO, a socket or a folder is
  refused with a one-line :class:`~spexphormer.errors.WriteError`, never written through or
  replaced (:func:`refuse_special`; files opened in place use ``O_NOFOLLOW``);
* a replaced file is either the old one or the complete new one (:func:`atomic_write`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
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


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str | None:
    """What a file of ``mode`` is, when it is not a regular file."""
    return next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "a special file")


def _refused(path: Path, kind: str) -> WriteError:
    return WriteError(f"refusing to write {path}: it is {kind}, not a regular file (spexphormer writes neither "
                      "through nor over links and devices; remove it or choose another path)")


def refuse_special(path: str | os.PathLike) -> None:
    """Raise :class:`WriteError` when ``path`` exists as anything but a regular file (a symbolic
    link, also a dangling one, is refused whatever it points to)."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _write_error(path, exc) from None
    kind = _kind(mode)
    if kind is not None:
        raise _refused(path, kind)


def make_folder(path: str | os.PathLike) -> Path:
    """``mkdir -p path``; a ``path`` that is a symbolic link (or not a folder) is refused, so that a
    link planted inside a run folder cannot lead its files elsewhere."""
    path = Path(path)
    if path.is_symlink():
        raise _refused(path, "a symbolic link")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise _refused(path, _kind(os.lstat(path).st_mode) or "a file") from None
    except OSError as exc:
        raise _write_error(path, exc) from None
    return path


def open_in_place(path: str | os.PathLike, mode: str = "w"):
    """Open a regular file for writing in place (``"w"``: truncated, ``"a"``: appended, ``"r+"``:
    read and write, created if absent), with ``O_NOFOLLOW``: a link or a device is refused with a
    :class:`WriteError` and is left as it was. Returns a text handle."""
    path = Path(path)
    refuse_special(path)
    flags = {"w": os.O_WRONLY, "a": os.O_WRONLY | os.O_APPEND, "r+": os.O_RDWR}[mode]
    try:  # O_NONBLOCK: a FIFO planted between the check and the open must not block the open
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refused(path, "a symbolic link") from None
        raise _write_error(path, exc) from None
    kind = _kind(os.fstat(fd).st_mode)
    if kind is not None:  # swapped in between the check and the open
        os.close(fd)
        raise _refused(path, kind)
    if mode == "w":
        os.ftruncate(fd, 0)
    return os.fdopen(fd, mode, newline="")


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it into place.

    An ``OSError`` (a full disk, a read-only folder) raises :class:`~spexphormer.errors.WriteError`
    and leaves the previous file untouched; stale temporary files of dead writers are removed. A
    ``path`` that is a link, a device or anything but a regular file is refused, not replaced.
    """
    path = Path(path)
    refuse_special(path)
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
    import warnings
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} is a folder, not a file" if path.is_dir() else f"{what} {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's notes on a foreign pickle protocol: the error below says it
            warnings.simplefilter("ignore")
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


def read_small_text(path: str | os.PathLike, limit: int, what: str, error: type[Exception]) -> str:
    """The UTF-8 text of a small input file (a config, a list of node ids), read whole.

    Anything but a regular file (``/dev/zero``, a FIFO, a folder), a file over ``limit`` bytes or
    text that is not UTF-8 raises ``error`` with one line naming ``what`` and the path.
    """
    path = Path(path)
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    kind = _kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise error(f"{what} {path} is {kind}, not a regular file")
    with os.fdopen(fd, "rb", buffering=0) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{what} {path} is larger than {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def check_path_text(path: str | os.PathLike, what: str) -> None:
    """Refuse a path that is not valid UTF-8 (``os.fsdecode`` keeps such bytes as surrogates):
    files record their paths as text, so such a path would fail only after the work is done."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        raise WriteError(f"{what}: the path {ascii(os.fspath(path))[:200]} is not valid UTF-8; rename it or choose "
                         "another") from None
