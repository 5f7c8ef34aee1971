"""Scaling benchmark: memory and time of stage 1, full-batch Exphormer and stage 2 against graph size.

Synthetic planted-partition graphs (``spexphormer.data.planted_partition(n, avg_degree=20,
num_features=128, seed=0)``, random 60/20/20 split) of ``--sizes`` nodes. Per size, each part runs
in a fresh child process (one thread, ``THP_MEM_ALLOC_ENABLE=1``), one at a time:

* ``stage1``     augment the graph (timed apart), then the full-batch ASE (default preset:
                 4 layers, width 4, 1 head) for ``--stage1-epochs`` epochs with the library's
                 ``estimate``; seconds/epoch (train step + evaluation forward, as ``fit`` counts
                 them) and peak RSS; writes the scores file that stage 2 reads.
* ``exphormer``  full-batch Exphormer (width 32, 4 heads, 4 layers) for ``--exphormer-epochs`` (default 1)
                 epochs with ``train_exphormer``; skipped (and the reason recorded) where its memory
                 or time, extrapolated linearly in edges from the previous size, exceeds
                 ``--mem-limit-gib`` or ``--time-limit``.
* ``stage2``     sample the per-layer graphs (ks 12,5,5,5), build the model and optimiser, then
                 measure training steps at batch ``--batch-size`` core nodes: a whole epoch where it
                 has at most ``--max-steps`` steps, otherwise ``--max-steps`` steps and the epoch
                 time projected from seconds/step (flagged in the JSON). WORKING memory = peak RSS
                 during the steps minus the RSS held just before them (graph, features, scores,
                 sampled edges, model).
* ``stage2-control``  the same with a receptive field far below N (batch 256, 2 layers, ks 4,4:
                 at most 256·5·5 = 6,400 input rows): it isolates the graph-size independence of
                 the step from the saturation of the 4-layer receptive field.

Usage::

    python benchmarks/scaling.py                               # 10k, 100k, 1M
    python benchmarks/scaling.py --sizes 10000,100000,1000000,3000000
    python benchmarks/scaling.py --quick                       # 2k, 10k: smoke numbers

Writes ``benchmarks/results/scaling.json`` and ``scaling.png`` (log-log plots with fitted slopes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_figure, RESULTS, Job, fmt_bytes, load_json, machine, python, run_jobs, save_json, table  # noqa: E402

PARTS = ["stage1", "exphormer", "stage2", "stage2-control"]
CONTROL = dict(batch=256, ks=(4, 4))


def _graph(n: int):
    from spexphormer.data import planted_partition
    tic = time.perf_counter()
    data = planted_partition(n, avg_degree=20, num_features=128, seed=0)
    return data, time.perf_counter() - tic


def child(args) -> int:
    import numpy as np
    import torch

    from spexphormer.presets import preset
    from spexphormer.utils.device import set_threads
    from spexphormer.utils.memory import StageMeter, current_rss

    set_threads(1)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data, gen_s = _graph(args.nodes)
    cfg = preset(None).override([f"stage1.epochs={args.stage1_epochs}", f"stage2.epochs={args.exphormer_epochs}",
                                 f"stage2.batch_size={args.batch_size}", f"run.device={args.device}"])
    res = {"part": args.child, "nodes": data.num_nodes, "graph_edges": data.num_edges,
           "generate_seconds": round(gen_s, 3), "torch_threads": torch.get_num_threads(), "device": args.device}
    if args.child == "stage1":
        from spexphormer.pipeline.stage1 import augment_graph, estimate
        tic = time.perf_counter()
        graph = augment_graph(data, cfg)
        res["augment_seconds"] = round(time.perf_counter() - tic, 3)
        res["augmented_edges"] = int(graph.edge_index.size(1))
        with StageMeter(device) as meter:
            r = estimate(data, cfg, out=out / "scores.pt", device=device, graph=graph, progress=False)
        res.update(epochs=cfg.stage1.epochs, seconds=meter.seconds, seconds_per_epoch=r.fit.seconds_per_epoch,
                   peak_bytes=meter.peak_memory_bytes, baseline_bytes=meter.baseline_bytes,
                   working_bytes=meter.working_bytes, config=cfg.to_dict()["stage1"])
    elif args.child == "exphormer":
        from spexphormer.pipeline.exphormer import train_exphormer
        from spexphormer.pipeline.stage1 import augment_graph
        graph = augment_graph(data, cfg)
        res["augmented_edges"] = int(graph.edge_index.size(1))
        with StageMeter(device) as meter:
            r = train_exphormer(data, cfg, device=device, graph=graph, progress=False)
        res.update(epochs=cfg.stage2.epochs, seconds=meter.seconds, seconds_per_epoch=r.fit.seconds_per_epoch,
                   peak_bytes=meter.peak_memory_bytes, baseline_bytes=meter.baseline_bytes,
                   working_bytes=meter.working_bytes, hidden=cfg.stage2.hidden, heads=cfg.stage2.heads,
                   layers=cfg.stage2.num_layers)
    else:
        from spexphormer.nn import Spexphormer
        from spexphormer.pipeline.stage2 import batch_loss, layer_sampler, model_inputs, wide_args
        from spexphormer.sampling import iterate_batches
        from spexphormer.scores import Scores
        if args.child == "stage2-control":
            cfg = cfg.override({"stage2.num_layers": len(CONTROL["ks"]), "stage2.ks": list(CONTROL["ks"]),
                                "stage2.batch_size": CONTROL["batch"]})
        s2 = cfg.stage2
        tic = time.perf_counter()
        scores = Scores.load(Path(args.scores))
        res["load_scores_seconds"] = round(time.perf_counter() - tic, 3)
        res["augmented_edges"] = int(scores.graph.num_edges)
        sampler = layer_sampler(scores, cfg, seed=0)
        layers = sampler.sample(0)
        res["sampling_seconds"] = round(sampler.seconds, 3)
        torch.manual_seed(0)
        model = Spexphormer(**wide_args(data, cfg)).to(device)
        x = model_inputs(data, cfg)  # data.x unless the config adds whole-graph inputs
        opt = torch.optim.AdamW(model.parameters(), lr=s2.lr, weight_decay=s2.weight_decay)
        train = data.train_mask.nonzero().view(-1)
        steps_per_epoch = math.ceil(train.numel() / s2.batch_size)
        steps = min(steps_per_epoch, args.max_steps)
        model.train()
        rows0, step_s = [], []

        def epoch_order(epoch: int):  # the epoch's batch order, like the sampled edges, is per-epoch state
            return train[torch.randperm(train.numel(), generator=torch.Generator().manual_seed(epoch))]

        order = epoch_order(0)
        rss_before = current_rss()
        with StageMeter(device) as meter:
            done, epoch = 0, 0
            while done < steps:
                order = order if epoch == 0 else epoch_order(epoch)
                for batch in iterate_batches(order, s2.batch_size, layers, shuffle=False):
                    t0 = time.perf_counter()
                    loss = batch_loss(model, x, data, batch, device)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), s2.clip)
                    opt.step()
                    step_s.append(time.perf_counter() - t0)
                    rows0.append(int(batch.sizes[0]))
                    done += 1
                    if done >= steps:
                        break
                epoch += 1
        full = steps == steps_per_epoch
        res.update(batch_size=s2.batch_size, ks=list(s2.ks), hidden=s2.hidden, heads=s2.heads,
                   layers=s2.num_layers, steps=steps, steps_per_epoch=steps_per_epoch, full_epoch=full,
                   seconds=meter.seconds, seconds_per_step=float(np.mean(step_s)),
                   seconds_per_step_median=float(np.median(step_s)),
                   seconds_per_epoch=(meter.seconds if full else float(np.mean(step_s)) * steps_per_epoch),
                   seconds_per_epoch_projected=not full,
                   mean_input_rows=float(np.mean(rows0)), max_input_rows=int(max(rows0)),
                   receptive_field_bound=int(s2.batch_size * np.prod([k + 1 for k in s2.ks])),
                   peak_bytes=meter.peak_memory_bytes, baseline_bytes=meter.baseline_bytes,
                   rss_before_steps=rss_before, working_bytes=meter.working_bytes)
    save_json(res, out / f"{args.child}.json")
    print(json.dumps({k: v for k, v in res.items() if k != "config"}))
    return 0


# ------------------------------------------------------------------------------------------------

def slope(xs, ys):
    """Least-squares slope of log(y) on log(x)."""
    import numpy as np
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x and y and y > 0]
    if len(pts) < 2:
        return None
    a = np.array(pts)
    return float(np.polyfit(a[:, 0], a[:, 1], 1)[0])


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) * 1024
    return 0


def plot(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [("stage1", "stage 1 (ASE, full batch)", "o-"), ("exphormer", "Exphormer (full batch, w32 h4)", "s-"),
              ("stage2", "stage 2 (B=2000, ks 12,5,5,5)", "^-"), ("stage2-control", "stage 2 control (B=256, ks 4,4)", "v--")]
    for key, label, style in series:
        pts = [(r["nodes"], r[key]) for r in results["sizes"] if r.get(key, {}).get("peak_bytes")]
        if not pts:
            continue
        n = [p[0] for p in pts]
        mem = [p[1]["peak_bytes"] / 2**30 for p in pts]
        sec = [p[1]["seconds_per_epoch"] for p in pts]
        fit = results["exponents"].get(key, {})
        lab_m = label + (f"  slope {fit['peak_memory']:.2f}" if fit.get("peak_memory") is not None else "")
        lab_s = label + (f"  slope {fit['seconds_per_epoch']:.2f}" if fit.get("seconds_per_epoch") is not None else "")
        axes[0].loglog(n, mem, style, label=lab_m)
        axes[1].loglog(n, sec, style, label=lab_s)
        if key == "stage2":
            wm = [p[1]["working_bytes"] / 2**30 for p in pts]
            axes[0].loglog(n, wm, "^:", color=axes[0].lines[-1].get_color(), alpha=0.7,
                           label="stage 2 working memory (peak − held)")
    for r in results["sizes"]:
        ex = r.get("exphormer", {})
        if ex.get("skipped") and ex.get("projected_peak_bytes"):
            axes[0].loglog([r["nodes"]], [ex["projected_peak_bytes"] / 2**30], "x", color="C1", markersize=9,
                           label=f"Exphormer at {r['nodes']:,}: projected, not run")
    for r in results["sizes"]:
        ex = r.get("exphormer", {})
        if ex.get("skipped") and ex.get("projected_seconds"):
            axes[1].loglog([r["nodes"]], [ex["projected_seconds"]], "x", color="C1", markersize=9,
                           label=f"Exphormer at {r['nodes']:,}: projected, not run")
    for key, style in (("stage2-control", "v:"),):
        pts = [(r["nodes"], r[key]["working_bytes"] / 2**30) for r in results["sizes"]
               if r.get(key, {}).get("working_bytes")]
        if pts:
            axes[0].loglog([p_[0] for p_ in pts], [p_[1] for p_ in pts], style, color="C3", alpha=0.7,
                           label="stage 2 control working memory")
    axes[0].set_xlabel("nodes"), axes[0].set_ylabel("peak RSS (GiB)"), axes[0].set_title("peak memory")
    axes[1].set_xlabel("nodes"), axes[1].set_ylabel("seconds per epoch"), axes[1].set_title(
        "seconds per epoch (stage 2: s/step × steps/epoch)", fontsize=10)
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, "planted partition, avg degree 20, 128 features; CPU, 1 thread per job",
                       results["quick"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated node counts")
    p.add_argument("--quick", action="store_true", help="smoke run: 2k and 10k nodes, 1 epoch, 3 steps")
    p.add_argument("--stage1-epochs", type=int, default=2)
    p.add_argument("--exphormer-epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--max-steps", type=int, default=5, help="stage-2 steps measured at most (default 5)")
    p.add_argument("--mem-limit-gib", type=float, default=None,
                   help="skip a part whose extrapolated peak exceeds this (default 80%% of MemAvailable)")
    p.add_argument("--time-limit", type=float, default=600, help="skip a part whose extrapolated time exceeds this (s)")
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None)
    p.add_argument("--runs", default=None)
    p.add_argument("--collect-only", action="store_true")
    # child mode (internal)
    p.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    p.add_argument("--nodes", type=int, help=argparse.SUPPRESS)
    p.add_argument("--scores", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if args.quick:
        args.sizes, args.stage1_epochs, args.exphormer_epochs, args.max_steps = "2000,10000", 1, 1, 3
    suffix = "_quick" if args.quick else ""
    sizes = [int(s) for s in args.sizes.split(",")]
    parts = [s for s in args.parts.split(",") if s]
    runs = Path(args.runs) if args.runs else RESULTS / "runs" / f"scaling{suffix}"
    out = Path(args.out) if args.out else RESULTS / f"scaling{suffix}.json"
    start = time.time()
    rows, prev, history = [], {}, {}
    for n in sizes:
        d = runs / f"n{n}"
        row = {"nodes": n}
        for part in parts:
            jpath = d / f"{part}.json"
            if args.collect_only:
                row[part] = load_json(jpath) if jpath.exists() else {"missing": True}
                continue
            limit = (args.mem_limit_gib * 2**30) if args.mem_limit_gib else 0.8 * mem_available()
            last = prev.get(part)
            if part.startswith("stage2") and not (d / "scores.pt").exists():
                row[part] = {"skipped": "no scores file (stage 1 did not run at this size)"}
                continue
            if last and part != "stage2-control":
                hist = history.get(part, [])
                if len(hist) >= 2:  # affine in n through the last two sizes
                    (n1, m1, t1), (n2, m2, t2) = hist[-2], hist[-1]
                    mem_p = m2 + (m2 - m1) / (n2 - n1) * (n - n2)
                    time_p = t2 + (t2 - t1) / (n2 - n1) * (n - n2)
                else:
                    grow = n / last["nodes"]
                    mem_p, time_p = last["peak_bytes"] * grow, last["seconds"] * grow
                if part.startswith("stage2"):
                    time_p = 0.0  # a fixed number of steps: its time is bounded by --max-steps
                reason = None
                if mem_p > limit:
                    reason = f"projected peak {mem_p / 2**30:.1f} GiB > limit {limit / 2**30:.1f} GiB"
                elif time_p > args.time_limit:
                    reason = f"projected {time_p:.0f} s > time limit {args.time_limit:.0f} s"
                if reason:
                    if part == "exphormer" and hist:
                        time_p = time_p / max(1, args.exphormer_epochs)  # per epoch, for the plot
                    row[part] = {"skipped": reason + f" (linear extrapolation from {last['nodes']:,} nodes)",
                                 "projected_time_note": "skipped before running; nothing was measured at this size",
                                 "projected_peak_bytes": int(mem_p), "projected_seconds": time_p}
                    if part == "exphormer":
                        row[part]["projected_seconds_note"] = "per epoch (train + evaluation), extrapolated"
                    save_json(row[part], jpath)  # so that --collect-only finds the reason
                    print(f"skip {part} at {n:,}: {row[part]['skipped']}", flush=True)
                    continue
            argv = [python(), str(Path(__file__).resolve()), "--child", part, "--nodes", n, "--out", d,
                    "--stage1-epochs", args.stage1_epochs, "--exphormer-epochs", args.exphormer_epochs,
                    "--batch-size", args.batch_size, "--max-steps", args.max_steps, "--device", args.device,
                    "--scores", d / "scores.pt"]
            job = run_jobs([Job(f"scaling-n{n}-{part}", argv)], workers=1)[f"scaling-n{n}-{part}"]
            if job.status == "ok" and jpath.exists():
                row[part] = load_json(jpath)
                row[part]["child_wall_seconds"] = round(job.seconds, 1)
                prev[part] = {"nodes": n, "peak_bytes": row[part]["peak_bytes"], "seconds": row[part]["seconds"]}
                history.setdefault(part, []).append((n, row[part]["peak_bytes"], row[part]["seconds"]))
            else:
                row[part] = {"failed": f"child {job.status} (rc {job.rc}); see {job.log}"}
        rows.append(row)
    exps = {}
    for part in parts:
        pts = [(r["nodes"], r[part]) for r in rows if r.get(part, {}).get("peak_bytes")]
        if len(pts) >= 2:
            n = [p[0] for p in pts]
            exps[part] = {"peak_memory": slope(n, [p[1]["peak_bytes"] for p in pts]),
                          "seconds_per_epoch": slope(n, [p[1]["seconds_per_epoch"] for p in pts]),
                          "working_memory": slope(n, [p[1]["working_bytes"] for p in pts]),
                          "points": n}
    wm = {}
    for part in ("stage2", "stage2-control"):
        by_n = {r["nodes"]: r[part] for r in rows if r.get(part, {}).get("working_bytes")}
        if 100_000 in by_n and 1_000_000 in by_n:
            a, b = by_n[100_000]["working_bytes"], by_n[1_000_000]["working_bytes"]
            wm[part] = {"working_100k_bytes": a, "working_1M_bytes": b, "ratio_1M_to_100k": b / a,
                        "change_percent": 100 * (b - a) / a, "target_met": abs(b - a) / a < 0.10}
    results = {"benchmark": "scaling", "quick": args.quick, "machine": machine(args.device),
               "wall_seconds": round(time.time() - start, 1),
               "graph": "planted_partition(n, avg_degree=20, num_features=128, seed=0), random 60/20/20 split",
               "settings": {"stage1_epochs": args.stage1_epochs, "exphormer_epochs": args.exphormer_epochs,
                            "batch_size": args.batch_size, "max_steps": args.max_steps, "control": {
                                "batch": CONTROL["batch"], "ks": list(CONTROL["ks"])},
                            "time_limit_s": args.time_limit, "mem_limit_gib": args.mem_limit_gib,
                            "preset": "minesweeper (default for synthetic graphs): stage 1 4 layers width 4, "
                                      "stage 2 4 layers width 32 4 heads ks 12,5,5,5"},
               "sizes": rows, "exponents": exps, "working_memory_100k_to_1M": wm}
    if args.collect_only and out.exists():  # keep the wall time of the run that measured
        results["wall_seconds"] = json.loads(out.read_text()).get("wall_seconds")
    png = plot(results, out.with_suffix(".png"))
    results["png"] = png.name if png else None
    save_json(results, out)
    print(format_table(results))
    print(f"\nwrote {out}" + (f" and {png}" if png else ""))
    return 0


def format_table(results: dict) -> str:
    rows = []
    for r in results["sizes"]:
        for part in PARTS:
            x = r.get(part)
            if x is None:
                continue
            if "peak_bytes" not in x:
                rows.append({"nodes": f"{r['nodes']:,}", "part": part, "aug. edges": "", "s/epoch": "",
                             "peak": "", "working": "", "note": x.get("skipped") or x.get("failed") or "missing"})
                continue
            note = ""
            if part.startswith("stage2"):
                note = (f"{x['steps']} of {x['steps_per_epoch']} steps{' (epoch projected)' if not x['full_epoch'] else ''}"
                        f"; mean S0 {x['mean_input_rows']:,.0f}; sampling {x['sampling_seconds']:.1f} s")
            rows.append({"nodes": f"{r['nodes']:,}", "part": part, "aug. edges": f"{x.get('augmented_edges', 0):,}",
                         "s/epoch": f"{x['seconds_per_epoch']:.2f}", "peak": fmt_bytes(x["peak_bytes"]),
                         "working": fmt_bytes(x["working_bytes"]), "note": note})
    text = table(rows, "scaling (planted partition, avg degree 20, 128 features)")
    for part, e in results["exponents"].items():
        text += (f"\n{part}: log-log slope of peak memory {e['peak_memory']:.2f}, seconds/epoch "
                 f"{e['seconds_per_epoch']:.2f} (sizes {e['points']})")
    for part, w in results["working_memory_100k_to_1M"].items():
        text += (f"\n{part}: working memory 100k → 1M: {fmt_bytes(w['working_100k_bytes'])} → "
                 f"{fmt_bytes(w['working_1M_bytes'])} ({w['change_percent']:+.1f}%; target < 10%: "
                 f"{'met' if w['target_met'] else 'missed'})")
    return text


if __name__ == "__main__":
    raise SystemExit(main())
