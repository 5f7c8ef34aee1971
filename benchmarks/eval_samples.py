"""How much averaging over sampled graphs helps: trained checkpoints evaluated on 1..S samples.

A sampled wide model's prediction depends on the graph sampled for it. ``stage2.eval_samples``
averages the predicted distributions over several samples; this benchmark re-evaluates finished
runs' checkpoints (``spexphormer.pipeline.predict.predict`` with ``samples=S``: the checkpoint's
seed, so S = its own ``eval_samples`` reproduces its run's metrics) on the validation and test
nodes for each S asked for, and prints the mean ± std over the checkpoints.

    python benchmarks/eval_samples.py --dataset tolokers --samples 1,4,8,16 \\
        --checkpoints 'benchmarks/results/runs/accuracy_local/tolokers/local/seed*-run/seed*/model.pt'

Writes ``benchmarks/results/eval_samples_<dataset>.json``. One thread.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_ROOT, RESULTS, int_list, machine, save_json, table, sample_std  # noqa: E402


def evaluate_checkpoints(args) -> dict:
    import torch

    from spexphormer.data import graph_info, load_graph
    from spexphormer.pipeline.predict import predict
    from spexphormer.train import compute_metric
    from spexphormer.train.checkpoint import load_checkpoint
    from spexphormer.utils.device import set_threads

    set_threads(1)
    paths = sorted(glob.glob(args.checkpoints))
    if not paths:
        raise SystemExit(f"error: no checkpoint matches {args.checkpoints!r}")
    samples = args.samples
    data = load_graph(dataset=args.dataset, root=args.data_root, split_index=args.split_index)
    info = graph_info(data)
    ids = {n: getattr(data, f"{n}_mask").nonzero().view(-1) for n in ("val", "test")}
    both = torch.cat([ids["val"], ids["test"]]).tolist()
    runs = []
    for path in paths:
        meta = load_checkpoint(path)["meta"]
        run = {"checkpoint": path, "seed": meta.get("seed"), "reported": {"val": 100 * meta["val"],
                                                                           "test": 100 * meta["test"]}}
        for s in samples:
            tic = time.perf_counter()
            logits = predict(path, data=data, nodes=both, samples=s)["logits"]
            out = dict(zip(("val", "test"), logits.split([ids["val"].numel(), ids["test"].numel()])))
            run[s] = {n: 100 * compute_metric(out[n], data.y[ids[n]], info.task, info.metric) for n in out}
            run[s]["seconds"] = time.perf_counter() - tic
        print(f"{Path(path).parent.name}: " + " | ".join(f"S={s} val {run[s]['val']:.2f} test {run[s]['test']:.2f}"
                                                        for s in samples), flush=True)
        runs.append(run)
    summary = {s: {n: {"mean": mean(r[s][n] for r in runs), "std": sample_std([r[s][n] for r in runs])}
                   for n in ("val", "test")} | {"seconds": mean(r[s]["seconds"] for r in runs)} for s in samples}
    return {"benchmark": "eval_samples", "dataset": args.dataset, "metric": info.metric, "split": info.split,
            "checkpoints": len(runs), "samples": samples, "runs": [{k if isinstance(k, str) else f"S={k}": v
                                                                     for k, v in r.items()} for r in runs],
            "summary": {f"S={s}": v for s, v in summary.items()}, "machine": machine(), "threads": 1}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--checkpoints", required=True, help="glob of model.pt files (quote it)")
    p.add_argument("--samples", type=int_list, default=[1, 4, 8, 16],
                   help="comma-separated sample counts (default 1,4,8,16)")
    p.add_argument("--split-index", type=int, default=0)
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--out", default=None, help="JSON path (default results/eval_samples_<dataset>.json)")
    args = p.parse_args(argv)
    from spexphormer.errors import SpexphormerError
    try:
        result = evaluate_checkpoints(args)
    except SpexphormerError as exc:  # a bad dataset, checkpoint or sample count: one line, as the CLI does
        raise SystemExit(f"error: {exc}") from None
    out = Path(args.out) if args.out else RESULTS / f"eval_samples_{args.dataset}.json"
    save_json(result, out)
    reported = [r["reported"] for r in result["runs"]]
    rows = [{"samples": "as the run reported", "val": f"{mean(r['val'] for r in reported):.2f}",
             "test": f"{mean(r['test'] for r in reported):.2f} ± {sample_std([r['test'] for r in reported]):.2f}",
             "s/evaluation": ""}]
    for key, v in result["summary"].items():
        rows.append({"samples": key[2:], "val": f"{v['val']['mean']:.2f}",
                     "test": f"{v['test']['mean']:.2f} ± {v['test']['std']:.2f}",
                     "s/evaluation": f"{v['seconds']:.1f}"})
    print(table(rows, title=f"{args.dataset} · {result['split']} · {result['checkpoints']} checkpoints · "
                            f"metric {result['metric']} (mean ± std over checkpoints)"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
