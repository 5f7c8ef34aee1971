"""Activation checkpointing changes memory, not the function: same outputs, gradients and norm statistics."""

import pytest
import torch

from spexphormer.nn import Spexphormer
from spexphormer.nn.local_attention import LocalAttentionNet


def _tables(sizes, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    index = [torch.randint(0, n_in, (n_out, k), generator=g) for n_in, n_out in zip(sizes, sizes[1:])]
    etype = [torch.randint(0, 3, (n_out, k), generator=g) for n_out in sizes[1:]]
    return index, etype


@pytest.mark.parametrize("make", [
    lambda: LocalAttentionNet(6, 3, hidden=16, heads=2, num_layers=3, dropout=0.3),
    lambda: Spexphormer(6, 3, hidden=16, heads=2, num_layers=3, dropout=0.3),
])
def test_recompute_is_the_same_function(make):
    sizes = [40, 30, 20, 10]
    index, etype = _tables(sizes, k=5)
    x = torch.randn(sizes[0], 6)
    runs = []
    for recompute in (False, True):
        torch.manual_seed(0)
        model = make()
        model.recompute = recompute
        model.train()
        torch.manual_seed(1)  # the same dropout masks in both runs
        out = model(x, index, etype)
        out.pow(2).sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        buffers = [b.clone() for b in model.buffers()]
        runs.append((out.detach(), grads, buffers))
    (out0, g0, b0), (out1, g1, b1) = runs
    torch.testing.assert_close(out1, out0)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b)
    for a, b in zip(b1, b0):  # running statistics updated once, not twice
        torch.testing.assert_close(a, b)


def test_recompute_keeps_less_for_backward():
    sizes = [400] * 7
    index, etype = _tables(sizes, k=8)
    x = torch.randn(sizes[0], 6)
    saved = {}
    for recompute in (False, True):
        torch.manual_seed(0)
        model = LocalAttentionNet(6, 3, hidden=32, heads=2, num_layers=6, dropout=0.3)
        model.recompute = recompute
        total = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: total.append(t.numel()) or t, lambda t: t):
            model(x, index, etype).sum()
        saved[recompute] = sum(total)
    assert saved[True] < saved[False] / 3
