r"""Spexphormer (stage 2): the wide network on sampled, fixed-degree neighbour tables."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from spexphormer.nn.layers import SpexphormerLayer, TransformerBackbone

__all__ = ["Spexphormer"]


class Spexphormer(TransformerBackbone):
    r"""Wide graph transformer on per-layer sampled neighbour tables (mini-batch).

    A batch has node sets :math:`S_0 \supseteq S_1 \supseteq \dots \supseteq S_L` (core nodes),
    each :math:`S_{\ell+1}` a prefix of :math:`S_\ell`. Layer :math:`\ell` reads the
    :math:`|S_\ell|` rows of :math:`\mathbf{h}^{(\ell)}` and writes :math:`|S_{\ell+1}|` rows:

    .. math::
        \mathbf{h}^{(0)} = \mathrm{Encoder}(\mathbf{x}_{S_0}), \qquad
        \mathbf{h}^{(\ell+1)} = \mathrm{SpexphormerLayer}_\ell\big(\mathbf{h}^{(\ell)},
            \mathrm{index}_\ell, \mathrm{type}_\ell\big), \qquad
        \hat{\mathbf{y}} = W_{out} \mathbf{h}^{(L)} + b_{out},

    where row :math:`i` of :math:`\mathrm{index}_\ell` lists the :math:`k_\ell` sampled in-edges
    of node :math:`S_{\ell+1}[i]` as rows of :math:`S_\ell`. Same ``state_dict`` keys as
    :class:`~spexphormer.nn.Exphormer`.

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
        - **x**: :math:`(n_0, F)`, the features of :math:`S_0`
        - **index**, **edge_type**: lists of :math:`L` tensors :math:`(n_{\ell+1}, k_\ell)`
        - **output**: logits :math:`(n_L, \text{out})` for the core nodes
    """

    layer_class = SpexphormerLayer

    def forward(
        self, x: Tensor, index: Sequence[Tensor], edge_type: Sequence[Tensor]
    ) -> Tensor:
        if len(index) != self.num_layers or len(edge_type) != self.num_layers:
            raise ValueError(
                f"expected {self.num_layers} neighbour tables and edge types, "
                f"got {len(index)} and {len(edge_type)}"
            )
        h = self.encoder(x)  # [n_0, D]
        for layer, idx, typ in zip(self.layers, index, edge_type):
            h = layer(h, idx, typ)  # [n_l, D] -> [n_{l+1}, D]
        return self.head(h)  # [n_L, out]
