"""Data-parallel stage 2: epoch time of 1 vs 2 processes, and the bytes each step communicates.

On one scores file (a short stage 1 run first, unless ``--scores`` is given), stage 2 of the
Minesweeper preset (4 layers, width 32, 4 heads, ks 12,5,5,5) with ``--batch-size`` core nodes per
step runs ``--epochs`` epochs in each of these configurations, each in fresh processes:

=============  ==========  ===================
processes      threads     compared with
=============  ==========  ===================
1              1           2 x 1 (1 thread each: does a second process pay?)
1              2           2 x 1 (the same 2 threads in total: processes vs threads)
2 (gloo)       1 each      -
=============  ==========  ===================

The configurations alternate ``--repeats`` times (a, b, c, a, b, c, ...) so that a change of load
on a shared machine hits all of them; the table gives the median seconds per epoch (training and
evaluation, as ``FitResult.seconds_per_epoch``), the ratios, the load average before and after, and
the bytes each rank put into collectives per optimisation step (DDP's gradient buckets, the
synchronised norms' statistics), counted by :data:`spexphormer.distributed.world.COMM`.

Usage::

    python benchmarks/distributed.py --data-root ../shared/datasets
    python benchmarks/distributed.py --quick

Writes ``benchmarks/results/distributed.json`` (``distributed_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_ROOT, RESULTS, child_env, machine, python, save_json, table  # noqa: E402

CONFIGS = [("1 process x 1 thread", 1, 1), ("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1)]


def worker(args) -> None:
    """One measured stage-2 run (a rank when launched with --nproc); rank 0 writes the record."""
    import torch
    from spexphormer.presets import preset
    from spexphormer.data import load_graph
    from spexphormer.distributed import COMM, init_from_env, shutdown, world
    from spexphormer.distributed.world import local_rank_zero_first
    from spexphormer.pipeline.stage2 import train_wide
    from spexphormer.scores import Scores
    init_from_env()
    try:
        torch.set_num_threads(args.threads)
        with local_rank_zero_first():
            data = load_graph(dataset=args.dataset, root=args.data_root)
        cfg = preset(args.dataset).override({"stage2.epochs": args.epochs, "stage2.batch_size": args.batch_size,
                                             "run.threads": args.threads})
        scores = Scores.load(args.scores)
        COMM.reset()
        res = train_wide(data, scores, cfg, seed=0, progress=False)
        train = int((data.train_mask & (data.y >= 0)).sum())
        steps = args.epochs * math.ceil(train / args.batch_size)
        if world().is_main:
            record = {"world_size": world().size, "threads": torch.get_num_threads(),
                      "seconds_per_epoch": res.fit.seconds_per_epoch, "test": res.fit.test, "steps": steps,
                      "parameters": sum(p.numel() for p in res.model.parameters()),
                      "bytes_per_step": {k: v / steps for k, v in COMM.bytes.items()}}
            Path(args.record).write_text(json.dumps(record))
    finally:
        shutdown()


def measure(args, nproc: int, threads: int, record: Path) -> dict:
    argv = ["--worker", "--dataset", args.dataset, "--data-root", str(args.data_root), "--scores", str(args.scores),
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--threads", str(threads),
            "--record", str(record)]
    if nproc == 1:
        cmd = [python(), __file__, *argv]
    else:
        cmd = [python(), "-c", "import sys; from spexphormer.distributed.launch import launch_local; "
               f"sys.exit(launch_local({nproc}, {argv!r}, entry=[{__file__!r}]))"]
    subprocess.run(cmd, check=True, env=child_env(threads))
    return json.loads(record.read_text())


def stage1_scores(args) -> Path:
    out = RESULTS / "runs" / "distributed"
    cmd = [python(), "-m", "spexphormer", "estimate", "--dataset", args.dataset, "--data-root", str(args.data_root),
           "--out", str(out), "--set", f"stage1.epochs={args.stage1_epochs}", "--set", "run.threads=1", "--quiet"]
    subprocess.run(cmd, check=True, env=child_env(1))
    return next(out.glob("scores-*.pt"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="minesweeper")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--scores", type=Path)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--stage1-epochs", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="2 epochs, 1 repeat")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--record", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.epochs, args.repeats, args.stage1_epochs = 2, 1, 3
    args.scores = args.scores or stage1_scores(args)
    load_before, runs = list(os.getloadavg()), {name: [] for name, _, _ in CONFIGS}
    tic = time.perf_counter()
    for repeat in range(args.repeats):
        for name, nproc, threads in CONFIGS:
            rec = measure(args, nproc, threads, RESULTS / "runs" / "distributed" / f"record-{nproc}x{threads}.json")
            runs[name].append(rec)
            print(f"  repeat {repeat}: {name}: {rec['seconds_per_epoch']:.2f} s/epoch", flush=True)
    load_after = list(os.getloadavg())
    median = {name: statistics.median(r["seconds_per_epoch"] for r in recs) for name, recs in runs.items()}
    two = "2 processes x 1 thread"
    rows = [{"configuration": name, "s/epoch (median)": f"{median[name]:.2f}",
             "per repeat": ", ".join(f"{r['seconds_per_epoch']:.2f}" for r in runs[name]),
             "2 processes faster by": "-" if name == two else f"{median[name] / median[two]:.2f}x",
             "test": f"{100 * runs[name][-1]['test']:.2f}"} for name, _, _ in CONFIGS]
    comm = runs[two][-1]
    comm_rows = [{"collective": k, "bytes per step per rank": f"{v:,.0f}"} for k, v in comm["bytes_per_step"].items()]
    print(table(rows, title=f"stage 2 on {args.dataset}, batch {args.batch_size}, {args.epochs} epochs x "
                            f"{args.repeats} repeats; load {load_before[0]:.1f} -> {load_after[0]:.1f}"))
    print(table(comm_rows, title=f"communication per step ({comm['parameters']:,} parameters, "
                                 f"{comm['steps']} steps)"))
    out = RESULTS / ("distributed_quick.json" if args.quick else "distributed.json")
    save_json({"dataset": args.dataset, "batch_size": args.batch_size, "epochs": args.epochs,
               "repeats": args.repeats, "scores": str(args.scores), "runs": runs, "median_seconds_per_epoch": median,
               "load_avg_before": load_before, "load_avg_after": load_after,
               "wall_seconds": round(time.perf_counter() - tic, 1), "machine": machine()}, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
