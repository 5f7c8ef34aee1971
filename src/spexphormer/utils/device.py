"""Choosing the device."""

from __future__ import annotations

import os

import torch

from spexphormer.errors import ConfigError


#: What torchrun (and ``--nproc``) set in every rank; a scheduler or a container may set some of
#: them (``RANK`` alone is common), which does not make a process a rank of a job.
LAUNCHER_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


def launched() -> bool:
    """True inside a rank started by torchrun (or ``--nproc``) with more than one rank: the whole
    launcher environment is present, with integer ranks and ``WORLD_SIZE`` > 1."""
    if not all(os.environ.get(name) for name in LAUNCHER_ENV):
        return False
    size, rank, local = (_env_int(name) for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))
    return size is not None and size > 1 and rank is not None and 0 <= rank < size and local is not None


def rank_device(device: torch.device) -> torch.device:
    """On CUDA, rank ``r`` of a machine uses GPU ``LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; asking for CUDA without it is an error.

    Under torchrun, plain ``cuda`` means this rank's GPU (``cuda:LOCAL_RANK``)."""
    if name == "auto":
        return rank_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but this PyTorch build sees no CUDA device")
    return rank_device(torch.device(name))


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in PyTorch and numba (0 keeps the defaults).

    On a machine whose cores are shared with other busy processes, one thread per process is
    often faster than several: OpenMP threads that wait for each other waste their time slices.
    """
    if threads > 0:
        from spexphormer.utils.numba_threads import set_numba_threads  # picks the layer before it starts
        torch.set_num_threads(threads)
        set_numba_threads(threads)
