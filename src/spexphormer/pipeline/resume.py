"""What ``--resume`` needs from a run folder: run keys, training snapshots, finished seeds.

A *run key* is a hash of everything that determines a training result: the configuration (except
``run.seeds``, ``run.threads``, ``run.device`` and the snapshot interval, which do not change one
seed's result), the graph's contents (features, labels, edges, masks), the scores (stage 2)
and the seed. A snapshot or a finished seed is reused only under the same key, so a folder never
mixes two runs. Layout::

    OUT/stage1.state.pt       snapshot of the estimator's training (removed once its scores exist)
    OUT/seed<S>/state.pt      snapshot of seed S (removed once OUT/seed<S>/model.pt is written)
"""

from __future__ import annotations

from pathlib import Path

from torch_geometric.data import Data

from spexphormer.config import Config
from spexphormer.distributed import world
from spexphormer.distributed.snapshots import RankedTrainingState
from spexphormer.errors import CheckpointError
from spexphormer.train.checkpoint import load_checkpoint, save_checkpoint
from spexphormer.train.state import TrainingState
from spexphormer.utils.checksum import content_digest
from spexphormer.utils.io import make_folder
from spexphormer.utils.memory import StageMeter

NOT_IN_KEY = ("seeds", "threads", "device", "checkpoint_every", "checkpoint_seconds")


def data_digest(data: Data) -> str:
    """SHA-256 of what a model learns from: features, labels, edges and the three masks."""
    return content_digest({k: getattr(data, k) for k in ("x", "y", "edge_index", "train_mask", "val_mask",
                                                          "test_mask")})


def run_key(data: Data, cfg: Config, what: str, seed: int | None = None, extra=None, digest: str | None = None) -> str:
    """The key of one training run: ``what`` ("stage1", "spexphormer", "exphormer"), config, graph, seed.

    ``extra`` is any further input (e.g. the scores tensor); ``digest`` a precomputed :func:`data_digest`.
    """
    config = cfg.to_dict()
    config["run"] = {k: v for k, v in config["run"].items() if k not in NOT_IN_KEY}
    if what == "stage1":
        config = {"graph": config["graph"], "stage1": config["stage1"], "run": config["run"]}
    return content_digest({"what": what, "config": config, "data": digest or data_digest(data),
                           "seed": seed, "extra": extra})


def training_state(path: Path, cfg: Config, key: str, resume: bool) -> TrainingState:
    """The snapshot file of one training run (``run.checkpoint_every`` epochs, ``run.checkpoint_seconds`` apart).

    Under torchrun one file holds every rank's random state (:mod:`spexphormer.distributed.snapshots`),
    so a multi-process run resumes exactly as a single-process one does, with as many processes.
    """
    kind = RankedTrainingState if world().active else TrainingState
    return kind(path, cfg.run.checkpoint_every, resume, key, cfg.run.checkpoint_seconds)


def finished_seed(checkpoint: Path, key: str) -> dict | None:
    """The meta of a finished seed's checkpoint made under ``key``; None if absent, unfinished or another run's."""
    if not checkpoint.is_file() or (checkpoint.parent / "state.pt").is_file():
        return None
    try:
        meta = load_checkpoint(checkpoint)["meta"]
    except CheckpointError:
        return None  # unreadable: train the seed again
    return meta if meta.get("run_key") == key else None


def train_seeds(kind: str, seeds: list[int], data: Data, cfg: Config, out: Path, device, train,
                fingerprint: str, meta: dict, resume: bool = False, extra=None) -> list[dict]:
    """Train (or, with ``resume``, reuse or continue) every seed; returns each seed's checkpoint meta.

    Args:
        kind: the model kind saved in the checkpoint ("spexphormer" or "exphormer").
        train: ``train(seed, log_path, state) -> result`` with ``.fit``, ``.model_args`` and
            optionally ``.edge_ratio`` / ``.sampling_seconds``.
        meta: what every seed's checkpoint meta holds besides its own numbers.
        extra: further inputs of the run key (e.g. the scores).
    """
    digest, extra = data_digest(data), content_digest(extra)  # once, not per seed
    records = []
    for seed in seeds:
        folder = make_folder(out / f"seed{seed}") if world().is_main else out / f"seed{seed}"  # not a link
        key = run_key(data, cfg, kind, seed, extra, digest)
        done = finished_seed(folder / "model.pt", key) if resume else None
        if done is None:
            state = training_state(folder / "state.pt", cfg, key, resume)
            with StageMeter(device) as meter:  # under torchrun only rank 0 writes logs and checkpoints
                res = train(seed, folder / "log.jsonl" if world().is_main else None, state)
            done = {**meta, "seed": seed, "val": res.fit.val, "test": res.fit.test, "best_epoch": res.fit.best_epoch,
                    "run_key": key, "seconds": meter.seconds, "peak_memory_bytes": meter.peak_memory_bytes,
                    "working_memory_bytes": meter.working_bytes, "seconds_per_epoch": res.fit.seconds_per_epoch,
                    "edge_ratio": getattr(res, "edge_ratio", 1.0),
                    "sampling_seconds": getattr(res, "sampling_seconds", 0.0), "resumed_at_epoch": state.resumed_at,
                    **getattr(res, "extra", {})}  # e.g. the best epoch's one-sample metrics
            if world().is_main:
                save_checkpoint(folder / "model.pt", kind, res.model_args, res.fit.state_dict, fingerprint,
                                cfg.to_dict(), done)
                state.discard()
        records.append(done)
    return records
