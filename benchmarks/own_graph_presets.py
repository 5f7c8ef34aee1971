"""Which local-attention preset should a graph of your own get? Each preset on the graphs it was not tuned on.

A graph given with ``run --data`` gets the default graph and stage-1 settings (the paper preset
``DEFAULT_PRESET``) and one stage 2. This script trains, on each named dataset, the stage 2 of
every local-attention preset **tuned on another dataset** (one scores file per dataset, made with
the ``--data`` defaults, serves every row), so that each preset is measured as a new user's graph
would meet it. Presets are compared on validation over the graphs that none of them was tuned on
(the summary); test is recorded.

    python benchmarks/own_graph_presets.py                         # 1 seed, cora/actor/minesweeper/tolokers
    python benchmarks/own_graph_presets.py --datasets minesweeper,tolokers --presets cora,actor \
        --seeds 2 --first-seed 1 --out benchmarks/results/own_graph_presets_seeds12.json

The Minesweeper preset (20 local-only layers, no expander slots: a grid's depth) is left out
unless named with ``--presets``. Writes ``benchmarks/results/own_graph_presets.json``. One thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_ROOT, RESULTS, machine, save_json  # noqa: E402


def cross_evaluate(args) -> dict:
    import torch

    from spexphormer.data import graph_info, load_graph
    from spexphormer.pipeline.run import obtain_scores
    from spexphormer.pipeline.stage2 import train_wide
    from spexphormer.presets import LOCAL_PRESETS, preset
    from spexphormer.utils.device import set_threads

    set_threads(1)
    rows = []
    result = {"protocol": "each dataset's split 0 (official mask / geom-gcn split 0 / Cora random 60/20/20 "
                          "seed 0); graph and stage 1 as `run --data` gets them; stage 2 of each preset "
                          "tuned on another dataset", "seeds": list(range(args.first_seed, args.first_seed + args.seeds)), "rows": rows,
              "machine": machine(), "threads": 1}
    for dataset in args.datasets:
        data = load_graph(dataset=dataset, root=args.data_root, split_index=0)
        info = graph_info(data)
        base = preset(None, "local-attention").override(["run.threads=1", "run.device=cpu"])
        runs = Path(args.runs) / dataset
        runs.mkdir(parents=True, exist_ok=True)
        scores, _ = obtain_scores(data, base, runs, torch.device("cpu"), progress=False)
        for name in args.presets:
            if name == dataset:
                continue  # tuned on this graph: not a new user's experience
            cfg = replace(base, stage2=LOCAL_PRESETS[name].stage2)
            vals, tests, tic = [], [], time.perf_counter()
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                fit = train_wide(data, scores, cfg, seed=seed, progress=False).fit
                vals.append(100 * fit.val), tests.append(100 * fit.test)
            rows.append({"dataset": dataset, "metric": info.metric, "split": info.split, "preset": name,
                         "val_per_seed": vals, "test_per_seed": tests, "val": mean(vals), "test": mean(tests),
                         "seconds": time.perf_counter() - tic})
            print(f"{dataset} with the {name} preset: val {mean(vals):.2f} test {mean(tests):.2f}", flush=True)
            save_json(result, args.out)
    # A fair comparison: the graphs that none of the compared presets was tuned on.
    common = [d for d in args.datasets if d not in args.presets]
    summary = {"common_graphs": common}
    for name in args.presets:
        mine = [r for r in rows if r["preset"] == name and r["dataset"] in common]
        if mine:
            summary[name] = {"val_mean": mean(r["val"] for r in mine), "test_mean": mean(r["test"] for r in mine)}
    result["summary"] = summary
    save_json(result, args.out)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", type=lambda s: s.split(","), default=["cora", "actor", "minesweeper", "tolokers"])
    p.add_argument("--presets", type=lambda s: s.split(","), default=["cora", "actor", "tolokers"])
    p.add_argument("--seeds", type=int, default=1, help="seeds per preset and graph (default 1)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--runs", default=str(RESULTS / "runs" / "own_graph_presets"), help="stage-1 cache folder")
    p.add_argument("--out", default=str(RESULTS / "own_graph_presets.json"))
    args = p.parse_args(argv)
    result = cross_evaluate(args)
    summary = result["summary"]
    for name in args.presets:
        if name in summary:
            print(f"{name}: mean over {', '.join(summary['common_graphs'])}: val {summary[name]['val_mean']:.2f} "
                  f"test {summary[name]['test_mean']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
