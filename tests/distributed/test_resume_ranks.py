"""A 2-process run killed with SIGKILL, then resumed with 2 processes, ends as an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from spexphormer.distributed.snapshots import RankedTrainingState
from spexphormer.errors import CheckpointError
from spexphormer.train.checkpoint import load_checkpoint
from spexphormer.train.state import TrainingState
from tests.helpers import make_toy_graph, run_outcome
from tests.distributed.spawn import run_ranks

SETTINGS = ["--seeds", "1", "--set", "stage1.epochs=8", "--set", "stage2.epochs=6", "--set", "graph.exp_deg=2",
            "--set", "stage2.batch_size=64", "--set", "run.threads=1", "--set", "run.checkpoint_seconds=0",
            "--quiet", "--nproc", "2"]


def _cli(graph: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "spexphormer", "run", "--data", str(graph), "--out", str(out),
                             *SETTINGS, *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_job_when(proc: subprocess.Popen, trigger: Path, delay: float, timeout: float = 120) -> bool:
    """SIGKILL the launcher and both ranks ``delay`` s after ``trigger`` appears; False if it ended first."""
    end = time.monotonic() + timeout
    while not trigger.exists() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    for pid in [proc.pid, *_descendants(proc.pid)]:  # the ranks die with the launcher, as on a lost machine
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    return True


@pytest.mark.slow
def test_two_processes_killed_then_resumed_equal_an_uninterrupted_two_process_run(tmp_path):
    data = make_toy_graph()
    graph = tmp_path / "toy.pt"
    torch.save(data.__class__(x=data.x, y=data.y, edge_index=data.edge_index, train_mask=data.train_mask,
                              val_mask=data.val_mask, test_mask=data.test_mask), graph)
    ref, out = tmp_path / "ref", tmp_path / "out"
    job = _cli(graph, ref)
    assert job.wait() == 0, job.stderr.read().decode()

    rng = random.Random(25)
    kills = 0
    for i, trigger in enumerate(["stage1.state.pt", "seed0/state.pt"]):  # inside stage 1, inside stage 2
        job = _cli(graph, out, *(["--resume"] if i else []))
        killed = _kill_job_when(job, out / trigger, rng.uniform(0.0, 0.3))
        assert killed or job.returncode == 0, job.stderr.read().decode()
        kills += killed
    assert kills >= 1, "the runs finished before they could be killed: make them longer"
    job = _cli(graph, out, "--resume")
    assert job.wait() == 0, job.stderr.read().decode()

    assert run_outcome(out) == run_outcome(ref)
    a, b = load_checkpoint(ref / "seed0" / "model.pt"), load_checkpoint(out / "seed0" / "model.pt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    resumed = [b["meta"]["resumed_at_epoch"],
               json.loads((out / "results.json").read_text())["stages"]["stage1"].get("resumed_at_epoch", 0)]
    assert any(resumed), "no training continued from a snapshot: resume restarted from scratch"
    assert not (out / "seed0" / "state.pt").exists() and not (out / "stage1.state.pt").exists()


def _snapshot_then_restore(path: str) -> None:
    from spexphormer.distributed import world
    from spexphormer.train import FitResult
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    torch.manual_seed(100 + world().rank)  # every rank its own stream
    state = RankedTrainingState(path, every=1, resume=False, key="k")
    assert state.due(0, 5)
    state.save(0, model, opt, sched, FitResult(0, 0.0, 0.0), 1.0)
    want = torch.rand(3)  # what each rank draws next
    torch.manual_seed(0)
    first, _ = RankedTrainingState(path, every=1, resume=True, key="k").restore(model, opt, sched, FitResult(0, 0.0, 0.0))
    assert first == 1 and torch.equal(torch.rand(3), want)


@pytest.mark.slow
def test_one_snapshot_file_restores_every_ranks_own_generators(tmp_path):
    path = tmp_path / "state.pt"
    run_ranks(_snapshot_then_restore, 2, str(path))
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    from spexphormer.train import FitResult
    with pytest.raises(CheckpointError, match="2-process run"):  # not in one process
        TrainingState(path, every=1, resume=True, key="k").restore(model, opt, sched, FitResult(0, 0.0, 0.0))
