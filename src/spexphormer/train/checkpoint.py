"""Model checkpoints: weights, constructor arguments, config and the graph they belong to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spexphormer.artifact_checks import check_checkpoint
from spexphormer.errors import CheckpointError
from spexphormer.utils.checksum import load_sealed, save_sealed

FORMAT = "spexphormer-checkpoint"
VERSION = 3  # 2: records the split; stage-2 attention without 1/sqrt(d); configurable input encoder; 3: SHA-256
LEGACY = (2,)  # readable older versions (no checksum)


def save_checkpoint(path: str | os.PathLike, kind: str, model_args: dict[str, Any], state_dict: dict,
                    fingerprint: str, config: dict, meta: dict | None = None) -> Path:
    """Atomically write a checkpoint with a SHA-256 of its contents (``kind`` names the model class)."""
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, "model_args": model_args,
               "state_dict": state_dict, "fingerprint": fingerprint, "config": config, "meta": meta or {}}
    return save_sealed(payload, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; check its checksum and contents."""
    payload = load_sealed(path, FORMAT, VERSION, CheckpointError, "checkpoint", LEGACY)
    check_checkpoint(payload, path)
    return payload
