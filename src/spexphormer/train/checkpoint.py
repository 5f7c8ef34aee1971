"""Model checkpoints: weights, constructor arguments, config and the graph they belong to."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from spexphormer.errors import CheckpointError
from spexphormer.utils.io import save_torch

FORMAT = "spexphormer-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, kind: str, model_args: dict[str, Any], state_dict: dict,
                    fingerprint: str, config: dict, meta: dict | None = None) -> Path:
    """Atomically write a checkpoint (``kind`` names the model class, e.g. "spexphormer")."""
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, "model_args": model_args,
               "state_dict": state_dict, "fingerprint": fingerprint, "config": config, "meta": meta or {}}
    return save_torch(payload, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__})") from None
    except Exception as exc:
        raise CheckpointError(f"{path} is not a spexphormer checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a spexphormer checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {payload.get('version')}, expected {VERSION}")
    return payload
