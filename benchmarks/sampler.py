"""Benchmark: vectorised score grouping and reservoir sampling vs the research-code loops.

Builds a random graph (N nodes, uniform random sources and destinations, one self-loop per node,
average in-degree ``--avg-degree`` including the self-loop) with random scores normalised over
each node's in-edges; building it is not timed. Then times, on one layer of scores:

(a) grouping by destination: ``group_by_destination`` + ``gather_edges`` vs the research code's
    way (a Python loop over the edges appending each edge id and score to its destination's
    list, then one NumPy array per node, normalised). The loop runs on the edges of a random
    subset of ``--loop-nodes`` destinations and is scaled linearly by the edge count.
(b) reservoir sampling of k edges per node: ``sample_neighbours`` (first call, which includes the
    numba compile unless ``--numba-cache``, then the median of ``--repeats`` warm calls) vs the
    research code's per-node loop (exponential keys ``-log(U) / P`` and ``np.argpartition`` per
    node, extras with ``np.random.choice`` when k > degree) on ``--loop-nodes`` random nodes,
    scaled linearly by the node count.

Usage::

    python benchmarks/sampler.py --nodes 1000000 --avg-degree 30 --k 8 \
        --json benchmarks/results/sampler.json --loop-nodes 20000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--avg-degree", type=float, default=30.0)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--loop-nodes", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs of the vectorised code")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "sampler.json"))
    parser.add_argument("--numba-cache", action="store_true",
                        help="use the on-disk numba cache (default: a fresh one, so the first "
                             "call includes the compile)")
    return parser.parse_args(argv)


ARGS = parse_args()
if not ARGS.numba_cache:  # must be set before numba is imported
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-bench-")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from spexphormer.graph import gather_edges, group_by_destination  # noqa: E402
from spexphormer.sampling import sample_neighbours  # noqa: E402


def build_graph(num_nodes: int, avg_degree: float, seed: int):
    """Random edge list (unsorted) with self-loops and per-node normalised scores."""
    rng = np.random.default_rng(seed)
    extra = int(round(num_nodes * (avg_degree - 1)))
    src = np.concatenate([rng.integers(0, num_nodes, extra), np.arange(num_nodes)])
    dst = np.concatenate([rng.integers(0, num_nodes, extra), np.arange(num_nodes)])
    order = rng.permutation(src.size)  # self-loops scattered through the list
    src, dst = src[order], dst[order]
    raw = rng.random(src.size, dtype=np.float32) + np.float32(1e-3)
    total = np.bincount(dst, weights=raw, minlength=num_nodes)
    scores = (raw / total[dst]).astype(np.float32)
    return torch.from_numpy(np.stack([src, dst])), torch.from_numpy(scores)


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def group_vectorised(edge_index, scores, num_nodes):
    perm, ptr = group_by_destination(edge_index, num_nodes)
    return ptr, gather_edges(scores, perm)


def group_loop(dst: np.ndarray, scores: np.ndarray, num_nodes: int):
    """The research code's grouping: a Python loop over edges, then per-node arrays."""
    edge_ids = [[] for _ in range(num_nodes)]
    p = [[] for _ in range(num_nodes)]
    for i in range(dst.shape[0]):
        v = dst[i]
        edge_ids[v].append(i)
        p[v].append(scores[i])
    for v in range(num_nodes):
        p[v] = np.array(p[v])
        p[v] = p[v] / p[v].sum()
        edge_ids[v] = np.array(edge_ids[v])
    return edge_ids, p


def sample_loop(adj, p_list, p_inv, k: int):
    """The research code's reservoir sampler: one NumPy call chain per node."""
    out = []
    for eidx, p, pinv in zip(adj, p_list, p_inv):
        deg = eidx.shape[0]
        if k > deg:
            extra = np.random.choice(eidx, size=k - deg, replace=True, p=p)
            out.append(np.concatenate([eidx, extra]))
            continue
        keys = -np.log(np.random.rand(deg)) * pinv
        out.append(eidx[np.argpartition(keys, k - 1)[:k]])
    return np.stack(out)


def bench_grouping(edge_index, scores, num_nodes, loop_nodes, rng):
    group_vectorised(edge_index[:, :100], scores[None, :100], num_nodes)  # compile/load
    vec_s, (ptr, sorted_scores) = timed(group_vectorised, edge_index, scores[None], num_nodes)
    subset = np.zeros(num_nodes, bool)
    subset[rng.choice(num_nodes, loop_nodes, replace=False)] = True
    dst = edge_index[1].numpy()
    keep = subset[dst]
    relabel = np.cumsum(subset) - 1
    sub_dst, sub_scores = relabel[dst[keep]], scores.numpy()[keep]
    loop_sub_s, _ = timed(group_loop, sub_dst, sub_scores, loop_nodes)
    loop_s = loop_sub_s * dst.size / sub_dst.size
    return ptr, sorted_scores[0], vec_s, loop_s, loop_sub_s, int(sub_dst.size)


def bench_sampling(ptr, scores, k, repeats, loop_nodes, rng):
    first_s, _ = timed(sample_neighbours, ptr, scores, k, "reservoir", 0)
    warm = [timed(sample_neighbours, ptr, scores, k, "reservoir", r + 1)[0] for r in range(repeats)]
    nodes = np.sort(rng.choice(ptr.numel() - 1, loop_nodes, replace=False))
    ptr_np, s_np = ptr.numpy(), scores.numpy()
    adj = [np.arange(ptr_np[v], ptr_np[v + 1]) for v in nodes]
    p_list = [s_np[a].astype(np.float64) / s_np[a].sum() for a in adj]
    p_inv = [1.0 / (p + 1e-8) for p in p_list]
    loop_sub_s, _ = timed(sample_loop, adj, p_list, p_inv, k)
    loop_s = loop_sub_s * (ptr.numel() - 1) / loop_nodes
    return first_s, warm, loop_s, loop_sub_s


def report(res: dict) -> None:
    rows = [
        ("group by destination", res["group_vectorised_s"], res["group_loop_s"],
         res["group_speedup"], f"{res['group_loop_scaled_from_edges']:,} edges"),
        (f"reservoir k={res['k']} (warm)", res["vectorised_s"], res["loop_s"], res["speedup"],
         f"{res['loop_scaled_from_nodes']:,} nodes"),
    ]
    print(f"\nN = {res['nodes']:,}  E = {res['edges']:,}  numba threads = {res['threads']}  "
          f"load avg before/after = {res['load_before']} / {res['load_after']}")
    print(f"{'task':<26}{'vectorised s':>14}{'loop s':>12}{'speedup':>10}   loop scaled from")
    for name, vec, loop, speed, src in rows:
        print(f"{name:<26}{vec:>14.3f}{loop:>12.1f}{speed:>9.0f}x   {src}")
    print(f"reservoir first call (incl. {'cache load' if res['numba_cache'] else 'JIT compile'}): "
          f"{res['vectorised_first_call_s']:.3f} s; warm runs: "
          + ", ".join(f"{t:.3f}" for t in res["vectorised_runs_s"]))
    print("(loop times are measured on a subset and scaled linearly)")


def main() -> int:
    args = ARGS
    rng = np.random.default_rng(args.seed + 1)
    load_before = [round(x, 2) for x in os.getloadavg()]
    edge_index, scores = build_graph(args.nodes, args.avg_degree, args.seed)
    loop_nodes = min(args.loop_nodes, args.nodes)
    ptr, sorted_scores, g_vec, g_loop, g_loop_sub, g_edges = bench_grouping(
        edge_index, scores, args.nodes, loop_nodes, rng)
    first, warm, loop_s, loop_sub = bench_sampling(
        ptr, sorted_scores, args.k, args.repeats, loop_nodes, rng)
    vec = float(np.median(warm))
    res = {
        "nodes": args.nodes, "edges": int(edge_index.size(1)), "k": args.k,
        "vectorised_s": vec, "vectorised_min_s": min(warm), "vectorised_runs_s": warm,
        "vectorised_first_call_s": first, "numba_cache": args.numba_cache,
        "loop_s": loop_s, "loop_subset_s": loop_sub, "speedup": loop_s / vec,
        "loop_scaled_from_nodes": loop_nodes,
        "group_vectorised_s": g_vec, "group_loop_s": g_loop, "group_loop_subset_s": g_loop_sub,
        "group_speedup": g_loop / g_vec, "group_loop_scaled_from_edges": g_edges,
        "threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0], "numba": numba.__version__, "torch": torch.__version__,
    }
    report(res)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
