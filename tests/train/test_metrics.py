import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from spexphormer.train import compute_metric, roc_auc, task_loss, temperature
from spexphormer.train.schedule import cosine_with_warmup


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, 500).astype(float)  # many ties
    label = rng.integers(0, 2, 500)
    assert roc_auc(score, label) == pytest.approx(roc_auc_score(label, score))
    assert math.isnan(roc_auc(score, np.ones(500)))


def test_metrics_ignore_unlabelled_nodes():
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [5.0, 0.0]])
    y = torch.tensor([0, 1, -1])
    assert compute_metric(logits, y, "multiclass", "accuracy") == 1.0
    assert task_loss(logits, y, "multiclass") == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:2], y[:2]).item())


def test_binary_and_multilabel():
    logits = torch.tensor([[-1.0], [2.0], [0.5], [-3.0]])
    y = torch.tensor([0, 1, 1, 0])
    assert compute_metric(logits, y, "binary", "rocauc") == 1.0
    assert compute_metric(logits, y, "binary", "accuracy") == 1.0
    ml = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.4]])
    yl = torch.tensor([[0, 1], [1, 0], [0, 1]])
    expected = np.mean([roc_auc_score(yl[:, c], ml[:, c]) for c in range(2)])
    assert compute_metric(ml, yl, "multilabel", "rocauc") == pytest.approx(expected)


def test_temperature_schedule():
    assert [temperature(e, 0.9, 3, 0.05) for e in range(3)] == [1.0, 1.0, 1.0]
    assert temperature(3, 0.9, 3, 0.05) == 1.0
    assert temperature(5, 0.9, 3, 0.05) == pytest.approx(0.81)
    assert temperature(1000, 0.9, 3, 0.05) == 0.05
    assert temperature(50, 1.0, 3, 0.05) == 1.0  # ratio 1: no annealing


@pytest.mark.parametrize("rule", ["reference", "shifted"])
def test_cosine_with_warmup_rises_then_decays_to_zero(rule):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = cosine_with_warmup(opt, warmup=5, total=20, rule=rule)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(), sched.step()
    # Warm-up as written in the authors' code (Hugging Face's schedule): max(1e-6, step / warmup);
    # "shifted": (step + 1) / (warmup + 1). Then half a cosine from 1 to 0 over the other 15 steps.
    warm = [max(1e-6, s / 5) for s in range(5)] if rule == "reference" else [(s + 1) / 6 for s in range(5)]
    cosine = [0.5 * (1 + math.cos(math.pi * (s - 5) / 15)) for s in range(5, 20)]
    assert lrs == pytest.approx(warm + cosine, rel=1e-12, abs=1e-15)
