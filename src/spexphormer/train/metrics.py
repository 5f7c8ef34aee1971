"""Losses and metrics for the three node-level tasks.

=============  ==========  =========================  ====================
task           output dim  loss                       metrics
=============  ==========  =========================  ====================
``binary``     1           BCE with logits            ROC-AUC, accuracy
``multiclass`` C           cross-entropy              accuracy, ROC-AUC*
``multilabel`` C           BCE with logits per label  mean ROC-AUC
=============  ==========  =========================  ====================

(*) one-vs-rest mean. Nodes with label -1 (unlabelled) are ignored everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import Tensor


def output_dim(task: str, num_classes: int) -> int:
    """Number of logits a model needs for ``task``."""
    return 1 if task == "binary" else num_classes


def labelled(y: Tensor) -> Tensor:
    """Boolean mask of labelled rows of ``y`` ([N] with -1 = unlabelled, or multilabel [N, C])."""
    return y >= 0 if y.dim() == 1 else torch.ones(y.size(0), dtype=torch.bool, device=y.device)


def task_loss(logits: Tensor, y: Tensor, task: str) -> Tensor:
    """Mean loss over the labelled rows. Shapes: logits [n, out], y [n] or [n, C]."""
    keep = labelled(y)
    logits, y = logits[keep], y[keep]
    if task == "binary":
        return F.binary_cross_entropy_with_logits(logits.view(-1), y.float())
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, y.float())
    return F.cross_entropy(logits, y)


def mean_prediction(outputs: list[Tensor], task: str) -> Tensor:
    """Logits of the mean predicted distribution over several outputs of the same nodes (e.g. on
    several sampled graphs): the mean of the probabilities, mapped back to logits (log-probabilities
    for ``multiclass``; log-odds for ``binary`` and ``multilabel``), so that metrics and losses read
    it like one output. Shapes: each [n, out] -> [n, out]."""
    if len(outputs) == 1:
        return outputs[0]
    z = torch.stack(outputs).float()  # [S, n, out]
    if task == "multiclass":  # log of the mean probability: log-probabilities that sum to one
        return z.log_softmax(-1).logsumexp(0) - np.log(len(outputs))
    # log(mean p) - log(mean (1 - p)), in log space: exact for confident outputs too
    return F.logsigmoid(z).logsumexp(0) - F.logsigmoid(-z).logsumexp(0)


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve via the Mann–Whitney U statistic (ties count one half).

    Returns NaN when only one class is present.
    """
    label = label.astype(bool)
    pos, neg = int(label.sum()), int((~label).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * neg))


def compute_metric(logits: Tensor, y: Tensor, task: str, metric: str) -> float:
    """``metric`` ("accuracy" | "rocauc") of ``logits`` against ``y`` over labelled rows."""
    keep = labelled(y)
    logits, y = logits[keep].detach().float().cpu(), y[keep].cpu()
    if y.numel() == 0:
        return float("nan")
    if task == "binary":
        score = logits.view(-1).numpy()
        if metric == "rocauc":
            return roc_auc(score, y.numpy())
        return float(((score > 0) == y.numpy().astype(bool)).mean())
    if task == "multilabel":
        aucs = [roc_auc(logits[:, c].numpy(), y[:, c].numpy()) for c in range(y.size(1))]
        aucs = [a for a in aucs if not np.isnan(a)]
        return float(np.mean(aucs)) if aucs else float("nan")
    if metric == "rocauc":
        prob = logits.softmax(-1).numpy()
        aucs = [roc_auc(prob[:, c], (y == c).numpy()) for c in range(prob.shape[1])]
        aucs = [a for a in aucs if not np.isnan(a)]
        return float(np.mean(aucs)) if aucs else float("nan")
    return float((logits.argmax(-1) == y).float().mean())


def chance_level(y: Tensor, task: str, metric: str) -> float:
    """What ``metric`` gives a predictor that ignores its input, on labels ``y``: 0.5 for
    ROC-AUC; the most frequent class's rate for accuracy (nan without labelled rows)."""
    if metric == "rocauc":
        return 0.5
    y = y[labelled(y)].cpu()
    if y.numel() == 0:
        return float("nan")
    if task == "binary":
        p = float(y.float().mean())
        return max(p, 1.0 - p)
    return float(torch.bincount(y.long().view(-1)).max()) / y.numel()
