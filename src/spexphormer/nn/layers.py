r"""The building blocks of the three models: the input encoder, the feed-forward network, the
transformer layer and the backbone.

A :class:`TransformerLayer` is one attention module followed by what every layer shares:

.. math::
    \mathbf{h} = \mathrm{Norm}_1\big(\mathbf{x}_{dst} + \mathrm{Drop}(\mathrm{Attn}(\mathbf{x}))\big),
    \qquad
    \mathbf{x}' = \mathrm{Norm}_2\big(\mathbf{h} + \mathrm{Drop}(\mathrm{FFN}(\mathbf{h}))\big),

where :math:`\mathbf{x}_{dst}` are the rows the attention wrote (all rows on an edge list, the
destination prefix on a neighbour table). The three layers differ only in their attention
(:class:`ASELayer`: :class:`~spexphormer.nn.attention.ScoreAttention`; :class:`ExphormerLayer`:
:class:`~spexphormer.nn.attention.EdgeListAttention`; :class:`SpexphormerLayer`:
:class:`~spexphormer.nn.attention.NeighbourAttention`). The last two have the same ``state_dict``
keys, so a trained full-batch layer runs on sampled neighbour tables and vice versa.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spexphormer.nn.attention import EdgeListAttention, NeighbourAttention, ScoreAttention
from spexphormer.graph.augment import NUM_EDGE_TYPES
from spexphormer.nn.norms import BatchNorm, make_norm
from spexphormer.nn.type_terms import shared_type_embedding

__all__ = ["InputEncoder", "FeedForward", "TransformerLayer", "ASELayer", "ExphormerLayer", "SpexphormerLayer",
           "TransformerBackbone"]


class InputEncoder(nn.Module):
    r"""Node encoder shared by the three models: an input map, then ``pre_layers`` blocks.

    .. math::
        \mathbf{h}_0 = W_{in} \mathbf{x} + b_{in}, \qquad
        \mathbf{h}_{p+1} = \frac{\mathbf{u}_p}{\lVert \mathbf{u}_p \rVert_2},\quad
        \mathbf{u}_p = \mathrm{ReLU}\big(\mathrm{BN}(W_p \mathbf{h}_p)\big),

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
    """Linear → BatchNorm → ReLU → row-wise L2 normalisation. The linear map has no bias: the
    batch norm right after it would cancel one (GraphGym's layers, which the authors use, drop it
    there too)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim, bias=False)
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


class TransformerLayer(nn.Module):
    r"""One attention module, then residual + norm, feed-forward, residual + norm.

    Args:
        attn (nn.Module): Called as ``attn(x, *graph, return_attention=True, **options)``; returns
            ``(out, alpha)`` with ``out`` the rows it wrote, a prefix of ``x``'s rows.
        dim (int): width :math:`D`.
        dropout (float, optional): dropout on the attention and FFN outputs. (default: ``0.0``)
        norm (str, optional): ``"batch"``, ``"graph"``, ``"layer"`` or ``"none"``.
            (default: ``"batch"``)

    Shapes:
        - **x**: :math:`(n_{in}, D)`; **graph**: what ``attn`` takes (an edge list, or a
          neighbour table of :math:`n_{out}` rows)
        - **output**: :math:`(n_{out}, D)`, or ``(x', alpha)`` with the attention weights if
          ``return_attention``
    """

    def __init__(self, attn: nn.Module, dim: int, dropout: float = 0.0, norm: str = "batch") -> None:
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

    def forward(self, x: Tensor, *graph: Tensor, return_attention: bool = False,
                **options) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        out, alpha = self.attn(x, *graph, return_attention=True, **options)  # [n_out, D]
        x = self.post_attention(x[: out.size(0)], out)  # [n_out, D]
        return (x, alpha) if return_attention else x

    def post_attention(self, residual: Tensor, attn_out: Tensor) -> Tensor:
        """Residual + norm, feed-forward, residual + norm. Shapes: [n, D], [n, D] -> [n, D]."""
        h = self.norm1(residual + self.dropout(attn_out))  # [n, D]
        return self.norm2(h + self.dropout(self.ffn(h)))  # [n, D]


class ASELayer(TransformerLayer):
    """A :class:`TransformerLayer` with :class:`~spexphormer.nn.attention.ScoreAttention` (stage 1):
    ``forward(x, edge_index, edge_type, temperature=1.0, csr=None, return_attention=False)``."""

    def __init__(self, dim: int, heads: int = 1, dropout: float = 0.0, norm: str = "graph",
                 num_edge_types: int = NUM_EDGE_TYPES, type_terms: str = "embedding",
                 type_embedding: Optional[nn.Embedding] = None) -> None:
        super().__init__(ScoreAttention(dim, heads, num_edge_types, type_terms=type_terms,
                                        type_embedding=type_embedding), dim, dropout, norm)


class ExphormerLayer(TransformerLayer):
    """A :class:`TransformerLayer` with :class:`~spexphormer.nn.attention.EdgeListAttention` (full
    batch): ``forward(x, edge_index, edge_type, return_attention=False)``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, norm: str = "batch",
                 num_edge_types: int = NUM_EDGE_TYPES, scale_logits: bool = False, type_terms: str = "embedding",
                 type_embedding: Optional[nn.Embedding] = None) -> None:
        super().__init__(EdgeListAttention(dim, heads, num_edge_types, scale_logits=scale_logits, type_terms=type_terms,
                                           type_embedding=type_embedding), dim, dropout, norm)


class SpexphormerLayer(TransformerLayer):
    """A :class:`TransformerLayer` with :class:`~spexphormer.nn.attention.NeighbourAttention`
    (stage 2): ``forward(h, index, edge_type, return_attention=False)`` writes the first
    ``index.size(0)`` rows."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, norm: str = "batch",
                 num_edge_types: int = NUM_EDGE_TYPES, scale_logits: bool = False, type_terms: str = "embedding",
                 type_embedding: Optional[nn.Embedding] = None, head_pairing: str = "per-head") -> None:
        super().__init__(NeighbourAttention(dim, heads, num_edge_types, scale_logits=scale_logits, type_terms=type_terms,
                                            type_embedding=type_embedding, head_pairing=head_pairing),
                         dim, dropout, norm)


class TransformerBackbone(nn.Module):
    r"""Encoder, :math:`L` layers and a linear head: the body of the three models.

    Args:
        in_dim (int): input feature width :math:`F`.
        out_dim (int): output width (1 for binary, :math:`C` for multi-class / multi-label).
        hidden (int): width :math:`D`.
        num_layers (int): number of layers :math:`L`.
        make_layer (callable): ``make_layer(type_embedding) -> TransformerLayer``, called :math:`L`
            times with the shared type embedding (or None).
        pre_layers (int, optional): pre-layers of the :class:`InputEncoder`. (default: ``1``)
        type_terms (str, optional): parametrisation of the layers' per-type terms
            (:class:`~spexphormer.nn.type_terms.TypeTerms`); ``"embedding"`` creates the type
            embedding :math:`(T, D)` that all layers share. (default: ``"embedding"``)
        num_edge_types (int, optional): rows of that embedding. (default: ``NUM_EDGE_TYPES``)
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int, num_layers: int,
                 make_layer: Callable[[Optional[nn.Embedding]], TransformerLayer], pre_layers: int = 1,
                 type_terms: str = "embedding", num_edge_types: int = NUM_EDGE_TYPES) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.encoder = InputEncoder(in_dim, hidden, pre_layers)
        self.type_embedding = shared_type_embedding(type_terms, num_edge_types, hidden)
        self.layers = nn.ModuleList(make_layer(self.type_embedding) for _ in range(num_layers))
        self.head = nn.Linear(hidden, out_dim)

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        if self.type_embedding is not None:
            self.type_embedding.reset_parameters()
        for layer in self.layers:
            layer.reset_parameters()
        self.head.reset_parameters()

    def run_layers(self, h: Tensor, *graph: Tensor, return_scores: bool = False, **options):
        """All layers on one graph (an edge list), with each layer's scores if asked.

        Returns ``(h, scores)``; scores :math:`(L, E)` float32, detached, heads averaged (written
        layer by layer into one buffer: no list of :math:`L` rows plus a stacked copy), or None.
        """
        scores = None
        for i, layer in enumerate(self.layers):
            h, alpha = layer(h, *graph, return_attention=True, **options)  # [N, D], [E, H]
            if return_scores:
                if scores is None:
                    scores = h.new_empty(self.num_layers, alpha.size(0), dtype=torch.float32)
                scores[i] = alpha.detach().mean(dim=-1)  # [E]
            del alpha
        return h, scores
