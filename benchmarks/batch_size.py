"""Batch-size benchmark: stage 2 on Tolokers at several batch sizes, one shared scores file.

The Tolokers preset (4 layers, width 32, 4 heads, ks 12,10,10,10) with ``stage2.batch_size`` (and
the evaluation batch, which defaults to it) set to each of ``--batch-sizes``; 100,000 is the
preset and covers all 11,758 nodes in one batch. Every batch size runs the library's
``spexphormer.pipeline.run`` in its own child process (one thread, ``THP_MEM_ALLOC_ENABLE=1``) on
the same scores file: by default the one the accuracy benchmark wrote
(``results/runs/accuracy/tolokers/stage1``); without it, a stage 1 is run first.

Fewer epochs and seeds than the paper's protocol (200 epochs, 5 seeds) by default: ``--epochs 15
--seeds 1``; the JSON records what was run. Peak memory is the child's peak RSS during stage 2.

Usage::

    python benchmarks/batch_size.py --data-root ../shared/datasets
    python benchmarks/batch_size.py --batch-sizes 500,2000,8000,100000 --epochs 40 --seeds 2
    python benchmarks/batch_size.py --quick

Writes ``benchmarks/results/batch_size.json`` and ``batch_size.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (save_figure, DEFAULT_DATA_ROOT, RESULTS, Job, fmt_bytes, load_json, machine, python,  # noqa: E402
                     run_jobs, save_json, table)

ACCURACY = Path(__file__).resolve().parent / "accuracy.py"


def find_scores(folder: Path, key: str) -> Path | None:
    """The scores file of this stage-1 config in ``folder`` (its name also holds the split key)."""
    found = sorted(folder.glob(f"scores-{key}-*.pt"))
    return found[0] if found else None


def plot(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in results["rows"] if "test_mean" in r]
    if not rows:
        return None
    b = [r["batch_size_effective"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].semilogx(b, [r["stage2_peak_bytes"] / 2**30 for r in rows], "o-", label="peak RSS")
    axes[0].semilogx(b, [r["stage2_working_bytes"] / 2**30 for r in rows], "s--", label="working (peak − held)")
    axes[0].set_ylabel("GiB"), axes[0].set_title("stage-2 memory"), axes[0].legend(fontsize=8)
    axes[1].semilogx(b, [r["seconds_per_epoch"] for r in rows], "o-")
    axes[1].set_ylabel("seconds / epoch (train + eval)"), axes[1].set_title("time")
    axes[2].errorbar(b, [r["test_mean"] for r in rows], yerr=[r["test_std"] for r in rows], fmt="o-", capsize=3)
    axes[2].set_xscale("log")
    axes[2].set_ylabel("test ROC-AUC (%)"), axes[2].set_title(
        f"test ROC-AUC, {results['epochs']} epochs, {results['seeds']} seed(s)")
    for ax in axes:
        ax.set_xlabel("core nodes per batch (≥ 11,758 = all nodes)")
        ax.grid(True, which="both", alpha=0.3)
    return save_figure(fig, path, f"Tolokers stage 2 vs batch size ({results['split']}); CPU, 1 thread",
                       results["quick"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--dataset", default="tolokers")
    p.add_argument("--batch-sizes", default="500,2000,8000,100000")
    p.add_argument("--epochs", type=int, default=15, help="stage-2 epochs (preset: 200)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--scores", default=None, help="scores file (default: the accuracy benchmark's)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, batch sizes 2000,100000, "
                                                        "3-epoch stage 1 if no scores file")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None)
    p.add_argument("--runs", default=None)
    p.add_argument("--collect-only", action="store_true")
    args = p.parse_args(argv)
    from spexphormer.presets import preset

    if args.quick:
        args.epochs, args.batch_sizes = 2, "2000,100000"
    suffix = "_quick" if args.quick else ""
    runs = Path(args.runs) if args.runs else RESULTS / "runs" / f"batch_size{suffix}"
    out = Path(args.out) if args.out else RESULTS / f"batch_size{suffix}.json"
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    s1_sets = ["stage1.epochs=3"] if args.quick else []
    cfg = preset(args.dataset).override(s1_sets)
    key = cfg.stage1_key()
    base = [python(), str(ACCURACY), "--data-root", args.data_root, "--device", args.device, "--dataset", args.dataset]
    sets = lambda items: sum((["--set", s] for s in items), [])  # noqa: E731
    jobs = []
    scores = Path(args.scores) if args.scores else None
    if scores is None:
        for folder in ([RESULTS / "runs" / "accuracy" / args.dataset / "stage1"] if not args.quick else []) + \
                      [runs / "stage1"]:
            scores = find_scores(folder, key)
            if scores:
                break
    start = time.time()
    after = []
    if scores is None:
        scores = runs / "stage1"  # the accuracy child reads the one scores file there
        if not args.collect_only:
            jobs.append(Job(f"{args.dataset}-bs-stage1", base + ["--child", "stage1", "--out", runs / "stage1",
                                                                 "--seeds", 1] + sets(s1_sets), cost=1000))
            after = [jobs[-1].name]
    for b in sizes:
        jobs.append(Job(f"{args.dataset}-bs{b}", base + ["--child", "spexphormer", "--out", runs / f"b{b}", "--seeds",
                                                         args.seeds, "--scores", scores]
                        + sets(s1_sets + [f"stage2.epochs={args.epochs}", f"stage2.batch_size={b}"]),
                        after=after, cost=10_000 / b))
    statuses = {}
    if not args.collect_only:
        statuses = {n: j.status for n, j in run_jobs(jobs, workers=args.workers).items()}
    rows, split, n_nodes = [], None, None
    for b in sizes:
        rpath = runs / f"b{b}" / "results.json"
        if not rpath.exists():
            rows.append({"batch_size": b, "status": statuses.get(f"{args.dataset}-bs{b}", "missing")})
            continue
        r = load_json(rpath)
        split, n_nodes = r["split"], r["nodes"]
        st = r["stages"]["stage2"]
        rows.append({"batch_size": b, "batch_size_effective": min(b, r["nodes"]),
                     "test_mean": 100 * r["test"]["mean"], "test_std": 100 * r["test"]["std"],
                     "test_per_seed": [100 * t for t in r["test"]["per_seed"]], "seeds": r["seeds"],
                     "val_mean": 100 * r["val"]["mean"], "seconds_per_epoch": r["seconds_per_epoch"],
                     "stage2_seconds": st["seconds"], "stage2_peak_bytes": st["peak_memory_bytes"],
                     "stage2_working_bytes": st["working_memory_bytes"], "edge_ratio": r["edge_ratio"],
                     "sampling_seconds": r.get("sampling_seconds")})
    results = {"benchmark": "batch_size", "quick": args.quick, "dataset": args.dataset, "split": split,
               "nodes": n_nodes, "machine": machine(args.device), "wall_seconds": round(time.time() - start, 1),
               "epochs": args.epochs, "seeds": args.seeds, "scores_file": str(scores),
               "protocol": {"paper": "200 epochs, 5 seeds (preset)", "run": f"{args.epochs} epochs, {args.seeds} "
                            f"seed(s); eval batch = train batch; one shared scores file", "threads_per_job": 1},
               "jobs": statuses, "rows": rows}
    if args.collect_only and out.exists():  # keep the wall time of the run that measured
        results["wall_seconds"] = json.loads(out.read_text()).get("wall_seconds")
    png = plot(results, out.with_suffix(".png"))
    results["png"] = png.name if png else None
    save_json(results, out)
    print(table([{"batch": f"{r['batch_size']:,}", "test ROC-AUC %": f"{r['test_mean']:.2f} ± {r['test_std']:.2f}",
                  "seeds": len(r["seeds"]), "s/epoch": f"{r['seconds_per_epoch']:.2f}",
                  "peak": fmt_bytes(r["stage2_peak_bytes"]), "working": fmt_bytes(r["stage2_working_bytes"])}
                 if "test_mean" in r else {"batch": f"{r['batch_size']:,}", "test ROC-AUC %": r["status"], "seeds": "",
                                           "s/epoch": "", "peak": "", "working": ""} for r in rows],
                f"{args.dataset} stage 2 vs batch size · {split} · {args.epochs} epochs"))
    print(f"\nwrote {out}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
