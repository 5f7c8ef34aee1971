"""Accuracy benchmark: Spexphormer vs its estimator, full-batch Exphormer and the ablations.

Datasets cora, actor, minesweeper, tolokers with their presets (``spexphormer.presets.preset``).
Rows per dataset:

* ``Spexphormer``      the library's ``spexphormer.pipeline.run`` (reservoir sampler), several seeds
* ``ASE (stage 1)``    the narrow estimator alone: the metrics stored in the scores file (one run)
* ``Exphormer``        ``run_exphormer``: full batch on the augmented graph, same width/heads/depth
* ``uniform sampler``  ``stage2.sampler=uniform`` on the same scores file
* ``top-k sampler``    ``stage2.sampler=topk`` on the same scores file
* ``no annealing``     ``stage1.temp_ratio=1.0``: its own stage 1, then stage 2 (on Tolokers the
                       preset already has ratio 1.0, so the row is "same as Spexphormer")

With ``--plan local``, the rows of the local-attention model (``--model local-attention``, its own
presets, the same scores file) and its ablations, beside one seed of the paper model at the same
batch size for the memory comparison (``LOCAL_PLAN``):

* ``local-attention``   the model with its preset
* ``attention only`` / ``local branch only``   ``stage2.branches=attention`` / ``=local``
* ``graph edges not kept``  no per-type budgets: the same slots per layer drawn by score among all
                         edge types, as the paper's sampler does
* ``uniform expander slots``  ``stage2.sampler=uniform``
* ``cora-data``          Cora saved as a plain graph file (no masks, no name) and run through
                         ``spexphormer run --data FILE --model local-attention``: the user-graph path
                         with its default preset and split (seeded random 60/20/20)

Every (dataset, variant) runs in its own child process (one thread, ``THP_MEM_ALLOC_ENABLE=1``),
at most ``--workers`` at a time; stage 1 runs once per dataset and its scores file is reused by
the Spexphormer, uniform and top-k rows. Peak memory is the child's peak RSS during the stage
(``StageMeter``; CUDA: ``max_memory_allocated``). Seeds, epochs and anything cut from the paper's
protocol are written into the JSON (``protocol``) and the table.

Usage::

    python benchmarks/accuracy.py --data-root ../shared/datasets            # full plan
    python benchmarks/accuracy.py --quick                                   # smoke numbers
    python benchmarks/accuracy.py --datasets minesweeper --seeds 5 --workers 2
    python benchmarks/accuracy.py --plan local --datasets minesweeper,cora-data

Writes ``benchmarks/results/accuracy.json`` (``accuracy_quick.json`` with ``--quick``) and
``accuracy.png``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (save_figure, DEFAULT_DATA_ROOT, RESULTS, Job, fmt_bytes, load_json, machine, python,  # noqa: E402
                     run_jobs, sample_std, save_json, table)

DATASETS = ["cora", "actor", "actor-reference", "minesweeper", "tolokers"]
VARIANTS = ["spexphormer", "ase", "exphormer", "uniform", "topk", "noanneal", "scaled", "export_best",
            "local", "local_attention_only", "local_local_only", "local_mixed_slots", "local_uniform"]
LABELS = {"spexphormer": "Spexphormer", "ase": "ASE (stage 1 alone)", "exphormer": "Exphormer (full batch)",
          "uniform": "uniform sampler", "topk": "top-k sampler", "noanneal": "no temperature annealing",
          "scaled": "logits scaled by 1/sqrt(d)", "export_best": "export at the best epoch's T",
          "local": "local-attention", "local_attention_only": "local-attention: attention only",
          "local_local_only": "local-attention: local branch only",
          "local_mixed_slots": "local-attention: graph edges not kept", "local_uniform": "local-attention: uniform expander slots"}
# local-attention rows: overrides of the dataset's local-attention preset (same scores file).
LOCAL_VARIANTS = {"local": [], "local_attention_only": ["stage2.branches=attention"],
                  "local_local_only": ["stage2.branches=local"], "local_mixed_slots": "mixed",
                  "local_uniform": ["stage2.sampler=uniform"]}
# Variants that reuse the dataset's scores file and change only stage 2, and those that run their
# own stage 1 (they change it): name -> config overrides.
STAGE2_VARIANTS = {"uniform": ["stage2.sampler=uniform"], "topk": ["stage2.sampler=topk"],
                   "scaled": ["stage2.scale_logits=true"]}
OWN_STAGE1_VARIANTS = {"noanneal": ["stage1.temp_ratio=1.0"], "export_best": ["stage1.export_temperature=best"]}

# The full plan: seeds per row and epoch cuts (None = preset). Sized for 2 cores / 1 thread per job,
# two jobs at once: about 35-45 minutes of wall time on an otherwise idle 2-core machine. The
# paper's protocol is 5 seeds with the preset epochs: the Spexphormer rows follow it; the ablation
# and Exphormer rows use 1 seed, and Tolokers' Exphormer 25 of 200 epochs (about 15 s/epoch here).
# Every departure is listed in the JSON and the report.
# Keys: seeds per row; ``exphormer_epochs`` / ``ablation_epochs`` cut those rows' epochs;
# ``split_seeds`` runs each Spexphormer seed as its own child (merged afterwards), to balance workers;
# ``extra_seeds`` adds that many Spexphormer seeds (after the first ``spexphormer``) in one more
# child, merged into the row (so ``spexphormer=3, extra_seeds=2`` is seeds 0..4).
FULL_PLAN = {
    "cora": dict(spexphormer=5, uniform=1, topk=1, exphormer=1),
    "actor": dict(spexphormer=5, uniform=1, topk=1, exphormer=1, scaled=5, export_best=5),
    "actor-reference": dict(spexphormer=5, exphormer=1),
    "minesweeper": dict(spexphormer=5, split_seeds=True, uniform=1, topk=1, exphormer=1, scaled=5),
    "tolokers": dict(spexphormer=5, exphormer=1, exphormer_epochs=25, split_seeds=True),
}
QUICK_PLAN = {
    "cora": dict(spexphormer=2, uniform=1, topk=1, noanneal=1, exphormer=1),
    "minesweeper": dict(spexphormer=2, uniform=1, topk=1, noanneal=1, exphormer=1),
}
QUICK_EPOCHS = dict(stage1=3, stage2=3, exphormer=2)
# --plan local: the local-attention model (5 seeds), its ablations, one paper-model seed for memory.
LOCAL_PLAN = {
    # ablations: one seed, the preset's epochs on Cora. The paper
    # model's memory at the same batch size: benchmarks/memory_local.py (per step); its Tolokers row
    # here (20 of its 200 epochs) measures the whole stage.
    # Minesweeper's preset is local-only with no expander slots: its ablations (attention and
    # both branches at depth) are search rows (search_local_minesweeper_round3.json).
    "minesweeper": dict(local=5, split_seeds=True),
    "tolokers": dict(spexphormer=1, spexphormer_epochs=20, local=5, split_seeds=True),
    "actor": dict(local=5, split_seeds=True),
    "cora": dict(local=5, local_attention_only=1, local_local_only=1, local_mixed_slots=1, local_uniform=1),
    "cora-data": dict(local=5, spexphormer=5),
}


# ------------------------------------------------------------------------------------------------
# child entry: one (dataset, variant) in this process
# ------------------------------------------------------------------------------------------------

def child(args) -> int:
    import torch

    from spexphormer.presets import preset
    from spexphormer.data import graph_info, load_graph
    from spexphormer.pipeline.run import obtain_scores, run, run_exphormer
    from spexphormer.utils.device import resolve_device, set_threads

    from spexphormer.utils.memory import current_rss
    rss_imports = current_rss()  # interpreter + torch, before any data
    data = load_graph(dataset=args.dataset, root=args.data_root, split_index=0)
    if args.scores and Path(args.scores).is_dir():
        found = sorted(Path(args.scores).glob("scores-*.pt"))
        if len(found) != 1:
            raise SystemExit(f"expected one scores file in {args.scores}, found {len(found)}")
        args.scores = found[0]
    cfg = preset(args.dataset, args.model).override(list(args.set) + [f"run.seeds={args.seeds}", f"run.device={args.device}",
                                                          "run.threads=1"])
    set_threads(1)
    device = resolve_device(cfg.run.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json({"rss_after_imports_bytes": rss_imports, "rss_after_load_bytes": current_rss()}, out / "child_meta.json")
    if args.child == "stage1":
        _, info = obtain_scores(data, cfg, out, device, progress=False)
        info.update(dataset=graph_info(data).name, split=graph_info(data).split, metric=graph_info(data).metric, nodes=data.num_nodes,
                    edges=data.num_edges, config=cfg.to_dict(), torch_threads=torch.get_num_threads())
        save_json(info, out / "stage1.json")
        print(json.dumps({k: v for k, v in info.items() if k != "config"}, default=str))
    elif args.child == "exphormer":
        res = run_exphormer(data, cfg, out, device, progress=False)
        print(json.dumps({"test": res["test"], "seconds_per_epoch": res["seconds_per_epoch"]}))
    else:
        res = run(data, cfg, out, device, scores_path=args.scores, progress=False)
        print(json.dumps({"test": res["test"], "seconds_per_epoch": res["seconds_per_epoch"]}))
    return 0


# ------------------------------------------------------------------------------------------------
# parent: plan, run, collect
# ------------------------------------------------------------------------------------------------

def build_jobs(plan: dict, args, runs: Path) -> tuple[list[Job], dict]:
    """Jobs and, per dataset, what each row will read."""
    from spexphormer.presets import preset

    jobs, layout = [], {}
    base = [python(), str(Path(__file__).resolve()), "--data-root", args.data_root, "--device", args.device]
    for ds, p in plan.items():
        if ds == USER_GRAPH:
            jobs += user_graph_jobs(p, args, runs / ds, layout)
            continue
        cfg = preset(ds)
        epochs = {}
        if args.quick:
            epochs = dict(QUICK_EPOCHS)
        s1 = [f"stage1.epochs={epochs['stage1']}"] if "stage1" in epochs else []
        s2 = [f"stage2.epochs={epochs['stage2']}"] if "stage2" in epochs else []
        exp_epochs = epochs.get("exphormer") or p.get("exphormer_epochs")
        ex = [f"stage2.epochs={exp_epochs}"] if exp_epochs else []
        sets = lambda items: sum((["--set", s] for s in items), [])  # noqa: E731
        d = runs / ds
        scores = d / "stage1"  # the child reads the one scores file there (its name holds the split)
        scale = 1.0 if ds != "tolokers" else 4.0
        layout[ds] = {"dirs": {}, "plan": p}
        jobs.append(Job(f"{ds}-stage1", base + ["--child", "stage1", "--dataset", ds, "--out", d / "stage1",
                                                  "--seeds", 1] + sets(s1), cost=100 * scale,
                        done=d / "stage1" / "stage1.json"))
        layout[ds]["dirs"]["ase"] = d / "stage1"
        abl_epochs = epochs.get("stage2") or p.get("ablation_epochs")
        abl = [f"stage2.epochs={abl_epochs}"] if abl_epochs else []
        paper = [f"stage2.epochs={p['spexphormer_epochs']}"] if p.get("spexphormer_epochs") else []
        for variant, extra in [("spexphormer", paper)] + [(v, o + abl) for v, o in STAGE2_VARIANTS.items()]:
            if not p.get(variant):
                continue
            argv = base + ["--child", "spexphormer", "--dataset", ds, "--scores", scores]
            if variant == "spexphormer" and p.get("split_seeds"):
                for seed in range(p[variant]):
                    jobs.append(Job(f"{ds}-{variant}-seed{seed}", argv + ["--out", d / variant / f"seed{seed}-run",
                                                                       "--seeds", 1] + sets(s1 + s2 + extra + [f"run.seed={seed}"]),
                                    after=[f"{ds}-stage1"], cost=300 * scale, done=d / variant / f"seed{seed}-run" / "results.json"))
                layout[ds]["shards"] = {variant: [d / variant / f"seed{seed}-run" for seed in range(p[variant])]}
            else:
                jobs.append(Job(f"{ds}-{variant}", argv + ["--out", d / variant, "--seeds", p[variant]]
                                + sets(s1 + s2 + extra), after=[f"{ds}-stage1"], cost=60 * scale * p[variant],
                                done=d / variant / "results.json"))
            layout[ds]["dirs"][variant] = d / variant
            if variant == "spexphormer" and p.get("extra_seeds"):
                first = p[variant]
                jobs.append(Job(f"{ds}-{variant}-extra", argv + ["--out", d / f"{variant}-extra", "--seeds",
                                                              p["extra_seeds"]] + sets(s1 + s2 + [f"run.seed={first}"]),
                                after=[f"{ds}-stage1"], cost=1, done=d / f"{variant}-extra" / "results.json"))
                layout[ds].setdefault("shards", {})[variant] = [d / variant, d / f"{variant}-extra"]
                layout[ds]["dirs"][variant] = d / f"{variant}-merged"
        local_cfg = preset(ds, "local-attention")
        for variant, extra in LOCAL_VARIANTS.items():
            if not p.get(variant):
                continue
            if extra == "mixed":  # the same table widths, drawn by score among all edge types
                extra = ["stage2.graph_ks=", "stage2.expander_ks=", "stage2.ks=" + ",".join(map(str, local_cfg.stage2.slots()))]
            argv = base + ["--child", "spexphormer", "--model", "local-attention", "--dataset", ds, "--scores", scores]
            if variant == "local" and p.get("split_seeds"):
                shards = [d / variant / f"seed{seed}-run" for seed in range(p[variant])]
                for seed, shard in enumerate(shards):
                    jobs.append(Job(f"{ds}-{variant}-seed{seed}", argv + ["--out", shard, "--seeds", 1]
                                    + sets(s1 + s2 + [f"run.seed={seed}"]), after=[f"{ds}-stage1"],
                                    cost=300 * scale, done=shard / "results.json"))
                layout[ds].setdefault("shards", {})[variant] = shards
            else:
                jobs.append(Job(f"{ds}-{variant}", argv + ["--out", d / variant, "--seeds", p[variant]]
                                + sets(s1 + s2 + abl + extra), after=[f"{ds}-stage1"], cost=60 * scale * p[variant],
                                done=d / variant / "results.json"))
            layout[ds]["dirs"][variant] = d / variant
        for variant, extra in OWN_STAGE1_VARIANTS.items():
            if not p.get(variant) or (variant == "noanneal" and cfg.stage1.temp_ratio == 1.0):
                continue
            jobs.append(Job(f"{ds}-{variant}", base + ["--child", "spexphormer", "--dataset", ds, "--out",
                                                       d / variant, "--seeds", p[variant]]
                            + sets(s1 + s2 + abl + extra), cost=60 * scale * (p[variant] + 1),
                            done=d / variant / "results.json"))
            layout[ds]["dirs"][variant] = d / variant
        if p.get("exphormer"):
            jobs.append(Job(f"{ds}-exphormer", base + ["--child", "exphormer", "--dataset", ds, "--out",
                                                       d / "exphormer", "--seeds", p["exphormer"]] + sets(ex),
                            cost=80 * scale * p["exphormer"], done=d / "exphormer" / "results.json"))
            layout[ds]["dirs"]["exphormer"] = d / "exphormer"
        layout[ds]["epochs"] = {"stage1": epochs.get("stage1", cfg.stage1.epochs),
                                "stage2": epochs.get("stage2", cfg.stage2.epochs),
                                "ablations_stage2": abl_epochs or cfg.stage2.epochs,
                                "exphormer": exp_epochs or cfg.stage2.epochs,
                                "preset_stage1": cfg.stage1.epochs, "preset_stage2": cfg.stage2.epochs}
        layout[ds]["temp_ratio"] = cfg.stage1.temp_ratio
    return jobs, layout


USER_GRAPH = "cora-data"


def user_graph_jobs(p: dict, args, d: Path, layout: dict) -> list[Job]:
    """Cora saved as a plain graph file and run through ``spexphormer run --data`` (default presets)."""
    import torch
    from torch_geometric.data import Data

    from spexphormer.data import load_graph
    d.mkdir(parents=True, exist_ok=True)
    graph = load_graph(dataset="cora", root=args.data_root)
    path = d / "cora.pt"
    torch.save(Data(x=graph.x, y=graph.y, edge_index=graph.edge_index), path)  # no masks: a random 60/20/20
    jobs, layout[USER_GRAPH] = [], {"dirs": {}, "plan": p, "temp_ratio": None,
                                    "epochs": {"stage1": None, "stage2": None}}
    for variant, model in (("local", "local-attention"), ("spexphormer", "spexphormer")):
        if not p.get(variant):
            continue
        out = d / variant
        jobs.append(Job(f"{USER_GRAPH}-{variant}", [python(), "-m", "spexphormer", "run", "--data", path, "--model", model,
                                                    "--seeds", p[variant], "--out", out, "--quiet", "--device",
                                                    args.device, "--set", "run.threads=1"],
                        cost=100 * p[variant], done=out / "results.json"))
        layout[USER_GRAPH]["dirs"][variant] = out
    return jobs


def merge_shards(shards: list, target: Path) -> None:
    """One results.json from per-seed runs (seeds in order; peaks are maxima, seconds sums)."""
    from statistics import mean
    parts = [load_json(sh / "results.json") for sh in shards]
    r = copy.deepcopy(parts[0])
    for key in ("test", "val"):
        vals = [v for p_ in parts for v in p_[key]["per_seed"]]
        r[key] = {"mean": mean(vals), "std": sample_std(vals), "per_seed": vals}
    r["seeds"] = [s_ for p_ in parts for s_ in p_["seeds"]]
    st = [p_["stages"]["stage2"] for p_ in parts]
    r["stages"]["stage2"] = {"seconds": sum(x["seconds"] for x in st),
                             "peak_memory_bytes": max(x["peak_memory_bytes"] for x in st),
                             "working_memory_bytes": max(x["working_memory_bytes"] for x in st)}
    r["seconds_per_epoch"] = mean(p_["seconds_per_epoch"] for p_ in parts)
    r["merged_from"] = [str(sh) for sh in shards]
    save_json(r, target)
    meta = Path(shards[0]) / "child_meta.json"
    if meta.exists():
        save_json(load_json(meta), target.parent / "child_meta.json")


def _pct(metric, v):
    return None if v is None else round(100 * v, 3) if metric in ("accuracy", "rocauc") else v


def collect(layout: dict, statuses: dict) -> dict:
    out = {}
    for ds, lay in layout.items():
        rows = {}
        s1_path = lay["dirs"]["ase"] / "stage1.json" if "ase" in lay["dirs"] else None
        s1 = load_json(s1_path) if s1_path and s1_path.exists() else None
        metric = s1["metric"] if s1 else None
        split = s1["split"] if s1 else None
        ep = lay["epochs"]
        if s1 and "seconds" in s1:  # (not when stage 1 reused a scores file copied in)
            rows["ase"] = {
                "test_mean": _pct(metric, s1["test"]), "test_std": 0.0, "seeds": [s1["config"]["stage1"]["seed"]],
                "val": _pct(metric, s1["val"]), "best_epoch": s1["best_epoch"],
                "stage1_seconds": s1["seconds"], "stage1_peak_bytes": s1["peak_memory_bytes"],
                "seconds_per_epoch": s1["seconds_per_epoch"], "edge_ratio": 1.0, "epochs": ep["stage1"],
                "note": "one estimator run (stage1.seed=0); metrics from the scores file",
            }
        for variant in [v for v in VARIANTS if v != "ase"]:
            path = lay["dirs"].get(variant)
            if path is None:
                continue
            rpath = path / "results.json"
            shards = lay.get("shards", {}).get(variant)
            if shards and all((sh / "results.json").exists() for sh in shards):
                merge_shards(shards, rpath)
            elif shards and (shards[0] / "results.json").exists() and shards[0] != path:
                path, rpath = shards[0], shards[0] / "results.json"  # the extra seeds did not run
            if not rpath.exists():
                rows[variant] = {"status": statuses.get(f"{ds}-{variant}", "missing")}
                continue
            r = load_json(rpath)
            metric, split = r["metric"], r["split"]
            meta = load_json(path / "child_meta.json") if (path / "child_meta.json").exists() else {}
            row = {"test_mean": _pct(metric, r["test"]["mean"]), "test_std": _pct(metric, r["test"]["std"]),
                   "test_per_seed": [_pct(metric, v) for v in r["test"]["per_seed"]],
                   "val_mean": _pct(metric, r["val"]["mean"]), "seeds": r["seeds"],
                   "seconds_per_epoch": r["seconds_per_epoch"], "edge_ratio": r["edge_ratio"],
                   "nodes": r["nodes"], "edges": r["edges"], "machine": r["machine"],
                   "rss_after_imports_bytes": meta.get("rss_after_imports_bytes")}
            if variant == "exphormer":
                st = r["stages"]["exphormer"]
                row.update(stage2_seconds=st["seconds"], stage2_peak_bytes=st["peak_memory_bytes"],
                           epochs=ep["exphormer"])
                if variant != "exphormer":
                    pass
                elif ep["exphormer"] < ep["preset_stage2"]:
                    row["note"] = (f"shortened run: {ep['exphormer']} of {ep['preset_stage2']} epochs "
                                   "(accuracy not comparable; memory per epoch is)")
            else:
                st2 = r["stages"]["stage2"]
                row.update(stage2_seconds=st2["seconds"], stage2_peak_bytes=st2["peak_memory_bytes"],
                           stage2_working_bytes=st2.get("working_memory_bytes"),
                           epochs=r["config"]["stage2"]["epochs"],
                           sampling_seconds=r.get("sampling_seconds"))
                st1 = r["stages"]["stage1"]
                if st1.get("reused") and s1:
                    row.update(stage1_seconds=s1.get("seconds"), stage1_peak_bytes=s1.get("peak_memory_bytes"),
                               stage1_shared=True)
                else:
                    row.update(stage1_seconds=st1.get("seconds"), stage1_peak_bytes=st1.get("peak_memory_bytes"),
                               stage1_test=_pct(metric, st1.get("test")))
            rows[variant] = row
        if lay["temp_ratio"] == 1.0 and lay["plan"].get("noanneal"):
            rows["noanneal"] = {"same_as": "spexphormer",
                                "note": "preset already has stage1.temp_ratio = 1.0 (no annealing)"}
        ratio = net_ratio = None
        sp, ex = rows.get("spexphormer", {}), rows.get("exphormer", {})
        if sp.get("stage2_peak_bytes") and ex.get("stage2_peak_bytes"):
            ratio = sp["stage2_peak_bytes"] / ex["stage2_peak_bytes"]
            if sp.get("rss_after_imports_bytes") and ex.get("rss_after_imports_bytes"):
                net_ratio = ((sp["stage2_peak_bytes"] - sp["rss_after_imports_bytes"])
                             / (ex["stage2_peak_bytes"] - ex["rss_after_imports_bytes"]))
        lo = rows.get("local", {})
        local_ratio = (lo["stage2_working_bytes"] / sp["stage2_working_bytes"]
                       if lo.get("stage2_working_bytes") and sp.get("stage2_working_bytes") else None)
        out[ds] = {"metric": metric, "split": split, "rows": rows, "epochs": ep, "plan": lay["plan"],
                   "local_to_spexphormer_working_ratio": local_ratio,
                   "stage2_to_exphormer_peak_ratio": ratio,
                   "stage2_to_exphormer_peak_ratio_net_of_imports": net_ratio}
    return out


def format_tables(results: dict) -> str:
    parts = []
    for ds, r in results["datasets"].items():
        rows = []
        for variant in VARIANTS:
            row = r["rows"].get(variant)
            if row is None:
                continue
            if "same_as" in row:
                rows.append({"row": LABELS[variant], "test %": "same as Spexphormer", "seeds": "", "s1 peak": "",
                             "s1 s": "", "s2 peak": "", "s2 s": "", "s/epoch": "", "edge ratio": ""})
                continue
            if "test_mean" not in row:
                rows.append({"row": LABELS[variant], "test %": row.get("status", "?"), "seeds": "", "s1 peak": "",
                             "s1 s": "", "s2 peak": "", "s2 s": "", "s/epoch": "", "edge ratio": ""})
                continue
            s = row["seeds"]
            rows.append({
                "row": LABELS[variant] + (" *" if row.get("note", "").startswith("shortened") else ""),
                "test %": f"{row['test_mean']:.2f} ± {row['test_std']:.2f}",
                "seeds": f"{len(s)} ({s[0]}..{s[-1]})" if len(s) > 1 else f"1 ({s[0]})",
                "s1 peak": fmt_bytes(row.get("stage1_peak_bytes")),
                "s1 s": f"{row['stage1_seconds']:.0f}" if row.get("stage1_seconds") is not None else "-",
                "s2 peak": fmt_bytes(row.get("stage2_peak_bytes")),
                "s2 working": fmt_bytes(row.get("stage2_working_bytes")),
                "s2 s": f"{row['stage2_seconds']:.0f}" if row.get("stage2_seconds") is not None else "-",
                "s/epoch": f"{row['seconds_per_epoch']:.2f}", "edge ratio": f"{row['edge_ratio']:.3f}",
            })
        title = f"{ds} · split: {r['split']} · metric: {r['metric']} · epochs {r['epochs']}"
        if r.get("local_to_spexphormer_working_ratio"):
            title += (" · stage-2 working memory, local-attention / Spexphormer at the same batch size = "
                      f"{r['local_to_spexphormer_working_ratio']:.2f}")
        if r.get("stage2_to_exphormer_peak_ratio"):
            title += f" · stage-2 / Exphormer peak = {r['stage2_to_exphormer_peak_ratio']:.3f}"
            if r.get("stage2_to_exphormer_peak_ratio_net_of_imports"):
                title += f" (net of the interpreter+torch RSS: {r['stage2_to_exphormer_peak_ratio_net_of_imports']:.3f})"
        parts.append(table(rows, title))
    return "\n\n".join(parts)


def plot(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    dss = list(results["datasets"])
    variants = [v for v in VARIANTS if v != "ase"] + ["ase"]
    fig, axes = plt.subplots(1, len(dss), figsize=(max(4.2 * len(dss), 7), 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ds in zip(axes[0], dss):
        r = results["datasets"][ds]
        names, means, stds, cols = [], [], [], []
        for i, v in enumerate(variants):
            row = r["rows"].get(v, {})
            same = "same_as" in row
            if same:
                row = r["rows"].get(row["same_as"], {})
            if "test_mean" not in row:
                continue
            names.append(LABELS[v].replace(" (full batch)", "").replace(" (stage 1 alone)", "")
                         + (" *" if row.get("note", "").startswith("shortened") else "")
                         + ("\n(= Spexphormer: preset ratio 1.0)" if same else ""))
            means.append(row["test_mean"]), stds.append(row["test_std"]), cols.append(colors[i % len(colors)])
        ax.barh(range(len(names)), means, xerr=stds, color=cols)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.invert_yaxis()
        if means:
            lo = min(means) - max(stds + [0]) - 5
            ax.set_xlim(max(0, lo), min(100, max(means) + max(stds + [0]) + 3))
        ax.set_xlabel(f"test {r['metric']} (%)")
        ax.set_title(f"{ds} ({r['split']})", fontsize=9)
    return save_figure(fig, path, "test metric, mean ± std over seeds (* = shortened run; seeds per row in "
                       "the JSON)", results["quick"], fontsize=9)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="dataset folder (default ../shared/datasets)")
    p.add_argument("--datasets", default=None, help=f"comma-separated subset of {','.join(DATASETS)}")
    p.add_argument("--seeds", type=int, default=None, help="override the seeds of every row")
    p.add_argument("--quick", action="store_true", help="smoke run: cora + minesweeper, 3/3/2 epochs")
    p.add_argument("--plan", choices=["paper", "local"], default="paper",
                   help="paper (default): the paper model, its baselines and ablations; local: the "
                        "local-attention model, its ablations and one paper-model seed for memory")
    p.add_argument("--workers", type=int, default=2, help="child processes at once (default 2)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--out", default=None, help="JSON path (default results/accuracy[_quick].json)")
    p.add_argument("--runs", default=None, help="folder of the child runs (default results/runs/accuracy[_quick])")
    p.add_argument("--collect-only", action="store_true", help="do not run; rebuild the JSON from --runs")
    p.add_argument("--adopt", action="append", default=[], metavar="JOB=PID",
                   help="a job already running as process PID (e.g. left by an interrupted run): wait for it "
                        "instead of starting it again")
    # child mode (internal)
    p.add_argument("--child", choices=["stage1", "spexphormer", "exphormer"], help=argparse.SUPPRESS)
    p.add_argument("--model", default="spexphormer", help=argparse.SUPPRESS)
    p.add_argument("--dataset", help=argparse.SUPPRESS)
    p.add_argument("--scores", default=None, help=argparse.SUPPRESS)
    p.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.seeds = args.seeds or 1
        return child(args)

    suffix = "_quick" if args.quick else "_local" if args.plan == "local" else ""
    plan = copy.deepcopy(QUICK_PLAN if args.quick else LOCAL_PLAN if args.plan == "local" else FULL_PLAN)
    if args.datasets:
        wanted = [d.strip() for d in args.datasets.split(",") if d.strip()]
        plan = {d: plan.get(d, FULL_PLAN.get(d)) for d in wanted}
    if args.seeds:
        for p_ in plan.values():
            for k in [v for v in VARIANTS if v != "ase"]:
                if p_.get(k):
                    p_[k] = args.seeds
            p_.pop("extra_seeds", None)
    runs = Path(args.runs) if args.runs else RESULTS / "runs" / f"accuracy{suffix}"
    out = Path(args.out) if args.out else RESULTS / f"accuracy{suffix}.json"
    jobs, layout = build_jobs(plan, args, runs)
    for item in args.adopt:
        name, pid = item.split("=")
        for job in jobs:
            if job.name == name:
                job.argv = ["bash", "-c", f"while kill -0 {int(pid)} 2>/dev/null; do sleep 2; done; test -f '{job.done}'"]
    start = time.time()
    statuses = {}
    if not args.collect_only:
        done = run_jobs(jobs, workers=args.workers)
        statuses = {n: j.status for n, j in done.items()}
    results = {"benchmark": "accuracy", "quick": args.quick, "machine": machine(args.device),
               "wall_seconds": round(time.time() - start, 1), "jobs": statuses,
               "protocol": {"paper": "5 seeds, preset epochs (docs/method.md §5)", "plan": plan,
                            "quick_epochs": QUICK_EPOCHS if args.quick else None,
                            "threads_per_job": 1, "workers": args.workers,
                            "memory": "peak RSS of the child process during the stage (StageMeter)"
                                      if args.device == "cpu" else "torch.cuda.max_memory_allocated"},
               "datasets": collect(layout, statuses)}
    previous = json.loads(out.read_text()) if out.exists() else {}
    if args.collect_only and previous:  # keep the wall time of the run that measured
        results["wall_seconds"] = previous.get("wall_seconds")
    # every invocation that ran jobs (earlier ones' jobs are reused through their output files)
    history = list(previous.get("run_history", []))
    if not args.collect_only:
        history.append({"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start)),
                        "wall_seconds": results["wall_seconds"], "workers": args.workers,
                        "jobs_run": [j.name for j in jobs if j.seconds > 0]})
    results["run_history"] = history
    png = plot(results, out.with_suffix(".png"))
    results["png"] = png.name if png else None
    save_json(results, out)
    print(format_tables(results))
    print(f"\nwrote {out}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
