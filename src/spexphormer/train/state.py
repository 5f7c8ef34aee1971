"""Resumable training: periodic, atomic snapshots of everything :func:`~spexphormer.train.fit` holds.

A snapshot taken after epoch ``e`` holds the model, the optimiser (AdamW moments and step
counts), the learning-rate schedule, the best-validation epoch, metrics and weights so far, the
per-epoch history, the elapsed seconds, and every random generator training draws from: torch's
CPU generator (dropout), the CUDA generators when present, numpy's and Python's. Restoring it
and running epochs ``e + 1, ...`` gives bitwise the same weights and metrics as a run that was
never interrupted (on CPU, with the same thread count).

The stage-2 neighbour sampler keeps no state of its own: the tables of epoch ``t`` are a pure
function of (seed, the last re-sampling epoch ``t - t % resample_every``), and the batch
shuffle of (seed, ``t``), so restoring the epoch restores the sampler.

A snapshot carries a ``key`` (a hash of the configuration, the graph and the seed): resuming
from a snapshot with another key is refused rather than silently mixing two runs.
"""

from __future__ import annotations

import copy
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spexphormer.errors import CheckpointError
from spexphormer.utils.checksum import load_sealed, save_sealed

FORMAT = "spexphormer-training-state"
VERSION = 1


def rng_state() -> dict[str, Any]:
    """Every generator a training run draws from."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    """numpy's and Python's RNG states as lists and tensors (``weights_only`` loading allows these)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def plain_rng_state() -> dict[str, Any]:
    """:func:`rng_state` as tensors and lists (what a snapshot stores)."""
    rng = rng_state()
    return {**rng, "numpy": _plain(rng["numpy"]), "python": _plain(rng["python"])}


def restorable_rng(rng: dict[str, Any]) -> dict[str, Any]:
    """A stored :func:`plain_rng_state` as :func:`set_rng_state` takes it."""
    return {**rng, "numpy": _numpy_state(rng["numpy"]), "python": _python_state(rng["python"])}


def _numpy_state(value: list) -> tuple:
    return (value[0], value[1].numpy().astype(np.uint32), int(value[2]), int(value[3]), float(value[4]))


def _python_state(value: list) -> tuple:
    return (int(value[0]), tuple(int(v) for v in value[1]), value[2])


class TrainingState:
    """Snapshots of one training run in ``path``, every ``every`` epochs (0 = never) once ``seconds`` have passed.

    Args:
        path: the snapshot file (written atomically, with a checksum).
        every: epochs between snapshots; 0 disables them.
        seconds: the least time between snapshots (a snapshot of a small model on a fast epoch
            would otherwise cost more than the epoch); 0 = every ``every`` epochs.
        resume: continue from the snapshot in ``path`` if there is one; else it is removed and
            training starts at epoch 0.
        key: what the run is (config, graph, seed); a snapshot with another key is refused.
    """

    def __init__(self, path: str | os.PathLike, every: int = 1, resume: bool = False, key: str = "",
                 seconds: float = 0.0) -> None:
        self.path, self.every, self.resume, self.key = Path(path), int(every), bool(resume), key
        self.seconds, self.last = float(seconds), time.monotonic()
        self.resumed_at = 0  # the first epoch run after a restore (0: started from scratch)
        self._attempts: list[TrainingState] = []  # the restarts' states (:meth:`attempt`)
        if not self.resume:
            self.discard()

    def restore(self, model: nn.Module, optimizer, scheduler, best) -> tuple[int, float]:
        """Load the snapshot into the arguments; returns (first epoch to run, elapsed seconds).

        ``best`` is the :class:`~spexphormer.train.FitResult` being filled (its ``best_epoch``,
        ``val``, ``test``, ``state_dict`` and ``history`` are set).
        """
        if not (self.resume and self.path.is_file()):
            return 0, 0.0
        s = load_sealed(self.path, FORMAT, VERSION, CheckpointError, "training state")
        if s.get("key") != self.key:
            raise CheckpointError(f"training state {self.path} belongs to another run (other config, graph "
                                  f"or seed): drop --resume, or resume with the settings it was made with")
        model.load_state_dict(s["model"])
        optimizer.load_state_dict(s["optimizer"])
        scheduler.load_state_dict(s["scheduler"])
        best.best_epoch, best.val, best.test = s["best_epoch"], s["best_val"], s["best_test"]
        best.state_dict, best.history = s["best_state_dict"], list(s["history"])
        self._apply_rng(s["rng"])
        self.resumed_at = int(s["epoch"]) + 1
        return self.resumed_at, float(s["seconds"])

    def due(self, epoch: int, epochs: int) -> bool:
        """Whether to snapshot after ``epoch`` (the last epoch needs none: its result is saved)."""
        return self.every > 0 and (epoch + 1) % self.every == 0 and epoch + 1 < epochs \
            and time.monotonic() - self.last >= self.seconds

    def _apply_rng(self, rng: dict[str, Any]) -> None:
        """Set this process's generators from a snapshot's ``rng`` entry (:meth:`_rng_payload`)."""
        if "ranks" in rng:
            raise CheckpointError(f"training state {self.path} is a snapshot of a {len(rng['ranks'])}-process "
                                  "run: resume it with as many processes")
        set_rng_state(restorable_rng(rng))

    def _rng_payload(self) -> dict[str, Any]:
        """The ``rng`` entry of a snapshot: this process's generators."""
        return plain_rng_state()

    def _writes(self) -> bool:
        """Whether this process writes the snapshot file."""
        return True

    def save(self, epoch: int, model: nn.Module, optimizer, scheduler, best, seconds: float) -> None:
        """Snapshot the state after ``epoch`` (atomically: a kill leaves the previous snapshot)."""
        rng = self._rng_payload()
        if not self._writes():
            self.last = time.monotonic()
            return
        save_sealed({
            "format": FORMAT, "version": VERSION, "key": self.key, "epoch": epoch, "seconds": seconds,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "best_epoch": best.best_epoch, "best_val": best.val,
            "best_test": best.test, "best_state_dict": best.state_dict, "history": copy.deepcopy(best.history),
            "rng": rng,
        }, self.path)
        self.last = time.monotonic()

    def attempt(self, i: int) -> "TrainingState":
        """The snapshots of restart ``i`` of the same training (its own file and key; ``i = 0`` is
        this one), discarded with this one."""
        if i == 0:
            return self
        other = type(self)(attempt_path(self.path, i), self.every, self.resume, f"{self.key}/attempt{i}", self.seconds)
        self._attempts.append(other)
        return other

    def discard(self) -> None:
        """Remove the snapshot (the run finished, or starts over), and those of its restarts."""
        self.path.unlink(missing_ok=True)
        for other in self._attempts:
            other.discard()


def attempt_path(path: str | os.PathLike, i: int) -> Path:
    """The file of restart ``i`` beside ``path`` (``stage1.state.pt`` -> ``stage1.attempt2.state.pt``;
    ``i = 0``: ``path`` itself)."""
    path = Path(path)
    if i == 0:
        return path
    stem, _, rest = path.name.partition(".")
    return path.with_name(f"{stem}.attempt{i}.{rest}" if rest else f"{stem}.attempt{i}")

