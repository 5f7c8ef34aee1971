"""Attention primitives against independent dense [N, N] references, in float64."""

import math

import pytest
import torch

from spexphormer.nn import (
    EdgeListAttention,
    NeighbourAttention,
    ScoreAttention,
    edge_softmax,
    neighbour_table_to_edge_list,
)

from tests.helpers import type_tables

DT = torch.float64
FORMS = ["embedding", "table"]


# ----------------------------------------------------------------------------- references
def dense_mask_and_types(edge_index, edge_type, n):
    """Dense [N_dst, N_src] mask and edge-type matrix (no duplicate edges)."""
    src, dst = edge_index
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[dst, src] = True
    types = torch.zeros(n, n, dtype=torch.long)
    types[dst, src] = edge_type
    return mask, types


def dense_softmax(logits, mask):
    """logits [N, N, H] (dst, src, head); softmax over src among the masked entries."""
    return torch.softmax(logits.masked_fill(~mask.unsqueeze(-1), float("-inf")), dim=1)


def dense_score_attention(mod, x, edge_index, edge_type, temperature):
    n, H = x.size(0), mod.heads
    dh = x.size(1) // H
    mask, types = dense_mask_and_types(edge_index, edge_type, n)
    q = (x @ mod.Q.weight.T).view(n, H, dh)
    k = (x @ mod.K.weight.T).view(n, H, dh)
    v = (x @ mod.V.weight.T).view(n, H, dh)
    raw = torch.einsum("ihd,jhd->ijh", q, k) / math.sqrt(dh)
    gate, bias = type_tables(mod)  # [T, G], [T, H]
    scale = gate.view(gate.size(0), H, -1).sum(-1)  # a head's scale: its gate summed over its channels
    raw = (raw * scale[types] + bias[types]) / temperature
    A = dense_softmax(raw.clamp(-8.0, 8.0), mask)  # [N, N, H]
    vhat = v / v.norm(dim=-1, keepdim=True)
    out = mod.value_scale * torch.einsum("ijh,jhd->ihd", A, vhat).reshape(n, -1)
    src, dst = edge_index
    return out, A[dst, src], raw[dst, src]


def dense_exphormer_attention(mod, x, edge_index, edge_type):
    """The wide layer's attention written edge by edge from the method's formula:
    z = <q_i, k_j * E1_t> + E2_t (times 1/sqrt(d_h) only if the module was asked to scale),
    clamped to [-8, 8], softmax over each node's incoming edges, out_i = sum_j alpha_ij v_j.

    Returns (out [n, D], alpha [E, H], raw logits [E, H]) with alpha and raw in edge order."""
    n, H = x.size(0), mod.heads
    dh = x.size(1) // H
    q = (x @ mod.Q.weight.T).view(n, H, dh)
    k = (x @ mod.K.weight.T).view(n, H, dh)
    v = (x @ mod.V.weight.T).view(n, H, dh)
    scale = 1.0 / math.sqrt(dh) if mod.scale_logits else 1.0
    E1, E2 = type_tables(mod)
    raw = torch.stack([
        torch.stack([(q[i, h] * k[j, h] * E1[t].view(H, dh)[h]).sum() * scale + E2[t, h]
                     for h in range(H)])
        for j, i, t in zip(edge_index[0].tolist(), edge_index[1].tolist(), edge_type.tolist())])  # [E, H]
    z = raw.clamp(-8.0, 8.0)
    alpha = torch.zeros_like(z)
    out = torch.zeros(n, H, dh, dtype=x.dtype)
    for i in range(n):
        edges = (edge_index[1] == i).nonzero().view(-1)
        if edges.numel():
            a = torch.softmax(z[edges], dim=0)  # [deg, H]
            alpha = alpha.index_put((edges,), a)
            out[i] = (a.unsqueeze(-1) * v[edge_index[0, edges]]).sum(0)
    return out.reshape(n, -1), alpha, raw


def randomise(module, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def grads(outputs, weights, inputs):
    loss = sum((o * w).sum() for o, w in zip(outputs, weights))
    return torch.autograd.grad(loss, inputs)


# ----------------------------------------------------------------------------- edge_softmax
def test_edge_softmax_sums_to_one_and_matches_dense(graph):
    edge_index, _ = graph
    n, E, H = 13, edge_index.size(1), 3
    logits = torch.randn(E, H, dtype=DT) * 5
    alpha = edge_softmax(logits, edge_index[1], n)
    sums = torch.zeros(n, H, dtype=DT).index_add_(0, edge_index[1], alpha)
    assert torch.allclose(sums, torch.ones_like(sums))
    mask, _ = dense_mask_and_types(edge_index, torch.zeros(E, dtype=torch.long), n)
    dense = torch.zeros(n, n, H, dtype=DT)
    dense[edge_index[1], edge_index[0]] = logits
    ref = dense_softmax(dense, mask)[edge_index[1], edge_index[0]]
    assert torch.allclose(alpha, ref)


def test_edge_softmax_1d_stable_isolated_and_gradcheck():
    index = torch.tensor([0, 0, 2, 2, 2])  # node 1 has no in-edge
    logits = torch.tensor([1e4, 1e4 - 1.0, -3e4, 5.0, 5.0], dtype=DT)
    alpha = edge_softmax(logits, index, 3)
    assert alpha.shape == (5,) and torch.isfinite(alpha).all()
    assert torch.allclose(alpha[:2], torch.softmax(logits[:2], 0))
    assert torch.allclose(alpha[2:], torch.tensor([0.0, 0.5, 0.5], dtype=DT))
    x = torch.randn(5, 2, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: edge_softmax(z, index, 3), (x,))


# ----------------------------------------------------------------------------- ScoreAttention
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("heads,temperature,seed", [(1, 1.0, 0), (1, 0.05, 1), (2, 0.3, 2), (4, 2.0, 3)])
def test_score_attention_matches_dense(make_graph, heads, temperature, seed, form):
    edge_index, edge_type = make_graph(11, 0.35, seed=seed)
    mod = randomise(ScoreAttention(8, heads=heads, type_terms=form).to(DT), seed, scale=0.5)
    x = torch.randn(11, 8, dtype=DT, requires_grad=True)
    out, alpha = mod(x, edge_index, edge_type, temperature)
    ref_out, ref_alpha, _ = dense_score_attention(mod, x, edge_index, edge_type, temperature)
    assert out.shape == (11, 8) and alpha.shape == (edge_index.size(1), heads)
    assert torch.allclose(out, ref_out) and torch.allclose(alpha, ref_alpha)
    w = [torch.randn_like(out), torch.randn_like(alpha)]
    inputs = [x, *mod.parameters()]
    for g, r in zip(grads([out, alpha], w, inputs), grads([ref_out, ref_alpha], w, inputs)):
        assert torch.allclose(g, r, atol=1e-10)


def test_score_attention_init():
    table = ScoreAttention(4, type_terms="table")
    assert torch.equal(table.types.gate, torch.ones(3, 1))
    assert torch.equal(table.types.bias, torch.zeros(3, 1))
    assert table.value_scale.item() == 0.25
    assert set(table.state_dict()) == {"Q.weight", "K.weight", "V.weight", "types.gate", "types.bias", "value_scale"}
    # The authors' layout: a (3, d) type embedding, E1: d -> D without bias, E2: d -> H with bias.
    mod = ScoreAttention(4)
    assert {k: tuple(v.shape) for k, v in mod.state_dict().items()} == {
        "Q.weight": (4, 4), "K.weight": (4, 4), "V.weight": (4, 4), "types.embedding.weight": (3, 4),
        "types.E1.weight": (4, 4), "types.E2.weight": (1, 4), "types.E2.bias": (1,), "value_scale": ()}
    assert sum(p.numel() for p in mod.parameters()) == 3 * 16 + 12 + 16 + 5 + 1
    scale, _ = mod.type_scale_and_bias()
    assert not torch.allclose(scale, torch.ones(3, 1))  # random at initialisation, as in the authors' code


def test_score_attention_clamps_logits(make_graph):
    edge_index, edge_type = make_graph(10, 0.4, seed=5)
    mod = randomise(ScoreAttention(4).to(DT), 5, scale=30.0)
    x = torch.randn(10, 4, dtype=DT)
    _, alpha = mod(x, edge_index, edge_type, 0.5)
    _, _, raw = dense_score_attention(mod, x, edge_index, edge_type, 0.5)
    assert raw.abs().max() > 8.0 and (raw.abs() > 8.0).float().mean() > 0.3
    expected = edge_softmax(raw.clamp(-8.0, 8.0), edge_index[1], 10)
    assert torch.allclose(alpha, expected)
    assert not torch.allclose(alpha, edge_softmax(raw, edge_index[1], 10))
    # clamped logits: every weight is at least e^-16 / in-degree
    deg = torch.bincount(edge_index[1], minlength=10).to(DT)[edge_index[1]]
    assert (alpha.squeeze(-1) * deg >= math.exp(-16) * (1 - 1e-9)).all()


# ----------------------------------------------------------------------------- EdgeListAttention
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("heads,seed,scaled", [(1, 0, False), (2, 1, False), (4, 2, False), (2, 3, True)])
def test_edge_list_attention_matches_dense(make_graph, heads, seed, scaled, form):
    edge_index, edge_type = make_graph(12, 0.3, seed=seed)
    mod = randomise(EdgeListAttention(8, heads, scale_logits=scaled, type_terms=form).to(DT), seed, scale=0.5)
    x = torch.randn(12, 8, dtype=DT, requires_grad=True)
    out, alpha = mod(x, edge_index, edge_type, return_attention=True)
    ref_out, ref_alpha, _ = dense_exphormer_attention(mod, x, edge_index, edge_type)
    assert torch.allclose(out, ref_out) and torch.allclose(alpha, ref_alpha)
    assert torch.equal(mod(x, edge_index, edge_type), out)
    w = [torch.randn_like(out), torch.randn_like(alpha)]
    inputs = [x, *mod.parameters()]
    for g, r in zip(grads([out, alpha], w, inputs), grads([ref_out, ref_alpha], w, inputs)):
        assert torch.allclose(g, r, atol=1e-10)


def test_edge_list_attention_clamps_logits(make_graph):
    edge_index, edge_type = make_graph(10, 0.4, seed=7)
    mod = randomise(EdgeListAttention(8, 2).to(DT), 7, scale=10.0)
    x = torch.randn(10, 8, dtype=DT)
    _, alpha = mod(x, edge_index, edge_type, return_attention=True)
    _, _, raw = dense_exphormer_attention(mod, x, edge_index, edge_type)
    assert (raw.abs() > 8.0).float().mean() > 0.3
    assert torch.allclose(alpha, edge_softmax(raw.clamp(-8, 8), edge_index[1], 10))


def test_wide_attention_does_not_scale_logits_by_default():
    """The method's wide layer: logit = <q_i, k_j * E1_t> + E2_t, with no 1/sqrt(d_h)."""
    mod = randomise(EdgeListAttention(8, 2).to(DT), 4)
    x = torch.randn(2, 8, dtype=DT)
    edge_index, edge_type = torch.tensor([[0, 1], [1, 1]]), torch.tensor([0, 2])
    _, alpha = mod(x, edge_index, edge_type, return_attention=True)
    q, k = (x @ mod.Q.weight.T).view(2, 2, 4), (x @ mod.K.weight.T).view(2, 2, 4)
    gate, bias = type_tables(mod)
    gate = gate.view(3, 2, 4)
    z0 = ((q[1] * k[0] * gate[0]).sum(-1) + bias[0]).clamp(-8, 8)  # edge 0 -> 1, type 0
    z1 = ((q[1] * k[1] * gate[2]).sum(-1) + bias[2]).clamp(-8, 8)  # self-loop of 1, type 2
    assert torch.allclose(alpha[0], torch.sigmoid(z0 - z1))


def test_wide_attention_init_and_layout():
    el, nb = EdgeListAttention(16, 4, type_terms="table"), NeighbourAttention(16, 4, type_terms="table")
    keys = {"Q.weight", "K.weight", "V.weight", "types.gate", "types.bias"}
    assert set(el.state_dict()) == set(nb.state_dict()) == keys
    assert torch.equal(el.types.gate, torch.ones(3, 16))
    assert torch.equal(el.types.bias, torch.zeros(3, 4))
    nb.load_state_dict(el.state_dict())
    # The authors' layout: E1 = Linear(d_e, D, bias=False), E2 = Linear(d_e, H) over a (3, d_e) embedding.
    el, nb = EdgeListAttention(16, 4), NeighbourAttention(16, 4)
    assert {k: tuple(v.shape) for k, v in el.state_dict().items()} == {
        "Q.weight": (16, 16), "K.weight": (16, 16), "V.weight": (16, 16), "types.embedding.weight": (3, 16),
        "types.E1.weight": (16, 16), "types.E2.weight": (4, 16), "types.E2.bias": (4,)}
    nb.load_state_dict(el.state_dict())
    with pytest.raises(ValueError):
        EdgeListAttention(10, 4)


# ----------------------------------------------------------------------------- NeighbourAttention
def neighbour_table(n_in, n_out, k, seed):
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, n_in, (n_out, k), generator=g)
    index[:, 1] = index[:, 0]  # repeated neighbours in every row
    index[0] = 0  # one row with a single neighbour repeated k times
    edge_type = torch.randint(0, 3, (n_out, k), generator=g)
    return index, edge_type


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_neighbour_matches_edge_list_head_by_head(heads, form):
    n_in, n_out, k, D = 17, 9, 5, 16
    index, edge_type = neighbour_table(n_in, n_out, k, seed=heads)
    el = randomise(EdgeListAttention(D, heads, type_terms=form).to(DT), heads, scale=0.5)
    nb = NeighbourAttention(D, heads, type_terms=form).to(DT)
    nb.load_state_dict(el.state_dict())
    x = torch.randn(n_in, D, dtype=DT, requires_grad=True)

    out_nb, alpha_nb = nb(x, index, edge_type, return_attention=True)
    edge_index, flat_type = neighbour_table_to_edge_list(index, edge_type)
    out_el, alpha_el = el(x, edge_index, flat_type, return_attention=True)
    assert out_nb.shape == (n_out, D) and alpha_nb.shape == (n_out, k, heads)
    assert torch.allclose(out_nb, out_el[:n_out])
    assert torch.allclose(alpha_nb, alpha_el.view(n_out, k, heads))
    assert torch.allclose(out_el[n_out:], torch.zeros(n_in - n_out, D, dtype=DT))

    w = torch.randn(n_out, D, dtype=DT)
    g_nb = grads([out_nb], [w], [x, *nb.parameters()])
    g_el = grads([out_el[:n_out]], [w], [x, *el.parameters()])
    for a, b in zip(g_nb, g_el):
        assert torch.allclose(a, b, atol=1e-10)


def buggy_research_attention(mod, x_src, index, edge_type):
    """The research code's multi-head product, op for op: the gated keys (n, k, H, d) viewed as
    (n*H, k, d) for the product with the queries; the bias and the values are paired per head."""
    n, k = index.shape
    H, dh = mod.heads, mod.head_dim
    E1, E2 = type_tables(mod)
    q = mod.Q(x_src[:n]).reshape(n * H, dh, 1)
    kk = E1[edge_type].view(n, k, H, dh) * mod.K(x_src).view(-1, H, dh)[index]  # [n, k, H, dh]
    logits = torch.bmm(kk.reshape(n * H, k, dh), q).view(n, H, k) * mod.logit_scale  # the bug: no permute
    logits = (logits + E2[edge_type].permute(0, 2, 1)).clamp(-8, 8)  # [n, H, k]
    vv = mod.V(x_src).view(-1, H, dh)[index].permute(0, 2, 1, 3)  # [n, H, k, dh]
    return (torch.softmax(logits, -1).unsqueeze(-1) * vv).sum(2).reshape(n, H * dh)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_reference_pairing_reproduces_the_research_reshape(heads):
    """head_pairing="reference" is the authors' (n, k, H, d) -> (n*H, k, d) view, kept to measure it."""
    index, edge_type = neighbour_table(15, 8, 6, seed=30 + heads)
    nb = randomise(NeighbourAttention(16, heads, head_pairing="reference").to(DT), heads, scale=0.5)
    x = torch.randn(15, 16, dtype=DT)
    torch.testing.assert_close(nb(x, index, edge_type), buggy_research_attention(nb, x, index, edge_type))


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_research_reshape_is_caught(heads):
    index, edge_type = neighbour_table(15, 8, 6, seed=10 + heads)
    nb = randomise(NeighbourAttention(16, heads).to(DT), heads)
    x = torch.randn(15, 16, dtype=DT)
    correct = nb(x, index, edge_type)
    buggy = buggy_research_attention(nb, x, index, edge_type)
    if heads == 1:
        assert torch.allclose(correct, buggy)  # the harness itself is fair
    else:
        assert not torch.allclose(correct, buggy, atol=1e-3)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("heads,scaled", [(1, False), (4, False), (2, True)])
def test_neighbour_attention_matches_the_formula(heads, scaled, form):
    """Fixed-degree attention against the method's formula, slot by slot (repeats count twice)."""
    n_in, n_out, k, D = 11, 6, 4, 8
    index, edge_type = neighbour_table(n_in, n_out, k, seed=20 + heads)
    nb = randomise(NeighbourAttention(D, heads, scale_logits=scaled, type_terms=form).to(DT), heads, scale=0.5)
    x = torch.randn(n_in, D, dtype=DT)
    out = nb(x, index, edge_type)
    H, dh = heads, D // heads
    q, kk, v = ((x @ W.T).view(n_in, H, dh) for W in (nb.Q.weight, nb.K.weight, nb.V.weight))
    scale = 1.0 / math.sqrt(dh) if scaled else 1.0
    E1, E2 = type_tables(nb)
    for i in range(n_out):
        for h in range(H):
            z = torch.stack([((q[i, h] * kk[j, h] * E1[t].view(H, dh)[h]).sum() * scale
                              + E2[t, h]).clamp(-8, 8)
                             for j, t in zip(index[i].tolist(), edge_type[i].tolist())])
            expected = (torch.softmax(z, 0).unsqueeze(-1) * v[index[i], h]).sum(0)
            assert torch.allclose(out[i].view(H, dh)[h], expected)


def test_neighbour_attention_rejects_too_many_rows():
    nb = NeighbourAttention(8, 2)
    with pytest.raises(ValueError):
        nb(torch.randn(3, 8), torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2, dtype=torch.long))


def test_neighbour_kernel_matches_plain_autograd_including_clamp():
    """The lean kernel against the same formula written with autograd, with clamped logits."""
    from spexphormer.nn.neighbour_kernel import neighbour_attention

    g = torch.Generator().manual_seed(3)
    n_in, n, k, T, H, d = 13, 9, 5, 3, 2, 4
    qe = (3 * torch.randn(n, T, H, d, generator=g, dtype=torch.float64)).requires_grad_()
    keys = torch.randn(n_in, H, d, generator=g, dtype=torch.float64, requires_grad=True)
    vals = torch.randn(n_in, H, d, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(n, H, k, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, n_in, (n, k), generator=g)
    etype = torch.randint(0, T, (n, k), generator=g)

    kk, vv = keys[index], vals[index]  # [n, k, H, d]
    z = torch.einsum("nkhd,nkhd->nhk", qe[torch.arange(n)[:, None], etype], kk) + bias
    assert (z.abs() > 8).any()  # some logits are clamped
    ref = torch.einsum("nhk,nkhd->nhd", torch.softmax(z.clamp(-8, 8), -1), vv)
    out, alpha = neighbour_attention(qe, keys, vals, bias, index, etype, 8.0)
    assert torch.allclose(out, ref)
    grad = torch.randn_like(out)
    inputs = (qe, keys, vals, bias)
    for a, b in zip(torch.autograd.grad(out, inputs, grad), torch.autograd.grad(ref, inputs, grad)):
        assert torch.allclose(a, b)
