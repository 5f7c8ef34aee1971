"""Model checkpoints: weights, constructor arguments, config and the graph they belong to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spexphormer.artifact_checks import check_checkpoint
from spexphormer.errors import CheckpointError
from spexphormer.utils.checksum import load_sealed, save_sealed

FORMAT = "spexphormer-checkpoint"
# 2: records the split; stage-2 attention without 1/sqrt(d); configurable input encoder; 3: SHA-256;
# 4: per-type terms in nn.type_terms (model_args["type_terms"]; versions 2-3 are the "table" form),
#    no bias in the encoder's pre-layers (versions 2-3: folded into the batch norm's running mean)
VERSION = 4
OLDER = (3,)  # readable older versions with a checksum
LEGACY = (2,)  # readable older versions without one

# Where versions 2-3 kept the per-type tables, and where the "table" form of TypeTerms keeps them.
_TABLE_KEYS = {"attn.type_scale": "attn.types.gate", "attn.type_bias": "attn.types.bias",
               "attn.E1.weight": "attn.types.gate", "attn.E2.weight": "attn.types.bias"}


def save_checkpoint(path: str | os.PathLike, kind: str, model_args: dict[str, Any], state_dict: dict,
                    fingerprint: str, config: dict, meta: dict | None = None) -> Path:
    """Atomically write a checkpoint with a SHA-256 of its contents (``kind`` names the model class)."""
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, "model_args": model_args,
               "state_dict": state_dict, "fingerprint": fingerprint, "config": config, "meta": meta or {}}
    return save_sealed(payload, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; check its checksum and contents."""
    payload = load_sealed(path, FORMAT, VERSION, CheckpointError, "checkpoint", LEGACY, OLDER)
    check_checkpoint(payload, path)
    if payload["version"] < 4:
        _upgrade_type_terms(payload)
        estimator = payload["meta"].get("estimator")
        if isinstance(estimator, dict) and isinstance(estimator.get("state_dict"), dict):
            _upgrade_type_terms(estimator)
    return payload


def _upgrade_type_terms(record: dict) -> None:
    """Versions 2-3 learned the per-type terms as tables (the ``"table"`` form) under other names,
    and gave the encoder's pre-layers a bias before their batch norm: in evaluation
    ``BN(Wx + b)`` with running mean ``m`` equals ``BN(Wx)`` with running mean ``m - b``."""
    if isinstance(record.get("model_args"), dict):
        record["model_args"].setdefault("type_terms", "table")
    state = record["state_dict"]
    renamed = {}
    for key, value in state.items():
        head, _, tail = key.rpartition("attn.")
        new = _TABLE_KEYS.get("attn." + tail) if head or key.startswith("attn.") else None
        if key.startswith("encoder.pre.") and key.endswith(".lin.bias"):
            mean = key[: -len("lin.bias")] + "norm.running_mean"
            if mean in state:
                renamed[mean] = state[mean] - value
                continue
        renamed.setdefault(head + new if new else key, value)
    record["state_dict"] = renamed
