"""Stage-2 working memory per training step: the local-attention model against the paper model.

Each setting runs in a fresh process (one thread): load the graph and a scores file, sample the
epoch's layer graphs, build the model and optimiser, then run ``--steps`` training steps (forward,
backward, AdamW step) over mini-batches of the local-attention preset's batch size (the paper
model at the same batch size where its own preset's differs). Working memory per step is the
peak RSS during the steps minus the RSS held before them (graph, scores, sampled tables, model);
on CUDA the allocator's peak minus what was allocated before. Same batch size for every setting.
Each setting is measured twice: with glibc's defaults (what ``top`` shows: the heap keeps freed
blocks, so a model of many mid-sized tensors shows its heap's high-water mark, slack included) and
with ``MALLOC_MMAP_THRESHOLD_=131072`` ("live": tensors above 128 KiB are mapped and unmapped, so
the RSS follows the tensors alive at the peak, as CUDA's ``max_memory_allocated`` would).

    python benchmarks/memory_local.py --dataset minesweeper
    python benchmarks/memory_local.py --dataset minesweeper --extra deep6="stage2.num_layers=6 ..."

Prints a table and writes ``benchmarks/results/memory_local_<dataset>.json``. The scores file is
the one ``benchmarks/accuracy.py --plan local`` (or ``search_local.py``) computed for the dataset;
``--scores`` names another.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_ROOT, RESULTS, child_env, machine, python, save_json, table  # noqa: E402

SETTINGS = {"spexphormer": ("spexphormer", []), "local-attention": ("local-attention", [])}
LIVE_MMAP_THRESHOLD = 128 * 1024


def child(args) -> int:
    import torch

    from spexphormer.presets import preset
    from spexphormer.data import graph_info, load_graph
    from spexphormer.graph import graph_fingerprint
    from spexphormer.pipeline.stage2 import build_wide_model, layer_sampler, model_inputs
    from spexphormer.sampling import iterate_batches
    from spexphormer.scores import Scores
    from spexphormer.train import task_loss
    from spexphormer.utils.device import set_threads
    from spexphormer.utils.memory import StageMeter

    set_threads(1)
    data = load_graph(dataset=args.dataset, root=args.data_root)
    cfg = preset(args.dataset, args.model).override(args.set)
    scores = Scores.load(args.scores, graph_fingerprint(data.edge_index, data.num_nodes, data.num_features))
    layers = layer_sampler(scores, cfg, seed=0).sample(0)
    torch.manual_seed(0)
    model = build_wide_model(data, cfg)
    x = model_inputs(data, cfg)  # held before the steps, like data.x: not working memory
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.stage2.lr)
    nodes = (data.train_mask & (data.y >= 0)).nonzero().view(-1)
    steps, sizes = 0, []
    with StageMeter("cpu") as meter:
        while steps < args.steps:
            for batch in iterate_batches(nodes, cfg.stage2.batch_size, layers, shuffle=True, seed=steps):
                loss = task_loss(model(x[batch.nodes], batch.index, batch.edge_type), data.y[batch.core],
                                 graph_info(data).task)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                sizes.append(batch.sizes)
                steps += 1
                if steps == args.steps:
                    break
    print(json.dumps({"working_bytes": meter.working_bytes, "peak_bytes": meter.peak_memory_bytes,
                      "seconds_per_step": meter.seconds / steps, "steps": steps, "batch_sizes": sizes[0],
                      "batch_size": cfg.stage2.batch_size, "slots": list(cfg.stage2.slots()),
                      "hidden": cfg.stage2.hidden, "num_layers": cfg.stage2.num_layers,
                      "parameters": sum(p.numel() for p in model.parameters())}))
    return 0


def _measure(cmd: list[str], **env: str) -> dict:
    """One child's JSON line (its last line of output), run with ``env`` added to the child environment."""
    res = subprocess.run(cmd, env={**child_env(1), **env}, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--scores", default=None, help="scores file (default: the accuracy run's)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--extra", action="append", default=[], metavar="NAME=OVERRIDES",
                   help="another local-attention setting: space-separated section.key=value overrides")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", default="spexphormer", help=argparse.SUPPRESS)
    p.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if args.scores is None:
        found = sorted((RESULTS / "runs" / "accuracy_local" / args.dataset / "stage1").glob("scores-*.pt"))
        if not found:
            raise SystemExit("no scores file: run benchmarks/accuracy.py --plan local first, or give --scores")
        args.scores = str(found[0])
    # the paper model at the local-attention preset's batch size, where the presets differ (Actor's)
    from spexphormer.presets import preset
    batch = preset(args.dataset, "local-attention").stage2.batch_size
    settings = {name: (model, overrides + [f"stage2.batch_size={batch}"]) for name, (model, overrides) in SETTINGS.items()}
    for item in args.extra:
        name, _, overrides = item.partition("=")
        settings[name] = ("local-attention", overrides.split())
    rows, out = [], {}
    for name, (model, overrides) in settings.items():
        cmd = [python(), __file__, "--child", "--dataset", args.dataset, "--data-root", args.data_root, "--scores",
               args.scores, "--steps", str(args.steps), "--model", model] + sum((["--set", o] for o in overrides), [])
        out[name] = {**_measure(cmd), "model": model, "overrides": overrides}
        # the same with glibc's mmap threshold fixed at 128 KiB: every tensor above it is mapped on
        # allocation and unmapped when freed, so the RSS follows the live tensors instead of the
        # heap's high-water mark (slower: its s/step is not reported)
        out[name]["live_working_bytes"] = _measure(cmd, MALLOC_MMAP_THRESHOLD_=str(LIVE_MMAP_THRESHOLD))["working_bytes"]
    base, live_base = out["spexphormer"]["working_bytes"], out["spexphormer"]["live_working_bytes"]
    for name, r in out.items():
        r["working_ratio_to_spexphormer"] = r["working_bytes"] / base
        r["live_ratio_to_spexphormer"] = r["live_working_bytes"] / live_base
        rows.append({"setting": name, "layers": r["num_layers"], "width": r["hidden"],
                     "slots per layer": ",".join(map(str, r["slots"])), "batch": f"{r['batch_size']:,}",
                     "working MiB per step": f"{r['working_bytes'] / 2**20:.0f}",
                     "ratio": f"{r['working_ratio_to_spexphormer']:.2f}",
                     "live MiB": f"{r['live_working_bytes'] / 2**20:.0f}",
                     "live ratio": f"{r['live_ratio_to_spexphormer']:.2f}", "s/step": f"{r['seconds_per_step']:.2f}"})
    print(table(rows, f"{args.dataset}: stage-2 working memory per training step ({args.steps} steps, 1 thread, "
                      f"fresh process each)"))
    save_json({"dataset": args.dataset, "steps": args.steps, "scores": args.scores, "settings": out,
               "machine": machine()}, RESULTS / f"memory_local_{args.dataset}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
