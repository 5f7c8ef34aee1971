"""One data-parallel training step on 2 gloo ranks equals one step of one process on the whole batch."""

from __future__ import annotations

import pytest
import torch

from spexphormer.sampling import Batch, BatchBuilder, sample_layers
from spexphormer.train import task_loss
from spexphormer.data import graph_info
from tests.helpers import make_toy_graph
from tests.distributed.spawn import run_ranks

KS, HIDDEN, HEADS, LAYERS, LR = (4, 3), 16, 2, 2, 0.5


def _setup():
    data = make_toy_graph(num_nodes=200, num_edges=1200, seed=3)
    from spexphormer.graph import augment
    g = augment(data.edge_index, data.num_nodes, 2, 0)
    scores = torch.rand(len(KS), g.num_edges, generator=torch.Generator().manual_seed(1))
    layers = sample_layers(g.ptr, g.src, g.edge_type, scores, KS, "reservoir", seed=5)
    core = data.train_mask.nonzero().view(-1)[:64]
    return data, layers, core


def _model(data, norm):
    from spexphormer.nn import Spexphormer
    torch.manual_seed(0)
    return Spexphormer(data.num_features, 1, HIDDEN, HEADS, LAYERS, dropout=0.0, norm=norm)


def _step(model, net, data, batch: Batch, weight: float = 1.0):
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    logits = net(data.x[batch.nodes], batch.index, batch.edge_type)
    loss = task_loss(logits, data.y[batch.core], graph_info(data).task)
    (loss * weight).backward()
    opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _rank_step(out_dir):
    """On each rank: its half of the batch, through DDP with synchronised norms."""
    from spexphormer.distributed import data_parallel as dp
    from spexphormer.distributed import shard_range, world
    data, layers, core = _setup()
    w = world()
    lo, hi = shard_range(core.numel(), w.rank, w.size)
    batch = BatchBuilder(layers)(core[lo:hi])
    result = {}
    for norm in ("batch", "graph", "layer"):
        model = _model(data, norm)
        model.train()
        result[norm] = _step(model, dp.wrap(model, torch.device("cpu")), data, batch,
                             (hi - lo) * w.size / core.numel())
    torch.save(result, f"{out_dir}/rank{w.rank}.pt")


def merge_batches(a: Batch, b: Batch) -> Batch:
    """One batch holding ``a`` and ``b`` side by side (shared nodes kept as separate rows).

    Rows are ordered by the deepest layer set they belong to, ``a`` before ``b`` at each depth, so
    every layer's node set is again a prefix of the one below it.
    """
    L = len(a.index)
    pos_a, pos_b = torch.empty(a.sizes[0], dtype=torch.long), torch.empty(b.sizes[0], dtype=torch.long)
    order = 0
    for level in range(L, -1, -1):  # rows first needed at layer input `level`
        for batch, pos in ((a, pos_a), (b, pos_b)):
            start = batch.sizes[level + 1] if level < L else 0
            count = batch.sizes[level] - start
            pos[start:start + count] = torch.arange(order, order + count)
            order += count
    nodes = torch.empty(order, dtype=torch.long)
    nodes[pos_a], nodes[pos_b] = a.nodes, b.nodes
    index, types = [], []
    for layer in range(L):
        rows = a.sizes[layer + 1] + b.sizes[layer + 1]
        idx = torch.empty(rows, a.index[layer].size(1), dtype=torch.long)
        typ = torch.empty_like(idx)
        for batch, pos in ((a, pos_a), (b, pos_b)):
            q = pos[: batch.sizes[layer + 1]]
            idx[q], typ[q] = pos[batch.index[layer]], batch.edge_type[layer]
        index.append(idx), types.append(typ)
    sizes = [a.sizes[i] + b.sizes[i] for i in range(L + 1)]
    return Batch(nodes=nodes, sizes=sizes, index=index, edge_type=types, core=nodes[: sizes[-1]])


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_the_whole_batch(tmp_path):
    run_ranks(_rank_step, 2, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    data, layers, core = _setup()
    half = core.numel() // 2
    builder = BatchBuilder(layers)
    side_by_side = merge_batches(builder(core[:half]), builder(core[half:]))
    assert torch.equal(side_by_side.core, core)
    for norm in ("batch", "graph", "layer"):
        # One process, plain (unsynchronised) modules, the two halves as one batch of 64 core nodes.
        model = _model(data, norm)
        model.train()
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        reference = _step(model, model, data, side_by_side)
        for key, want in reference.items():
            for r in range(2):
                torch.testing.assert_close(ranks[r][norm][key], want, rtol=1e-5, atol=1e-6,
                                           msg=f"{norm} norm, rank {r}, {key}")
        assert not torch.allclose(reference["head.weight"], initial["head.weight"])
