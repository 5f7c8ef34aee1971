"""Both stages on a CUDA GPU: seconds per epoch and peak GPU memory, named datasets and a synthetic
million-node graph.

For each dataset and model: stage 1 (the estimator on the whole augmented graph) and stage 2 (the
wide model on the sampled graphs, with its evaluation) for a few epochs each, timed with the GPU
synchronised, memory as ``torch.cuda.max_memory_allocated`` during the stage. The synthetic graph
(planted partition, the large-graph preset) gets the same two stages for one or two epochs.

    python benchmarks/gpu.py --datasets tolokers,minesweeper --nodes 1000000

Writes ``benchmarks/results/gpu.json`` and prints a table. Needs a CUDA device.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_ROOT, RESULTS, fmt_bytes, machine, save_json, table  # noqa: E402


def both_stages(data, cfg, label: str, model: str, device: str) -> dict:
    """Stage 1 then stage 2 of ``cfg`` on ``data`` on ``device``; what each took."""
    import torch

    from spexphormer.pipeline.stage1 import estimate
    from spexphormer.pipeline.stage2 import train_wide
    from spexphormer.utils.memory import StageMeter

    gpu = torch.device(device)
    row = {"graph": label, "model": model, "nodes": data.num_nodes, "edges": int(data.num_edges)}
    with StageMeter(gpu) as m1:
        r1 = estimate(data, cfg, device=gpu, progress=False)
    row["stage1"] = {"epochs": cfg.stage1.epochs, "seconds": m1.seconds, "seconds_per_epoch": r1.fit.seconds_per_epoch,
                     "peak_bytes": m1.peak_memory_bytes, "baseline_bytes": m1.baseline_bytes, "val": r1.fit.val}
    scores = r1.scores
    del r1
    with StageMeter(gpu) as m2:
        r2 = train_wide(data, scores, cfg, seed=0, device=gpu, progress=False)
    row["stage2"] = {"epochs": cfg.stage2.epochs, "seconds": m2.seconds, "seconds_per_epoch": r2.fit.seconds_per_epoch,
                     "sampling_seconds": r2.sampling_seconds, "peak_bytes": m2.peak_memory_bytes,
                     "baseline_bytes": m2.baseline_bytes, "val": r2.fit.val, "test": r2.fit.test}
    print(f"{label} {model}: stage 1 {row['stage1']['seconds_per_epoch']:.3f} s/epoch "
          f"({fmt_bytes(m1.peak_memory_bytes)}), stage 2 {row['stage2']['seconds_per_epoch']:.3f} s/epoch "
          f"({fmt_bytes(m2.peak_memory_bytes)})", flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="tolokers,minesweeper")
    p.add_argument("--models", default="spexphormer,local-attention")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--stage1-epochs", type=int, default=20)
    p.add_argument("--stage2-epochs", type=int, default=10)
    p.add_argument("--nodes", type=int, default=1_000_000, help="synthetic graph's nodes (0: none)")
    p.add_argument("--large-epochs", type=int, default=2, help="stage-1 epochs on the synthetic graph")
    p.add_argument("--device", default="cuda", help="cuda (default), or cpu for a comparison or a smoke test")
    p.add_argument("--json", default=str(RESULTS / "gpu.json"))
    args = p.parse_args(argv)

    import torch

    from spexphormer.data import load_graph, planted_partition
    from spexphormer.presets import preset, preset_for_size

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device (use --device cpu for a CPU comparison)", file=sys.stderr)
        return 2
    out = {"benchmark": "gpu", "machine": machine(args.device) | {"threads_per_job": torch.get_num_threads()},
           "args": vars(args), "rows": []}
    epochs = [f"stage1.epochs={args.stage1_epochs}", f"stage2.epochs={args.stage2_epochs}",
              f"run.device={args.device}"]
    for name in filter(None, args.datasets.split(",")):
        data = load_graph(dataset=name, root=args.data_root)
        for model in args.models.split(","):
            out["rows"].append(both_stages(data, preset(name, model).override(epochs), name, model, args.device))
            save_json(out, Path(args.json))
    if args.nodes:
        tic = time.perf_counter()
        data = planted_partition(args.nodes, avg_degree=20, num_features=128, num_classes=5, seed=0)
        out["synthetic_generate_seconds"] = time.perf_counter() - tic
        cfg = preset_for_size(data.num_nodes).override([f"stage1.epochs={args.large_epochs}", "stage2.epochs=1",
                                                        f"run.device={args.device}"])
        out["rows"].append(both_stages(data, cfg, f"planted {args.nodes:,}", "spexphormer", args.device))
        save_json(out, Path(args.json))
    print(table([{"graph": r["graph"], "model": r["model"],
                  "stage 1 s/epoch": f"{r['stage1']['seconds_per_epoch']:.3f}",
                  "stage 1 peak": fmt_bytes(r["stage1"]["peak_bytes"]),
                  "stage 2 s/epoch": f"{r['stage2']['seconds_per_epoch']:.3f}",
                  "stage 2 peak": fmt_bytes(r["stage2"]["peak_bytes"]),
                  "stage 2 test": f"{100 * r['stage2']['test']:.2f}"} for r in out["rows"]],
                f"both stages on {out['machine'].get('gpu', 'cpu')} (torch {torch.__version__})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
