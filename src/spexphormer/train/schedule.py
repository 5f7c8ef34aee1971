"""Learning-rate and temperature schedules."""

from __future__ import annotations

import math

import torch


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero at ``total`` steps.

    Stepped once per epoch by the training loops.
    """
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def temperature(epoch: int, ratio: float, wait: int, minimum: float) -> float:
    """Attention temperature of the estimator at ``epoch`` (0-based), docs/method.md §3:

    .. math::
        T = 1 \\text{ for } epoch < wait, \\quad T = \\max(T_{min}, ratio^{epoch - wait}) \\text{ after.}

    ``ratio = 1`` disables annealing.
    """
    if epoch < wait:
        return 1.0
    return max(minimum, ratio ** (epoch - wait))
