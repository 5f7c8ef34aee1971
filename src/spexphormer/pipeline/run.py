"""Both stages end to end, over several seeds, with a results table and ``results.json``.

Output folder layout::

    OUT/scores-<key>-<split>.pt  stage-1 scores (reused when graph, split and stage-1 config match)
    OUT/stage1.jsonl         per-epoch log of the estimator
    OUT/seed<S>/log.jsonl    per-epoch log of the wide network for seed S
    OUT/seed<S>/model.pt     best-validation checkpoint of seed S
    OUT/results.json         the summary (written last, atomically)
"""

from __future__ import annotations

import math
import platform
from pathlib import Path
from statistics import mean, pstdev

import torch
from torch_geometric.data import Data

from spexphormer.config import Config
from spexphormer.distributed import world
from spexphormer.graph import graph_fingerprint, split_identity
from spexphormer.pipeline.exphormer import train_exphormer
from spexphormer.pipeline.grown import feature_signature, read_estimator, save_estimator
from spexphormer.pipeline.stage1 import estimate, estimator_args
from spexphormer.pipeline.stage2 import train_wide
from spexphormer.scores import Scores
from spexphormer.train.checkpoint import save_checkpoint
from spexphormer.utils.io import save_json
from spexphormer.utils.memory import StageMeter
from spexphormer.utils.table import format_table, human_bytes


def summarize(values: list[float]) -> dict:
    clean = [v for v in values if not math.isnan(v)]
    return {"mean": mean(clean) if clean else math.nan, "std": pstdev(clean) if len(clean) > 1 else 0.0,
            "per_seed": values}


def machine_info(device: torch.device) -> dict:
    info = {"platform": platform.platform(), "processor": platform.machine(), "cpus": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _header(data: Data, cfg: Config, device: torch.device, model: str) -> dict:
    seeds = list(range(cfg.run.seed, cfg.run.seed + cfg.run.seeds))
    return {"dataset": data.name, "model": model, "split": data.split, "metric": data.metric,
            "nodes": data.num_nodes, "edges": data.num_edges, "seeds": seeds,
            "config": cfg.to_dict(), "machine": machine_info(device), "world_size": world().size}


def _main_only(path: Path) -> Path | None:
    """Under torchrun only rank 0 writes files (logs, checkpoints, scores, results)."""
    return path if world().is_main else None


def scores_file(out: Path, cfg: Config, split: dict) -> Path:
    """Where ``run`` keeps the scores of this graph's stage-1 config and split: the name holds both
    keys, so an estimator trained on one split's labels is never reused for another split."""
    return out / f"scores-{cfg.stage1_key()}-{split['fingerprint'][:8]}.pt"


def obtain_scores(data: Data, cfg: Config, out: Path, device, scores_path=None, progress=True):
    """Load ``scores_path`` (checked against the graph and the split), or reuse/compute
    ``OUT/scores-<key>-<split>.pt``.

    Returns (scores, stage-1 summary dict).
    """
    split = split_identity(data)
    path = Path(scores_path) if scores_path else scores_file(out, cfg, split)
    if scores_path or path.exists():
        scores = Scores.load(path, graph_fingerprint(data.edge_index, data.num_nodes, data.num_features), split)
        return scores, {"reused": str(path), "scores_file": str(path.resolve()), **scores.metrics}
    with StageMeter(device) as meter:
        result = estimate(data, cfg, out=_main_only(path), device=device, log_path=_main_only(out / "stage1.jsonl"),
                          progress=progress)
    if world().is_main:
        save_estimator(path, result.model, estimator_args(data, cfg), result.scores, data, cfg)  # for grown graphs
    return result.scores, {"reused": None, **result.scores.metrics, **meter.as_dict(),
                           "seconds_per_epoch": result.fit.seconds_per_epoch, "scores_file": str(path.resolve())}


def run(data: Data, cfg: Config, out: str | Path, device: torch.device | str = "cpu",
        scores_path: str | Path | None = None, progress: bool = True) -> dict:
    """Stage 1 (or a matching scores file), then stage 2 for every seed; writes ``OUT/results.json``."""
    out, device = Path(out), torch.device(device)
    out.mkdir(parents=True, exist_ok=True)
    results = _header(data, cfg, device, "spexphormer")
    scores, stage1 = obtain_scores(data, cfg, out, device, scores_path, progress)
    grown = {"estimator": read_estimator(stage1["scores_file"]), "features": feature_signature(data.x),
             "num_nodes": data.num_nodes}  # what predictions on a grown graph need
    tests, vals, seconds, peaks, working, per_epoch = [], [], 0.0, [], [], []
    for seed in results["seeds"]:
        with StageMeter(device) as meter:
            res = train_wide(data, scores, cfg, seed=seed, device=device,
                             log_path=_main_only(out / f"seed{seed}" / "log.jsonl"), progress=progress)
        if world().is_main:
            save_checkpoint(out / f"seed{seed}" / "model.pt", "spexphormer", res.model_args, res.fit.state_dict,
                            scores.fingerprint, cfg.to_dict(), {"seed": seed, "val": res.fit.val, "test": res.fit.test,
                                                                "best_epoch": res.fit.best_epoch, "task": data.task,
                                                                "metric": data.metric,
                                                                "source": getattr(data, "source", None),
                                                                "split": scores.split,
                                                                "scores_file": stage1["scores_file"], **grown})
        tests.append(res.fit.test), vals.append(res.fit.val)
        seconds += meter.seconds
        peaks.append(meter.peak_memory_bytes), working.append(meter.working_bytes)
        per_epoch.append(res.fit.seconds_per_epoch)
    results.update({
        "test": summarize(tests), "val": summarize(vals),
        "stages": {"stage1": stage1, "stage2": {"seconds": round(seconds, 3), "peak_memory_bytes": max(peaks),
                                                "working_memory_bytes": max(working)}},
        "seconds_per_epoch": mean(per_epoch), "edge_ratio": res.edge_ratio,
        "sampling_seconds": res.sampling_seconds,
    })
    if world().is_main:
        save_json(results, out / "results.json")
    return results


def run_exphormer(data: Data, cfg: Config, out: str | Path, device: torch.device | str = "cpu",
                  progress: bool = True) -> dict:
    """Full-batch Exphormer for every seed; writes ``OUT/results.json`` in the same layout."""
    out, device = Path(out), torch.device(device)
    out.mkdir(parents=True, exist_ok=True)
    results = _header(data, cfg, device, "exphormer")
    tests, vals, seconds, peaks, working, per_epoch = [], [], 0.0, [], [], []
    fingerprint = graph_fingerprint(data.edge_index, data.num_nodes, data.num_features)
    for seed in results["seeds"]:
        with StageMeter(device) as meter:
            res = train_exphormer(data, cfg, seed=seed, device=device, log_path=out / f"seed{seed}" / "log.jsonl",
                                  progress=progress)
        save_checkpoint(out / f"seed{seed}" / "model.pt", "exphormer", res.model_args, res.fit.state_dict,
                        fingerprint, cfg.to_dict(), {"seed": seed, "val": res.fit.val, "test": res.fit.test, "task": data.task,
                         "metric": data.metric, "source": getattr(data, "source", None),
                         "split": split_identity(data), "features": feature_signature(data.x),
                         "num_nodes": data.num_nodes})
        tests.append(res.fit.test), vals.append(res.fit.val)
        seconds += meter.seconds
        peaks.append(meter.peak_memory_bytes), working.append(meter.working_bytes)
        per_epoch.append(res.fit.seconds_per_epoch)
    results.update({"test": summarize(tests), "val": summarize(vals),
                    "stages": {"exphormer": {"seconds": round(seconds, 3), "peak_memory_bytes": max(peaks),
                                             "working_memory_bytes": max(working)}},
                    "seconds_per_epoch": mean(per_epoch), "edge_ratio": 1.0})
    save_json(results, out / "results.json")
    return results


def results_table(results: dict) -> str:
    """The closing table of ``spexphormer run`` / ``train``."""
    scale = 100 if results["metric"] in ("accuracy", "rocauc") else 1
    rows = []
    for name, stage in results["stages"].items():
        if stage.get("reused"):
            rows.append({"stage": name, "seconds": "reused", "peak memory": "-",
                         "val": f"{scale * stage['val']:.2f}", "test": f"{scale * stage['test']:.2f}"})
            continue
        row = {"stage": name, "seconds": f"{stage['seconds']:.1f}",
               "peak memory": human_bytes(stage["peak_memory_bytes"]), "val": "", "test": ""}
        if "val" in stage:
            row.update(val=f"{scale * stage['val']:.2f}", test=f"{scale * stage['test']:.2f}")
        rows.append(row)
    t, v = results["test"], results["val"]
    rows.append({"stage": f"{results['model']} ({len(results['seeds'])} seeds)", "seconds": "", "peak memory": "",
                 "val": f"{scale * v['mean']:.2f} ± {scale * v['std']:.2f}",
                 "test": f"{scale * t['mean']:.2f} ± {scale * t['std']:.2f}"})
    title = (f"{results['dataset']} · {results['split']} · metric {results['metric']} · "
             f"edge ratio {results['edge_ratio']:.3f} · {results['seconds_per_epoch']:.2f} s/epoch")
    return format_table(rows, title=title)
