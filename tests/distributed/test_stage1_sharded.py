"""Stage 1 with the nodes sharded over 2 gloo ranks equals the one-process estimator."""

from __future__ import annotations

import pytest
import torch

from spexphormer.config import preset
from spexphormer.graph import augment
from spexphormer.pipeline.stage1 import augment_graph, estimate
from spexphormer.pipeline.stage1_sharded import node_shard
from tests.conftest import make_toy_graph
from tests.distributed.spawn import run_ranks

OVERRIDES = ["stage1.epochs=6", "graph.exp_deg=2", "stage1.temp_wait=1", "stage1.warmup_epochs=2"]


def _inputs(norm: str):
    data = make_toy_graph(num_nodes=240, num_edges=1500, seed=4)
    data.x = data.x.double()
    return data, preset(None).override([*OVERRIDES, f"stage1.norm={norm}"])


def _rank_estimate(out_dir, norm):
    from spexphormer.distributed import world
    data, cfg = _inputs(norm)
    torch.set_default_dtype(torch.float64)
    result = estimate(data, cfg, progress=False)
    torch.save({"scores": result.scores.scores, "state": result.fit.state_dict, "val": result.fit.val,
                "history": result.fit.history}, f"{out_dir}/rank{world().rank}.pt")


def test_shards_cover_every_edge_once_and_balance_edges():
    data, cfg = _inputs("graph")
    g = augment_graph(data, cfg)
    shards = [node_shard(g, r, 3) for r in range(3)]
    assert [s.lo for s in shards] == [0, shards[0].hi, shards[1].hi] and shards[-1].hi == g.num_nodes
    assert torch.equal(torch.cat([s.edge_index for s in shards], 1), g.edge_index)
    for s in shards:
        assert ((s.edge_index[1] >= s.lo) & (s.edge_index[1] < s.hi)).all()
        assert s.ptr[-1] == s.edge_hi - s.edge_lo
        assert abs((s.edge_hi - s.edge_lo) - g.num_edges / 3) <= g.in_degree().max()


@pytest.mark.slow
def test_two_ranks_give_the_one_process_scores_and_weights(tmp_path, norm="graph"):
    """GraphNorm in the layers and the encoder's BatchNorm: both synchronised."""
    run_ranks(_rank_estimate, 2, str(tmp_path), norm)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    data, cfg = _inputs(norm)
    # float64: the biases just before a norm have a zero gradient up to rounding, which AdamW
    # turns into steps of size lr in float32, so any change of summation order shows as ~1e-2. In
    # float64 the per-step gradients agree to ~1e-8 and, after 6 AdamW epochs, the weights to
    # ~2e-4 (AdamW normalises each coordinate's gradient, so small gradients' rounding is
    # amplified), the scores to ~3e-5; the losses and metrics of every epoch agree.
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        one = estimate(data, cfg, progress=False)
    finally:
        torch.set_default_dtype(dtype)
    assert one.fit.state_dict.keys() == ranks[0]["state"].keys()
    for rank in ranks:
        torch.testing.assert_close(rank["scores"], one.scores.scores, rtol=0, atol=2e-4)
        for key, want in one.fit.state_dict.items():
            torch.testing.assert_close(rank["state"][key], want, rtol=1e-3, atol=1e-3, msg=key)
        for mine, theirs in zip(rank["history"], one.fit.history):
            assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
            assert (mine["val"], mine["test"]) == pytest.approx((theirs["val"], theirs["test"]), abs=1e-9)
    # training moved the weights: the comparison is not between two initialisations
    assert len(one.fit.history) == 6 and one.fit.history[0]["loss"] != one.fit.history[-1]["loss"]
