r"""The process group: who this process is, and the few collectives both stages use.

A run is distributed when it was started by ``torchrun`` (or ``spexphormer ... --nproc N``, which
launches the same thing): the launcher sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE`` and the rendezvous address, and :func:`init_from_env` joins the group. The
group carries gloo for CPU tensors and, where CUDA exists, NCCL for GPU tensors; its timeout turns
a lost peer into an error instead of a hang.

Everything here is a no-op (or the identity) in a single process, so the training code calls it
unconditionally.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from spexphormer.utils.device import launched

__all__ = ["World", "world", "launched", "init_from_env", "shutdown", "local_rank_zero_first",
           "is_communication_failure", "default_threads", "shard_range", "all_gather_rows",
           "gather_rows", "all_reduce_", "sum_over_ranks", "broadcast_text", "all_gather_bytes", "barrier", "CommCounter", "COMM"]

#: Seconds a collective may wait for a peer before the group raises (env SPEXPHORMER_DIST_TIMEOUT).
DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class World:
    """This process's place in the group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and prints results."""
        return self.rank == 0


def world() -> World:
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                 int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size())))


def init_from_env() -> World:
    """Join the group described by the launcher's environment (once); a no-op outside one."""
    if not launched() or dist.is_initialized():
        return world()
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    timeout = timedelta(seconds=float(os.environ.get("SPEXPHORMER_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)))
    dist.init_process_group(backend=backend, timeout=timeout)
    return world()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def local_rank_zero_first():
    """Local rank 0 of each machine runs the block first (e.g. to fill a dataset cache), then the
    machine's other ranks run it (reading what it wrote)."""
    w = world()
    if w.active and w.local_rank != 0:
        dist.barrier()
    yield
    if w.active and w.local_rank == 0:
        dist.barrier()


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    if world().active:
        dist.barrier()


def broadcast_text(text: str | None) -> str:
    """Rank 0's ``text`` on every rank (``text`` is ignored elsewhere; the identity in one process).

    Sent as bytes in a tensor, not pickled."""
    if not world().active:
        return text or ""
    data = torch.frombuffer(bytearray((text or "").encode()), dtype=torch.uint8) if world().is_main and text \
        else torch.empty(0, dtype=torch.uint8)
    size = torch.tensor([data.numel()], dtype=torch.int64)
    dist.broadcast(size, src=0)
    buffer = data if world().is_main else torch.empty(int(size), dtype=torch.uint8)
    if int(size):
        dist.broadcast(buffer, src=0)
    return bytes(buffer.tolist()).decode()


def all_gather_bytes(data: bytes) -> list[bytes]:
    """Every rank's ``data``, in rank order (``[data]`` in one process)."""
    if not world().active:
        return [data]
    full, counts = _gather(torch.frombuffer(bytearray(data), dtype=torch.uint8) if data
                           else torch.empty(0, dtype=torch.uint8))
    return [bytes(part.numpy().tobytes()) for part in full.split(counts)]


def is_communication_failure(exc: BaseException) -> bool:
    """Did a collective fail because a peer is gone or stuck (not because of this rank)?"""
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(lib in text for lib in ("gloo", "NCCL", "c10d")) and any(
        s in text for s in ("closed by peer", "reset by peer", "Broken pipe", "Timed out", "timed out"))


def default_threads() -> int:
    """CPU threads per process when the user set none: the cores this process may use, divided
    among the ranks on this machine (so that N processes do not oversubscribe them); 0 (keep
    PyTorch's default) outside a distributed run."""
    if not launched():
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])))


def shard_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of rank ``rank`` when ``n`` rows are cut into ``size`` contiguous, balanced
    shards (the first ``n % size`` shards hold one row more)."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


class CommCounter:
    """Bytes this process put into collectives, by purpose (for the communication report)."""

    def __init__(self) -> None:
        self.bytes: dict[str, int] = {}

    def add(self, tensor: Tensor, kind: str = "all-reduce") -> None:
        self.bytes[kind] = self.bytes.get(kind, 0) + tensor.numel() * tensor.element_size()

    def reset(self) -> None:
        self.bytes.clear()


COMM = CommCounter()


def all_reduce_(tensor: Tensor, kind: str = "all-reduce") -> Tensor:
    """Sum ``tensor`` over the ranks, in place (identity in one process; no autograd)."""
    if world().active:
        COMM.add(tensor, kind)
        dist.all_reduce(tensor)
    return tensor


def _gather(tensor: Tensor) -> tuple[Tensor, list[int]]:
    w = world()
    sizes = torch.tensor([tensor.size(0)], device=tensor.device)
    all_sizes = [torch.empty_like(sizes) for _ in range(w.size)]
    dist.all_gather(all_sizes, sizes)
    counts = [int(s) for s in all_sizes]
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.size(0)] = tensor
    parts = [torch.empty_like(padded) for _ in range(w.size)]
    COMM.add(padded, "all-gather")
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts)]), counts


def all_gather_rows(tensor: Tensor) -> Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, in rank order (sizes may differ by rank).

    Shapes:
        - **tensor:** :math:`(n_r, *)` -> :math:`(\\sum_r n_r, *)`
    """
    return _gather(tensor)[0] if world().active else tensor


class _GatherRows(torch.autograd.Function):
    """All-gather rows forward; backward sums the full gradient over the ranks (the other ranks
    used our rows too) and keeps this rank's rows. An all-reduce, not a reduce-scatter, so it
    runs on every backend (gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        full, counts = _gather(tensor)
        rank = world().rank
        ctx.lo = sum(counts[:rank])
        ctx.hi = ctx.lo + counts[rank]
        return full

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = all_reduce_(grad.contiguous().clone(), "node-state gradients")
        return grad[ctx.lo: ctx.hi]


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward is the all-reduce of the gradient: every rank's output
    depends on every rank's input."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        return all_reduce_(tensor.clone(), "norm statistics")

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return all_reduce_(grad.contiguous().clone(), "norm statistics")


def sum_over_ranks(tensor: Tensor) -> Tensor:
    """Differentiable sum of ``tensor`` over the ranks (the identity in one process)."""
    return _SumOverRanks.apply(tensor) if world().active else tensor


def gather_rows(tensor: Tensor) -> Tensor:
    """Differentiable :func:`all_gather_rows` (the identity in one process)."""
    return _GatherRows.apply(tensor) if world().active else tensor
