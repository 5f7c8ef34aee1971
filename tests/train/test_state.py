"""Training snapshots (train/state.py): a crashed fit() resumes from its last snapshot, bit for bit."""

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from spexphormer.errors import CheckpointError
from spexphormer.train import fit
from spexphormer.train.state import TrainingState


class Crash(Exception):
    pass


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.Dropout(0.5), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    return model, x, y


def _fit(model, x, y, folder, state=None, crash_at=None, ran=None):
    def train_epoch(epoch, optimize):
        if epoch == crash_at:
            raise Crash
        ran.append(epoch) if ran is not None else None
        noise = torch.randn(()) * 1e-3 + np.random.rand() * 1e-3 + random.random() * 1e-3  # every RNG counts
        loss = nn.functional.cross_entropy(model(x), y) + noise
        optimize(loss)
        return loss.item()

    def evaluate(epoch):
        return {"val": float((model(x).argmax(-1) == y).float().mean()), "test": 0.5}

    return fit(model, train_epoch, evaluate, epochs=9, lr=0.01, warmup_epochs=2, log_path=folder / "log.jsonl",
               progress=False, state=state)


def test_a_crashed_fit_resumes_from_its_snapshot_exactly(tmp_path):
    model, x, y = _problem()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    (tmp_path / "ref").mkdir()
    ref = _fit(model, x, y, tmp_path / "ref")
    ref_weights = {k: v.clone() for k, v in model.state_dict().items()}

    model, x, y = _problem()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    state = TrainingState(tmp_path / "state.pt", every=2)
    with pytest.raises(Crash):
        _fit(model, x, y, tmp_path, state, crash_at=7)
    torch.manual_seed(99), np.random.seed(99), random.seed(99)  # a new process: other RNG states
    model, x, y = _problem(seed=0)
    ran = []
    res = _fit(model, x, y, tmp_path, TrainingState(tmp_path / "state.pt", every=2, resume=True), ran=ran)
    assert ran == [6, 7, 8]  # the snapshot after epoch 5 (every 2 epochs) was the last one
    assert (res.best_epoch, res.val, res.test) == (ref.best_epoch, ref.val, ref.test)
    assert all(torch.equal(ref_weights[k], v) for k, v in model.state_dict().items())
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(res.history) == strip(ref.history)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(9))  # epochs 6.. logged once, not twice


def test_snapshot_of_another_run_is_refused_and_without_resume_removed(tmp_path):
    model, x, y = _problem()
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    TrainingState(tmp_path / "state.pt", every=1, key="a").save(0, model, optimizer, scheduler, _Best(), 0.0)
    with pytest.raises(CheckpointError, match="belongs to another run"):
        _fit(model, x, y, tmp_path, TrainingState(tmp_path / "state.pt", resume=True, key="b"))
    TrainingState(tmp_path / "state.pt", resume=False, key="b")
    assert not (tmp_path / "state.pt").exists()


class _Best:
    best_epoch, val, test, state_dict, history = 0, 0.5, 0.5, None, []


def test_snapshots_wait_for_the_minimum_interval(tmp_path):
    model, x, y = _problem()
    _fit(model, x, y, tmp_path, TrainingState(tmp_path / "state.pt", every=1, seconds=3600))
    assert not (tmp_path / "state.pt").exists()  # nine fast epochs, none an hour after the start
    model, x, y = _problem()
    with pytest.raises(Crash):
        _fit(model, x, y, tmp_path, TrainingState(tmp_path / "state.pt", every=3, seconds=0), crash_at=4)
    assert (tmp_path / "state.pt").exists()
