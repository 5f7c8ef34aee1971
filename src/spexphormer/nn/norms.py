r"""Normalisation layers used by the transformer blocks, chosen by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spexphormer.errors import ConfigError

__all__ = ["BatchNorm", "GraphNorm", "make_norm", "NORM_KINDS"]

NORM_KINDS = ("batch", "graph", "layer", "none")


class GraphNorm(nn.Module):
    r"""GraphNorm (Cai et al., 2021) over all rows of the input, treated as one graph.

    .. math::
        \mathbf{x}'_i = \gamma \odot \frac{\mathbf{x}_i - \alpha \odot \mu}
            {\sqrt{\mathrm{Var}[\mathbf{x} - \alpha \odot \mu] + \epsilon}} + \beta,
        \qquad \mu = \frac{1}{N} \sum_{i=1}^{N} \mathbf{x}_i,

    with learnable per-channel :math:`\gamma` (``weight``, init 1), :math:`\beta` (``bias``,
    init 0) and :math:`\alpha` (``mean_scale``, init 1). Same parameters and numbers as
    :class:`torch_geometric.nn.GraphNorm` called with ``batch=None``, but a plain mean over the
    rows instead of a scatter (no torch-scatter needed, deterministic on GPU). In a stage-2
    mini-batch it normalises over the batch's rows.

    Args:
        dim (int): number of channels.
        eps (float, optional): added to the variance. (default: ``1e-5``)

    Shapes:
        - **input**: :math:`(N, D)`
        - **output**: :math:`(N, D)`
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.empty(dim))
        self.mean_scale = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        nn.init.ones_(self.mean_scale)

    def forward(self, x: Tensor) -> Tensor:
        out = x - x.mean(dim=0, keepdim=True) * self.mean_scale  # [N, D]
        std = (out.pow(2).mean(dim=0, keepdim=True) + self.eps).sqrt()  # [1, D]
        return self.weight * out / std + self.bias

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class BatchNorm(nn.BatchNorm1d):
    r""":class:`~torch.nn.BatchNorm1d` that also takes a training batch of one row.

    One row has no batch variance, and PyTorch refuses it in training mode. Such a batch (a
    training set one node larger than a multiple of the batch size, or a one-node training set)
    is normalised with the running statistics, as in evaluation, and does not update them. Every
    other batch is normalised exactly as by :class:`~torch.nn.BatchNorm1d` (same parameters,
    buffers and state-dict keys).

    Shapes:
        - **input**: :math:`(N, D)`; **output**: :math:`(N, D)`
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.size(0) == 1 and self.running_mean is not None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def make_norm(kind: str, dim: int) -> nn.Module:
    r"""Build a normalisation layer by name.

    Args:
        kind (str): ``"batch"`` (:class:`BatchNorm`), ``"graph"``
            (:class:`GraphNorm`), ``"layer"`` (:class:`~torch.nn.LayerNorm`) or ``"none"``
            (:class:`~torch.nn.Identity`).
        dim (int): number of channels.

    Shapes:
        - **input**: :math:`(N, D)`; **output**: :math:`(N, D)`

    Raises:
        ConfigError: for an unknown ``kind``.
    """
    key = (kind or "none").lower()
    if key == "batch":
        return BatchNorm(dim)
    if key == "graph":
        return GraphNorm(dim)
    if key == "layer":
        return nn.LayerNorm(dim)
    if key == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {kind!r}; expected one of {', '.join(NORM_KINDS)}")
