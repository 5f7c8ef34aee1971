"""One writer per run folder: an advisory OS lock on ``OUT/.spexphormer.lock``.

The lock is the operating system's lock on an open file (``flock`` on POSIX, ``LockFileEx`` on
Windows, through :func:`filelock.lock_descriptor`), so the kernel drops it when the holder exits,
however it exits (a SIGKILLed run leaves no stale lock). The lock file holds the holder's pid, for the
error message only. Locks are re-entrant within a process: ``run`` locks the folder and calls
``obtain_scores``, which locks it again.

Every process that writes takes the lock. The one exception is a rank other than 0 of a process
group this process has joined (torchrun, ``--nproc``): those ranks write nothing. Environment
variables alone (``RANK``, which schedulers and containers set) never turn the lock off.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import torch.distributed as dist
from filelock import lock_descriptor

from spexphormer.errors import RunFolderBusy
from spexphormer.utils.io import make_folder, open_in_place

LOCK_NAME = ".spexphormer.lock"

_held: dict[Path, list] = {}  # folder -> [open lock file, depth]
_guard = threading.Lock()


def _holder(handle) -> str:
    try:
        handle.seek(0)
        pid = handle.read().strip()
        return f" (pid {pid})" if pid.isdigit() else ""
    except OSError:
        return ""


def _writes_nothing() -> bool:
    """True in a rank other than 0 of a process group this process has joined (it writes no file)."""
    return dist.is_available() and dist.is_initialized() and dist.get_rank() != 0


@contextmanager
def run_folder_lock(folder: str | os.PathLike):
    """Hold the folder's lock for the block; raise :class:`RunFolderBusy` if another process has it.

    Under torchrun the ranks of one job share the folder and only rank 0 writes: in a joined
    process group, rank 0 alone takes the lock. The lock file is opened without following links:
    a link planted in its place is refused, not written through."""
    folder = Path(folder).resolve()
    if _writes_nothing():
        yield folder
        return
    with _guard:
        if folder in _held:
            _held[folder][1] += 1
            entry = _held[folder]
        else:
            make_folder(folder)
            handle = open_in_place(folder / LOCK_NAME, "r+")
            if not lock_descriptor(handle.fileno(), blocking=False):
                who = _holder(handle)
                handle.close()
                raise RunFolderBusy(f"{folder} is in use by another spexphormer run{who}") from None
            handle.seek(0), handle.truncate(), handle.write(f"{os.getpid()}\n"), handle.flush()
            entry = _held[folder] = [handle, 1]
    try:
        yield folder
    finally:
        with _guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[folder]
                entry[0].close()  # closing the file releases the lock


def locks_out_folder(func):
    """Decorator: hold :func:`run_folder_lock` on the function's ``out`` argument during the call."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        out = signature.bind(*args, **kwargs).arguments.get("out")
        if out is None:
            return func(*args, **kwargs)
        with run_folder_lock(out):
            return func(*args, **kwargs)

    return wrapper
