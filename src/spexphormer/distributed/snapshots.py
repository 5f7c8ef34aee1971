"""Training snapshots of a multi-process run: one file, every rank's random state in it.

Under ``torchrun`` the ranks hold the same model, optimiser and schedule (DDP keeps them equal),
but each rank draws its own random numbers (dropout on its share of a batch). A snapshot of one
process would resume the other ranks with the wrong generators, so here rank 0 gathers every
rank's generator states and writes them, with the shared state, in one file, atomically (a
kill leaves the previous snapshot whole: there is no moment at which the ranks' snapshots
disagree). On resume every rank reads that file and takes its own generators; a snapshot made by
another number of processes is refused. Whether a snapshot is due is rank 0's decision, broadcast,
so that all ranks enter the gather together.
"""

from __future__ import annotations

import io
from typing import Any

import torch
import torch.distributed as dist

from spexphormer.distributed.world import all_gather_bytes, world
from spexphormer.errors import CheckpointError
from spexphormer.train.state import TrainingState, plain_rng_state, restorable_rng, set_rng_state

__all__ = ["RankedTrainingState"]


def _to_bytes(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _from_bytes(data: bytes) -> dict[str, Any]:
    return torch.load(io.BytesIO(data), weights_only=True)  # tensors and lists only


class RankedTrainingState(TrainingState):
    """:class:`~spexphormer.train.state.TrainingState` for every rank of a distributed run
    (the same arguments on every rank; the same file)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if world().active:
            dist.barrier()  # no rank writes a snapshot before every rank has read or discarded the old one

    def due(self, epoch: int, epochs: int) -> bool:
        flag = torch.tensor([int(super().due(epoch, epochs))], dtype=torch.int64)
        if world().active:
            dist.broadcast(flag, src=0)
        return bool(flag)

    def _rng_payload(self) -> dict[str, Any]:
        ranks = [_from_bytes(b) for b in all_gather_bytes(_to_bytes(plain_rng_state()))]
        return {"world_size": len(ranks), "ranks": ranks}

    def _writes(self) -> bool:
        return world().is_main

    def _apply_rng(self, rng: dict[str, Any]) -> None:
        w = world()
        if "ranks" not in rng:
            raise CheckpointError(f"training state {self.path} is a snapshot of a single-process run: resume it "
                                  f"in one process (without --nproc/torchrun)")
        if len(rng["ranks"]) != w.size:
            raise CheckpointError(f"training state {self.path} is a snapshot of a {len(rng['ranks'])}-process run; "
                                  f"this run has {w.size}: resume it with as many processes")
        set_rng_state(restorable_rng(rng["ranks"][w.rank]))

    def discard(self) -> None:
        if world().is_main:
            super().discard()
