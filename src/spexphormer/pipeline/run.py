"""Both stages end to end, over several seeds, with a results table and ``results.json``.

Output folder layout::

    OUT/scores-<key>-<split>.pt  stage-1 scores (reused when graph, split and stage-1 config match);
                             under torchrun the folder OUT/scores-<key>-<split>/ (memory-mapped)
    OUT/stage1.jsonl         per-epoch log of the estimator
    OUT/seed<S>/log.jsonl    per-epoch log of the wide network for seed S
    OUT/seed<S>/model.pt     best-validation checkpoint of seed S
    OUT/results.json         the summary (written last, atomically)
    OUT/.spexphormer.lock    held while a run writes here (one writer per folder)

``--resume`` snapshots: see :mod:`spexphormer.pipeline.resume`.
"""

from __future__ import annotations

import math
import platform
import warnings
from pathlib import Path
from statistics import mean, stdev

import torch
from torch_geometric.data import Data

from spexphormer.config import Config, check_graph_sizes
from spexphormer.data import graph_info
from spexphormer.data.validate import check_split
from spexphormer.distributed import world
from spexphormer.graph import graph_fingerprint
from spexphormer.pipeline.exphormer import train_exphormer
from spexphormer.pipeline.grown import estimator_path, feature_signature, read_estimator, save_estimator
from spexphormer.pipeline.resume import data_digest, run_key, train_seeds, training_state
from spexphormer.pipeline.stage1 import estimate, estimator_args, split_of
from spexphormer.pipeline.stage1_sharded import estimate_sharded
from spexphormer.pipeline.stage2 import model_inputs, train_wide
from spexphormer.scores import Scores
from spexphormer.utils.io import save_json
from spexphormer.utils.lock import locks_out_folder
from spexphormer.utils.memory import StageMeter
from spexphormer.utils.table import format_table, human_bytes


def summarize(values: list[float]) -> dict:
    """Mean and sample standard deviation (n - 1) of the finite values, and the values themselves."""
    clean = [v for v in values if not math.isnan(v)]
    return {"mean": mean(clean) if clean else math.nan, "std": stdev(clean) if len(clean) > 1 else 0.0,
            "per_seed": values}


def machine_info(device: torch.device) -> dict:
    info = {"platform": platform.platform(), "processor": platform.machine(), "cpus": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _header(data: Data, cfg: Config, device: torch.device, model: str) -> dict:
    seeds, info = list(range(cfg.run.seed, cfg.run.seed + cfg.run.seeds)), graph_info(data)
    return {"dataset": info.name, "model": model, "split": info.split, "metric": info.metric,
            "nodes": data.num_nodes, "edges": data.num_edges, "seeds": seeds,
            "config": cfg.to_dict(), "machine": machine_info(device), "world_size": world().size}


def _checkpoint_meta(data: Data, split: dict) -> dict:
    """What every checkpoint records about its data: the task, the metric, how to load the graph
    again, the split it trained on, and the features and node count that grown graphs check."""
    info = graph_info(data)
    return {"task": info.task, "metric": info.metric, "source": info.source, "split": split,
            "features": feature_signature(data.x), "num_nodes": data.num_nodes}


def _main_only(path: Path) -> Path | None:
    """Under torchrun only rank 0 writes files (logs, checkpoints, scores, results)."""
    return path if world().is_main else None


def scores_file(out: Path, cfg: Config, split: dict, digest: str) -> Path:
    """Where ``run`` keeps the scores of this graph's stage-1 config, split and contents: the name
    holds the three keys, so an estimator trained on one split's labels is never reused for another
    split, nor for a graph whose features, labels or edges changed (``digest`` is the
    :func:`~spexphormer.pipeline.resume.data_digest` of the data, streamed over its tensors)."""
    name = f"scores-{cfg.stage1_key()}-{split['fingerprint'][:8]}-{digest[:8]}"
    folder, file = out / name, out / f"{name}.pt"
    # under torchrun the ranks write (and then map) the folder layout; either one is reused
    return folder if folder.is_dir() or (world().active and not file.exists()) else file


@locks_out_folder
def obtain_scores(data: Data, cfg: Config, out: Path, device, scores_path=None, progress=True, resume=False):
    """Load ``scores_path`` (checked against the graph and the split), or reuse/compute
    ``OUT/scores-<key>-<split>.pt``; with ``resume``, an interrupted estimator continues from its
    last snapshot. Stage 1 is finished when both its scores and its estimator file exist: scores
    without their estimator (a run killed between the two writes) are made again.

    Returns (scores, stage-1 summary dict).
    """
    check_split(data)
    check_graph_sizes(cfg, data.num_nodes, data.num_edges)
    split, digest = split_of(data), data_digest(data)
    path = Path(scores_path) if scores_path else scores_file(out, cfg, split, digest)
    if not scores_path and path.exists() and not estimator_path(path).is_file():
        # the estimator is written right after the scores: a run killed in between left these
        warnings.warn(f"{path} has no estimator file beside it (a run stopped between writing the two): stage 1 "
                      "runs again, so that checkpoints can predict on grown graphs", stacklevel=2)
    elif scores_path or path.exists():
        scores = Scores.load(path, graph_fingerprint(data.edge_index, data.num_nodes, data.num_features), split)
        return scores, {"reused": str(path), "scores_file": str(path.resolve()), **scores.metrics}
    state = training_state(out / "stage1.state.pt", cfg, run_key(data, cfg, "stage1", digest=digest), resume)
    with StageMeter(device) as meter:
        if world().active:  # under torchrun the ranks share the nodes
            result = estimate_sharded(data, cfg, out=path, device=device,
                                      log_path=_main_only(out / "stage1.jsonl"), progress=progress, state=state)
        else:
            result = estimate(data, cfg, out=path, device=device, log_path=out / "stage1.jsonl", progress=progress,
                              state=state)
    if world().is_main:
        save_estimator(path, result.model, estimator_args(data, cfg), result.scores, data, cfg)  # for grown graphs
        state.discard()
    return result.scores, {"reused": None, **result.scores.metrics, **meter.as_dict(),
                           "resumed_at_epoch": state.resumed_at,
                           "seconds_per_epoch": result.fit.seconds_per_epoch, "scores_file": str(path.resolve())}


def _summary(records: list[dict]) -> dict:
    """The per-seed checkpoint metas folded into the results' metrics and costs."""
    return {"test": summarize([r["test"] for r in records]), "val": summarize([r["val"] for r in records]),
            "seconds": round(sum(r["seconds"] for r in records), 3),
            "peak_memory_bytes": max(r["peak_memory_bytes"] for r in records),
            "working_memory_bytes": max(r["working_memory_bytes"] for r in records),
            "seconds_per_epoch": mean(r["seconds_per_epoch"] for r in records)}


@locks_out_folder
def run(data: Data, cfg: Config, out: str | Path, device: torch.device | str = "cpu",
        scores_path: str | Path | None = None, progress: bool = True, resume: bool = False) -> dict:
    """Stage 1 (or a matching scores file), then stage 2 for every seed; writes ``OUT/results.json``.

    With ``resume``, finished seeds of the same run are kept and interrupted ones continue
    from their last snapshot (see :mod:`spexphormer.pipeline.resume`).
    """
    out, device = Path(out), torch.device(device)
    out.mkdir(parents=True, exist_ok=True)
    results = _header(data, cfg, device, cfg.stage2.model)
    scores, stage1 = obtain_scores(data, cfg, out, device, scores_path, progress, resume)

    inputs = {}  # the whole-graph inputs, computed by the first seed that trains and shared

    def train(seed, log_path, state):
        if "x" not in inputs:
            inputs["x"] = model_inputs(data, cfg)
        return train_wide(data, scores, cfg, seed=seed, device=device, log_path=log_path, progress=progress,
                          state=state, inputs=inputs["x"])

    meta = {**_checkpoint_meta(data, scores.split), "scores_file": stage1["scores_file"],
            "estimator": read_estimator(stage1["scores_file"])}  # what predictions on a grown graph need
    records = train_seeds(cfg.stage2.model, results["seeds"], data, cfg, out, device, train, scores.fingerprint, meta,
                          resume, extra=scores.scores)
    s = _summary(records)
    results.update({
        "test": s["test"], "val": s["val"],
        "stages": {"stage1": stage1, "stage2": {k: s[k] for k in ("seconds", "peak_memory_bytes",
                                                                  "working_memory_bytes")}},
        "seconds_per_epoch": s["seconds_per_epoch"], "edge_ratio": records[-1]["edge_ratio"],
        "sampling_seconds": records[-1]["sampling_seconds"],
    })
    if world().is_main:
        save_json(results, out / "results.json")
    return results


@locks_out_folder
def run_exphormer(data: Data, cfg: Config, out: str | Path, device: torch.device | str = "cpu",
                  progress: bool = True, resume: bool = False) -> dict:
    """Full-batch Exphormer for every seed; writes ``OUT/results.json`` in the same layout."""
    out, device = Path(out), torch.device(device)
    check_split(data)
    check_graph_sizes(cfg, data.num_nodes, data.num_edges)
    out.mkdir(parents=True, exist_ok=True)
    results = _header(data, cfg, device, "exphormer")
    fingerprint = graph_fingerprint(data.edge_index, data.num_nodes, data.num_features)

    def train(seed, log_path, state):
        return train_exphormer(data, cfg, seed=seed, device=device, log_path=log_path, progress=progress,
                               state=state)

    meta = _checkpoint_meta(data, split_of(data))
    records = train_seeds("exphormer", results["seeds"], data, cfg, out, device, train, fingerprint, meta, resume)
    s = _summary(records)
    results.update({"test": s["test"], "val": s["val"],
                    "stages": {"exphormer": {k: s[k] for k in ("seconds", "peak_memory_bytes",
                                                               "working_memory_bytes")}},
                    "seconds_per_epoch": s["seconds_per_epoch"], "edge_ratio": 1.0})
    if world().is_main:
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
