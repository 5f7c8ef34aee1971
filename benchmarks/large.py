"""Large graphs through both stages on one machine: synthetic graphs of millions of nodes.

Graphs (``spexphormer.data.planted_partition``, random 60/20/20 split, seed 0):

* ``amazon2m``  shaped like Amazon2M: 2,449,029 nodes, average degree 25.3 (~62M directed
                edges), 100 features, 47 classes;
* ``planted``   ``--nodes N`` nodes, degree 20, 128 features, 5 classes (3M by default).

Every size runs in its own child process (1 thread for PyTorch and numba), with the preset the
library picks by graph size (``spexphormer.presets.preset_for_size``: 2 layers on large graphs,
as the paper does): augment the graph, stage 1 (the estimator, full batch, fused CSR kernels)
for ``--stage1-epochs`` epochs (seconds per epoch as ``fit`` counts them: training step +
evaluation forward), then stage 2: sample the layers, one training epoch of mini-batches, and
the evaluation of all test nodes in batches (seconds per epoch = training epoch + that
evaluation; with ``--stage2-budget`` the training stops after that many seconds and the epoch is
projected from the seconds per step, and ``completed`` stays false). Per stage: peak RSS (reset
at the start of the stage) and the projected wall time of the preset's full number of epochs.
The JSON is rewritten as the child goes, so a run cut short still shows what it measured.

Two comparisons, each in child processes of its own:

* ``--kernels``: stage 1 at ``--nodes`` (default 1M, degree 20, 128 features, the default
  4-layer preset: the setting of ``benchmarks/scaling.py``) with the edge-list kernels and with
  the fused CSR kernels, same threads, one after the other in one run; then one child that
  times a forward + backward of the attention alone with each kernel, alternated, in CPU
  seconds (robust to a busy machine's scheduling).
  With ``--attention-only``, just that child; it also times the fused kernel on the same graph
  with its nodes relabelled in locality orders (by class; reverse Cuthill-McKee) and, as a bound,
  with every source read replaced by the destination's own row (cache-perfect reads).
* ``--memory``: stage 1 at ``--nodes`` (default 1M, fused kernels, default preset) with the
  library of ``--baseline-rev`` (a ``git archive`` of its ``src/``) and with this checkout's, one
  child each in one run: stage-1 peak RSS, what is held before it, and the process peak
  including the augmentation.
* ``--accuracy minesweeper,tolokers``: stage 1 with each kernel on real datasets (their presets,
  split 0, seed 0): the test metric at the best validation epoch must agree.
* ``--exphormer``: full-batch Exphormer (the stage-2 network of the large-graph preset) at
  growing sizes under a hard address-space cap (``RLIMIT_AS``, ``--cap-gib``, at most 14 GiB),
  one epoch each, stopping at the first size that fails; memory beyond is extrapolated.

Usage::

    python benchmarks/large.py --nodes 3000000 --json benchmarks/results/large_3m.json
    python benchmarks/large.py --shape amazon2m --json benchmarks/results/large_amazon2m.json
    python benchmarks/large.py --kernels --nodes 1000000 --json benchmarks/results/large_kernels.json
    python benchmarks/large.py --kernels --attention-only --nodes 1000000 --json benchmarks/results/large_attention.json
    python benchmarks/large.py --memory --stage1-epochs 1 --json benchmarks/results/large_stage1_memory.json
    python benchmarks/large.py --accuracy minesweeper,tolokers     # stage 1, both kernels, presets
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
MAX_CAP_GIB = 14.0  # full-batch Exphormer: a shared 24 GiB machine must never run out of memory
PIPELINE_CAP_GIB = 16.0  # the two-stage runs
MEMORY_CAP_GIB = 12.0  # --memory's stage-1 children


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

    from spexphormer.presets import preset_for_size
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
    res["stage2"] = stage2_epoch(data, scores, cfg, full, res, args)
    res["projected_preset_hours"] = round((res["stage1"]["projected_preset_seconds"]
                                           + res["stage2"]["projected_preset_seconds"]) / 3600, 2)
    res["peak_rss_bytes"] = max(res["stage1"]["peak_rss_bytes"], res["stage2"]["peak_rss_bytes"])
    res["completed"] = res["stage2"]["full_epoch"] and res["stage2"]["evaluated"]
    return res


def stage2_epoch(data, scores, cfg, full, res: dict, args) -> dict:
    """One stage-2 epoch (the library's sampler, batches, model and loss, as ``train_wide`` runs
    them) with progress written as it goes, then the evaluation on all test nodes. With
    ``--stage2-budget`` seconds, training stops there and the epoch is projected from s/step."""
    import numpy as np
    import torch

    from spexphormer.data import graph_info
    from spexphormer.nn import Spexphormer
    from spexphormer.pipeline.stage2 import batch_loss, layer_sampler, model_inputs, predict_nodes, wide_args
    from spexphormer.sampling import iterate_batches, receptive_field_warning
    from spexphormer.train import compute_metric
    from spexphormer.utils.memory import StageMeter

    s2 = cfg.stage2
    out = {"batch_size": s2.batch_size, "ks": list(s2.ks), "hidden": s2.hidden, "heads": s2.heads,
           "layers": s2.num_layers, "receptive_field_bound": s2.batch_size * int(np.prod([k + 1 for k in s2.ks])),
           "receptive_field_warning": receptive_field_warning(s2.batch_size, s2.ks, data.num_nodes),
           "full_epoch": False, "evaluated": False, "preset_epochs": full.stage2.epochs}
    res["stage2"] = out
    train = data.train_mask.nonzero().view(-1)
    test = data.test_mask.nonzero().view(-1)
    steps_per_epoch = -(-train.numel() // s2.batch_size)
    with StageMeter("cpu") as meter:
        sampler = layer_sampler(scores, cfg, seed=0)
        layers = sampler.sample(0)
        out["sampling_seconds"] = round(sampler.seconds, 1)
        torch.manual_seed(0)
        model = Spexphormer(**wide_args(data, cfg))
        x = model_inputs(data, cfg)  # data.x unless the config adds whole-graph inputs
        opt = torch.optim.AdamW(model.parameters(), lr=s2.lr, weight_decay=s2.weight_decay)
        model.train()
        step_s, tic = [], time.perf_counter()
        for batch in iterate_batches(train, s2.batch_size, layers, shuffle=True, seed=0):
            t0 = time.perf_counter()
            loss = batch_loss(model, x, data, batch, torch.device("cpu"))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s2.clip)
            opt.step()
            step_s.append(time.perf_counter() - t0)
            if len(step_s) % 25 == 0:
                out.update(steps=len(step_s), seconds_per_step=float(np.mean(step_s)))
                _progress(res, args)
            if args.stage2_budget and time.perf_counter() - tic > args.stage2_budget:
                break
        train_s = time.perf_counter() - tic
        out.update(steps=len(step_s), steps_per_epoch=steps_per_epoch, full_epoch=len(step_s) == steps_per_epoch,
                   seconds_per_step=float(np.mean(step_s)), train_seconds=round(train_s, 1),
                   train_peak_rss_bytes=meter_peak())
        _progress(res, args)
        model.eval()
        tic = time.perf_counter()
        with torch.no_grad():
            logits = predict_nodes(model, x, test, layers, s2.eval_batch_size or s2.batch_size, torch.device("cpu"))
        out.update(evaluated=True, evaluated_test_nodes=int(test.numel()),
                   eval_seconds=round(time.perf_counter() - tic, 1),
                   test_metric=compute_metric(logits, data.y[test], graph_info(data).task, graph_info(data).metric))
    epoch_train = train_s if out["full_epoch"] else out["seconds_per_step"] * steps_per_epoch
    out.update(seconds_per_epoch=epoch_train + out["eval_seconds"], seconds_per_epoch_projected=not out["full_epoch"],
               peak_rss_bytes=meter.peak_memory_bytes, baseline_rss_bytes=meter.baseline_bytes,
               note="seconds_per_epoch = one training epoch + the evaluation of all test nodes",
               projected_preset_seconds=(epoch_train + out["eval_seconds"]) * full.stage2.epochs)
    return out


def meter_peak() -> int:
    from spexphormer.utils.memory import peak_rss
    return peak_rss()


def child_stage1(args) -> dict:
    """Stage 1 alone with one kernel (``--kernel edge_list|csr``)."""
    import torch

    from spexphormer.presets import preset
    from spexphormer.pipeline.stage1 import augment_graph, estimate
    from spexphormer.utils.memory import StageMeter, current_rss, peak_rss

    data, spec, _ = make_graph(args.shape, args.nodes)
    cfg = preset(None).override([f"stage1.epochs={args.stage1_epochs}", "run.device=cpu"])
    rss_data = current_rss()
    graph = augment_graph(data, cfg)
    augment_peak = peak_rss()  # the whole process so far: data + augmentation transients
    cpu0 = time.process_time()
    with StageMeter("cpu") as meter:
        r = estimate(data, cfg, device="cpu", graph=graph, progress=False, fused=args.kernel == "csr")
    return {"kernel": args.kernel, "cpu_seconds": time.process_time() - cpu0, "nodes": data.num_nodes, "edges": int(data.num_edges),
            "augmented_edges": graph.num_edges, "epochs": cfg.stage1.epochs,
            "seconds_per_epoch": r.fit.seconds_per_epoch, "epoch_seconds": [h["seconds"] for h in r.fit.history],
            "peak_rss_bytes": meter.peak_memory_bytes, "baseline_rss_bytes": meter.baseline_bytes,
            "rss_after_data_bytes": rss_data, "augment_peak_rss_bytes": augment_peak,
            "graph_bytes": {"edge_index": graph.edge_index.nbytes, "edge_type": graph.edge_type.nbytes,
                            "ptr": graph.ptr.nbytes, "dtypes": [str(graph.edge_index.dtype), str(graph.edge_type.dtype)]},
            "losses": [h["loss"] for h in r.fit.history], "val": [h["val"] for h in r.fit.history],
            "torch_threads": torch.get_num_threads(), "config": cfg.to_dict()["stage1"]}


def child_accuracy(args) -> dict:
    """Stage 1 on a named dataset with its preset, with one kernel: the scores' source of truth."""
    import torch

    from spexphormer.presets import preset
    from spexphormer.data import graph_info, load_graph
    from spexphormer.pipeline.stage1 import estimate

    data = load_graph(args.dataset, root=args.data_root)
    cfg = preset(args.dataset)
    r = estimate(data, cfg, device="cpu", progress=False, fused=args.kernel == "csr")
    return {"dataset": args.dataset, "kernel": args.kernel, "metric": graph_info(data).metric, "val": r.fit.val,
            "test": r.fit.test, "best_epoch": r.fit.best_epoch, "epochs": cfg.stage1.epochs,
            "seconds_per_epoch": r.fit.seconds_per_epoch, "torch_threads": torch.get_num_threads(),
            "split": "split 0 (shipped)", "seed": cfg.stage1.seed}


def child_kernel(args) -> dict:
    """One forward + backward of ``ScoreAttention`` (width 4, 1 head) on the augmented graph with
    each kernel, alternated, in this one process: CPU seconds (``time.process_time``, which a
    busy machine's scheduling does not inflate) and wall seconds.

    The fused kernel also runs on the same graph with its nodes relabelled in two locality orders
    (sorted by class, the planted partition's blocks; reverse Cuthill-McKee of the input graph,
    scipy), and, as a bound, with every source replaced by its destination (cache-perfect reads,
    the same arithmetic, not the same function)."""
    import numpy as np
    import torch

    from spexphormer.presets import preset
    from spexphormer.nn import ScoreAttention
    from spexphormer.nn.csr_attention import CSRGraph
    from spexphormer.pipeline.stage1 import augment_graph

    data, spec, _ = make_graph(args.shape, args.nodes)
    graph = augment_graph(data, preset(None))
    n = graph.num_nodes
    tic = time.process_time()
    csr = CSRGraph.from_graph(graph)
    build = time.process_time() - tic
    torch.manual_seed(0)
    attn = ScoreAttention(4)
    x = torch.randn(n, 4, requires_grad=True)
    wide = (graph.edge_index.long(), graph.edge_type.long())  # what the edge-list path runs on
    variants = {"edge_list": (wide, {}), "csr": ((graph.edge_index, graph.edge_type), {"csr": csr})}
    for name, order in _locality_orders(data).items():
        inv = torch.empty(n, dtype=torch.long)
        inv[order] = torch.arange(n)
        g = _relabel(graph, inv)
        variants[f"csr_{name}_order"] = ((g.edge_index, g.edge_type), {"csr": CSRGraph.from_graph(g)})
    bound = _cache_perfect(csr)
    variants["csr_cache_perfect_bound"] = ((graph.edge_index, graph.edge_type), {"csr": bound})
    del data
    times = {k: [] for k in variants}
    for rep in range(args.repeats):
        for name, ((ei, et), kw) in variants.items():
            c0, w0 = time.process_time(), time.perf_counter()
            out, _ = attn(x, ei, et, 0.9, **kw)
            out.square().sum().backward()
            times[name].append((time.process_time() - c0, time.perf_counter() - w0))
            x.grad = None
            attn.zero_grad()
    cpu = {k: min(c for c, _ in v) for k, v in times.items()}
    return {"nodes": n, "augmented_edges": graph.num_edges, "csr_build_cpu_seconds": build,
            "csr_bytes": csr.nbytes, "times_cpu_wall": times, "best_cpu_seconds": cpu,
            "speedup_cpu": cpu["edge_list"] / cpu["csr"],
            "speedup_cpu_vs_edge_list": {k: cpu["edge_list"] / v for k, v in cpu.items()},
            "load_avg": list(os.getloadavg())}


def _locality_orders(data) -> dict:
    """Node orders (new position -> old id): by class, and reverse Cuthill-McKee (scipy)."""
    import numpy as np
    import scipy.sparse as sp
    import torch
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    n, ei = data.num_nodes, data.edge_index.numpy()
    adj = sp.csr_matrix((np.ones(ei.shape[1], np.int8), (ei[0], ei[1])), shape=(n, n))
    rcm = reverse_cuthill_mckee(adj, symmetric_mode=True).astype(np.int64)
    return {"class": torch.argsort(data.y, stable=True), "rcm": torch.from_numpy(rcm)}


def _relabel(graph, inv):
    """The augmented graph with node ``v`` renamed ``inv[v]`` (same edges, regrouped)."""
    import torch

    from spexphormer.graph.compact import destinations, group_edges

    n, idx = graph.num_nodes, graph.edge_index.dtype
    src, dst = inv[graph.edge_index[0].long()].to(idx), inv[graph.edge_index[1].long()].to(idx)
    out = torch.empty_like(graph.edge_index)
    _, types, ptr = group_edges(src, dst, graph.edge_type, n, out_src=out[0])
    destinations(ptr, out[1])
    return type(graph)(out, types, ptr, n)


def _cache_perfect(csr):
    """``csr`` with every source replaced by its destination (a bound on locality, see above)."""
    import copy

    import numpy as np

    out = copy.copy(csr)
    dst = np.repeat(np.arange(csr.num_nodes, dtype=csr.src.dtype), np.diff(csr.ptr))
    out.src, out.src_ptr, out.src_dst, out.src_type = dst, csr.ptr.copy(), dst, csr.edge_type
    return out


def child_exphormer(args) -> dict:
    from spexphormer.presets import preset_for_size
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

def _log(json_path: Path) -> Path:
    """Where a child's output goes: ``benchmarks/results/logs/`` (not committed)."""
    return RESULTS / "logs" / (Path(json_path).stem + ".log")


def spawn(argv: list, log: Path, cap_bytes: int | None = None, timeout: float | None = None,
          src: Path | None = None) -> tuple[int, float]:
    """Run a child with one thread; ``cap_bytes`` caps its address space (RLIMIT_AS); ``src``
    puts another version of the library first on its path."""
    def limit():
        if cap_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
    log.parent.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    with open(log, "w") as fh:
        try:
            env = child_env(1)
            if src is not None:
                env["PYTHONPATH"] = str(src) + os.pathsep + env["PYTHONPATH"]
            rc = subprocess.run([python(), str(Path(__file__).resolve()), *map(str, argv)], env=env,
                                stdout=fh, stderr=subprocess.STDOUT, preexec_fn=limit, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -9
    return rc, time.perf_counter() - tic


def run_size(args) -> dict:
    out = Path(args.json) if args.json else RESULTS / f"large_{args.shape}_{args.nodes or SHAPES[args.shape]['num_nodes']}.json"
    argv = ["--child", "pipeline", "--shape", args.shape, "--stage1-epochs", args.stage1_epochs,
            "--stage2-budget", args.stage2_budget, "--json", out]
    if args.nodes:
        argv += ["--nodes", args.nodes]
    cap = args.cap_gib or PIPELINE_CAP_GIB
    rc, wall = spawn(argv, _log(out), cap_bytes=int(cap * 2**30))
    res = json.loads(out.read_text()) if out.exists() else {"nodes": args.nodes, "completed": False}
    res.update(child_rc=rc, child_wall_seconds=round(wall, 1), address_space_cap_gib=cap, machine=machine("cpu"))
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
    for kernel in () if args.attention_only else ("edge_list", "csr"):
        part = out.with_name(out.stem + f"_{kernel}.json")
        rc, wall = spawn(["--child", "stage1", "--kernel", kernel, "--shape", "planted", "--nodes", args.nodes,
                          "--stage1-epochs", args.stage1_epochs, "--json", part], _log(part))
        runs[kernel] = json.loads(part.read_text()) if rc == 0 and part.exists() else {"failed": f"rc {rc}"}
        runs[kernel]["child_wall_seconds"] = round(wall, 1)
    part = out.with_name(out.stem + "_attention.json")
    rc, _ = spawn(["--child", "kernel", "--shape", "planted", "--nodes", args.nodes, "--json", part],
                  _log(part))
    runs["attention_only"] = json.loads(part.read_text()) if rc == 0 and part.exists() else {"failed": f"rc {rc}"}
    res = {"benchmark": "stage-1 kernels", "nodes": args.nodes, "runs": runs, "machine": machine("cpu")}
    old, new = runs.get("edge_list", {}), runs.get("csr", {})
    if "seconds_per_epoch" in old and "seconds_per_epoch" in new:
        res["speedup"] = old["seconds_per_epoch"] / new["seconds_per_epoch"]
        res["memory_ratio"] = old["peak_rss_bytes"] / new["peak_rss_bytes"]
        res["targets"] = {"speedup_10x": res["speedup"] >= 10, "peak_4gib": new["peak_rss_bytes"] <= 4 * 2**30}
    save_json(res, out)
    rows = [{"kernel": k, "s/epoch": f"{r.get('seconds_per_epoch', math.nan):.1f}",
             "peak RSS": fmt_bytes(r.get("peak_rss_bytes", 0)), "val per epoch": r.get("val", r.get("failed"))}
            for k, r in runs.items() if k != "attention_only"]
    if rows:
        print(table(rows, f"stage 1 at {args.nodes:,} nodes: edge-list vs fused CSR kernels"))
    if "speedup" in res:
        print(f"speed-up {res['speedup']:.1f}x, peak RSS {res['memory_ratio']:.2f}x lower")
    if "speedup_cpu" in runs["attention_only"]:
        att = runs["attention_only"]
        print(table([{"kernel": k, "CPU s (best)": f"{v:.2f}", "vs edge list": f"{att['speedup_cpu_vs_edge_list'][k]:.2f}x"}
                     for k, v in att["best_cpu_seconds"].items()],
                    f"attention forward+backward alone at {args.nodes:,} nodes (1 thread, one process)"))
    print(f"wrote {out}")
    return res


def run_memory(args) -> dict:
    """Stage 1 (fused kernels, default preset, ``--stage1-epochs``) at ``--nodes`` with the
    library at ``--baseline-rev`` (before) and with this checkout's (after), one child each, one
    after the other in this one run: peak RSS of stage 1 and of the whole process."""
    import tempfile

    out = Path(args.json) if args.json else RESULTS / "large_stage1_memory.json"
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_src:
            before = Path(args.baseline_src)
        else:
            archive = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "archive",
                                      args.baseline_rev, "src"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            before = Path(tmp) / "src"
        for label, src in (("before", before), ("after", None)):
            part = out.with_name(out.stem + f"_{label}.json")
            rc, wall = spawn(["--child", "stage1", "--kernel", "csr", "--shape", "planted", "--nodes", args.nodes,
                              "--stage1-epochs", args.stage1_epochs, "--json", part], _log(part), src=src,
                             cap_bytes=int((args.cap_gib or MEMORY_CAP_GIB) * 2**30))
            runs[label] = json.loads(part.read_text()) if rc == 0 and part.exists() else {"failed": f"rc {rc}"}
            runs[label]["child_wall_seconds"] = round(wall, 1)
    res = {"benchmark": "stage-1 peak RSS, before and after the compact graph", "nodes": args.nodes,
           "baseline_rev": args.baseline_rev, "address_space_cap_gib": args.cap_gib or MEMORY_CAP_GIB, "runs": runs, "machine": machine("cpu")}
    if all("peak_rss_bytes" in r for r in runs.values()):
        res["target_4gib_met"] = runs["after"]["peak_rss_bytes"] <= 4 * 2**30
    save_json(res, out)
    print(table([{"code": k, "stage-1 peak RSS": fmt_bytes(r.get("peak_rss_bytes", 0)),
                  "held before stage 1": fmt_bytes(r.get("baseline_rss_bytes", 0)),
                  "process peak (incl. augmentation)": fmt_bytes(r.get("augment_peak_rss_bytes", 0)),
                  "s/epoch": f"{r.get('seconds_per_epoch', math.nan):.1f}"} for k, r in runs.items()],
                f"stage 1 at {args.nodes:,} nodes, fused kernels, 1 thread"))
    print(f"wrote {out}")
    return res


def run_exphormer(args) -> dict:
    cap_gib = min(args.cap_gib or MAX_CAP_GIB, MAX_CAP_GIB)
    out = Path(args.json) if args.json else RESULTS / "large_exphormer.json"
    sizes, rows = [int(s) for s in args.sizes.split(",")], []
    # one network for every size: the stage 2 of the preset of a --network-nodes graph (3M by
    # default: the large-graph preset), never the small default preset of a small size
    network = max(args.network_nodes, max(sizes))
    for n in sizes:
        part = out.with_name(out.stem + f"_n{n}.json")
        rc, wall = spawn(["--child", "exphormer", "--shape", "planted", "--nodes", n, "--network-nodes", network,
                          "--json", part], _log(part), cap_bytes=int(cap_gib * 2**30),
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
    res = {"benchmark": "exphormer under a memory cap", "cap_gib": cap_gib, "sizes": rows, "machine": machine("cpu"),
           "network_preset_of_nodes": network}
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


def run_accuracy(args) -> dict:
    out = Path(args.json) if args.json else RESULTS / "large_stage1_accuracy.json"
    rows = []
    for dataset in args.accuracy.split(","):
        for kernel in ("edge_list", "csr"):
            part = out.with_name(out.stem + f"_{dataset}_{kernel}.json")
            rc, _ = spawn(["--child", "accuracy", "--dataset", dataset, "--data-root", args.data_root,
                           "--kernel", kernel, "--json", part], _log(part))
            rows.append(json.loads(part.read_text()) if rc == 0 and part.exists() else
                        {"dataset": dataset, "kernel": kernel, "failed": f"rc {rc}"})
            save_json({"benchmark": "stage-1 accuracy, edge-list vs fused kernels", "runs": rows}, out)
    res = {"benchmark": "stage-1 accuracy, edge-list vs fused kernels", "runs": rows, "machine": machine("cpu")}
    save_json(res, out)
    print(table([{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()
                  if k in ("dataset", "kernel", "metric", "val", "test", "best_epoch", "seconds_per_epoch", "failed")}
                 for r in rows], "stage 1 (the estimator's own task metric), preset, split 0, seed 0"))
    print(f"wrote {out}")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--nodes", type=int, default=None, help="nodes of the graph (default: the shape's)")
    p.add_argument("--shape", choices=sorted(SHAPES), default="planted")
    p.add_argument("--json", default=None, help="where to write the JSON")
    p.add_argument("--stage1-epochs", type=int, default=3)
    p.add_argument("--stage2-budget", type=float, default=0,
                   help="stop stage-2 training after this many seconds and project the epoch (0: whole epoch)")
    p.add_argument("--kernels", action="store_true", help="stage 1: edge-list vs fused CSR kernels")
    p.add_argument("--attention-only", action="store_true",
                   help="with --kernels: only the attention forward+backward child (no stage-1 epochs)")
    p.add_argument("--memory", action="store_true",
                   help="stage-1 peak RSS at --nodes (default 1M): library at --baseline-rev vs this checkout")
    p.add_argument("--baseline-rev", default="7812a71", help="git revision of the 'before' library for --memory")
    p.add_argument("--baseline-src", default=None, help="or the 'before' library's src/ folder itself")
    p.add_argument("--exphormer", action="store_true", help="full-batch Exphormer at growing sizes, capped")
    p.add_argument("--sizes", default="250000,500000,1000000,2000000,3000000")
    p.add_argument("--cap-gib", type=float, default=0,
                   help=f"address-space cap of the child (default {PIPELINE_CAP_GIB} GiB for a two-stage run, "
                        f"{MAX_CAP_GIB} GiB, also the most, for Exphormer)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per Exphormer size")
    p.add_argument("--accuracy", metavar="DATASETS", default=None,
                   help="stage-1 accuracy with both kernels on named datasets, e.g. minesweeper,tolokers")
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    p.add_argument("--dataset", help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--child", choices=["pipeline", "stage1", "exphormer", "accuracy", "kernel"], help=argparse.SUPPRESS)
    p.add_argument("--kernel", choices=["edge_list", "csr"], default="csr", help=argparse.SUPPRESS)
    p.add_argument("--network-nodes", type=int, default=3_000_000, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        from spexphormer.utils.device import set_threads
        set_threads(1)
        res = {"pipeline": child_pipeline, "stage1": child_stage1, "exphormer": child_exphormer,
               "accuracy": child_accuracy, "kernel": child_kernel}[args.child](args)
        if args.json:
            save_json(res, Path(args.json))
        print(json.dumps({k: v for k, v in res.items() if k not in ("preset", "config")}, default=str))
        return 0
    if args.accuracy:
        run_accuracy(args)
    elif args.memory:
        args.nodes = args.nodes or 1_000_000
        run_memory(args)
    elif args.kernels:
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
