r"""Full-batch Exphormer: the wide network on the whole augmented graph (baseline)."""

from __future__ import annotations

from typing import Tuple, Union

import torch
from torch import Tensor

from spexphormer.nn.layers import ExphormerLayer, TransformerBackbone

__all__ = ["Exphormer"]


class Exphormer(TransformerBackbone):
    r"""Exphormer graph transformer, full batch on an edge list.

    .. math::
        \mathbf{h}^{(0)} = \mathrm{Encoder}(\mathbf{x}), \qquad
        \mathbf{h}^{(\ell+1)} = \mathrm{ExphormerLayer}_\ell(\mathbf{h}^{(\ell)}), \qquad
        \hat{\mathbf{y}} = W_{out} \mathbf{h}^{(L)} + b_{out},

    with :class:`~spexphormer.nn.attention.EdgeListAttention` over the graph, expander and
    self-loop edges. Same ``state_dict`` keys as :class:`~spexphormer.nn.Spexphormer`, so weights
    transfer between the full-batch and the sampled form.

    Args:
        in_dim (int): input feature width :math:`F`.
        out_dim (int): output width (1 for binary, :math:`C` for multi-class / multi-label).
        hidden (int): width :math:`D`.
        heads (int): attention heads :math:`H` (:math:`D` must be a multiple).
        num_layers (int): number of layers :math:`L`.
        dropout (float, optional): dropout inside the layers. (default: ``0.0``)
        norm (str, optional): norm inside the layers. (default: ``"batch"``)
        num_edge_types (int, optional): number of edge types. (default: ``3``)
        pre_layers (int, optional): pre-layers of the
            :class:`~spexphormer.nn.layers.InputEncoder` (Linear, BN, ReLU, L2 normalisation).
            (default: ``1``)
        scale_logits (bool, optional): scale the attention logits by :math:`1/\sqrt{d_h}`; the
            method does not. (default: ``False``)

    Shapes:
        - **x**: :math:`(N, F)`; **edge_index**: :math:`(2, E)`; **edge_type**: :math:`(E,)`
        - **output**: logits :math:`(N, \text{out})`, or ``(logits, scores)`` with scores
          :math:`(L, E)` (detached, float32, heads averaged) if ``return_scores``.

    State dict: ``encoder.*``, ``layers.{l}.attn.{Q,K,V}.weight``, ``layers.{l}.attn.E1.weight``,
    ``layers.{l}.attn.E2.weight``, ``layers.{l}.norm{1,2}.*``, ``layers.{l}.ffn.lin{1,2}.*``,
    ``head.*``.
    """

    layer_class = ExphormerLayer

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_type: Tensor, return_scores: bool = False
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        h = self.encoder(x)  # [N, D]
        scores = []
        for layer in self.layers:
            h, alpha = layer(h, edge_index, edge_type, return_attention=True)  # [N, D], [E, H]
            if return_scores:
                scores.append(alpha.detach().mean(dim=-1).float())  # [E]
        logits = self.head(h)  # [N, out]
        if return_scores:
            return logits, torch.stack(scores)  # [L, E]
        return logits
