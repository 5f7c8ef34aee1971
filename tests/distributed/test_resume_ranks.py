"""A 2-process run killed with SIGKILL, then resumed with 2 processes, ends as an uninterrupted one."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
import torch

from spexphormer.distributed.snapshots import RankedTrainingState
from spexphormer.errors import CheckpointError
from spexphormer.train.checkpoint import load_checkpoint
from spexphormer.train.state import TrainingState
from tests.helpers import cli_run, kill_when, run_outcome, write_graph_file
from tests.distributed.spawn import run_ranks

SETTINGS = ["--seeds", "1", "--set", "stage1.epochs=8", "--set", "stage2.epochs=6", "--set", "graph.exp_deg=2",
            "--set", "stage2.batch_size=64", "--set", "run.threads=1", "--set", "run.checkpoint_seconds=0",
            "--quiet", "--nproc", "2"]


def _cli(graph: Path, out: Path, *extra: str) -> subprocess.Popen:
    return cli_run(graph, out, *SETTINGS, *extra)


@pytest.mark.slow
def test_two_processes_killed_then_resumed_equal_an_uninterrupted_two_process_run(tmp_path):
    graph = write_graph_file(tmp_path / "toy.pt")
    ref, out = tmp_path / "ref", tmp_path / "out"
    job = _cli(graph, ref)
    assert job.wait() == 0, job.stderr.read().decode()

    rng = random.Random(25)
    kills = 0
    for i, trigger in enumerate(["stage1.state.pt", "seed0/state.pt"]):  # inside stage 1, inside stage 2
        job = _cli(graph, out, *(["--resume"] if i else []))
        killed = kill_when(job, out / trigger, rng.uniform(0.0, 0.3), timeout=120, whole_job=True)
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
