r"""Transformer blocks: one attention, then residual + norm, feed-forward, residual + norm.

All three blocks share :class:`_Block`, which holds everything after the attention:

.. math::
    \mathbf{h} = \mathrm{Norm}_1\big(\mathbf{x} + \mathrm{Drop}(\mathrm{Attn}(\mathbf{x}))\big),
    \qquad
    \mathbf{x}' = \mathrm{Norm}_2\big(\mathbf{h} + \mathrm{Drop}(\mathrm{FFN}(\mathbf{h}))\big).

:class:`ExphormerLayer` and :class:`SpexphormerLayer` have the same ``state_dict`` keys, so a
trained full-batch layer can be run on sampled neighbour tables and vice versa.
"""

from __future__ import annotations

from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spexphormer.nn.attention import EdgeListAttention, NeighbourAttention, ScoreAttention
from spexphormer.nn.norms import BatchNorm, make_norm

__all__ = ["InputEncoder", "FeedForward", "ASELayer", "ExphormerLayer", "SpexphormerLayer"]


class InputEncoder(nn.Module):
    r"""Node encoder shared by the three models: an input map, then ``pre_layers`` blocks.

    .. math::
        \mathbf{h}_0 = W_{in} \mathbf{x} + b_{in}, \qquad
        \mathbf{h}_{p+1} = \frac{\mathbf{u}_p}{\lVert \mathbf{u}_p \rVert_2},\quad
        \mathbf{u}_p = \mathrm{ReLU}\big(\mathrm{BN}(W_p \mathbf{h}_p + b_p)\big),

    i.e. each pre-layer ends with a row-wise L2 normalisation of every node's vector, as the
    reference implementation's pre-message-passing layers do (GraphGym's ``l2norm``). With
    ``pre_layers=0`` the encoder is the input map alone.

    Args:
        in_dim (int): input feature width :math:`F`.
        hidden (int): output width :math:`D`.
        pre_layers (int, optional): number of Linear→BN→ReLU→L2 blocks. (default: ``1``)

    Shapes:
        - **input**: :math:`(N, F)`; **output**: :math:`(N, D)`
    """

    def __init__(self, in_dim: int, hidden: int, pre_layers: int = 1) -> None:
        super().__init__()
        self.input = nn.Linear(in_dim, hidden)
        self.pre = nn.ModuleList(_PreLayer(hidden) for _ in range(pre_layers))

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        for block in self.pre:
            block.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        h = self.input(x)  # [N, D]
        for block in self.pre:
            h = block(h)  # [N, D], unit rows
        return h


class _PreLayer(nn.Module):
    """Linear → BatchNorm → ReLU → row-wise L2 normalisation."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        self.norm = BatchNorm(dim)  # takes a one-row training batch too

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(torch.relu(self.norm(self.lin(x))), p=2.0, dim=-1)


class FeedForward(nn.Module):
    r"""Position-wise feed-forward network.

    .. math::
        \mathrm{FFN}(\mathbf{x}) = W_2\, \mathrm{Drop}\big(\mathrm{ReLU}(W_1 \mathbf{x} + b_1)\big)
            + b_2, \qquad W_1 \in \mathbb{R}^{mD \times D},\ W_2 \in \mathbb{R}^{D \times mD}.

    Args:
        dim (int): input and output width :math:`D`.
        mult (int, optional): hidden width multiplier :math:`m`. (default: ``2``)
        dropout (float, optional): dropout after the activation. (default: ``0.0``)

    Shapes:
        - **input**: :math:`(N, D)`; **output**: :math:`(N, D)`
    """

    def __init__(self, dim: int, mult: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, mult * dim)
        self.lin2 = nn.Linear(mult * dim, dim)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.dropout(self.act(self.lin1(x))))  # [N, D]


class _Block(nn.Module):
    """Holds ``attn``, then residual + norm, FFN, residual + norm; subclasses add ``forward``."""

    def __init__(self, attn: nn.Module, dim: int, dropout: float, norm: str) -> None:
        super().__init__()
        self.dim = dim
        self.attn = attn
        self.norm1 = make_norm(norm, dim)
        self.ffn = FeedForward(dim, mult=2, dropout=dropout)
        self.norm2 = make_norm(norm, dim)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        for module in (self.attn, self.norm1, self.ffn, self.norm2):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def _finish(self, residual: Tensor, attn_out: Tensor) -> Tensor:
        h = self.norm1(residual + self.dropout(attn_out))  # [n, D]
        return self.norm2(h + self.dropout(self.ffn(h)))  # [n, D]


class ASELayer(_Block):
    r"""One layer of the Attention Score Estimator (stage 1).

    :class:`~spexphormer.nn.attention.ScoreAttention` followed by the shared residual / norm /
    FFN block.

    Args:
        dim (int): width :math:`D` (4 or 8 in the reference).
        norm (str, optional): ``"graph"``, ``"batch"``, ``"layer"`` or ``"none"``.
            (default: ``"graph"``)
        dropout (float, optional): dropout on the attention and FFN outputs. (default: ``0.0``)
        heads (int, optional): attention heads. (default: ``1``)
        num_edge_types (int, optional): number of edge types. (default: ``3``)

    Shapes:
        - **x**: :math:`(N, D)`; **edge_index**: :math:`(2, E)`; **edge_type**: :math:`(E,)`
        - **output**: ``(x', alpha)``: :math:`(N, D)` and :math:`(E, H)`
    """

    def __init__(
        self,
        dim: int,
        norm: str = "graph",
        dropout: float = 0.0,
        heads: int = 1,
        num_edge_types: int = 3,
    ) -> None:
        attn = ScoreAttention(dim, heads=heads, num_edge_types=num_edge_types)
        super().__init__(attn, dim, dropout, norm)

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_type: Tensor, temperature: float = 1.0, csr=None
    ) -> Tuple[Tensor, Tensor]:
        out, alpha = self.attn(x, edge_index, edge_type, temperature, csr=csr)  # [N, D], [E, H]
        return self._finish(x, out), alpha


class ExphormerLayer(_Block):
    r"""Full-batch Exphormer layer on an edge list.

    :class:`~spexphormer.nn.attention.EdgeListAttention` followed by the shared residual / norm /
    FFN block.

    Args:
        dim (int): width :math:`D`.
        heads (int): attention heads :math:`H`.
        dropout (float, optional): dropout on the attention and FFN outputs. (default: ``0.0``)
        norm (str, optional): ``"batch"``, ``"graph"``, ``"layer"`` or ``"none"``.
            (default: ``"batch"``)
        num_edge_types (int, optional): number of edge types. (default: ``3``)
        scale_logits (bool, optional): multiply the logits by :math:`1/\sqrt{d_h}`; the method
            does not. (default: ``False``)

    Shapes:
        - **x**: :math:`(N, D)`; **edge_index**: :math:`(2, E)`; **edge_type**: :math:`(E,)`
        - **output**: :math:`(N, D)`, or ``(x', alpha)`` with alpha :math:`(E, H)` if
          ``return_attention``
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        norm: str = "batch",
        num_edge_types: int = 3,
        scale_logits: bool = False,
    ) -> None:
        attn = EdgeListAttention(dim, heads, num_edge_types=num_edge_types, scale_logits=scale_logits)
        super().__init__(attn, dim, dropout, norm)

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_type: Tensor, return_attention: bool = False
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        out, alpha = self.attn(x, edge_index, edge_type, return_attention=True)
        x = self._finish(x, out)  # [N, D]
        return (x, alpha) if return_attention else x


class SpexphormerLayer(_Block):
    r"""Stage-2 layer on a fixed-degree neighbour table.

    :class:`~spexphormer.nn.attention.NeighbourAttention` followed by the shared residual / norm /
    FFN block; the residual uses the first :math:`n_{out}` rows of the input (the destination rows
    are a prefix of the source rows). Same ``state_dict`` keys as :class:`ExphormerLayer`.

    Args:
        dim (int): width :math:`D`.
        heads (int): attention heads :math:`H`.
        dropout (float, optional): dropout on the attention and FFN outputs. (default: ``0.0``)
        norm (str, optional): ``"batch"``, ``"graph"``, ``"layer"`` or ``"none"``.
            (default: ``"batch"``)
        num_edge_types (int, optional): number of edge types. (default: ``3``)
        scale_logits (bool, optional): multiply the logits by :math:`1/\sqrt{d_h}`; the method
            does not. (default: ``False``)

    Shapes:
        - **h**: :math:`(n_{in}, D)`; **index**, **edge_type**: :math:`(n_{out}, k)`
        - **output**: :math:`(n_{out}, D)`, or ``(h', alpha)`` with alpha
          :math:`(n_{out}, k, H)` if ``return_attention``
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dropout: float = 0.0,
        norm: str = "batch",
        num_edge_types: int = 3,
        scale_logits: bool = False,
    ) -> None:
        attn = NeighbourAttention(dim, heads, num_edge_types=num_edge_types, scale_logits=scale_logits)
        super().__init__(attn, dim, dropout, norm)

    def forward(
        self, h: Tensor, index: Tensor, edge_type: Tensor, return_attention: bool = False
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        n_out = index.size(0)
        out, alpha = self.attn(h, index, edge_type, return_attention=True)  # [n_out, D]
        h = self._finish(h[:n_out], out)  # [n_out, D]
        return (h, alpha) if return_attention else h


class TransformerBackbone(nn.Module):
    r"""Encoder, :math:`L` layers of class ``layer_class`` and a linear head.

    The shared body of the three models: :class:`~spexphormer.nn.AttentionScoreEstimator`
    (:class:`ASELayer`), :class:`~spexphormer.nn.Exphormer` (edge-list layers) and
    :class:`~spexphormer.nn.Spexphormer` (fixed-degree layers). The last two have the same
    ``state_dict`` keys, so weights transfer between the full-batch and the sampled form.
    Subclasses set ``layer_class`` and write ``forward``; ``layer_options`` (e.g.
    ``scale_logits`` for the wide layers) are passed on to every layer.
    """

    layer_class: type

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: int,
        heads: int,
        num_layers: int,
        dropout: float = 0.0,
        norm: str = "batch",
        num_edge_types: int = 3,
        pre_layers: int = 1,
        **layer_options,
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.encoder = InputEncoder(in_dim, hidden, pre_layers)
        self.layers = nn.ModuleList(
            self.layer_class(hidden, heads=heads, dropout=dropout, norm=norm, num_edge_types=num_edge_types,
                             **layer_options)
            for _ in range(num_layers)
        )
        self.head = nn.Linear(hidden, out_dim)

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        self.head.reset_parameters()

