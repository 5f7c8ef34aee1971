"""Downloads, all through :func:`fetch`, which turns network failures into ``DataError``.

Loaders download only the raw files that are missing; PyG dataset classes are constructed only
once every raw file is in place, so PyG itself never reaches out.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Sequence, Tuple

from torch_geometric.data import download_url

from spexphormer.data.roots import one_line
from spexphormer.errors import DataError


#: Seconds a download may wait for the server before it counts as failed.
TIMEOUT_S = 30


def _where(name: str, expected: Sequence[str], base: Path) -> str:
    files = ", ".join(expected)
    return f"{name}: place the files [{files}] under {base}"


def fetch(url: str, folder: Path, filename: str, name: str, expected: Sequence[str], base: Path) -> Path:
    r"""Downloads one file (quietly) to ``folder / filename`` via PyG's ``download_url``.

    The file is first written under a temporary name and renamed when complete, so a failed
    download leaves nothing behind that could later pass for the real file.

    Args:
        url (str): Source URL.
        folder (Path): Destination folder (created if needed).
        filename (str): Destination file name.
        name (str): Dataset name, for messages.
        expected (sequence of str): All files the dataset needs (relative to ``base``), for the
            error message.
        base (Path): The root the expected files are relative to, for the error message.

    Returns:
        Path: The downloaded file.

    Raises:
        DataError: On any network or file-system failure, naming the files to place by hand.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tmp_name = filename + ".part"
    tmp = folder / tmp_name
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(TIMEOUT_S)  # fail within a minute rather than hang without a network
    try:
        download_url(url, str(folder), log=False, filename=tmp_name)
        os.replace(tmp, folder / filename)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts: OSError
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"could not download {url} ({one_line(reason) if isinstance(reason, BaseException) else reason}); {_where(name, expected, base)}"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)
    return folder / filename


def fetch_urls(urls: Sequence[Tuple[str, str]]) -> Callable:
    r"""Builds a fetcher that downloads each missing ``(url, relative path)`` pair.

    Args:
        urls (sequence of (str, str)): Source URL and destination path relative to the root.

    Returns:
        callable: ``fetcher(spec, base)`` for :class:`~spexphormer.data.registry.DatasetSpec`.
    """
    urls = tuple(urls)

    def fetcher(spec, base: Path) -> None:
        for url, rel in urls:
            dst = base / rel
            if not dst.exists():
                fetch(url, dst.parent, dst.name, spec.name, spec.files, base)

    return fetcher


def fetch_zip(url: str, zip_folder: str, folder: str) -> Callable:
    r"""Builds a fetcher for an archive (OGB style): download, extract, rename the folder.

    Args:
        url (str): URL of the ``.zip``.
        zip_folder (str): Name of the top folder inside the archive (e.g. ``"arxiv"``).
        folder (str): Final folder relative to the root (e.g. ``"ogbn_arxiv"``).

    Returns:
        callable: ``fetcher(spec, base)``.
    """

    def fetcher(spec, base: Path) -> None:
        stage = base / f".{folder}.download"
        shutil.rmtree(stage, ignore_errors=True)
        try:
            archive = fetch(url, stage, url.rsplit("/", 1)[-1], spec.name, spec.files, base)
        except DataError:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(stage)
        except (zipfile.BadZipFile, OSError) as exc:
            shutil.rmtree(stage, ignore_errors=True)
            raise DataError(
                f"downloaded archive {url} is corrupt ({one_line(exc)}); {_where(spec.name, spec.files, base)}"
            ) from exc
        src = stage / zip_folder
        if not src.is_dir():
            shutil.rmtree(stage, ignore_errors=True)
            raise DataError(f"archive {url} has no folder '{zip_folder}'; {_where(spec.name, spec.files, base)}")
        dst = base / folder
        dst.mkdir(parents=True, exist_ok=True)
        for item in src.iterdir():  # merge, keeping anything already there (e.g. processed/)
            target = dst / item.name
            if target.is_dir() and item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                if target.is_dir():
                    shutil.rmtree(target)
                shutil.move(str(item), str(target))
        shutil.rmtree(stage, ignore_errors=True)

    return fetcher


def missing(base: Path, files: Iterable[str]) -> list:
    r"""The files (relative paths) not present under ``base``."""
    return [f for f in files if not (base / f).is_file()]
