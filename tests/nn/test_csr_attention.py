"""The fused CSR score attention against the edge-list path, a per-node reference written from the
formula, and finite differences (float64)."""


import numba
import pytest
import torch

from spexphormer.nn import ScoreAttention
from spexphormer.nn.csr_attention import CSRGraph, csr_score_attention
from spexphormer.graph import group_by_destination

DT = torch.float64


def grouped_graph(n, p, num_types=3, seed=0, lonely=()):
    """Random graph without duplicates, a self-loop (last type) on every node, grouped by
    destination. Nodes in ``lonely`` keep only their self-loop (a single in-edge)."""
    g = torch.Generator().manual_seed(seed)
    adj = torch.rand(n, n, generator=g) < p  # adj[dst, src]
    adj.fill_diagonal_(False)
    adj[list(lonely)] = False
    dst, src = adj.nonzero(as_tuple=True)
    types = torch.randint(0, num_types - 1, (src.numel(),), generator=g)
    loops = torch.arange(n)
    edge_index = torch.stack([torch.cat([src, loops]), torch.cat([dst, loops])])
    edge_type = torch.cat([types, torch.full((n,), num_types - 1)])
    shuffle = torch.randperm(edge_index.size(1), generator=g)
    edge_index, edge_type = edge_index[:, shuffle], edge_type[shuffle]
    order, ptr = group_by_destination(edge_index, n)
    return edge_index[:, order], edge_type[order], ptr


def reference(q, k, v, scale, bias, edge_index, edge_type, temperature, clamp):
    """Per destination, straight from the formula: softmax of the clamped, scaled logits of its
    in-edges and the weighted sum of its sources' values (q already scaled)."""
    n, H, d = q.shape
    src, dst = edge_index
    out = torch.zeros(n, H, d, dtype=q.dtype)
    alpha = torch.zeros(src.numel(), H, dtype=q.dtype)
    for i in range(n):
        edges = (dst == i).nonzero().view(-1)
        if edges.numel() == 0:
            continue
        j, t = src[edges], edge_type[edges]
        logits = ((q[i].unsqueeze(0) * k[j]).sum(-1) * scale[t] + bias[t]) / temperature
        a = torch.softmax(logits.clamp(-clamp, clamp), dim=0)  # [deg, H]
        alpha[edges] = a
        out[i] = (a.unsqueeze(-1) * v[j]).sum(0)
    return out, alpha


def random_inputs(n, H, d, num_types, seed, scale_range=(0.5, 2.0)):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(n, H, d, generator=g, dtype=DT) for _ in range(3))
    scale = torch.empty(num_types, H, dtype=DT).uniform_(*scale_range, generator=g)
    bias = torch.randn(num_types, H, generator=g, dtype=DT)
    return [t.requires_grad_() for t in (q, k, v, scale, bias)]


@pytest.mark.parametrize("heads,num_types,temperature,seed", [(1, 3, 1.0, 0), (2, 3, 0.3, 1), (4, 5, 2.0, 2)])
def test_matches_formula_reference(heads, num_types, temperature, seed):
    n = 14
    edge_index, edge_type, ptr = grouped_graph(n, 0.3, num_types, seed, lonely=(0, 5))
    csr = CSRGraph.from_edges(edge_index, edge_type, ptr, num_types)
    inputs = random_inputs(n, heads, 3, num_types, seed)
    out, alpha = csr_score_attention(*inputs, csr, temperature, 8.0)
    ref_out, ref_alpha = reference(*inputs, edge_index, edge_type, temperature, 8.0)
    assert torch.allclose(out, ref_out, atol=1e-12) and torch.allclose(alpha, ref_alpha, atol=1e-12)
    assert torch.allclose(alpha[ptr[0]:ptr[1]], torch.ones(1, heads, dtype=DT))  # node 0: one in-edge
    w = torch.randn_like(out)
    got = torch.autograd.grad((out * w).sum(), inputs)
    want = torch.autograd.grad((ref_out * w).sum(), inputs)
    for g, r in zip(got, want):
        assert torch.allclose(g, r, atol=1e-10)


@pytest.mark.parametrize("heads,num_types,scale_range,seed", [
    (1, 3, (0.5, 2.0), 0),    # typical: width 4, one head
    (3, 4, (0.5, 2.0), 1),    # several heads, several edge types
    (2, 3, (6.0, 12.0), 2),   # large scales: many logits clamped
])
def test_gradcheck(heads, num_types, scale_range, seed):
    n = 9
    edge_index, edge_type, ptr = grouped_graph(n, 0.35, num_types, seed, lonely=(3,))
    csr = CSRGraph.from_edges(edge_index, edge_type, ptr, num_types)
    inputs = random_inputs(n, heads, 2, num_types, seed, scale_range)
    fn = lambda *t: csr_score_attention(*t, csr, 0.7, 8.0)[0]  # noqa: E731
    if scale_range[0] > 5:  # the case is meant to exercise the clamp
        q, k, _, scale, bias = inputs
        src, dst = edge_index
        raw = ((q[dst] * k[src]).sum(-1) * scale[edge_type] + bias[edge_type]) / 0.7
        assert (raw.abs() > 8.0).float().mean() > 0.2
    assert torch.autograd.gradcheck(fn, tuple(inputs), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("form", ["embedding", "table"])
def test_score_attention_csr_path_matches_edge_list(form):
    n = 40
    edge_index, edge_type, ptr = grouped_graph(n, 0.2, 3, seed=7, lonely=(1, 2))
    csr = CSRGraph.from_edges(edge_index, edge_type, ptr, 3)
    torch.manual_seed(0)
    mod = ScoreAttention(8, heads=2, type_terms=form).to(DT)
    if form == "table":
        with torch.no_grad():
            mod.types.gate.uniform_(0.5, 3.0)
            mod.types.bias.normal_()
    x = torch.randn(n, 8, dtype=DT) * 2
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, alpha1 = mod(x1, edge_index, edge_type, 0.5)
    out2, alpha2 = mod(x2, edge_index, edge_type, 0.5, csr=csr)
    assert torch.allclose(out1, out2, atol=1e-12) and torch.allclose(alpha1, alpha2, atol=1e-12)
    assert not alpha2.requires_grad
    w = torch.randn_like(out1)
    g1 = torch.autograd.grad((out1 * w).sum(), [x1, *mod.parameters()])
    g2 = torch.autograd.grad((out2 * w).sum(), [x2, *mod.parameters()])
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-10)


def test_float32_close_and_thread_count_independent():
    n = 500
    edge_index, edge_type, ptr = grouped_graph(n, 0.02, 3, seed=3)
    csr = CSRGraph.from_edges(edge_index, edge_type, ptr, 3)
    q, k, v, scale, bias = (t.detach().float().requires_grad_() for t in random_inputs(n, 1, 4, 3, 3))
    ref_out, ref_alpha = reference(*(t.double() for t in (q, k, v, scale, bias)), edge_index, edge_type, 1.0, 8.0)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            out, alpha = csr_score_attention(q, k, v, scale, bias, csr, 1.0, 8.0)
            grads = torch.autograd.grad(out.sum(), [q, k, v, scale, bias])
            results.append((out, alpha, grads))
    finally:
        numba.set_num_threads(before)
    out, alpha, _ = results[0]
    assert torch.allclose(out.double(), ref_out, atol=1e-5) and torch.allclose(alpha.double(), ref_alpha, atol=1e-5)
    for other in results[1:]:
        assert torch.equal(other[0], out) and torch.equal(other[1], alpha)
        assert all(torch.equal(a, b) for a, b in zip(other[2], results[0][2]))


def test_node_without_in_edges_gets_zero():
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 2]])  # node 1 has no in-edges
    ptr = torch.tensor([0, 2, 2, 3])
    csr = CSRGraph.from_edges(edge_index, torch.zeros(3, dtype=torch.long), ptr, 1)
    q, k, v, scale, bias = random_inputs(3, 1, 2, 1, 0)
    out, alpha = csr_score_attention(q, k, v, scale, bias, csr)
    assert torch.equal(out[1], torch.zeros(1, 2, dtype=DT))
    assert torch.allclose(alpha[:2].sum(), torch.tensor(1.0, dtype=DT)) and alpha[2].item() == 1.0


def test_csr_graph_layout_and_errors():
    edge_index, edge_type, ptr = grouped_graph(30, 0.2, 3, seed=4)
    csr = CSRGraph.from_edges(edge_index, edge_type, ptr, 3)
    assert csr.src.dtype.name == "int32" and csr.edge_type.dtype.name == "int8"
    # The source-grouped copy lists the same edges: (src, dst, type) triples agree as multisets.
    src_of = torch.repeat_interleave(torch.arange(30), torch.from_numpy(csr.src_ptr).diff())
    by_src = sorted(zip(src_of.tolist(), csr.src_dst.tolist(), csr.src_type.tolist()))
    by_dst = sorted(zip(edge_index[0].tolist(), edge_index[1].tolist(), edge_type.tolist()))
    assert by_src == by_dst
    with pytest.raises(ValueError, match="grouped by destination"):
        CSRGraph.from_edges(edge_index.flip(1), edge_type, ptr, 3)
    with pytest.raises(ValueError, match="edge types"):
        CSRGraph.from_edges(edge_index, edge_type, ptr, 2)
    with pytest.raises(ValueError, match="rows"):
        csr_score_attention(*random_inputs(29, 1, 2, 3, 0), csr)


def test_bipartite_csr_matches_the_rows_of_the_full_graph():
    """A CSR of the in-edges of destinations [lo, hi) over all sources (what a rank of the sharded
    stage 1 builds) gives those rows of the full graph's output, the same alpha, and the same
    gradients (queries: the rows' share; keys, values and the type terms: from these edges only)."""
    n, lo, hi = 20, 6, 15
    edge_index, edge_type, ptr = grouped_graph(n, 0.3, 3, seed=4, lonely=(7,))
    e0, e1 = int(ptr[lo]), int(ptr[hi])
    part = CSRGraph.from_edges(edge_index[:, e0:e1], edge_type[e0:e1], ptr[lo:hi + 1] - e0, 3,
                               num_sources=n, dst_offset=lo)
    assert (part.num_nodes, part.num_sources, part.num_edges) == (hi - lo, n, e1 - e0)
    q, k, v, scale, bias = random_inputs(n, 2, 3, 3, seed=4)
    q_rows = q.detach()[lo:hi].clone().requires_grad_()
    out, alpha = csr_score_attention(q_rows, k, v, scale, bias, part, 0.8, 8.0)
    keep = torch.zeros(edge_index.size(1), dtype=torch.bool)
    keep[e0:e1] = True  # the full graph's reference restricted to the same edges
    ref_out, ref_alpha = reference(q, k, v, scale, bias, edge_index[:, keep], edge_type[keep], 0.8, 8.0)
    assert torch.allclose(out, ref_out[lo:hi], atol=1e-12) and torch.allclose(alpha, ref_alpha, atol=1e-12)
    w = torch.randn_like(out)
    got = torch.autograd.grad((out * w).sum(), (q_rows, k, v, scale, bias))
    want = torch.autograd.grad((ref_out[lo:hi] * w).sum(), (q, k, v, scale, bias))
    assert torch.allclose(got[0], want[0][lo:hi], atol=1e-10)
    for g, r in zip(got[1:], want[1:]):
        assert torch.allclose(g, r, atol=1e-10)
    with pytest.raises(ValueError, match="sources"):
        csr_score_attention(q_rows, k[:hi], v[:hi], scale, bias, part, 0.8, 8.0)
    with pytest.raises(ValueError, match="grouped"):
        CSRGraph.from_edges(edge_index[:, e0:e1], edge_type[e0:e1], ptr[lo:hi + 1] - e0, 3, num_sources=n)
