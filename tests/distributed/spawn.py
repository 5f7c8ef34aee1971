"""Run a function on N local gloo ranks (torch.multiprocessing spawn), as torchrun would set them up."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, fn, world_size: int, port: int, args: tuple) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      SPEXPHORMER_DIST_TIMEOUT="60")
    torch.set_num_threads(1)
    from spexphormer.distributed import init_from_env, shutdown
    init_from_env()
    try:
        fn(*args)
    finally:
        shutdown()


def run_ranks(fn, world_size: int, *args) -> None:
    """``fn(*args)`` on ``world_size`` ranks; raises if any rank fails."""
    mp.spawn(_entry, args=(fn, world_size, _free_port(), args), nprocs=world_size, join=True)
