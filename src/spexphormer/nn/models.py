r"""The three models, small to large: the narrow estimator (stage 1), the full-batch Exphormer
baseline, and the wide Spexphormer on sampled neighbour tables (stage 2).

All three are a :class:`~spexphormer.nn.layers.TransformerBackbone`:

.. math::
    \mathbf{h}^{(0)} = \mathrm{Encoder}(\mathbf{x}), \qquad
    \mathbf{h}^{(\ell+1)} = \mathrm{Layer}_\ell(\mathbf{h}^{(\ell)}), \qquad
    \hat{\mathbf{y}} = W_{out} \mathbf{h}^{(L)} + b_{out},

and differ in their layers' attention and in the graph they read. Their common arguments:

Args:
    in_dim (int): input feature width :math:`F`.
    out_dim (int): output width (1 for binary, :math:`C` for multi-class / multi-label).
    hidden (int): width :math:`D` (:math:`d_s` for the estimator).
    heads (int): attention heads :math:`H` (:math:`D` must be a multiple).
    num_layers (int): number of layers :math:`L`.
    dropout (float, optional): dropout inside the layers. (default: ``0.0``)
    norm (str, optional): norm inside the layers: ``"batch"``, ``"graph"``, ``"layer"``,
        ``"none"``.
    num_edge_types (int, optional): number of edge types. (default: ``NUM_EDGE_TYPES`` = 3:
        graph, expander, self-loop)
    pre_layers (int, optional): Linear→BN→ReLU→L2 blocks of the
        :class:`~spexphormer.nn.layers.InputEncoder`. (default: ``1``)
    scale_logits (bool, optional): wide models only: scale the attention logits by
        :math:`1/\sqrt{d_h}`; the method does not. (default: ``False``)
    type_terms (str, optional): parametrisation of the per-edge-type terms
        (:class:`~spexphormer.nn.type_terms.TypeTerms`): ``"embedding"``, the authors' (a type
        embedding shared by the layers, through each layer's linear maps), or ``"table"`` (learned
        tables starting at 1 and 0; checkpoints written before version 4). (default: ``"embedding"``)
    head_pairing (str, optional): :class:`Spexphormer` only: ``"per-head"`` (the method) or
        ``"reference"`` (the authors' reshape, see :class:`~spexphormer.nn.attention.NeighbourAttention`).
        (default: ``"per-head"``)
    recompute (bool, optional): :class:`Spexphormer` only: recompute each layer's activations in
        the backward pass (:mod:`spexphormer.nn.recompute`). (default: ``False``)

:class:`Exphormer` and :class:`Spexphormer` have the same ``state_dict`` keys (``encoder.*``,
``type_embedding.weight``, ``layers.{l}.attn.{Q,K,V}.weight``, ``layers.{l}.attn.types.*``, ``layers.{l}.norm{1,2}.*``,
``layers.{l}.ffn.lin{1,2}.*``, ``head.*``), so weights transfer between the full-batch and the
sampled form.
"""

from __future__ import annotations

from typing import Sequence, Tuple, Union

from torch import Tensor

from spexphormer.graph.augment import NUM_EDGE_TYPES
from spexphormer.nn.layers import ASELayer, ExphormerLayer, SpexphormerLayer, TransformerBackbone
from spexphormer.nn.recompute import run_layer

__all__ = ["AttentionScoreEstimator", "Exphormer", "Spexphormer"]


class AttentionScoreEstimator(TransformerBackbone):
    r"""Stage 1: a narrow full-batch graph transformer whose attention scores are exported.

    Each layer uses :class:`~spexphormer.nn.attention.ScoreAttention` (per-type scaled logits,
    temperature :math:`T`, clamp :math:`\pm 8`, L2-normalised values) on the augmented graph; the
    scores :math:`\alpha^{(\ell)}` (heads averaged) are what stage 2 samples from. ``csr`` (a
    :class:`~spexphormer.nn.csr_attention.CSRGraph` of the same edges) selects the fused CPU
    kernels. Arguments as in the module docstring (defaults: width 4, 4 layers, 1 head, graph
    norm).

    Shapes:
        - **x**: :math:`(N, F)`; **edge_index**: :math:`(2, E)`; **edge_type**: :math:`(E,)`
        - **output**: logits :math:`(N, \text{out})`, or ``(logits, scores)`` with scores
          :math:`(L, E)` if ``return_scores``

    State dict: ``encoder.*``, ``type_embedding.weight`` (``"embedding"`` form),
    ``layers.{l}.attn.{Q,K,V}.weight``, ``layers.{l}.attn.types.*``, ``layers.{l}.attn.value_scale``,
    ``layers.{l}.norm{1,2}.*``, ``layers.{l}.ffn.lin{1,2}.*``, ``head.*``.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 4, num_layers: int = 4, heads: int = 1,
                 norm: str = "graph", dropout: float = 0.0, num_edge_types: int = NUM_EDGE_TYPES,
                 pre_layers: int = 1, type_terms: str = "embedding") -> None:
        super().__init__(in_dim, out_dim, hidden, num_layers,
                         lambda emb: ASELayer(hidden, heads, dropout, norm, num_edge_types, type_terms, emb),
                         pre_layers, type_terms, num_edge_types)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, temperature: float = 1.0,
                return_scores: bool = False, csr=None) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        h = self.encoder(x)  # [N, d_s]
        h, scores = self.run_layers(h, edge_index, edge_type, temperature=temperature, csr=csr,
                                    return_scores=return_scores)  # [N, d_s], [L, E]
        logits = self.head(h)  # [N, out]
        return (logits, scores) if return_scores else logits


class Exphormer(TransformerBackbone):
    r"""The full-batch Exphormer baseline: the wide network on the whole augmented graph.

    Each layer uses :class:`~spexphormer.nn.attention.EdgeListAttention` over the graph, expander
    and self-loop edges. Arguments as in the module docstring.

    Shapes:
        - **x**: :math:`(N, F)`; **edge_index**: :math:`(2, E)`; **edge_type**: :math:`(E,)`
        - **output**: logits :math:`(N, \text{out})`, or ``(logits, scores)`` with scores
          :math:`(L, E)` if ``return_scores``
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int, heads: int, num_layers: int, dropout: float = 0.0,
                 norm: str = "batch", num_edge_types: int = NUM_EDGE_TYPES, pre_layers: int = 1,
                 scale_logits: bool = False, type_terms: str = "embedding") -> None:
        super().__init__(in_dim, out_dim, hidden, num_layers,
                         lambda emb: ExphormerLayer(hidden, heads, dropout, norm, num_edge_types, scale_logits,
                                                    type_terms, emb),
                         pre_layers, type_terms, num_edge_types)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor,
                return_scores: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        h = self.encoder(x)  # [N, D]
        h, scores = self.run_layers(h, edge_index, edge_type, return_scores=return_scores)  # [N, D], [L, E]
        logits = self.head(h)  # [N, out]
        return (logits, scores) if return_scores else logits


class Spexphormer(TransformerBackbone):
    r"""Stage 2: the wide graph transformer on per-layer sampled neighbour tables (mini-batch).

    A batch has node sets :math:`S_0 \supseteq S_1 \supseteq \dots \supseteq S_L` (the core
    nodes), each :math:`S_{\ell+1}` a prefix of :math:`S_\ell`. Layer :math:`\ell`
    (:class:`~spexphormer.nn.attention.NeighbourAttention`) reads the :math:`|S_\ell|` rows of
    :math:`\mathbf{h}^{(\ell)}` and writes :math:`|S_{\ell+1}|` rows; row :math:`i` of
    :math:`\mathrm{index}_\ell` lists the :math:`k_\ell` sampled in-edges of node
    :math:`S_{\ell+1}[i]` as rows of :math:`S_\ell`. Arguments as in the module docstring.

    Shapes:
        - **x**: :math:`(n_0, F)`, the features of :math:`S_0`
        - **index**, **edge_type**: lists of :math:`L` tensors :math:`(n_{\ell+1}, k_\ell)`
        - **output**: logits :math:`(n_L, \text{out})` for the core nodes
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int, heads: int, num_layers: int, dropout: float = 0.0,
                 norm: str = "batch", num_edge_types: int = NUM_EDGE_TYPES, pre_layers: int = 1,
                 scale_logits: bool = False, recompute: bool = False, type_terms: str = "embedding",
                 head_pairing: str = "per-head") -> None:
        super().__init__(in_dim, out_dim, hidden, num_layers,
                         lambda emb: SpexphormerLayer(hidden, heads, dropout, norm, num_edge_types, scale_logits,
                                                      type_terms, emb, head_pairing),
                         pre_layers, type_terms, num_edge_types)
        self.recompute = recompute

    def forward(self, x: Tensor, index: Sequence[Tensor], edge_type: Sequence[Tensor]) -> Tensor:
        if len(index) != self.num_layers or len(edge_type) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} neighbour tables and edge types, "
                             f"got {len(index)} and {len(edge_type)}")
        h = self.encoder(x)  # [n_0, D]
        for layer, idx, typ in zip(self.layers, index, edge_type):
            h = run_layer(layer, h, idx, typ, recompute=self.recompute)  # [n_l, D] -> [n_{l+1}, D]
        return self.head(h)  # [n_L, out]
