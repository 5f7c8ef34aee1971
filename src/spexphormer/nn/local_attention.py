r"""The ``local-attention`` wide model: sparse attention plus a local message-passing branch.

Beyond the paper. Every layer runs two branches on the same sampled neighbour table (one row per
node: a self-loop, graph slots, expander slots, maybe padding; see
:mod:`spexphormer.sampling.typed`) and adds them, as GraphGPS does with full attention:

* the Exphormer attention of stage 2 over all the row's valid slots
  (:class:`~spexphormer.nn.attention.NeighbourAttention`, padding masked out);
* a classic GNN aggregation over the row's **graph** slots only (the graph edges among the
  sampled ones), with residual connection, normalisation and dropout as the strong classic-GNN
  baselines use them (Luo et al., 2024, "Classic GNNs are strong baselines").

The core rows of every layer's output can be concatenated before the head (jumping knowledge):
the core nodes are a prefix of every layer's rows, so this costs :math:`L \cdot B \cdot D` floats.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from spexphormer.graph import GRAPH_EDGE, PAD_EDGE, SELF_LOOP
from spexphormer.nn.attention import NeighbourAttention
from spexphormer.nn.layers import FeedForward, InputEncoder
from spexphormer.nn.norms import make_norm
from spexphormer.nn.recompute import run_layer
from spexphormer.nn.type_terms import shared_type_embedding
from spexphormer.utils.csr_matrix import csr_matrix

__all__ = ["LOCAL_KINDS", "BRANCHES", "LocalAggregation", "LocalAttentionLayer", "LocalAttentionNet"]

LOCAL_KINDS = ("sage", "sum", "gated")
BRANCHES = ("both", "attention", "local")


class LocalAggregation(nn.Module):
    r"""Message passing over the graph slots of a fixed-width neighbour table.

    For output row :math:`i` with graph slots :math:`G(i)` (slots of type 0; the self-loop,
    expander and padding slots are ignored):

    .. math::
        \text{sage:}\quad \mathbf{m}_i = W_r \mathbf{h}_i + W_n \frac{1}{\max(|G(i)|, 1)}
            \sum_{j \in G(i)} \mathbf{h}_j,
        \qquad
        \text{sum:}\quad \mathbf{m}_i = W_r \mathbf{h}_i + W_n \sum_{j \in G(i)} \mathbf{h}_j,

    .. math::
        \text{gated:}\quad \eta_{ij} = \sigma(A \mathbf{h}_i + B \mathbf{h}_j), \qquad
        \mathbf{m}_i = W_r \mathbf{h}_i + \frac{\sum_{j \in G(i)} \eta_{ij} \odot W_n \mathbf{h}_j}
            {\sum_{j \in G(i)} \eta_{ij} + \epsilon}

    (GraphSAGE-mean, a GIN-like sum, and GatedGCN's gated mean). A repeated slot counts once per
    slot. Messages are computed on node rows first; sage and sum aggregate them with one sparse
    CSR product over the graph slots (no per-edge rows at all), gated gathers the
    :math:`(|E_G|, D)` rows of the graph slots; never a dense :math:`(n, k, D)` table.

    Args:
        dim (int): width :math:`D`.
        kind (str, optional): ``"sage"``, ``"sum"`` or ``"gated"``. (default: ``"sage"``)
        eps (float, optional): :math:`\epsilon` of the gated mean. (default: ``1e-6``)

    Shapes:
        - **h**: :math:`(n_{in}, D)`; **index**, **edge_type**: :math:`(n_{out}, k)`
        - **output**: :math:`(n_{out}, D)`
    """

    def __init__(self, dim: int, kind: str = "sage", eps: float = 1e-6) -> None:
        super().__init__()
        if kind not in LOCAL_KINDS:
            raise ValueError(f"kind must be one of {', '.join(LOCAL_KINDS)}, got {kind!r}")
        self.kind, self.eps = kind, eps
        self.root = nn.Linear(dim, dim)
        self.neigh = nn.Linear(dim, dim, bias=False)
        if kind == "gated":
            self.gate_dst = nn.Linear(dim, dim)
            self.gate_src = nn.Linear(dim, dim, bias=False)

    def reset_parameters(self) -> None:
        for module in self.children():
            module.reset_parameters()

    def forward(self, h: Tensor, index: Tensor, edge_type: Tensor) -> Tensor:
        n_out = index.size(0)
        rows, slots = (edge_type == GRAPH_EDGE).nonzero(as_tuple=True)  # graph slots, row-major
        srcs = index[rows, slots]
        out = self.root(h[:n_out])  # [n_out, D]
        msg = self.neigh(h)  # [n_in, D]
        if self.kind == "gated":
            gate = torch.sigmoid(self.gate_dst(h[:n_out])[rows] + self.gate_src(h)[srcs])  # [E_G, D]
            num = torch.zeros_like(out).index_add(0, rows, gate * msg[srcs])
            den = torch.zeros_like(out).index_add(0, rows, gate)
            return out + num / (den + self.eps)
        return out + torch.sparse.mm(_graph_slot_matrix(rows, srcs, n_out, h.size(0), self.kind == "sage",
                                                        h.dtype), msg)  # [n_out, D]


def _graph_slot_matrix(rows: Tensor, srcs: Tensor, n_out: int, n_in: int, mean: bool, dtype) -> Tensor:
    """The graph slots as a sparse CSR matrix :math:`(n_{out}, n_{in})`: 1 per slot, or 1/count (mean).

    A sparse-dense product sums the messages without the :math:`(|E_G|, D)` gathered rows that an
    ``index_add`` needs, and its backward is another sparse product: about 4x faster on CPU.
    ``rows`` must be sorted (row-major slots).
    """
    count = torch.bincount(rows, minlength=n_out)  # [n_out]
    values = (1.0 / count.clamp(min=1).to(dtype))[rows] if mean else torch.ones(rows.numel(), dtype=dtype,
                                                                                 device=rows.device)
    return csr_matrix(rows, srcs, values, (n_out, n_in), row_counts=count)


class LocalAttentionLayer(nn.Module):
    r"""One layer of :class:`LocalAttentionNet`: attention and local branches, then a feed-forward block.

    With :math:`\mathbf{x} = \mathbf{h}_{:n_{out}}` (the destination rows are a prefix of the
    source rows):

    .. math::
        \mathbf{a} = \mathrm{Norm}_A\big(\mathbf{x} + \mathrm{Drop}(\mathrm{Attn}(\mathbf{h}))\big),
        \qquad
        \mathbf{l} = \mathrm{Norm}_L\big(\mathbf{x} + \mathrm{Drop}(\mathrm{ReLU}(
            \mathrm{Local}(\mathbf{h})))\big),

    .. math::
        \mathbf{u} = \mathbf{a} + \mathbf{l}, \qquad
        \mathbf{h}' = \mathrm{Norm}_2\big(\mathbf{u} + \mathrm{Drop}(\mathrm{FFN}(\mathbf{u}))\big),

    where Attn is :class:`~spexphormer.nn.attention.NeighbourAttention` over the non-padding
    slots and Local is :class:`LocalAggregation`. ``branches="attention"`` keeps only
    :math:`\mathbf{a}`, ``"local"`` only :math:`\mathbf{l}` (the ablations).

    Args:
        dim (int): width :math:`D`.
        heads (int): attention heads :math:`H`.
        dropout (float, optional): dropout on both branches and the FFN. (default: ``0.0``)
        norm (str, optional): ``"batch"``, ``"graph"``, ``"layer"`` or ``"none"``. (default: ``"batch"``)
        local (str, optional): the local branch, see :class:`LocalAggregation`. (default: ``"sage"``)
        branches (str, optional): ``"both"``, ``"attention"`` or ``"local"``. (default: ``"both"``)
        scale_logits (bool, optional): scale the attention logits by :math:`1/\sqrt{d_h}`. (default: ``False``)
        type_terms (str, optional): the attention's per-type terms (:class:`~spexphormer.nn.type_terms.TypeTerms`).
            (default: ``"table"``)
        type_embedding (nn.Embedding, optional): the model's shared type embedding. (default: ``None``)

    Shapes:
        - **h**: :math:`(n_{in}, D)`; **index**, **edge_type**: :math:`(n_{out}, k)`, types 0-2 or 3
          (padding)
        - **output**: :math:`(n_{out}, D)`
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, norm: str = "batch", local: str = "sage",
                 branches: str = "both", scale_logits: bool = False, type_terms: str = "table",
                 type_embedding: Optional[nn.Embedding] = None) -> None:
        super().__init__()
        if branches not in BRANCHES:
            raise ValueError(f"branches must be one of {', '.join(BRANCHES)}, got {branches!r}")
        self.branches = branches
        if branches in ("both", "attention"):
            self.attn = NeighbourAttention(dim, heads, num_edge_types=3, scale_logits=scale_logits,
                                           type_terms=type_terms, type_embedding=type_embedding)
            self.norm_attn = make_norm(norm, dim)
        if branches in ("both", "local"):
            self.local = LocalAggregation(dim, local)
            self.norm_local = make_norm(norm, dim)
        self.ffn = FeedForward(dim, mult=2, dropout=dropout)
        self.norm2 = make_norm(norm, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, index: Tensor, edge_type: Tensor) -> Tensor:
        x = h[: index.size(0)]
        u = 0
        if self.branches != "local":
            pad = edge_type == PAD_EDGE
            out = self.attn(h, index, edge_type.masked_fill(pad, SELF_LOOP), mask=~pad if bool(pad.any()) else None)
            u = self.norm_attn(x + self.dropout(out))
        if self.branches != "attention":
            u = u + self.norm_local(x + self.dropout(torch.relu(self.local(h, index, edge_type))))
        return self.norm2(u + self.dropout(self.ffn(u)))


class LocalAttentionNet(nn.Module):
    r"""The ``local-attention`` wide model on per-layer sampled neighbour tables (mini-batch).

    Node sets :math:`S_0 \supseteq \dots \supseteq S_L` as for
    :class:`~spexphormer.nn.Spexphormer`; layer :math:`\ell` reads :math:`|S_\ell|` rows and
    writes :math:`|S_{\ell+1}|`:

    .. math::
        \mathbf{h}^{(0)} = \mathrm{Encoder}(\mathrm{Drop}_{in}(\mathbf{x}_{S_0})), \qquad
        \mathbf{h}^{(\ell+1)} = \mathrm{LocalAttentionLayer}_\ell(\mathbf{h}^{(\ell)},
            \mathrm{index}_\ell, \mathrm{type}_\ell),

    .. math::
        \hat{\mathbf{y}} = W_{out}\, \mathbf{h}^{(L)} + b_{out}
        \quad\text{or, with jumping knowledge,}\quad
        \hat{\mathbf{y}} = W_{out} \big[\mathbf{h}^{(1)}_{:B} \,\Vert\, \cdots \,\Vert\,
            \mathbf{h}^{(L)}_{:B}\big] + b_{out},

    :math:`B = |S_L|` the core nodes.

    Args:
        in_dim (int): input feature width :math:`F`.
        out_dim (int): output width (1 for binary, :math:`C` for multi-class / multi-label).
        hidden (int): width :math:`D`.
        heads (int): attention heads :math:`H`.
        num_layers (int): layers :math:`L`.
        dropout (float, optional): dropout inside the layers. (default: ``0.0``)
        norm (str, optional): norm inside the layers. (default: ``"batch"``)
        pre_layers (int, optional): pre-layers of the :class:`~spexphormer.nn.layers.InputEncoder`.
            (default: ``1``)
        local (str, optional): ``"sage"``, ``"sum"`` or ``"gated"``. (default: ``"sage"``)
        branches (str, optional): ``"both"``, ``"attention"`` or ``"local"``. (default: ``"both"``)
        jk (bool, optional): jumping knowledge (concatenate every layer's core rows). (default: ``False``)
        input_dropout (float, optional): dropout on the input features, :math:`\mathrm{Drop}_{in}`.
            (default: ``0.0``)
        scale_logits (bool, optional): scale the attention logits by :math:`1/\sqrt{d_h}`. (default: ``False``)
        type_terms (str, optional): the attention's per-type terms (:class:`~spexphormer.nn.type_terms.TypeTerms`);
            ``"table"`` (learned tables starting at 1 and 0) is the form the presets were searched with.
            (default: ``"table"``)
        recompute (bool, optional): recompute each layer's activations in the backward pass
            (:mod:`spexphormer.nn.recompute`): less memory per step, 1.3-1.6x the time (measured).
            (default: ``False``)

    Shapes:
        - **x**: :math:`(n_0, F)`, the features of :math:`S_0`
        - **index**, **edge_type**: lists of :math:`L` tensors :math:`(n_{\ell+1}, k_\ell)`
        - **output**: logits :math:`(n_L, \text{out})` for the core nodes
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int, heads: int, num_layers: int, dropout: float = 0.0,
                 norm: str = "batch", pre_layers: int = 1, local: str = "sage", branches: str = "both",
                 jk: bool = False, input_dropout: float = 0.0, scale_logits: bool = False,
                 recompute: bool = False, type_terms: str = "table") -> None:
        super().__init__()
        self.num_layers, self.jk, self.recompute = num_layers, jk, recompute
        self.input_dropout = nn.Dropout(input_dropout)
        self.encoder = InputEncoder(in_dim, hidden, pre_layers)
        self.type_embedding = shared_type_embedding(type_terms, 3, hidden) if branches != "local" else None
        self.layers = nn.ModuleList(
            LocalAttentionLayer(hidden, heads, dropout, norm, local, branches, scale_logits, type_terms,
                                self.type_embedding)
            for _ in range(num_layers))
        self.head = nn.Linear(hidden * (num_layers if jk else 1), out_dim)

    def forward(self, x: Tensor, index: Sequence[Tensor], edge_type: Sequence[Tensor]) -> Tensor:
        if len(index) != self.num_layers or len(edge_type) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} neighbour tables and edge types, "
                             f"got {len(index)} and {len(edge_type)}")
        h = self.encoder(self.input_dropout(x))  # [n_0, D]
        outs = []
        for layer, idx, typ in zip(self.layers, index, edge_type):
            h = run_layer(layer, h, idx, typ, recompute=self.recompute)  # [n_l, D] -> [n_{l+1}, D]
            outs.append(h)
        if self.jk:
            n_core = h.size(0)
            h = torch.cat([o[:n_core] for o in outs], dim=1)  # [B, L * D]
        return self.head(h)  # [B, out]
