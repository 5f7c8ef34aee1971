"""The one training loop every model shares.

Full-batch (estimator, Exphormer) and mini-batch (Spexphormer) training differ only in what one
epoch of optimisation and one evaluation do; they pass those two callables to :func:`fit`, which
owns the optimiser (AdamW), the schedule (cosine with warm-up), gradient clipping, best-validation
model selection, the progress bar and the per-epoch log.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from spexphormer.train.logs import EpochLogger
from spexphormer.train.schedule import cosine_with_warmup
from spexphormer.train.state import TrainingState

Optimize = Callable[[Tensor], None]


@dataclass
class FitResult:
    """What :func:`fit` returns. ``test`` is the test metric at the best validation epoch."""

    best_epoch: int
    val: float
    test: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    state_dict: dict | None = None

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(1, len(self.history))


def fit(
    model: nn.Module,
    train_epoch: Callable[[int, Optimize], float],
    evaluate: Callable[[int], dict[str, float]],
    epochs: int,
    lr: float,
    weight_decay: float = 1e-3,
    warmup_epochs: int = 5,
    clip: float = 1.0,
    warmup_rule: str = "reference",
    epoch_info: Callable[[int], dict] | None = None,
    log_path: str | Path | None = None,
    desc: str = "train",
    progress: bool = True,
    state: TrainingState | None = None,
) -> FitResult:
    """Train ``model`` for ``epochs`` epochs and keep its best-validation weights.

    Args:
        train_epoch: ``train_epoch(epoch, optimize) -> mean loss``; calls ``optimize(loss)`` once
            per optimisation step (zero-grad, backward, clip, step are done there).
        evaluate: ``evaluate(epoch) -> {"train": .., "val": .., "test": ..}`` metrics, higher is better.
        warmup_rule: how the learning rate rises over ``warmup_epochs``
            (:data:`~spexphormer.train.schedule.WARMUP_RULES`).
        epoch_info: extra values to log per epoch (e.g. the temperature).
        log_path: JSON-lines file, one record per epoch (written as training goes); a CSV, the
            TensorBoard events and the curves go beside it (:class:`~spexphormer.train.logs.EpochLogger`).
        progress: a bar on a terminal, a line per stage when stderr goes to a file.
        state: periodic snapshots of the whole training state; with ``state.resume`` training
            continues from the last one (see :mod:`spexphormer.train.state`).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = cosine_with_warmup(optimizer, warmup_epochs, epochs, warmup_rule)

    def optimize(loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()

    logger = EpochLogger(log_path, desc, epochs, progress)
    best = FitResult(best_epoch=-1, val=-math.inf, test=math.nan)
    first, before = state.restore(model, optimizer, scheduler, best) if state is not None else (0, 0.0)
    for record in best.history:  # a resumed run's logs keep the epochs it restored
        logger.log(record, best=best.val)
    start = time.perf_counter()
    try:
        for epoch in range(first, epochs):
            tic = time.perf_counter()
            info = epoch_info(epoch) if epoch_info else {}
            model.train()
            loss = train_epoch(epoch, optimize)
            lr_now = optimizer.param_groups[0]["lr"]
            scheduler.step()
            model.eval()
            with torch.no_grad():
                scores = evaluate(epoch)
            record = {"epoch": epoch, "loss": round(float(loss), 6), **{k: round(v, 6) for k, v in scores.items()},
                      "lr": lr_now, **info, "seconds": round(time.perf_counter() - tic, 4)}
            best.history.append(record)
            val = scores.get("val", math.nan)
            if val > best.val or best.best_epoch < 0:
                best.best_epoch, best.val, best.test = epoch, val, scores.get("test", math.nan)
                best.state_dict = copy.deepcopy(model.state_dict())
            logger.log(record, best=best.val)
            if state is not None and state.due(epoch, epochs):
                state.save(epoch, model, optimizer, scheduler, best, before + time.perf_counter() - start)
    finally:
        logger.close(best.best_epoch, best.val, best.test)
    best.seconds = before + time.perf_counter() - start
    if best.state_dict is not None:
        model.load_state_dict(best.state_dict)
    return best
