"""Tests that can fail: the whole method learns a neighbourhood rule, and beats uniform sampling.

A node's label is the majority of one binary feature over its five in-neighbours; its own feature
is independent of its label. A model sees the label only through attention on the graph edges, so
the estimator must learn to put its scores there, and sampling by those scores must beat sampling
uniformly over graph, expander and self-loop edges.
"""

import pytest
import torch
from torch_geometric.data import Data

from spexphormer.presets import preset
from spexphormer.pipeline import estimate, train_wide
from spexphormer.data import GraphInfo

IN_DEGREE = 5


def majority_graph(num_nodes: int = 1500, seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    bit = torch.randint(0, 2, (num_nodes,), generator=g)
    dst = torch.arange(num_nodes).repeat_interleave(IN_DEGREE)
    offsets = torch.randint(1, num_nodes, (num_nodes * IN_DEGREE,), generator=g)
    src = (dst + offsets) % num_nodes  # no self-loops; repeats are rare and harmless
    y = (torch.zeros(num_nodes).index_add_(0, dst, bit[src].float()) > IN_DEGREE / 2).long()
    x = torch.cat([bit.float().unsqueeze(1), torch.randn(num_nodes, 3, generator=g)], dim=1)
    perm = torch.randperm(num_nodes, generator=g)
    cut = [0, int(0.5 * num_nodes), int(0.7 * num_nodes), num_nodes]
    masks = [torch.zeros(num_nodes, dtype=torch.bool).index_fill_(0, perm[a:b], True) for a, b in zip(cut, cut[1:])]
    edge_index = torch.unique(torch.stack([src, dst]), dim=1)
    data = Data(x=x, y=y, edge_index=edge_index, train_mask=masks[0], val_mask=masks[1], test_mask=masks[2])
    data.info = GraphInfo(name="majority", task="binary", metric="rocauc", num_classes=2, split="random")
    return data


CONFIG = ["graph.exp_deg=3", "stage1.num_layers=1", "stage1.epochs=120", "stage1.temp_wait=10",
          "stage1.temp_ratio=0.95", "stage2.num_layers=1", "stage2.ks=5", "stage2.hidden=16", "stage2.heads=2",
          "stage2.epochs=40", "stage2.batch_size=256", "stage2.dropout=0.0", "stage2.pre_layers=0",
          "run.threads=1"]


#: Stage-1 seeds tried; the one with the best validation metric is kept. On this task the
#: estimator is bistable: its attention either moves onto the graph edges or collapses onto the
#: expander and self-loop edges (share ~0, estimator test ROC-AUC ~0.5). Measured, one seed each
#: (data, stage1 and graph seed 0..9, 1 thread): 60 epochs collapsed in 2 of 6 seeds, 120 epochs
#: in 1 of 10 (seed 8); a change of CPU or thread count moves the trajectory like a change of seed.
#: With three tries, a collapse of all three is what the test can still catch (a broken estimator).
#: Checked with the best of three on data seeds 8 (whose single estimator collapsed) and 1: graph
#: share 0.97 / 0.99, learned 0.977 / 0.969, uniform 0.807 / 0.761.
STAGE1_SEEDS = (0, 1, 2)


def estimate_best(data, cfg):
    """The stage-1 result with the best validation metric over ``STAGE1_SEEDS``."""
    runs = [estimate(data, cfg.override([f"stage1.seed={s}"]), progress=False) for s in STAGE1_SEEDS]
    return max(runs, key=lambda r: r.fit.val)


@pytest.mark.slow
def test_the_method_learns_a_neighbourhood_rule_and_beats_uniform_sampling():
    torch.set_num_threads(1)
    data = majority_graph()
    cfg = preset("minesweeper").override(CONFIG)
    scores = estimate_best(data, cfg).scores
    # the estimator's attention goes to the graph edges (type 0), where the label lives.
    # Measured with one stage-1 seed of 120 epochs (data/stage1/graph seed 0..9, 1 thread): 0.81-1.00
    # when it does not collapse, 8e-6 when it does (see STAGE1_SEEDS). With 60 epochs and
    # ATEN_CPU_CAPABILITY=default + MKL_ENABLE_INSTRUCTIONS=AVX2, seeds 0..2 gave 0.90 / 0.13 / 1.00
    # against 0.90 / 0.02 / 1.00 natively: the collapse is a property of the seed, not of the CPU.
    graph_share = scores.scores[0][scores.graph.edge_type == 0].sum() / data.num_nodes
    assert graph_share > 0.6, f"only {graph_share:.2f} of the attention is on graph edges"
    learned = [train_wide(data, scores, cfg, seed=s, progress=False).fit.test for s in (0, 1)]
    uniform_cfg = cfg.override(["stage2.sampler=uniform"])
    uniform = [train_wide(data, scores, uniform_cfg, seed=s, progress=False).fit.test for s in (0, 1)]
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    # Measured (same runs, non-collapsed estimators): learned 0.924-0.9998 (mean of the two
    # seeds), uniform 0.75-0.79, learned - uniform 0.153-0.253; a collapsed estimator gives learned
    # 0.49-0.52, i.e. chance (0.5), below uniform. Bounds: 0.85 and +0.1.
    assert mean(learned) > 0.85, learned
    assert mean(learned) > mean(uniform) + 0.1, (learned, uniform)
