r"""Norms whose statistics run over the rows of every rank, not only this rank's rows.

Data-parallel training splits a batch (stage 2) or the node set (stage 1) across ranks; a norm that
averages over rows must then average over all of them to compute what one process computes on the
whole batch. Per channel, over the :math:`n = \sum_r n_r` rows of all ranks:

.. math::
    \mu = \frac{1}{n} \sum_r \sum_{i \in r} x_i, \qquad
    \sigma^2 = \frac{1}{n} \sum_r \sum_{i \in r} (x_i - \mu)^2,

two all-reduces (sums, then centred squares: no cancellation of :math:`E[x^2] - \mu^2`). The
all-reduces are differentiable (:func:`~spexphormer.distributed.world.sum_over_ranks`), so the backward pass sums
each rank's share of :math:`\partial L / \partial \mu` and :math:`\partial L / \partial \sigma^2`
over the ranks, as the one-process gradient does.

``torch.nn.SyncBatchNorm`` does this for BatchNorm, but in torch 2.13 it refuses CPU tensors
("SyncBatchNorm expected input tensor to be on GPU"), so gloo-on-CPU runs could not use it; and
GraphNorm (the estimator's default) has no synchronised form at all. These two subclasses keep
their parent's parameters and buffers, hence the same ``state_dict``, and behave exactly like the
parent in a single process.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spexphormer.distributed.world import sum_over_ranks, world
from spexphormer.nn.norms import BatchNorm, GraphNorm

__all__ = ["SyncedBatchNorm1d", "SyncedGraphNorm", "sync_norms"]


def global_moments(x: Tensor, center_scale: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, float]:
    """Mean over all ranks' rows, the centred rows ``x - scale * mean``, their mean square, and
    the number of rows of all ranks.

    Shapes:
        - **x:** :math:`(n_r, D)` -> mean :math:`(D,)`, centred :math:`(n_r, D)`, var :math:`(D,)`
    """
    count = x.new_tensor([x.size(0)])
    sums = sum_over_ranks(torch.cat([x.sum(0), count]))
    n = sums[-1].detach()
    mean = sums[:-1] / n
    centred = x - (mean if center_scale is None else mean * center_scale)
    var = sum_over_ranks(centred.pow(2).sum(0)) / n
    return mean, centred, var, float(n)


class SyncedBatchNorm1d(nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` with batch statistics over all ranks (training mode).

    Evaluation uses the running statistics, which every rank updates identically.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and world().active):
            return super().forward(x)
        mean, centred, var, n = global_moments(x)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / max(n - 1.0, 1.0))
        out = centred / torch.sqrt(var + self.eps)
        return out * self.weight + self.bias if self.affine else out


class SyncedGraphNorm(GraphNorm):
    """:class:`~spexphormer.nn.norms.GraphNorm` over the rows of all ranks.

    GraphNorm has no running statistics, so it normalises in evaluation too; ``sync_eval`` says
    whether evaluation also synchronises. It must when every rank runs the same evaluation forward
    passes (stage 1, full batch); it must not when ranks evaluate different numbers of batches
    (stage 2), where a collective would wait for a peer that never comes.
    """

    sync_eval: bool = True

    def forward(self, x: Tensor) -> Tensor:
        if not world().active or (not self.training and not self.sync_eval):
            return super().forward(x)
        _, centred, var, _ = global_moments(x, self.mean_scale)
        return self.weight * centred / torch.sqrt(var + self.eps) + self.bias


def sync_norms(module: nn.Module, sync_eval: bool = True) -> nn.Module:
    """Replace every BatchNorm1d / GraphNorm inside ``module`` by its synchronised form, in place.

    Parameters and buffers are copied, so the ``state_dict`` is unchanged. Returns ``module``.
    """
    for name, child in module.named_children():
        if type(child) in (nn.BatchNorm1d, BatchNorm):
            new = SyncedBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
        elif type(child) is GraphNorm:
            new = SyncedGraphNorm(child.dim, child.eps)
            new.sync_eval = sync_eval
        else:
            sync_norms(child, sync_eval)
            continue
        p = next(child.parameters(), None)
        new = new.to(p.device if p is not None else "cpu")
        new.load_state_dict(child.state_dict())
        new.train(child.training)
        setattr(module, name, new)
    return module
