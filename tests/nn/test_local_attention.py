"""The local-attention model against references written from its formulas (row by row, edge by edge)."""

import math

import pytest
import torch

from spexphormer.nn.local_attention import LocalAggregation, LocalAttentionLayer, LocalAttentionNet
from tests.helpers import type_tables

PAD = 3


def _table(n_in=9, n_out=5, k=6, seed=0):
    """A neighbour table with every slot type, padding pointing at the row itself, slot 0 the self-loop."""
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, n_in, (n_out, k), generator=g)
    etype = torch.randint(0, 2, (n_out, k), generator=g)  # graph / expander
    index[:, 0], etype[:, 0] = torch.arange(n_out), 2
    pad = torch.rand(n_out, k, generator=g) < 0.3
    pad[:, 0] = False
    pad[0, 1:] = True  # a row with nothing but its self-loop
    index[pad] = torch.arange(n_out).unsqueeze(1).expand(n_out, k)[pad]
    etype[pad] = PAD
    return torch.randn(n_in, 8, generator=g, dtype=torch.float64), index, etype


def _reference_local(agg: LocalAggregation, h, index, etype):
    out = []
    for i in range(index.size(0)):
        m = agg.root(h[i])
        slots = [s for s in range(index.size(1)) if etype[i, s] == 0]
        if agg.kind == "gated":
            num, den = torch.zeros_like(m), torch.zeros_like(m)
            for s in slots:
                j = index[i, s]
                gate = torch.sigmoid(agg.gate_dst(h[i]) + agg.gate_src(h[j]))
                num, den = num + gate * agg.neigh(h[j]), den + gate
            out.append(m + num / (den + agg.eps))
            continue
        total = sum((agg.neigh(h[index[i, s]]) for s in slots), torch.zeros_like(m))
        if agg.kind == "sage":
            total = total / max(len(slots), 1)
        out.append(m + total)
    return torch.stack(out)


@pytest.mark.parametrize("kind", ["sage", "sum", "gated"])
def test_local_aggregation_matches_the_edge_by_edge_formula(kind):
    torch.manual_seed(0)
    h, index, etype = _table()
    agg = LocalAggregation(8, kind).double()
    h.requires_grad_(True)
    out, ref = agg(h, index, etype), _reference_local(agg, h, index, etype)
    torch.testing.assert_close(out, ref)
    w = torch.randn_like(out)  # and the same gradients, for the input and every weight
    grads = torch.autograd.grad((out * w).sum(), [h, *agg.parameters()])
    ref_grads = torch.autograd.grad((ref * w).sum(), [h, *agg.parameters()])
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)


def _reference_attention(attn, h, index, etype):
    """Exphormer attention written from its formula, over the non-padding slots of each row."""
    H, d = attn.heads, attn.head_dim
    E1, E2 = type_tables(attn)
    out = torch.zeros(index.size(0), H * d, dtype=h.dtype)
    for i in range(index.size(0)):
        q = attn.Q(h[i]).view(H, d)
        for hd in range(H):
            logits, vals = [], []
            for s in range(index.size(1)):
                t = int(etype[i, s])
                if t == PAD:
                    continue
                j = index[i, s]
                k = attn.K(h[j]).view(H, d)[hd] * E1[t].view(H, d)[hd]
                z = (q[hd] * k).sum() + E2[t, hd]
                logits.append(z.clamp(-attn.clamp, attn.clamp))
                vals.append(attn.V(h[j]).view(H, d)[hd])
            a = torch.softmax(torch.stack(logits), 0)
            out[i, hd * d:(hd + 1) * d] = sum(w * v for w, v in zip(a, vals))
    return out


@pytest.mark.parametrize("branches", ["both", "attention", "local"])
def test_layer_matches_the_formula_with_padding_masked(branches):
    torch.manual_seed(1)
    h, index, etype = _table(seed=1)
    layer = LocalAttentionLayer(8, heads=2, norm="none", local="sage", branches=branches).double().eval()
    with torch.no_grad():  # non-trivial type embeddings
        if branches != "local":
            layer.attn.types.gate.uniform_(0.5, 1.5), layer.attn.types.bias.normal_()
    x = h[: index.size(0)]
    u = torch.zeros_like(x)
    if branches != "local":
        u = u + x + _reference_attention(layer.attn, h, index, etype)
    if branches != "attention":
        u = u + x + torch.relu(_reference_local(layer.local, h, index, etype))
    expected = u + layer.ffn(u)
    torch.testing.assert_close(layer(h, index, etype), expected)


def test_padding_slots_get_no_attention_and_no_gradient():
    torch.manual_seed(2)
    h, index, etype = _table(seed=2)
    layer = LocalAttentionLayer(8, heads=2, norm="none", branches="attention").double().eval()
    pad = etype == PAD
    _, alpha = layer.attn(h, index, etype.masked_fill(pad, 2), return_attention=True, mask=~pad)
    assert torch.all(alpha[pad] == 0)
    torch.testing.assert_close(alpha.sum(1), torch.ones(index.size(0), 2, dtype=h.dtype))
    # row 0 has only its self-loop: its output is its own value row, whatever the other slots hold
    h = h.clone().requires_grad_(True)
    out = layer.attn(h, index, etype.masked_fill(pad, 2), mask=~pad)
    torch.testing.assert_close(out[0], layer.attn.V(h[0]))
    out[0].sum().backward()
    assert torch.count_nonzero(h.grad[1:]) == 0


@pytest.mark.parametrize("jk", [False, True])
@pytest.mark.parametrize("local", ["sage", "gated"])
def test_model_shapes_over_shrinking_node_sets(jk, local):
    torch.manual_seed(3)
    sizes, ks = [40, 20, 7], [5, 3]
    index = [torch.randint(0, sizes[i], (sizes[i + 1], k)) for i, k in enumerate(ks)]
    etype = [torch.randint(0, 4, (sizes[i + 1], k)) for i, k in enumerate(ks)]
    model = LocalAttentionNet(6, 3, hidden=16, heads=4, num_layers=2, dropout=0.1, local=local, jk=jk)
    out = model(torch.randn(sizes[0], 6), index, etype)
    assert out.shape == (7, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="expected 2 neighbour tables"):
        model(torch.randn(sizes[0], 6), index[:1], etype[:1])


def test_local_branch_keeps_no_dense_table_for_backward():
    """The saved tensors of the local branch are node rows and graph-slot entries, not (n, k, D)."""
    torch.manual_seed(4)
    n, k, D = 200, 40, 16
    index = torch.randint(0, n, (n, k))
    etype = torch.full((n, k), 1)
    etype[:, :2] = 0  # two graph slots per row among 40
    agg = LocalAggregation(D, "sage")
    h = torch.randn(n, D, requires_grad=True)
    saved = []

    def pack(t):  # stored elements: a sparse tensor's numel() is its dense size
        saved.append(t.numel() if t.layout == torch.strided else 3 * t._nnz())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        agg(h, index, etype)
    assert max(saved) < n * k * D / 4
    assert math.isfinite(sum(saved))
