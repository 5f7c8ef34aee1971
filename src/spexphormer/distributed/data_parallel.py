r"""Stage 2 data-parallel: every rank trains on its share of each batch; DDP sums the gradients.

The sampler is counter-based and seeded by (seed, epoch, layer), so every rank draws the very same
per-layer graphs without communicating. Each global batch of :math:`B` core nodes (the same
shuffle on every rank) is cut into ``world_size`` contiguous shares; rank :math:`r` builds the
sub-batch of its :math:`B_r` core nodes and scales its mean loss by :math:`B_r W / B`, so that
``DistributedDataParallel``'s average of the gradients is the gradient of the mean loss over the
whole batch:

.. math::
    \frac{1}{W} \sum_r \frac{B_r W}{B} \nabla L_r = \nabla \frac{1}{B} \sum_{i \in \text{batch}} \ell_i.

Norms take their statistics over all ranks' rows (:mod:`spexphormer.distributed.synced_norms`).
Evaluation predicts a contiguous share of the nodes per rank and gathers the logits, so every rank
computes the same metrics and keeps the same best epoch.
"""

from __future__ import annotations

import inspect
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from spexphormer.distributed.synced_norms import sync_norms
from spexphormer.distributed.world import COMM, all_gather_rows, all_reduce_, shard_range, world
from spexphormer.errors import ConfigError
from spexphormer.sampling import Batch, SampledLayers, batch_builder, iterate_batches

__all__ = ["wrap", "shard_batches", "global_mean", "predict_sharded"]


def _counting_allreduce(state, bucket):
    """DDP's own all-reduce-and-average hook, counting the bytes it sends."""
    COMM.add(bucket.buffer(), "gradients")
    return default_hooks.allreduce_hook(state, bucket)


def wrap(model: nn.Module, device: torch.device, sync_eval: bool = False) -> nn.Module:
    """``DistributedDataParallel`` over ``model`` with synchronised norms; ``model`` itself in one
    process. Train through the returned module; optimise, evaluate and save ``model``."""
    if not world().active:
        return model
    sync_norms(model, sync_eval)
    # The synchronised norms keep their buffers equal on all ranks: no buffer broadcast per step.
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
               inspect.signature(DistributedDataParallel.__init__).parameters else {"broadcast_buffers": False})
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)
    ddp.register_comm_hook(dist.group.WORLD, _counting_allreduce)
    return ddp


def _global_batches(nodes: Tensor, batch_size: int, seed: int, ranks: int) -> list[Tensor]:
    """The shuffle and cut of :func:`~spexphormer.sampling.iterate_batches`; a last batch too
    small to give every rank a node joins the one before it."""
    gen = torch.Generator().manual_seed(int(seed) % (2**63))
    nodes = torch.as_tensor(nodes, dtype=torch.int64).reshape(-1)
    nodes = nodes[torch.randperm(nodes.numel(), generator=gen)]
    if nodes.numel() < ranks:
        raise ConfigError(f"{nodes.numel()} training nodes cannot be shared among {ranks} processes")
    batches = list(torch.split(nodes, int(batch_size)))
    if len(batches) > 1 and batches[-1].numel() < ranks:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def shard_batches(nodes: Tensor, batch_size: int, layers: SampledLayers, seed: int) -> Iterator[tuple[Batch, float]]:
    """This rank's sub-batch of every global batch, with its loss weight :math:`B_r W / B`.

    In one process: exactly :func:`~spexphormer.sampling.iterate_batches`, weight 1.
    """
    w = world()
    if not w.active:
        for batch in iterate_batches(nodes, batch_size, layers, shuffle=True, seed=seed):
            yield batch, 1.0
        return
    builder = batch_builder(layers)
    for batch in _global_batches(nodes, batch_size, seed, w.size):
        lo, hi = shard_range(batch.numel(), w.rank, w.size)
        yield builder(batch[lo:hi]), (hi - lo) * w.size / batch.numel()


def global_mean(total: float, count: int) -> float:
    """``sum(total) / sum(count)`` over the ranks."""
    both = all_reduce_(torch.tensor([float(total), float(count)], dtype=torch.float64))
    return float(both[0] / max(both[1], 1.0))


def predict_sharded(predict: Callable[[Tensor], Tensor], nodes: Tensor) -> Tensor:
    """``predict(nodes)``, computed as one contiguous share of ``nodes`` per rank and gathered.

    Shapes:
        - **nodes:** :math:`(M,)` -> :math:`(M, \\text{out})` on every rank
    """
    w = world()
    if not w.active:
        return predict(nodes)
    lo, hi = shard_range(nodes.numel(), w.rank, w.size)
    return all_gather_rows(predict(nodes[lo:hi]))
