"""Checksummed artefacts: a SHA-256 of a file's contents, stored in the file and checked on load.

The digest is taken over the *contents* (every key and value of the saved dict, tensors as dtype,
shape and raw bytes, in sorted-key order), not over the pickle's bytes, so it can live inside the
file it checks. A flipped bit in a tensor, a changed number or a changed string all change it.
Files of an older format version, written before checksums, still load, with a warning that
names their version.
"""

from __future__ import annotations

import hashlib
import os
import struct
import warnings
from pathlib import Path
from typing import Any

import torch

from spexphormer.utils.io import load_torch, save_torch

KEY = "sha256"


def _feed(h, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # the raw bytes, no copy
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for key in sorted(obj, key=repr):
            _feed(h, key), _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, bool) or obj is None:
        h.update(f"B{obj};".encode())
    elif isinstance(obj, int):
        h.update(f"I{obj};".encode())
    elif isinstance(obj, float):
        h.update(b"F" + struct.pack("<d", obj))
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogateescape")  # a path's undecodable bytes, as they were
        h.update(f"S{len(data)};".encode() + data)
    elif isinstance(obj, bytes):
        h.update(f"Y{len(obj)};".encode() + obj)
    else:
        h.update(f"R{obj!r};".encode())


def content_digest(obj: Any) -> str:
    """SHA-256 (hex) of a nested structure of dicts, lists, tensors, numbers and strings."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def seal(payload: dict) -> dict:
    """``payload`` plus its checksum under ``"sha256"``."""
    body = {k: v for k, v in payload.items() if k != KEY}
    return {**body, KEY: content_digest(body)}


def save_sealed(payload: dict, path: str | os.PathLike) -> Path:
    """Atomically ``torch.save`` ``payload`` with its checksum."""
    return save_torch(seal(payload), path)


def load_sealed(path: str | os.PathLike, fmt: str, version: int, error: type[Exception], what: str,
                legacy: tuple[int, ...] = (), older: tuple[int, ...] = ()) -> dict:
    """Load a file written by :func:`save_sealed` and check format, version and checksum.

    Versions in ``legacy`` predate checksums: they load unverified, with a warning naming the version.
    Versions in ``older`` are earlier layouts that carry a checksum (the caller upgrades them).
    A file of any other accepted version whose checksum is missing or differs raises ``error``
    naming the file.
    """
    payload = load_torch(path, fmt, (version, *older, *legacy), error, what)
    if payload["version"] in legacy and KEY not in payload:
        warnings.warn(f"{what} {path} is format version {payload['version']} (written before checksums): "
                      "its contents are not verified", stacklevel=2)
        return payload
    stored = payload.pop(KEY, None)
    if stored is None:
        raise error(f"{what} {path} lacks its checksum (format version {payload['version']} carries one)")
    if stored != content_digest(payload):
        raise error(f"{what} {path} is corrupt: its contents do not match their SHA-256 checksum")
    return payload
