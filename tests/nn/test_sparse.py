"""The chunked edge-list kernels: values and gradients (gradcheck) against plain autograd."""

import pytest
import torch

import spexphormer.nn.chunks as chunks
from spexphormer.nn import gather_dot, gather_scatter

DT = torch.float64


@pytest.mark.parametrize("chunk", [1, 7, 40, 1 << 20])
def test_gather_dot_matches_autograd(monkeypatch, chunk):
    monkeypatch.setattr(chunks, "EDGE_CHUNK_FLOATS", chunk)
    g = torch.Generator().manual_seed(chunk)
    a = torch.randn(5, 2, 3, dtype=DT, generator=g, requires_grad=True)
    b = torch.randn(7, 2, 3, dtype=DT, generator=g, requires_grad=True)
    ia, ib = torch.randint(0, 5, (23,), generator=g), torch.randint(0, 7, (23,), generator=g)
    out = gather_dot(a, b, ia, ib)
    ref = (a[ia] * b[ib]).sum(-1)
    assert torch.allclose(out, ref)
    w = torch.randn_like(out)
    for x, y in zip(torch.autograd.grad((out * w).sum(), [a, b]),
                    torch.autograd.grad((ref * w).sum(), [a, b])):
        assert torch.allclose(x, y)
    assert torch.autograd.gradcheck(lambda a, b: gather_dot(a, b, ia, ib), (a, b))


@pytest.mark.parametrize("chunk", [1, 7, 40, 1 << 20])
def test_gather_scatter_matches_autograd(monkeypatch, chunk):
    monkeypatch.setattr(chunks, "EDGE_CHUNK_FLOATS", chunk)
    g = torch.Generator().manual_seed(chunk)
    alpha = torch.rand(19, 2, dtype=DT, generator=g, requires_grad=True)
    b = torch.randn(6, 2, 3, dtype=DT, generator=g, requires_grad=True)
    src, dst = torch.randint(0, 6, (19,), generator=g), torch.randint(0, 4, (19,), generator=g)
    out = gather_scatter(alpha, b, src, dst, 5)
    ref = torch.zeros(5, 2, 3, dtype=DT).index_put((dst,), alpha.unsqueeze(-1) * b[src], accumulate=True)
    assert out.shape == (5, 2, 3) and torch.allclose(out, ref)
    assert torch.allclose(out[4], torch.zeros(2, 3, dtype=DT))  # no in-edges
    assert torch.autograd.gradcheck(lambda al, bb: gather_scatter(al, bb, src, dst, 5), (alpha, b))


def test_kernels_grad_only_where_needed():
    a = torch.randn(4, 1, 2, requires_grad=True)
    b = torch.randn(4, 1, 2)  # no grad
    idx = torch.tensor([0, 1, 3])
    gather_dot(a, b, idx, idx).sum().backward()
    assert a.grad is not None and b.grad is None
