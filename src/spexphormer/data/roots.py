"""Where datasets live: the data root, the writable cache, and raw-file fingerprints.

The data root is chosen as: the ``root`` argument, else the environment variable
``SPEXPHORMER_DATA_ROOT``, else the per-user cache (``$XDG_CACHE_HOME/spexphormer/datasets`` or
``~/.cache/spexphormer/datasets``). A root may be read-only (a shared mirror): anything the loaders
must write (PyG's ``processed/`` folder, parsed OGB arrays, downloads) then goes to the per-user
cache instead. Read-only is judged from the permission bits as well as :func:`os.access`, so a
mirror marked ``r-x`` stays untouched even when the process runs as root.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Iterable, List, Optional, Union

from spexphormer.errors import DataError

ENV_ROOT = "SPEXPHORMER_DATA_ROOT"

PathLike = Union[str, os.PathLike]


def one_line(exc: BaseException, limit: int = 300) -> str:
    r"""An exception's message on one line (error messages must be single lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def user_cache_dir() -> Path:
    r"""The per-user dataset cache, always the writable fallback.

    Returns:
        ``$XDG_CACHE_HOME/spexphormer/datasets`` if ``XDG_CACHE_HOME`` is set, else
        ``~/.cache/spexphormer/datasets``.
    """
    base = os.environ.get("XDG_CACHE_HOME")
    cache = Path(base).expanduser() if base else Path.home() / ".cache"
    return (cache / "spexphormer" / "datasets").absolute()


def resolve_root(root: Optional[PathLike] = None) -> Path:
    r"""Resolves the data root.

    Args:
        root (str or Path, optional): An explicit root; wins over everything else.

    Returns:
        Path: ``root`` if given, else ``$SPEXPHORMER_DATA_ROOT`` if set and non-empty, else
        :func:`user_cache_dir`. The path is made absolute; it need not exist.
    """
    if root is not None and str(root) != "":
        return Path(root).expanduser().absolute()
    env = os.environ.get(ENV_ROOT, "")
    if env:
        return Path(env).expanduser().absolute()
    return user_cache_dir()


def is_writable(path: PathLike) -> bool:
    r"""Whether files can (and may) be created in ``path`` or, if it does not exist yet, in its
    nearest existing ancestor.

    A directory whose permission bits grant no write access at all counts as read-only even for
    root, so that shared read-only mirrors are never written into.

    Args:
        path (str or Path): A directory.

    Returns:
        bool
    """
    p = Path(path).absolute()
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    if not p.is_dir():
        return False
    mode = p.stat().st_mode
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return False
    return os.access(p, os.W_OK | os.X_OK)


def fingerprint(base: Path, files: Iterable[str]) -> List[list]:
    r"""A cheap identity of raw files: path, size and modification time of each.

    Args:
        base (Path): The directory ``files`` are relative to.
        files (iterable of str): Relative paths; all must exist.

    Returns:
        list: ``[[absolute path, size, mtime_ns], ...]``, JSON-serialisable.
    """
    out = []
    for rel in files:
        st = (base / rel).stat()
        out.append([str((base / rel).absolute()), int(st.st_size), int(st.st_mtime_ns)])
    return out


def read_stamp(path: Path) -> Optional[object]:
    r"""Reads a JSON stamp file; a missing or unreadable stamp reads as :obj:`None`."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_stamp(path: Path, value: object) -> None:
    r"""Atomically writes a JSON stamp file (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def copy_files(src_base: Path, dst_base: Path, files: Iterable[str]) -> None:
    r"""Copies ``files`` (relative paths) from ``src_base`` to ``dst_base`` unless an identical
    copy is already there (same size and modification time; :func:`shutil.copy2` keeps both).

    A copy that differs from its source (the source changed) is replaced. Each file is written to
    a temporary name first and renamed, so an interrupted copy never looks complete.

    Args:
        src_base (Path): Source directory (may be read-only).
        dst_base (Path): Destination directory (writable).
        files (iterable of str): Relative paths of the files to copy.

    Raises:
        DataError: If a file cannot be copied (disk full, permissions).
    """
    for rel in files:
        src, dst = src_base / rel, dst_base / rel
        s = src.stat()
        if dst.exists():
            d = dst.stat()
            if d.st_size == s.st_size and d.st_mtime_ns == s.st_mtime_ns:
                continue
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
            shutil.copy2(src, tmp)
            os.replace(tmp, dst)
        except OSError as exc:
            raise DataError(f"cannot copy {src} into the cache {dst.parent}: {one_line(exc)}") from exc
