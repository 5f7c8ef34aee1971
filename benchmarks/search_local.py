"""Validation-only search for the local-attention model's presets.

For each dataset: stage 1 once with the dataset's preset (its scores file is cached under
``--runs`` and reused), then every candidate configuration of ``GRID`` (overrides on top of the
dataset's local-attention preset) for ``--seeds`` seeds and ``--epochs`` stage-2 epochs. The
candidates are ranked by **validation** metric only (mean over seeds, at each run's best
validation epoch); test numbers are recorded but never used to choose. The budget is printed and
written: configurations × seeds × epochs.

    python benchmarks/search_local.py --dataset minesweeper --seeds 1 --epochs 40
    python benchmarks/search_local.py --dataset cora --configs base,gated,jk

Writes ``benchmarks/results/search_local_<dataset>.json`` and prints a table. One thread, one
process (seconds per epoch include each epoch's evaluation; memory is measured by
``benchmarks/accuracy.py --plan local``, one fresh process per row).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_ROOT, RESULTS, machine, save_json, table, sample_std  # noqa: E402

#: Candidates per dataset: name -> overrides of the dataset's local-attention preset.
COMMON = {
    "base": [],
    "sum": ["stage2.local=sum"],
    "gated": ["stage2.local=gated"],
    "jk": ["stage2.jk=true"],
    "attention-only": ["stage2.branches=attention"],
    "local-only": ["stage2.branches=local"],
    "indrop": ["stage2.input_dropout=0.5"],
    "sum-indrop": ["stage2.local=sum", "stage2.input_dropout=0.5"],
    # ablations of the preset: the same slots drawn by score among all edge types (the paper's
    # sampler), and uniform instead of learned scores for the expander slots
    "mixed-slots": ["stage2.graph_ks=", "stage2.expander_ks="],
    "uniform": ["stage2.sampler=uniform"],
}
def _features(hops: int) -> list[str]:
    """The degree column and ``hops`` propagated copies of the features as extra inputs."""
    return ["stage2.degree_feature=true", f"stage2.feature_hops={hops}"]


def _deep(layers: int, branches: str, hidden: int = 64, graph_k: int = 8, expander_k: int = 2,
          local: str = "sage") -> list[str]:
    """A deep configuration (the strong classic GNNs' depth on heterophilous graphs: 7-15 layers)."""
    ek = 0 if branches == "local" else expander_k
    return [f"stage2.branches={branches}", f"stage2.num_layers={layers}", f"stage2.hidden={hidden}",
            f"stage2.local={local}", "stage2.graph_ks=" + ",".join([str(graph_k)] * layers),
            "stage2.expander_ks=" + ",".join([str(ek)] * layers)]


GRID = {
    "minesweeper": {**COMMON,
                    "local12": _deep(12, "local"),
                    "both12": _deep(12, "both"),
                    "attention12": _deep(12, "attention"),
                    "local15": _deep(15, "local"),
                    "local12-w48": _deep(12, "local", hidden=48),
                    "local15-w48": _deep(15, "local", hidden=48),
                    "local20-w48": _deep(20, "local", hidden=48),
                    "local25-w48": _deep(25, "local", hidden=48),
                    "wide64": ["stage2.hidden=64"],
                    "deep6": ["stage2.num_layers=6", "stage2.graph_ks=8,8,8,8,8,8", "stage2.expander_ks=4,2,2,2,2,2"],
                    "noexp": ["stage2.expander_ks=0,0,0,0"],
                    "lr3": ["stage2.lr=0.003"],
                    "sum-deep6": ["stage2.local=sum", "stage2.num_layers=6", "stage2.graph_ks=8,8,8,8,8,8",
                                  "stage2.expander_ks=4,2,2,2,2,2"],
                    "sum-jk": ["stage2.local=sum", "stage2.jk=true"],
                    "sum-wide64": ["stage2.local=sum", "stage2.hidden=64"],
                    "sum-local-deep8": ["stage2.local=sum", "stage2.branches=local", "stage2.num_layers=8",
                                        "stage2.graph_ks=8,8,8,8,8,8,8,8", "stage2.expander_ks=0,0,0,0,0,0,0,0"]},
    "tolokers": {**COMMON,
                 "local7": _deep(7, "local", graph_k=16),
                 "both7": _deep(7, "both", graph_k=16, expander_k=4),
                 "local7-k8": _deep(7, "local"),
                 "local7-d5": _deep(7, "local", graph_k=16) + ["stage2.dropout=0.5", "stage2.input_dropout=0.2"],
                 "local7-k32": _deep(7, "local", graph_k=32),
                 "local10": _deep(10, "local", graph_k=16),
                 "local7-sum": _deep(7, "local", graph_k=16, local="sum"),
                 "local7-lr1e-3": _deep(7, "local", graph_k=16) + ["stage2.lr=0.001"],
                 "k16": ["stage2.graph_ks=16,16,16,16"],
                 "pre0": ["stage2.pre_layers=0"],
                 "drop05": ["stage2.dropout=0.5"],
                 "sum-k16": ["stage2.local=sum", "stage2.graph_ks=16,16,16,16"],
                 # inputs computed on the whole graph: degree and propagated features (graph/features.py)
                 "feat2": _features(2),
                 "hops2-nodeg": ["stage2.feature_hops=2"],
                 "deg-only": ["stage2.degree_feature=true"],
                 "feat3": _features(3),
                 "feat2-w64": _features(2) + ["stage2.hidden=64"],
                 "feat2-sage": _features(2) + ["stage2.local=sage"],
                 "feat2-drop05": _features(2) + ["stage2.dropout=0.5"],
                 "feat2-local7": _features(2) + _deep(7, "local", graph_k=16),
                 "feat2-ep150": _features(2) + ["stage2.epochs=150"],
                 "feat4": _features(4),
                 "feat3-drop05": _features(3) + ["stage2.dropout=0.5"],
                 "feat3-w64": _features(3) + ["stage2.hidden=64"],
                 "feat3-jk": _features(3) + ["stage2.jk=true"],
                 "feat3-k16": _features(3) + ["stage2.graph_ks=16,16,16,16"],
                 "feat3-local7": _features(3) + _deep(7, "local", graph_k=16),
                 # round 8: on top of the preset (which has the whole-graph inputs since round 7)
                 "ep150": ["stage2.epochs=150"],
                 "lr5e-3": ["stage2.lr=0.005"],
                 "exp8": ["stage2.expander_ks=8,8,8,8"],
                 "w48": ["stage2.hidden=48"],
                 # round 9: several steps per epoch (the preset's batch holds every training node)
                 "bs2k": ["stage2.batch_size=2000"],
                 "bs1k": ["stage2.batch_size=1000"]},
    "actor": {**COMMON,
              "drop07": ["stage2.dropout=0.7"],
              "L2": ["stage2.num_layers=2", "stage2.graph_ks=8,8", "stage2.expander_ks=2,2"],
              "L1": ["stage2.num_layers=1", "stage2.graph_ks=8", "stage2.expander_ks=2"],
              "wide64": ["stage2.hidden=64"],
              "L2-wide64": ["stage2.num_layers=2", "stage2.graph_ks=8,8", "stage2.expander_ks=2,2", "stage2.hidden=64"],
              "sum-L2": ["stage2.local=sum", "stage2.num_layers=2", "stage2.graph_ks=8,8", "stage2.expander_ks=2,2"],
              "deg": ["stage2.degree_feature=true"],
              "hops1": ["stage2.feature_hops=1"],
              "wd01": ["stage2.weight_decay=0.1"],
              "wd05": ["stage2.weight_decay=0.5"],
              "lr3-ep200": ["stage2.lr=0.003", "stage2.epochs=200"],
              "w64-drop06": ["stage2.hidden=64", "stage2.dropout=0.6"],
              "bs1k": ["stage2.batch_size=1000"],
              "bs500": ["stage2.batch_size=500"]},
    "cora": {**COMMON,
             "L3": ["stage2.num_layers=3", "stage2.graph_ks=10,10,10", "stage2.expander_ks=2,2,2"],
             "drop07": ["stage2.dropout=0.7"],
             "pre0": ["stage2.pre_layers=0"],
             "lr3": ["stage2.lr=0.003"],
             "sum-indrop-local": ["stage2.local=sum", "stage2.input_dropout=0.5", "stage2.branches=local"],
             "sum-indrop-wd": ["stage2.local=sum", "stage2.input_dropout=0.5", "stage2.weight_decay=0.1"],
             "sage-indrop-wd-L3": ["stage2.input_dropout=0.5", "stage2.weight_decay=0.1", "stage2.num_layers=3",
                                   "stage2.graph_ks=10,10,10", "stage2.expander_ks=2,2,2"],
             "sum-L3": ["stage2.local=sum", "stage2.num_layers=3", "stage2.graph_ks=10,10,10",
                        "stage2.expander_ks=2,2,2"],
             "hops2": ["stage2.feature_hops=2"],
             "feat2": _features(2)},
}


def run_search(args) -> dict:
    import torch

    from spexphormer.presets import preset
    from spexphormer.data import graph_info, load_graph
    from spexphormer.pipeline.run import obtain_scores
    from spexphormer.pipeline.stage2 import train_wide
    from spexphormer.utils.device import set_threads

    set_threads(1)
    data = load_graph(dataset=args.dataset, root=args.data_root, split_index=0)
    base = preset(args.dataset, "local-attention").override(["run.threads=1", "run.device=cpu"])
    runs = Path(args.runs) / args.dataset
    runs.mkdir(parents=True, exist_ok=True)
    scores, _ = obtain_scores(data, base, runs, torch.device("cpu"), progress=False)
    grid = GRID[args.dataset]
    names = [c.strip() for c in args.configs.split(",")] if args.configs else list(grid)
    rows = []
    for name in names:
        cfg = base.override([f"stage2.epochs={args.epochs}"] + grid[name])  # a candidate may set its own epochs
        vals, tests, secs = [], [], []
        for seed in range(args.seeds):
            tic = time.perf_counter()
            res = train_wide(data, scores, cfg, seed=seed, progress=False)
            vals.append(100 * res.fit.val), tests.append(100 * res.fit.test)
            secs.append((time.perf_counter() - tic) / cfg.stage2.epochs)
        rows.append({"config": name, "overrides": grid[name], "val_mean": mean(vals),
                     "val_std": sample_std(vals), "val_per_seed": vals,
                     "test_mean": mean(tests), "test_per_seed": tests, "seconds_per_epoch": mean(secs),
                     "epochs": cfg.stage2.epochs})
        print(f"{args.dataset} {name}: val {mean(vals):.2f} test {mean(tests):.2f} ({mean(secs):.2f} s/epoch)",
              flush=True)
    best = max(rows, key=lambda r: r["val_mean"])
    info = graph_info(data)
    return {"dataset": args.dataset, "metric": info.metric, "split": info.split,
            "budget": {"configurations": len(rows), "seeds": args.seeds, "epochs": args.epochs,
                       "runs": len(rows) * args.seeds, "epochs_total": sum(r["epochs"] for r in rows) * args.seeds},
            "selection": "highest mean validation metric; test recorded, never used to choose",
            "base": base.stage2.__dict__ | {"ks": list(base.stage2.ks)}, "rows": rows, "best": best["config"],
            "machine": machine(), "threads": 1}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=sorted(GRID))
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--seeds", type=int, default=1, help="seeds per configuration (default 1)")
    p.add_argument("--epochs", type=int, default=40, help="stage-2 epochs per run (default 40)")
    p.add_argument("--configs", default=None, help="comma-separated subset of the dataset's candidates")
    p.add_argument("--runs", default=str(RESULTS / "runs" / "search_local"), help="stage-1 cache folder")
    p.add_argument("--out", default=None, help="JSON path (default results/search_local_<dataset>.json)")
    args = p.parse_args(argv)
    result = run_search(args)
    b = result["budget"]
    title = (f"{args.dataset} ({result['split']}, {result['metric']}): {b['configurations']} configurations × "
             f"{b['seeds']} seeds × {b['epochs']} epochs, ranked by validation; best: {result['best']}")
    print(table([{"config": r["config"], "val %": f"{r['val_mean']:.2f} ± {r['val_std']:.2f}",
                  "test %": f"{r['test_mean']:.2f}", "s/epoch": f"{r['seconds_per_epoch']:.2f}"}
                 for r in sorted(result["rows"], key=lambda r: -r["val_mean"])], title))
    save_json(result, Path(args.out) if args.out else RESULTS / f"search_local_{args.dataset}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
