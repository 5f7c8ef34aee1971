r"""A folder of ``.npy`` arrays and a ``manifest.json``: checksummed, written atomically, memory-mapped.

The layout that several processes of one machine can share: every process maps the arrays
read-only (``np.load(mmap_mode="r")``), so the page cache holds each array once however many
processes read it. Layout::

    FOLDER/manifest.json   {"format", "version", "arrays": {name: {"file", "dtype", "shape",
                           "sha256"}}, "meta": {...}}
    FOLDER/<name>.npy      one array each (no pickled objects: ``allow_pickle=False``)

A folder is built under a temporary name beside its target (:func:`start_folder`), possibly by
several processes writing disjoint slices of preallocated arrays (:func:`preallocate`), then
:func:`seal_folder` hashes every array (streamed from the file, not held in memory), writes the
manifest last and renames the folder into place: a reader sees the old folder or the complete
new one. :func:`read_folder` checks format, version, shapes, dtypes and (unless told not to)
every SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from spexphormer.utils.io import TEMP_SUFFIX, _alive, strict_json

__all__ = ["MANIFEST", "start_folder", "write_array", "preallocate", "open_for_writing", "seal_folder", "read_folder",
           "as_tensor", "file_sha256", "is_npy_folder"]

MANIFEST = "manifest.json"
_CHUNK = 1 << 24


def is_npy_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST).is_file()


def _remove_stale(parent: Path, name: str) -> None:
    for tmp in parent.glob(f".{name}.*{TEMP_SUFFIX}"):
        pid = tmp.name[len(name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def start_folder(target: str | os.PathLike) -> Path:
    """A fresh temporary folder beside ``target`` (stale ones of dead writers are removed)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target.parent, target.name)
    tmp = target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}{TEMP_SUFFIX}"
    tmp.mkdir()
    return tmp


def write_array(folder: str | os.PathLike, name: str, array: Tensor | np.ndarray) -> None:
    """``array`` as ``FOLDER/<name>.npy``."""
    a = array.detach().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array)
    np.save(Path(folder) / f"{name}.npy", np.ascontiguousarray(a), allow_pickle=False)


def preallocate(folder: str | os.PathLike, name: str, dtype, shape: tuple[int, ...]) -> None:
    """An uninitialised ``FOLDER/<name>.npy`` that several processes fill (:func:`open_for_writing`)."""
    out = np.lib.format.open_memmap(Path(folder) / f"{name}.npy", mode="w+", dtype=dtype, shape=tuple(shape))
    del out


def open_for_writing(folder: str | os.PathLike, name: str) -> np.memmap:
    """A writable map of a preallocated array (write a slice, then ``flush``)."""
    return np.load(Path(folder) / f"{name}.npy", mmap_mode="r+", allow_pickle=False)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in chunks (nothing of its size held in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def seal_folder(tmp: str | os.PathLike, target: str | os.PathLike, fmt: str, version: int,
                meta: dict[str, Any]) -> Path:
    """Hash every array of ``tmp``, write its manifest, ``fsync`` and rename it to ``target``.

    An existing ``target`` is replaced (moved aside first, then removed)."""
    tmp, target = Path(tmp), Path(target)
    arrays = {}
    for file in sorted(tmp.glob("*.npy")):
        with open(file, "rb") as handle:  # fsync the data before the manifest that vouches for it
            os.fsync(handle.fileno())
        a = np.load(file, mmap_mode="r", allow_pickle=False)
        arrays[file.stem] = {"file": file.name, "dtype": a.dtype.str, "shape": list(a.shape),
                             "sha256": file_sha256(file)}
        del a
    manifest = {"format": fmt, "version": version, "arrays": arrays, "meta": strict_json(meta)}
    with open(tmp / MANIFEST, "w") as handle:
        json.dump(manifest, handle, indent=1, allow_nan=False, default=str)  # paths as text
        handle.flush()
        os.fsync(handle.fileno())
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.{os.getpid()}.old{TEMP_SUFFIX}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return target


def read_folder(folder: str | os.PathLike, fmt: str, versions: tuple[int, ...], error: Callable[[str], Exception],
                verify: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Any], int]:
    """The arrays of a sealed folder, memory-mapped read-only, its ``meta`` and its version.

    Raises ``error(message)`` for a missing or unreadable manifest, another format or version, a
    missing array, or (``verify``) an array whose bytes do not match their SHA-256.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise error(f"{folder}: cannot read {MANIFEST} ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        raise error(f"{folder} is not a {fmt} folder")
    if manifest.get("version") not in versions:
        raise error(f"{folder} is format version {manifest.get('version')}; this release reads {versions}")
    arrays = {}
    for name, entry in manifest.get("arrays", {}).items():
        file = folder / Path(str(entry.get("file", ""))).name  # never outside the folder
        if not file.is_file():
            raise error(f"{folder}: missing array file {file.name}")
        if verify and file_sha256(file) != entry.get("sha256"):
            raise error(f"{folder}: {file.name} is corrupt: its bytes do not match their SHA-256 checksum")
        try:
            a = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise error(f"{folder}: cannot read {file.name} ({exc})") from None
        if a.dtype.str != entry.get("dtype") or list(a.shape) != entry.get("shape"):
            raise error(f"{folder}: {file.name} has dtype {a.dtype.str} shape {list(a.shape)}, the manifest "
                        f"says {entry.get('dtype')} {entry.get('shape')}")
        arrays[name] = a
    return arrays, manifest.get("meta", {}), int(manifest["version"])


def as_tensor(array: np.ndarray) -> Tensor:
    """A tensor over a read-only map, without a copy (writing to it would fault: nothing does)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)
