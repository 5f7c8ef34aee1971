"""Fixtures of the data tests: a private cache, no network, the shared read-only datasets."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def _refuse(*args, **kwargs):
    raise urllib.error.URLError("network disabled in tests")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach the network fails like an offline machine."""
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a, **k: _refuse())


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A private per-user cache; SPEXPHORMER_DATA_ROOT unset. Returns the cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SPEXPHORMER_DATA_ROOT", raising=False)
    return tmp_path / "xdg" / "spexphormer" / "datasets"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only mirror of the public datasets (tests skip without it)."""
    if not (SHARED / "README.md").exists():
        pytest.skip(f"shared datasets not found at {SHARED}")
    return SHARED


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def snapshot():
    """``snapshot(root)``: every path under root with size and mtime, to prove nothing changed."""
    return _snapshot
