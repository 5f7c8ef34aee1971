"""Large graphs through both stages on one machine: synthetic graphs of millions of nodes.

Graphs (``spexphormer.data.planted_partition``, random 60/20/20 split, seed 0):

* ``amazon2m``  shaped like Amazon2M: 2,449,029 nodes, average degree 25.3 (~62M directed
                edges), 100 features, 47 classes;
* ``planted``   ``--nodes N`` nodes, degree 20, 128 features, 5 classes (3M by default).

Every size runs in its own child process (1 thread for PyTorch and numba), with the preset the
library picks by graph size (``spexphormer.config.preset_for_size``: 2 layers on large graphs,
as the paper does): augment the graph, stage 1 (the estimator, full batch, fused CSR kernels)
for ``--stage1-epochs`` epochs, stage 2 (Spexphormer, sampled mini-batches) for one epoch, which
ends with the evaluation on all validation and test nodes. Per stage: seconds per epoch (as
``fit`` counts them: training + evaluation), peak RSS (reset at the start of the stage), and the
projected wall time of the preset's full number of epochs.

Two comparisons, each in child processes of its own:

* ``--kernels``: stage 1 at ``--nodes`` (default 1M, degree 20, 128 features, the default
  4-layer preset: the setting of ``benchmarks/scaling.py``) with the edge-list kernels and with
  the fused CSR kernels, same threads, one after the other in one run.
* ``--exphormer``: full-batch Exphormer (the stage-2 network of the large-graph preset) at
  growing sizes under a hard address-space cap (``RLIMIT_AS``, ``--cap-gib``, at most 14 GiB),
  one epoch each, stopping at the first size that fails; memory beyond is extrapolated.

Usage::

    python benchmarks/large.py --nodes 3000000 --json benchmarks/results/large_3m.json
    python benchmarks/large.py --shape amazon2m --json benchmarks/results/large_amazon2m.json
    python benchmarks/large.py --kernels --nodes 1000000 --json benchmarks/results/large_kernels.json
    python benchmarks/large.py --exphormer --sizes 250000,500000,1000000 --json benchmarks/results/large_exphormer.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, child_env, fmt_bytes, machine, python, save_json, table  # noqa: E402

SHAPES = {
    "amazon2m": dict(num_nodes=2_449_029, avg_degree=25.3, num_features=100, num_classes=47),
    "planted": dict(num_nodes=3_000_000, avg_degree=20, num_features=128, num_classes=5),
}
MAX_CAP_GIB = 14.0


def make_graph(shape: str, nodes: int | None):
    from spexphormer.data import planted_partition
    spec = dict(SHAPES[shape])
    if nodes:
        spec["num_nodes"] = nodes
    tic = time.perf_counter()
    data = planted_partition(spec["num_nodes"], avg_degree=spec["avg_degree"], num_features=spec["num_features"],
                             num_classes=spec["num_classes"], seed=0)
    return data, spec, time.perf_counter() - tic


# ------------------------------------------------------------------------------------------- children

def child_pipeline(args) -> dict:
    """Both stages on one graph."""
    import torch

    from spexphormer.config import preset_for_size
    from spexphormer.pipeline.stage1 import augment_graph, estimate
    from spexphormer.pipeline.stage2 import train_wide
    from spexphormer.utils.memory import StageMeter, current_rss

    data, spec, gen_s = make_graph(args.shape, args.nodes)
    full = preset_for_size(data.num_nodes)
    cfg = full.override([f"stage1.epochs={args.stage1_epochs}", "stage2.epochs=1", "run.device=cpu"])
    res = {"shape": args.shape, "nodes": data.num_nodes, "edges": int(data.num_edges), **spec,
           "generate_seconds": round(gen_s, 1), "rss_after_generate": current_rss(),
           "torch_threads": torch.get_num_threads(), "completed": False,
           "preset": {"stage1": cfg.to_dict()["stage1"], "stage2": cfg.to_dict()["stage2"],
                      "graph": cfg.to_dict()["graph"]}}
    tic = time.perf_counter()
    graph = augment_graph(data, cfg)
    res.update(augment_seconds=round(time.perf_counter() - tic, 1), augmented_edges=graph.num_edges)
    _progress(res, args)
    with StageMeter("cpu") as m1:
        r1 = estimate(data, cfg, device="cpu", graph=graph, progress=False)
    spe1 = r1.fit.seconds_per_epoch
    res["stage1"] = {"epochs": cfg.stage1.epochs, "seconds": round(m1.seconds, 1), "seconds_per_epoch": spe1,
                     "peak_rss_bytes": m1.peak_memory_bytes, "baseline_rss_bytes": m1.baseline_bytes,
                     "val": r1.fit.val, "test": r1.fit.test,
                     "preset_epochs": full.stage1.epochs, "projected_preset_seconds": spe1 * full.stage1.epochs}
    _progress(res, args)
    scores = r1.scores
    del r1, graph
    with StageMeter("cpu") as m2:
        r2 = train_wide(data, scores, cfg, seed=0, device="cpu", progress=False)
    spe2 = r2.fit.seconds_per_epoch
    rec = r2.fit.history[0]
    res["stage2"] = {"epochs": 1, "seconds": round(m2.seconds, 1), "seconds_per_epoch": spe2,
                     "sampling_seconds": round(r2.sampling_seconds, 1),
                     "peak_rss_bytes": m2.peak_memory_bytes, "baseline_rss_bytes": m2.baseline_bytes,
                     "val": rec.get("val"), "test": rec.get("test"),
                     "evaluated_nodes": {"val": int(data.val_mask.sum()), "test": int(data.test_mask.sum())},
                     "preset_epochs": full.stage2.epochs, "projected_preset_seconds": spe2 * full.stage2.epochs}
    res["projected_preset_hours"] = round((res["stage1"]["projected_preset_seconds"]
                                           + res["stage2"]["projected_preset_seconds"]) / 3600, 2)
    res["peak_rss_bytes"] = max(m1.peak_memory_bytes, m2.peak_memory_bytes)
    res["completed"] = True
    return res


def child_stage1(args) -> dict:
    """Stage 1 alone with one kernel (``--kernel edge_list|csr``)."""
    import torch

    from spexphormer.config import preset
    from spexphormer.pipeline.stage1 import augment_graph, estimate
    from spexphormer.utils.memory import StageMeter

    data, spec, _ = make_graph(args.shape, args.nodes)
    cfg = preset(None).override([f"stage1.epochs={args.stage1_epochs}", "run.device=cpu"])
    graph = augment_graph(data, cfg)
    with StageMeter("cpu") as meter:
        r = estimate(data, cfg, device="cpu", graph=graph, progress=False, fused=args.kernel == "csr")
    return {"kernel": args.kernel, "nodes": data.num_nodes, "edges": int(data.num_edges),
            "augmented_edges": graph.num_edges, "epochs": cfg.stage1.epochs,
            "seconds_per_epoch": r.fit.seconds_per_epoch, "epoch_seconds": [h["seconds"] for h in r.fit.history],
            "peak_rss_bytes": meter.peak_memory_bytes, "baseline_rss_bytes": meter.baseline_bytes,
            "losses": [h["loss"] for h in r.fit.history], "val": [h["val"] for h in r.fit.history],
            "torch_threads": torch.get_num_threads(), "config": cfg.to_dict()["stage1"]}


def child_exphormer(args) -> dict:
    from spexphormer.config import preset_for_size
    from spexphormer.pipeline.exphormer import train_exphormer
    from spexphormer.pipeline.stage1 import augment_graph
    from spexphormer.utils.memory import StageMeter

    data, spec, _ = make_graph(args.shape, args.nodes)
    cfg = preset_for_size(args.network_nodes).override(["stage2.epochs=1", "run.device=cpu"])
    graph = augment_graph(data, cfg)
    with StageMeter("cpu") as meter:
        r = train_exphormer(data, cfg, device="cpu", graph=graph, progress=False)
    return {"nodes": data.num_nodes, "edges": int(data.num_edges), "augmented_edges": graph.num_edges,
            "seconds_per_epoch": r.fit.seconds_per_epoch, "peak_rss_bytes": meter.peak_memory_bytes,
            "baseline_rss_bytes": meter.baseline_bytes, "completed": True,
            "network": {k: cfg.to_dict()["stage2"][k] for k in ("hidden", "heads", "num_layers")}}


def _progress(res: dict, args) -> None:
    """Partial results as the child goes (a killed child still leaves what it measured)."""
    if args.json:
        save_json(res, Path(args.json))


# ------------------------------------------------------------------------------------------- parent

def spawn(argv: list, log: Path, cap_bytes: int | None = None, timeout: float | None = None) -> tuple[int, float]:
    """Run a child with one thread; ``cap_bytes`` caps its address space (RLIMIT_AS)."""
    def limit():
        if cap_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
    log.parent.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    with open(log, "w") as fh:
        try:
            rc = subprocess.run([python(), str(Path(__file__).resolve()), *map(str, argv)], env=child_env(1),
                                stdout=fh, stderr=subprocess.STDOUT, preexec_fn=limit, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -9
    return rc, time.perf_counter() - tic


def run_size(args) -> dict:
    out = Path(args.json) if args.json else RESULTS / f"large_{args.shape}_{args.nodes or SHAPES[args.shape]['num_nodes']}.json"
    argv = ["--child", "pipeline", "--shape", args.shape, "--stage1-epochs", args.stage1_epochs, "--json", out]
    if args.nodes:
        argv += ["--nodes", args.nodes]
    rc, wall = spawn(argv, out.with_suffix(".log"))
    res = json.loads(out.read_text()) if out.exists() else {"nodes": args.nodes, "completed": False}
    res.update(child_rc=rc, child_wall_seconds=round(wall, 1), machine=machine("cpu"))
    save_json(res, out)
    rows = [{"stage": s, "s/epoch": f"{res[s]['seconds_per_epoch']:.1f}", "peak RSS": fmt_bytes(res[s]["peak_rss_bytes"]),
             "preset epochs": res[s]["preset_epochs"], "projected": f"{res[s]['projected_preset_seconds'] / 3600:.2f} h"}
            for s in ("stage1", "stage2") if s in res]
    print(table(rows, f"{res.get('nodes', 0):,} nodes, {res.get('edges', 0):,} edges ({args.shape}); "
                      f"completed: {res['completed']}"))
    print(f"wrote {out}")
    return res


def run_kernels(args) -> dict:
    out = Path(args.json) if args.json else RESULTS / "large_kernels.json"
    runs = {}
    for kernel in ("edge_list", "csr"):
        part = out.with_name(out.stem + f"_{kernel}.json")
        rc, wall = spawn(["--child", "stage1", "--kernel", kernel, "--shape", "planted", "--nodes", args.nodes,
                          "--stage1-epochs", args.stage1_epochs, "--json", part], part.with_suffix(".log"))
        runs[kernel] = json.loads(part.read_text()) if rc == 0 and part.exists() else {"failed": f"rc {rc}"}
        runs[kernel]["child_wall_seconds"] = round(wall, 1)
    res = {"benchmark": "stage-1 kernels", "nodes": args.nodes, "runs": runs, "machine": machine("cpu")}
    old, new = runs["edge_list"], runs["csr"]
    if "seconds_per_epoch" in old and "seconds_per_epoch" in new:
        res["speedup"] = old["seconds_per_epoch"] / new["seconds_per_epoch"]
        res["memory_ratio"] = old["peak_rss_bytes"] / new["peak_rss_bytes"]
        res["targets"] = {"speedup_10x": res["speedup"] >= 10, "peak_4gib": new["peak_rss_bytes"] <= 4 * 2**30}
    save_json(res, out)
    rows = [{"kernel": k, "s/epoch": f"{r.get('seconds_per_epoch', math.nan):.1f}",
             "peak RSS": fmt_bytes(r.get("peak_rss_bytes", 0)), "val per epoch": r.get("val", r.get("failed"))}
            for k, r in runs.items()]
    print(table(rows, f"stage 1 at {args.nodes:,} nodes: edge-list vs fused CSR kernels"))
    if "speedup" in res:
        print(f"speed-up {res['speedup']:.1f}x, peak RSS {res['memory_ratio']:.2f}x lower")
    print(f"wrote {out}")
    return res


def run_exphormer(args) -> dict:
    cap_gib = min(args.cap_gib, MAX_CAP_GIB)
    out = Path(args.json) if args.json else RESULTS / "large_exphormer.json"
    sizes, rows = [int(s) for s in args.sizes.split(",")], []
    network = max(sizes)  # one network for every size: the large-graph preset's stage 2
    for n in sizes:
        part = out.with_name(out.stem + f"_n{n}.json")
        rc, wall = spawn(["--child", "exphormer", "--shape", "planted", "--nodes", n, "--network-nodes", network,
                          "--json", part], part.with_suffix(".log"), cap_bytes=int(cap_gib * 2**30),
                         timeout=args.timeout)
        row = json.loads(part.read_text()) if rc == 0 and part.exists() else {
            "nodes": n, "completed": False,
            "failed": "timed out" if rc == -9 else f"rc {rc} under RLIMIT_AS {cap_gib} GiB (see log)"}
        row["child_wall_seconds"] = round(wall, 1)
        rows.append(row)
        save_json({"benchmark": "exphormer under a memory cap", "cap_gib": cap_gib, "sizes": rows}, out)
        if not row["completed"]:
            break
    done = [r for r in rows if r["completed"]]
    res = {"benchmark": "exphormer under a memory cap", "cap_gib": cap_gib, "sizes": rows, "machine": machine("cpu")}
    if len(done) >= 2:  # affine in augmented edges through the two largest measured sizes
        (a, b) = done[-2:]
        per_edge = (b["peak_rss_bytes"] - a["peak_rss_bytes"]) / (b["augmented_edges"] - a["augmented_edges"])
        fixed = b["peak_rss_bytes"] - per_edge * b["augmented_edges"]
        res["projection"] = {"bytes_per_augmented_edge": per_edge, "fixed_bytes": fixed,
                             "max_augmented_edges_in_24gib": (24 * 2**30 - fixed) / per_edge,
                             "note": "affine fit of measured peak RSS through the two largest measured sizes"}
    save_json(res, out)
    print(table([{"nodes": f"{r['nodes']:,}", "s/epoch": f"{r.get('seconds_per_epoch', math.nan):.1f}",
                  "peak RSS": fmt_bytes(r.get("peak_rss_bytes", 0)), "result": "ok" if r["completed"] else r["failed"]}
                 for r in rows], f"full-batch Exphormer, address space capped at {cap_gib} GiB"))
    print(f"wrote {out}")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--nodes", type=int, default=None, help="nodes of the graph (default: the shape's)")
    p.add_argument("--shape", choices=sorted(SHAPES), default="planted")
    p.add_argument("--json", default=None, help="where to write the JSON")
    p.add_argument("--stage1-epochs", type=int, default=3)
    p.add_argument("--kernels", action="store_true", help="stage 1: edge-list vs fused CSR kernels")
    p.add_argument("--exphormer", action="store_true", help="full-batch Exphormer at growing sizes, capped")
    p.add_argument("--sizes", default="250000,500000,1000000,2000000,3000000")
    p.add_argument("--cap-gib", type=float, default=MAX_CAP_GIB, help=f"address-space cap (at most {MAX_CAP_GIB})")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per Exphormer size")
    p.add_argument("--child", choices=["pipeline", "stage1", "exphormer"], help=argparse.SUPPRESS)
    p.add_argument("--kernel", choices=["edge_list", "csr"], default="csr", help=argparse.SUPPRESS)
    p.add_argument("--network-nodes", type=int, default=3_000_000, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        from spexphormer.utils.device import set_threads
        set_threads(1)
        res = {"pipeline": child_pipeline, "stage1": child_stage1, "exphormer": child_exphormer}[args.child](args)
        if args.json:
            save_json(res, Path(args.json))
        print(json.dumps({k: v for k, v in res.items() if k not in ("preset", "config")}, default=str))
        return 0
    if args.kernels:
        args.nodes = args.nodes or 1_000_000
        args.stage1_epochs = min(args.stage1_epochs, 2)
        run_kernels(args)
    elif args.exphormer:
        run_exphormer(args)
    else:
        run_size(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
