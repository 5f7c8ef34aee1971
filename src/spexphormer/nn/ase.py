r"""The Attention Score Estimator (stage 1): a narrow transformer whose attention is exported."""

from __future__ import annotations

from typing import Tuple, Union

import torch
from torch import Tensor

from spexphormer.nn.layers import ASELayer, TransformerBackbone

__all__ = ["AttentionScoreEstimator"]


class AttentionScoreEstimator(TransformerBackbone):
    r"""Narrow full-batch graph transformer that estimates per-edge attention scores.

    .. math::
        \mathbf{h}^{(0)} = \mathrm{Encoder}(\mathbf{x}), \qquad
        \mathbf{h}^{(\ell+1)}, \boldsymbol{\alpha}^{(\ell)} =
            \mathrm{ASELayer}_\ell(\mathbf{h}^{(\ell)}, T), \qquad
        \hat{\mathbf{y}} = W_{out} \mathbf{h}^{(L)} + b_{out},

    where each layer uses :class:`~spexphormer.nn.attention.ScoreAttention` (per-type scaled
    logits, temperature :math:`T`, clamp :math:`\pm 8`, L2-normalised values) on the augmented
    graph. The scores :math:`\alpha^{(\ell)}` (averaged over heads) are what stage 2 samples from.
    ``csr`` (a :class:`~spexphormer.nn.csr_attention.CSRGraph` of the same edges) selects the
    fused CPU kernels.

    Args:
        in_dim (int): input feature width :math:`F`.
        out_dim (int): output width (1 for binary, :math:`C` for multi-class / multi-label).
        hidden (int, optional): width :math:`d_s`. (default: ``4``)
        num_layers (int, optional): number of attention layers :math:`L`. (default: ``4``)
        heads (int, optional): attention heads. (default: ``1``)
        norm (str, optional): norm inside the layers. (default: ``"graph"``)
        dropout (float, optional): dropout inside the layers. (default: ``0.0``)
        num_edge_types (int, optional): number of edge types. (default: ``3``)
        pre_layers (int, optional): pre-layers of the
            :class:`~spexphormer.nn.layers.InputEncoder`. (default: ``1``)

    Shapes:
        - **x**: :math:`(N, F)`; **edge_index**: :math:`(2, E)`; **edge_type**: :math:`(E,)`
        - **output**: logits :math:`(N, \text{out})`, or ``(logits, scores)`` with scores
          :math:`(L, E)` (detached, float32, heads averaged) if ``return_scores``.

    State dict: ``encoder.*``, ``layers.{l}.attn.{Q,K,V}.weight``, ``layers.{l}.attn.type_scale``,
    ``layers.{l}.attn.type_bias``, ``layers.{l}.attn.value_scale``, ``layers.{l}.norm{1,2}.*``,
    ``layers.{l}.ffn.lin{1,2}.*``, ``head.*``.
    """

    layer_class = ASELayer

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: int = 4,
        num_layers: int = 4,
        heads: int = 1,
        norm: str = "graph",
        dropout: float = 0.0,
        num_edge_types: int = 3,
        pre_layers: int = 1,
    ) -> None:
        super().__init__(in_dim, out_dim, hidden, heads, num_layers, dropout, norm, num_edge_types, pre_layers)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_type: Tensor,
        temperature: float = 1.0,
        return_scores: bool = False,
        csr=None,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        h = self.encoder(x)  # [N, d_s]
        # Written layer by layer into one buffer: no list of L rows plus a stacked copy.
        scores = x.new_empty(len(self.layers), edge_index.size(1), dtype=torch.float32) if return_scores else None
        for i, layer in enumerate(self.layers):
            h, alpha = layer(h, edge_index, edge_type, temperature, csr=csr)  # [N, d_s], [E, H]
            if return_scores:
                scores[i] = alpha.detach().mean(dim=-1)  # [E], heads averaged
            del alpha
        logits = self.head(h)  # [N, out]
        if return_scores:
            return logits, scores  # [L, E]
        return logits
