"""Model checkpoints: weights, constructor arguments, config and the graph they belong to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spexphormer.errors import CheckpointError
from spexphormer.utils.io import load_torch, save_torch

FORMAT = "spexphormer-checkpoint"
VERSION = 2  # 2: records the split; stage-2 attention without 1/sqrt(d); configurable input encoder


def save_checkpoint(path: str | os.PathLike, kind: str, model_args: dict[str, Any], state_dict: dict,
                    fingerprint: str, config: dict, meta: dict | None = None) -> Path:
    """Atomically write a checkpoint (``kind`` names the model class, e.g. "spexphormer")."""
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, "model_args": model_args,
               "state_dict": state_dict, "fingerprint": fingerprint, "config": config, "meta": meta or {}}
    return save_torch(payload, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint`."""
    return load_torch(path, FORMAT, VERSION, CheckpointError, "checkpoint")
