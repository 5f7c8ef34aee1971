"""Seeding without touching the caller's global random state."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with torch's CPU (and CUDA) generators seeded, restoring them afterwards.

    Model initialisation and dropout draw from torch's global generators; wrapping a whole
    training run in ``seeded(seed)`` makes it reproducible without leaking state to the caller.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield

