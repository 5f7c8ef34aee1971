"""Stage-2 memory against full-batch Exphormer at the same width and heads, on one dataset.

Each model trains in its own fresh process (`spexphormer train`), a few epochs (memory per epoch
does not depend on the epoch count), one seed, one thread. Two figures per run, from its
``results.json``:

* peak: the process's peak RSS during the stage (includes the interpreter, PyTorch and the data
  that both processes hold alike);
* working: that peak minus the RSS held when the stage started (the graph, features and scores
  are held before; Exphormer's augmentation and stage 2's sampling count as working memory).

    python benchmarks/memory.py --dataset tolokers --data-root ../shared/datasets

Prints a table and writes ``benchmarks/results/memory_<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spexphormer.utils.io import save_json  # noqa: E402
from spexphormer.utils.table import format_table, human_bytes  # noqa: E402


def train(args, out: Path, model: str, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "spexphormer", "train", "--dataset", args.dataset, "--model", model,
           "--seeds", "1", "--out", str(out), "--quiet", "--set", f"stage2.epochs={args.epochs}",
           "--set", "run.threads=1", "--device", args.device, *extra]
    if args.data_root:
        cmd += ["--data-root", args.data_root]
    env = {**os.environ, "THP_MEM_ALLOC_ENABLE": "1"}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads((out / "results.json").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="tolokers")
    p.add_argument("--data-root", default=None)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-sizes", default="100000,2000,500", help="stage-2 batch sizes (core nodes)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exp = train(args, tmp / "exphormer", "exphormer", [])
        # stage 1 once (few epochs: the scores' values do not change stage 2's memory)
        subprocess.run([sys.executable, "-m", "spexphormer", "estimate", "--dataset", args.dataset,
                        "--out", str(tmp / "s1"), "--quiet", "--set", "stage1.epochs=2", "--set", "run.threads=1",
                        *(["--data-root", args.data_root] if args.data_root else [])],
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "THP_MEM_ALLOC_ENABLE": "1"})
        scores = next((tmp / "s1").glob("scores-*.pt"))
        rows, runs = [], {"exphormer": exp["stages"]["exphormer"]}
        e_peak = exp["stages"]["exphormer"]["peak_memory_bytes"]
        e_work = exp["stages"]["exphormer"]["working_memory_bytes"]
        rows.append({"model": "Exphormer (full batch)", "batch": "all", "peak": human_bytes(e_peak),
                     "working": human_bytes(e_work), "peak ratio": "1", "working ratio": "1"})
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            res = train(args, tmp / f"s2_{batch}", "spexphormer",
                        ["--scores", str(scores), "--set", f"stage2.batch_size={batch}"])
            st = res["stages"]["stage2"]
            runs[f"stage2_batch_{batch}"] = st
            rows.append({"model": "Spexphormer stage 2", "batch": f"{batch:,}", "peak": human_bytes(st["peak_memory_bytes"]),
                         "working": human_bytes(st["working_memory_bytes"]),
                         "peak ratio": f"{st['peak_memory_bytes'] / e_peak:.3f}",
                         "working ratio": f"{st['working_memory_bytes'] / e_work:.3f}"})
    cfg = exp["config"]["stage2"]
    title = (f"{args.dataset} ({exp['split']}): width {cfg['hidden']}, {cfg['heads']} heads, "
             f"{cfg['num_layers']} layers, ks {cfg['ks']}; {args.epochs} epochs, 1 thread, {args.device}")
    print(format_table(rows, title=title))
    out = Path(args.json) if args.json else RESULTS / f"memory_{args.dataset}.json"
    save_json({"benchmark": "memory", "dataset": args.dataset, "split": exp["split"], "title": title,
               "machine": exp["machine"], "epochs": args.epochs, "runs": runs, "rows": rows}, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
