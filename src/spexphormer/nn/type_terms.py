r"""The per-edge-type terms of an attention layer, in one place for every model.

Each attention layer scales or gates its logits by the type :math:`t` of an edge (0 graph,
1 expander, 2 self-loop) and shifts them per type and head. :class:`TypeTerms` gives a layer its
two tables, a gate :math:`g \in \mathbb{R}^{T \times G}` and a bias
:math:`b \in \mathbb{R}^{T \times H}`, in one of two parametrisations of the same function class:

* ``"embedding"`` (the authors' code; the default of the paper's models): a learned type
  embedding :math:`e_t \in \mathbb{R}^{d_e}` (a table the model shares between its layers) goes
  through learned linear maps of each layer,

  .. math::
      g_t = W_1 e_t, \qquad b_t = W_2 e_t + c,

  with :math:`W_1 \in \mathbb{R}^{G \times d_e}`, :math:`W_2 \in \mathbb{R}^{H \times d_e}`,
  :math:`c \in \mathbb{R}^H`, all at PyTorch's default initialisation (embedding
  :math:`\mathcal{N}(0, 1)`, linear maps uniform), so the gate starts random.
* ``"table"``: :math:`g` and :math:`b` are learned directly, starting at 1 and 0 (plain
  dot-product attention at initialisation).

Why the parametrisation matters: an optimiser such as AdamW moves each parameter by about the
learning rate per step, so a directly learned gate moves by about 1 in 100 full-batch epochs,
while a product of learned tensors moves much faster. From the same weights, one AdamW step of
the estimator moved the per-type scale up to 0.149 further in the table form than in the
authors' code; in the embedding form every block, gradient and step agrees with theirs to float32
rounding (``benchmarks/reference_diff.py``; docs/method.md, "Per-type terms").
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = ["TypeTerms", "TYPE_TERM_FORMS", "shared_type_embedding"]

TYPE_TERM_FORMS = ("embedding", "table")


class TypeTerms(nn.Module):
    r"""The gate :math:`g` :math:`(T, G)` and logit bias :math:`b` :math:`(T, H)` of one attention
    layer (the module docstring has the math of both forms).

    Args:
        gate_dim (int): width :math:`G` of the gate (the layer's width :math:`D` for a per-channel
            gate, or :math:`H` for one scalar per head).
        heads (int): number of heads :math:`H`.
        num_edge_types (int): number of edge types :math:`T`.
        form (str, optional): ``"embedding"`` or ``"table"``. (default: ``"embedding"``)
        embedding (nn.Embedding, optional): the model's shared type embedding :math:`(T, d_e)`
            (``"embedding"`` form only); a layer without one gets its own of width
            ``gate_dim``. (default: ``None``)

    Shapes:
        - **output**: ``(gate, bias)``: :math:`(T, G)` and :math:`(T, H)`

    State dict: ``"embedding"``: ``E1.weight`` :math:`(G, d_e)`, ``E2.weight`` :math:`(H, d_e)`,
    ``E2.bias`` :math:`(H,)` and the shared ``embedding.weight`` :math:`(T, d_e)`;
    ``"table"``: ``gate`` :math:`(T, G)`, ``bias`` :math:`(T, H)`.
    """

    def __init__(self, gate_dim: int, heads: int, num_edge_types: int, form: str = "embedding",
                 embedding: Optional[nn.Embedding] = None) -> None:
        super().__init__()
        if form not in TYPE_TERM_FORMS:
            raise ValueError(f"form must be one of {TYPE_TERM_FORMS}, got {form!r}")
        if form == "table" and embedding is not None:
            raise ValueError("the 'table' form takes no type embedding")
        self.form = form
        self.num_edge_types = num_edge_types
        self.owns_embedding = embedding is None
        if form == "embedding":
            self.embedding = embedding if embedding is not None else nn.Embedding(num_edge_types, gate_dim)
            if self.embedding.num_embeddings != num_edge_types:
                raise ValueError(f"the type embedding has {self.embedding.num_embeddings} rows, "
                                 f"expected {num_edge_types}")
            self.E1 = nn.Linear(self.embedding.embedding_dim, gate_dim, bias=False)
            self.E2 = nn.Linear(self.embedding.embedding_dim, heads, bias=True)
        else:
            self.gate = nn.Parameter(torch.empty(num_edge_types, gate_dim))
            self.bias = nn.Parameter(torch.empty(num_edge_types, heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise this layer's maps or tables (a shared embedding is the model's to reset)."""
        if self.form == "embedding":
            if self.owns_embedding:
                self.embedding.reset_parameters()
            self.E1.reset_parameters()
            self.E2.reset_parameters()
        else:
            nn.init.ones_(self.gate)
            nn.init.zeros_(self.bias)

    def forward(self) -> Tuple[Tensor, Tensor]:
        if self.form == "table":
            return self.gate, self.bias
        e = self.embedding.weight  # [T, d_e]
        return self.E1(e), self.E2(e)  # [T, G], [T, H]

    def extra_repr(self) -> str:
        return f"form={self.form!r}, num_edge_types={self.num_edge_types}"


def shared_type_embedding(form: str, num_edge_types: int, dim: int) -> Optional[nn.Embedding]:
    """The type embedding :math:`(T, d_e)` a model shares between its layers in the ``"embedding"``
    form (the authors' code keeps one such table, of the model's width, in its edge encoder);
    None in the ``"table"`` form."""
    if form not in TYPE_TERM_FORMS:
        raise ValueError(f"type_terms must be one of {TYPE_TERM_FORMS}, got {form!r}")
    return nn.Embedding(num_edge_types, dim) if form == "embedding" else None
