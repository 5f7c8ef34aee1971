"""Energy distance, top-k agreement and the baselines against hand-computed values."""

import math

import pytest
import torch

from spexphormer.analysis.measures import energy_distance, random_logit_scores, topk_agreement, uniform_scores

# Four nodes in CSR layout (edges sorted by destination):
#   node 0: edges 0..2   p = .5 .3 .2          q = .2 .3 .5
#   node 1: edge  3      p = 1                 q = 1
#   node 2: no in-edges
#   node 3: edges 4..7   p = .25 .25 .25 .25   q = .1 .4 .1 .4   (ties in both)
PTR = torch.tensor([0, 3, 4, 4, 8])
P = torch.tensor([0.5, 0.3, 0.2, 1.0, 0.25, 0.25, 0.25, 0.25])
Q = torch.tensor([0.2, 0.3, 0.5, 1.0, 0.1, 0.4, 0.1, 0.4])


def test_energy_distance_by_hand():
    # node 0: .3^2 + 0 + .3^2 = .18; node 1: 0; node 2: no edges -> 0; node 3: 4 * .15^2 = .09
    got = energy_distance(P, Q, PTR)
    assert got.shape == (4,)
    assert torch.allclose(got, torch.tensor([0.18, 0.0, 0.0, 0.09]), atol=1e-6)
    assert torch.allclose(energy_distance(Q, P, PTR), got)  # symmetric


def test_energy_distance_is_the_energy_formula():
    # D = 2 E d(X,Y) - E d(X,X') - E d(Y,Y') with d(a,b) = 1[a != b], on node 0
    p, q = P[:3].double(), Q[:3].double()
    exy, exx, eyy = 1 - (p * q).sum(), 1 - (p * p).sum(), 1 - (q * q).sum()
    assert energy_distance(P, Q, PTR)[0].item() == pytest.approx((2 * exy - exx - eyy).item(), abs=1e-6)


def test_duplicate_edges_are_distinct_support_points():
    # two u->v edges (graph edge + expander edge from the same u): mass moved between them counts
    ptr = torch.tensor([0, 2])
    assert energy_distance(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]), ptr).item() == pytest.approx(0.5)
    assert topk_agreement(torch.tensor([0.6, 0.4]), torch.tensor([0.4, 0.6]), ptr, k=1).item() == 0.0


def test_topk_agreement_by_hand():
    # k=2: node 0 {0,1} vs {2,1} -> 1/2; node 1 deg 1 < k -> 1/1; node 2 -> nan;
    #      node 3: p all tied -> first positions {4,5}; q {5,7} -> 1/2
    got = topk_agreement(P, Q, PTR, k=2)
    assert got[[0, 1, 3]].tolist() == [0.5, 1.0, 0.5]
    assert math.isnan(got[2].item())


def test_topk_ties_are_broken_by_edge_position():
    # k=1: node 3: p -> edge 4 (first of four ties), q -> edge 5 (first of the two .4) -> 0
    assert topk_agreement(P, Q, PTR, k=1)[3].item() == 0.0
    # k=3: node 3: p -> {4,5,6}; q -> {5,7,4} (.4, .4, then the first .1) -> 2/3; node 0 keeps all 3
    got = topk_agreement(P, Q, PTR, k=3)
    assert got[0].item() == 1.0
    assert got[3].item() == pytest.approx(2 / 3)


def test_identical_scores_distance_zero_overlap_one():
    for k in (1, 2, 5):
        assert torch.equal(energy_distance(Q, Q, PTR), torch.zeros(4))
        got = topk_agreement(Q, Q, PTR, k)
        assert got[[0, 1, 3]].tolist() == [1.0, 1.0, 1.0]


def _reference_topk(p, q, ptr, k):
    out = []
    for v in range(ptr.numel() - 1):
        a, b = int(ptr[v]), int(ptr[v + 1])
        if a == b:
            out.append(float("nan"))
            continue
        top = lambda s: set(sorted(range(a, b), key=lambda i: (-s[i].item(), i))[:k])  # noqa: E731
        out.append(len(top(p) & top(q)) / min(k, b - a))
    return torch.tensor(out)


def test_topk_matches_a_loop_on_random_graphs_with_ties():
    g = torch.Generator().manual_seed(1)
    deg = torch.randint(0, 9, (60,), generator=g)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), deg.cumsum(0)])
    e = int(ptr[-1])
    p = torch.randint(0, 4, (e,), generator=g).float()  # many ties
    q = torch.randint(0, 4, (e,), generator=g).float()
    for k in (1, 3, 12):
        got, want = topk_agreement(p, q, ptr, k), _reference_topk(p, q, ptr, k)
        assert torch.allclose(got, want, equal_nan=True)


def test_baselines():
    ptr = torch.tensor([0, 3, 4, 8])
    u = uniform_scores(ptr)
    assert torch.allclose(u, torch.tensor([1 / 3] * 3 + [1.0] + [0.25] * 4))
    r = random_logit_scores(ptr, seed=3)
    sums = torch.zeros(3).index_add_(0, torch.tensor([0, 0, 0, 1, 2, 2, 2, 2]), r)
    assert torch.allclose(sums, torch.ones(3), atol=1e-6)
    assert (r > 0).all() and r[3].item() == pytest.approx(1.0)
    assert torch.equal(r, random_logit_scores(ptr, seed=3))
    assert not torch.equal(r, random_logit_scores(ptr, seed=4))


def test_shape_errors():
    with pytest.raises(ValueError):
        energy_distance(P[:-1], Q, PTR)
    with pytest.raises(ValueError):
        topk_agreement(P, Q, PTR, k=0)
