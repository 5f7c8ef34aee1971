"""Train PyG's own SAGEConv on Spexphormer's attention-guided samples.

Stage 1 (the narrow Attention Score Estimator) scores every edge of the expander-augmented
graph; each epoch draws per-layer neighbour samples from those scores, and a plain PyG
GraphSAGE trains on them as hop-ordered mini-batches, trimming each layer with
``torch_geometric.utils.trim_to_layer``.

    python examples/pyg_sage_on_samples.py --dataset minesweeper --data-root ../shared/datasets
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch_geometric.nn import SAGEConv
from torch_geometric.utils import trim_to_layer

from spexphormer.presets import preset
from spexphormer.data import graph_info, load_graph
from spexphormer.pipeline import estimate
from spexphormer.sampling import LayerSampler
from spexphormer.sampling.pyg import iterate_pyg_batches
from spexphormer.train import compute_metric, output_dim, task_loss


class SAGE(torch.nn.Module):
    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.convs = torch.nn.ModuleList(SAGEConv(a, b) for a, b in zip(dims, dims[1:]))

    def forward(self, x, edge_index, num_sampled_nodes, num_sampled_edges):
        for i, conv in enumerate(self.convs):
            x, edge_index, _ = trim_to_layer(i, num_sampled_nodes, num_sampled_edges, x, edge_index)
            x = conv(x, edge_index)
            x = x if i == len(self.convs) - 1 else F.dropout(x.relu(), 0.2, self.training)
        return x


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="minesweeper")
    p.add_argument("--data-root", default=None)
    p.add_argument("--stage1-epochs", type=int, default=100)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    data = load_graph(args.dataset, root=args.data_root)
    info = graph_info(data)
    cfg = preset(args.dataset).override([f"stage1.epochs={args.stage1_epochs}", *args.overrides])
    scores = estimate(data, cfg, progress=False).scores          # stage 1: attention scores
    s2 = cfg.stage2                                              # draws ks[l] edges per node:
    sampler = LayerSampler(scores, s2.ks, s2.sampler, s2.keep_graph_edges, seed=0)
    model = SAGE(data.num_features, 64, output_dim(info.task, info.num_classes), cfg.stage2.num_layers)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    train, test = data.train_mask.nonzero().view(-1), data.test_mask.nonzero().view(-1)

    def run(nodes, layers, shuffle):
        for batch in iterate_pyg_batches(nodes, args.batch_size, layers, data.x, data.y, shuffle):
            out = model(batch.x, batch.edge_index, batch.num_sampled_nodes, batch.num_sampled_edges)
            yield out[: batch.batch_size], batch.y[: batch.batch_size]

    for epoch in range(args.epochs):
        model.train()
        for out, y in run(train, sampler.sample(epoch), shuffle=True):
            opt.zero_grad()
            task_loss(out, y, info.task).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        outs, ys = zip(*run(test, sampler.sample(args.epochs), shuffle=False))
    result = {"dataset": info.name, "metric": info.metric,
              "test": compute_metric(torch.cat(outs), torch.cat(ys), info.task, info.metric)}
    print(f"{info.name}: GraphSAGE on Spexphormer samples, test {info.metric} {result['test']:.4f}")
    return result


if __name__ == "__main__":
    main()
