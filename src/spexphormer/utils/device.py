"""Choosing the device."""

from __future__ import annotations

import torch

from spexphormer.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; asking for CUDA without it is an error.

    Under torchrun, plain ``cuda`` means this rank's GPU (``cuda:LOCAL_RANK``)."""
    from spexphormer.distributed.world import rank_device
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
