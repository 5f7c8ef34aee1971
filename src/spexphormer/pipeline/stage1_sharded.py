r"""Stage 1 sharded over ranks: each rank owns the destinations of one slice of the nodes.

The augmented graph is grouped by destination with CSR offsets, so the in-edges of nodes
:math:`[lo_r, hi_r)` are the contiguous edge range ``ptr[lo_r]:ptr[hi_r]``. The cut points are
chosen to give every rank about :math:`E / W` edges (the attention's cost), not :math:`N / W` nodes.
Per layer, with the narrow width :math:`d_s` (4 by default):

.. math::
    H = \mathrm{AllGather}_r\big(h^{(\ell)}_{[lo_r, hi_r)}\big) \in \mathbb{R}^{N \times d_s},
    \qquad
    h^{(\ell+1)}_{[lo_r, hi_r)} = \mathrm{Block}_\ell\big(h^{(\ell)}_{[lo_r, hi_r)},\
        \mathrm{Attn}_\ell(H, \text{edges of shard } r)_{[lo_r, hi_r)}\big).

Keys and values come from any node (hence the gather of :math:`N \times d_s` floats per layer); the
queries, the softmax over each destination's in-edges, and the residual / norm / feed-forward
block only touch the shard's own rows. The attention is the layer's own module called on the
shard's edge list, so whichever kernel computes a layer's attention computes a shard's. The fused
CPU kernels get the shard's bipartite CSR (its destinations, all N sources) and the shard's rows
as queries, so a rank holds its queries, outputs and their gradients for its own rows only: only
the keys and values (and their gradients) have N rows.
GraphNorm and BatchNorm take their statistics over all nodes (:mod:`spexphormer.distributed.synced_norms`),
and the loss is weighted so that DDP's average gradient is the one-process gradient.

Memory: the augmented graph is built once per machine and memory-mapped by the local ranks
(:func:`shared_augmented_graph`); a rank reads only its shard's edges, so only those pages are
resident in it. At export every rank writes its own slice ``[:, ptr[lo]:ptr[hi]]`` of the scores
into one memory-mappable scores folder (:mod:`spexphormer.scores`) that rank 0 then seals; no
rank gathers the other shards' scores. The folder holds what a single process writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from spexphormer.config import Config
from spexphormer.data import graph_info
from spexphormer.distributed import data_parallel as dp
from spexphormer.distributed.machine_share import job_folder, share_arrays
from spexphormer.distributed.world import all_gather_rows, all_reduce_, barrier, broadcast_text, gather_rows, world
from spexphormer.graph import AugmentedGraph, graph_fingerprint
from spexphormer.graph.augment import NUM_EDGE_TYPES
from spexphormer.nn import AttentionScoreEstimator
from spexphormer.nn.csr_attention import CSRGraph
from spexphormer.pipeline.stage1 import (Stage1Result, augment_graph, best_of_restarts, estimator_args,
                                         export_temperature, exported_scores, restart_metrics,
                                         warn_if_near_chance)
from spexphormer.scores import Scores, seal_scores_folder, start_scores_folder, write_scores_slice
from spexphormer.train import compute_metric, fit, task_loss, temperature
from spexphormer.train.metrics import labelled
from spexphormer.train.state import TrainingState
from spexphormer.utils.memory import release_free_memory

__all__ = ["NodeShard", "node_shard", "shard_csr", "ShardedEstimator", "shared_augmented_graph", "write_sharded_scores",
           "write_scores_slices", "seal_sharded_scores", "estimate_sharded"]


@dataclass
class NodeShard:
    """The destination nodes ``[lo, hi)`` of one rank and their in-edges (global node ids).

    Shapes:
        edge_index: [2, E_r], destinations in [lo, hi), sorted by destination
        edge_type: [E_r]
        ptr: [hi - lo + 1] CSR offsets of the shard's edges
    """

    lo: int
    hi: int
    edge_lo: int
    edge_hi: int
    edge_index: Tensor
    edge_type: Tensor
    ptr: Tensor


def node_shard(graph: AugmentedGraph, rank: int, size: int) -> NodeShard:
    """Rank ``rank``'s shard: contiguous destinations holding about ``E / size`` in-edges."""
    targets = torch.arange(size + 1, dtype=torch.float64) * graph.num_edges / size
    cuts = torch.searchsorted(graph.ptr.to(torch.float64), targets).clamp(max=graph.num_nodes)
    cuts[0], cuts[-1] = 0, graph.num_nodes
    cuts = torch.cummax(cuts, 0).values
    lo, hi = int(cuts[rank]), int(cuts[rank + 1])
    e0, e1 = int(graph.ptr[lo]), int(graph.ptr[hi])
    return NodeShard(lo, hi, e0, e1, graph.edge_index[:, e0:e1], graph.edge_type[e0:e1],
                     graph.ptr[lo:hi + 1] - e0)


def shard_csr(shard: NodeShard, num_nodes: int) -> CSRGraph:
    """The fused kernels' bipartite CSR of the shard's edges: the shard's ``hi - lo``
    destinations, all ``num_nodes`` sources."""
    return CSRGraph.from_edges(shard.edge_index, shard.edge_type, shard.ptr, NUM_EDGE_TYPES,
                               num_sources=num_nodes, dst_offset=shard.lo)


class ShardedEstimator(nn.Module):
    r"""The forward pass of :class:`~spexphormer.nn.AttentionScoreEstimator` on one node shard.

    Shapes:
        - **x**: :math:`(n_r, F)`, the features of the shard's nodes
        - **output**: logits :math:`(n_r, \text{out})`, or ``(logits, scores)`` with scores
          :math:`(L, E_r)` (the shard's edges, heads averaged) if ``return_scores``
    """

    def __init__(self, model: AttentionScoreEstimator, shard: NodeShard, csr: CSRGraph | None = None) -> None:
        super().__init__()
        self.model, self.shard, self.csr = model, shard, csr

    def forward(self, x: Tensor, temperature: float = 1.0, return_scores: bool = False):
        m, s = self.model, self.shard
        h = m.encoder(x)  # [n_r, d_s]
        scores = []
        for layer in m.layers:
            h_all = gather_rows(h)  # [N, d_s]
            if self.csr is not None:  # queries from the shard's rows only: out is [n_r, d_s]
                out, alpha = layer.attn(h_all, s.edge_index, s.edge_type, temperature, csr=self.csr, x_dst=h)
            else:
                out, alpha = layer.attn(h_all, s.edge_index, s.edge_type, temperature)  # [N, d_s], [E_r, H]
                out = out[s.lo:s.hi]
            h = layer.post_attention(h, out)  # residual, norms, feed-forward on the shard's rows
            if return_scores:
                scores.append(alpha.detach().mean(dim=-1).float())  # [E_r]
        logits = m.head(h)
        return (logits, torch.stack(scores)) if return_scores else logits


AUGMENTED = "augmented"  # the shared augmented graph's folder in the job folder


def shared_augmented_graph(data: Data, cfg: Config) -> AugmentedGraph:
    """:func:`~spexphormer.pipeline.stage1.augment_graph`, built by local rank 0 and memory-mapped
    by every local rank (:func:`~spexphormer.distributed.machine_share.share_arrays`)."""
    def build():
        g = augment_graph(data, cfg)
        return {"edge_index": g.edge_index, "edge_type": g.edge_type, "ptr": g.ptr}, {"num_nodes": g.num_nodes}

    arrays, meta = share_arrays(AUGMENTED, build)
    return AugmentedGraph(arrays["edge_index"], arrays["edge_type"], arrays["ptr"], int(meta["num_nodes"]))


def _shared_graph_files() -> dict[str, Path] | None:
    """The files of :func:`shared_augmented_graph` under torchrun (None in one process)."""
    if not world().active:
        return None
    return {name: job_folder() / AUGMENTED / f"{name}.npy" for name in ("edge_index", "edge_type", "ptr")}


def write_sharded_scores(described: Scores, shard: NodeShard, local_scores: Tensor, target: Path,
                         graph_files: dict[str, Path] | None = None) -> Scores:
    """Every rank's slice of the scores into one folder at ``target``, sealed by rank 0; then
    every rank maps it (:func:`write_scores_slices`, then :func:`seal_sharded_scores`; a caller
    that can drop its slice in between calls the two itself, as :func:`estimate_sharded` does).

    Shapes:
        local_scores: [L, E_r], the edges ``[shard.edge_lo, shard.edge_hi)``
    """
    return seal_sharded_scores(described, write_scores_slices(described, shard, local_scores, target, graph_files),
                               target)


def write_scores_slices(described: Scores, shard: NodeShard, local_scores: Tensor, target: Path,
                        graph_files: dict[str, Path] | None = None) -> Path:
    """Every rank's slice of the scores into one temporary folder beside ``target`` (then
    :func:`seal_sharded_scores`). ``described``: the scores' metadata (its own tensor is not
    written); ``graph_files``: the graph's arrays as files (linked in by rank 0), else every rank
    writes its shard's edges. Returns the temporary folder (the same on every rank).

    Shapes:
        local_scores: [L, E_r], the edges ``[shard.edge_lo, shard.edge_hi)``
    """
    g = described.graph
    tmp = broadcast_text(str(start_scores_folder(target, g.num_nodes, g.num_edges, local_scores.size(0),
                                                 g.edge_index.dtype, graph_files)) if world().is_main else None)
    if graph_files:
        write_scores_slice(tmp, shard.edge_lo, local_scores)
    else:  # the shard's own edges only (the pages of the graph this rank already reads)
        write_scores_slice(tmp, shard.edge_lo, local_scores, shard.edge_index, shard.edge_type,
                           g.ptr if world().is_main else None)
    return Path(tmp)


def seal_sharded_scores(described: Scores, tmp: Path, target: Path) -> Scores:
    """The folder :func:`write_scores_slices` filled, sealed by rank 0 at ``target`` and mapped by
    every rank. Its contents are not checked again (:meth:`Scores.load`'s ``check``): this job
    computed and wrote them a moment ago, and every rank checking all of them would hold its own
    temporaries at the export's peak."""
    barrier()
    if world().is_main:
        seal_scores_folder(tmp, target, described.meta())
    barrier()
    return Scores.load(target, check=False)


def _global_count(mask: Tensor) -> int:
    return int(all_reduce_(mask.sum().to(torch.float64)))


def estimate_sharded(
    data: Data,
    cfg: Config,
    out: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    graph: AugmentedGraph | None = None,
    log_path: str | os.PathLike | None = None,
    progress: bool = True,
    fused: bool = True,
    state: TrainingState | None = None,
):
    """:func:`~spexphormer.pipeline.stage1.estimate` with the nodes sharded over the ranks.

    Every rank returns the same result: the scores folder at ``out`` (the same path on every
    rank; the job's machine folder when None), memory-mapped. Pass ``log_path`` on one rank only.
    ``fused``: on the CPU, the shard's attention runs in the fused CSR kernels, on the shard's
    bipartite CSR (:func:`shard_csr`). ``state``: snapshots
    (:class:`~spexphormer.distributed.snapshots.RankedTrainingState`, the same on every rank).
    """
    s1, device, w, info = cfg.stage1, torch.device(device), world(), graph_info(data)
    shared = graph is None
    graph = shared_augmented_graph(data, cfg) if shared else graph
    # one rank, now: its E-sized temporary would otherwise come on top of every rank's training
    fingerprint = broadcast_text(graph_fingerprint(data.edge_index, data.num_nodes, data.num_features)
                                 if w.is_main else None)
    shard = node_shard(graph, w.rank, w.size)
    rows = slice(shard.lo, shard.hi)
    shard_dev = NodeShard(shard.lo, shard.hi, shard.edge_lo, shard.edge_hi, shard.edge_index.to(device),
                          shard.edge_type.to(device), shard.ptr.to(device))
    x, y = data.x[rows].to(device), data.y[rows].to(device)
    csr = shard_csr(shard, graph.num_nodes) if fused and device.type == "cpu" else None
    masks = {name: getattr(data, f"{name}_mask") for name in ("train", "val", "test")}
    train = (masks["train"][rows] & labelled(data.y[rows])).to(device)
    weight = int(train.sum()) * w.size / max(_global_count(masks["train"] & labelled(data.y)), 1)
    temp = lambda epoch: temperature(epoch, s1.temp_ratio, s1.temp_wait, s1.temp_min)  # noqa: E731

    def train_one(name, log_path, state):
        model = AttentionScoreEstimator(**estimator_args(data, cfg)).to(device)
        sharded = ShardedEstimator(model, shard_dev, csr)
        net = dp.wrap(sharded, device, sync_eval=True)  # every rank runs the same evaluation passes

        def train_epoch(epoch, optimize):
            logits = net(x, temp(epoch))
            # a shard without training nodes still takes part in the backward pass (weight 0)
            loss = task_loss(logits[train], y[train], info.task) if weight > 0 else logits.sum() * 0.0
            optimize(loss * weight)
            return dp.global_mean(loss.item() * int(train.sum()), int(train.sum()))

        def evaluate(epoch):
            logits = all_gather_rows(sharded(x, temp(epoch))).cpu()  # [N, out]
            return {name: compute_metric(logits[m], data.y[m], info.task, info.metric) for name, m in masks.items()}

        return model, fit(model, train_epoch, evaluate, s1.epochs, s1.lr, s1.weight_decay, s1.warmup_epochs,
                          s1.clip, s1.warmup_rule, epoch_info=lambda e: {"temperature": round(temp(e), 5)},
                          log_path=log_path, desc=f"stage 1 ({name}, sharded)", progress=progress, state=state)

    model, result, tried = best_of_restarts(s1, train_one, state, log_path)
    if w.is_main:
        warn_if_near_chance(data, result)
    sharded = ShardedEstimator(model, shard_dev, csr)
    model.eval()
    release_free_memory()  # the training steps' freed blocks: the export and stage 2 come next
    t_export = export_temperature(result.best_epoch, len(result.history) - 1, s1)
    with torch.no_grad():
        _, local_scores = sharded(x, t_export, return_scores=True)  # [L, E_r]
    # the metadata only: an empty tensor, not a view that would keep the scores' storage alive
    described = exported_scores(data, cfg, graph, local_scores.new_empty((local_scores.size(0), 0)), fingerprint,
                                t_export, result, world_size=w.size, **restart_metrics(tried))
    target = Path(out) if out is not None else job_folder() / "scores"
    tmp = write_scores_slices(described, shard, local_scores, target, _shared_graph_files() if shared else None)
    del local_scores  # now in the folder's pages: not a second copy in this rank while it maps the folder
    release_free_memory()
    return Stage1Result(seal_sharded_scores(described, tmp, target), result, model)
