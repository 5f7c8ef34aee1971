"""Learning-rate and temperature schedules."""

from __future__ import annotations

import math

import torch


#: Warm-up rules: "reference" (the authors' code, the Hugging Face schedule it uses) multiplies
#: the learning rate by max(1e-6, step / warmup), so the first step barely moves; "shifted" by
#: (step + 1) / (warmup + 1) (before version 0.2, and the local-attention presets).
WARMUP_RULES = ("reference", "shifted")


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup: int, total: int, rule: str = "reference"):
    """Linear warm-up over ``warmup`` steps (``rule`` in :data:`WARMUP_RULES`), then cosine decay
    to zero at ``total`` steps.

    Stepped once per epoch by the training loops.
    """
    if rule not in WARMUP_RULES:
        raise ValueError(f"rule must be one of {WARMUP_RULES}, got {rule!r}")

    def factor(step: int) -> float:
        if step < warmup:
            return max(1e-6, step / warmup) if rule == "reference" else (step + 1) / (warmup + 1)
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
