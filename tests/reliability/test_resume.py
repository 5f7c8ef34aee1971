"""Item 3 of issue 15: a run killed (SIGKILL) anywhere, then resumed, ends exactly as an uninterrupted one."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
import torch

from spexphormer.cli import main
from spexphormer.train.checkpoint import load_checkpoint
from tests.helpers import RESUMABLE, cli_run, kill_when, run_outcome, write_graph_file
from tests.helpers import FAST


def _cli(graph: Path, out: Path, *extra: str) -> subprocess.Popen:
    return cli_run(graph, out, *RESUMABLE, *extra)


def _tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(tmp_path):
    graph = write_graph_file(tmp_path / "toy.pt")
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert _cli(graph, ref).wait() == 0

    rng = random.Random(15)
    # Kill points: inside stage 1, inside seed 0, between/inside seed 1, each at a random moment.
    triggers = ["stage1.state.pt", "seed0/state.pt", "seed1/state.pt"]
    kills = 0
    for i, trigger in enumerate(triggers):
        proc = _cli(graph, out, *(["--resume"] if i else []))
        kills += kill_when(proc, out / trigger, rng.uniform(0.0, 0.4))
    assert kills >= 2, "the runs finished before they could be killed: make them longer"
    assert _cli(graph, out, "--resume").wait() == 0

    assert run_outcome(out) == run_outcome(ref)
    resumed = [load_checkpoint(out / f"seed{s}" / "model.pt")["meta"]["resumed_at_epoch"] for s in (0, 1)]
    resumed.append(json.loads((out / "results.json").read_text())["stages"]["stage1"].get("resumed_at_epoch", 0))
    assert any(resumed), "no training continued from a snapshot: resume restarted from scratch"
    for seed in (0, 1):
        a, b = load_checkpoint(ref / f"seed{seed}" / "model.pt"), load_checkpoint(out / f"seed{seed}" / "model.pt")
        assert _tensors_equal(a["state_dict"], b["state_dict"])
        assert not (out / f"seed{seed}" / "state.pt").exists()
    (a,), (b,) = ref.glob("scores-*.pt"), out.glob("scores-*.pt")
    assert torch.equal(torch.load(a)["scores"], torch.load(b)["scores"])
    assert not (out / "stage1.state.pt").exists()
    assert not [p.name for p in out.rglob(".*") if p.name != ".spexphormer.lock"]  # no temp file left


@pytest.mark.slow
def test_resume_keeps_finished_seeds_and_refuses_another_runs_state(graph_file, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "out"
    assert main(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST]) == 0
    model = out / "seed0" / "model.pt"
    stamp = model.stat().st_mtime_ns
    log = (out / "seed0" / "log.jsonl").read_text()
    assert main(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "2", "--resume", *FAST]) == 0
    assert model.stat().st_mtime_ns == stamp and (out / "seed0" / "log.jsonl").read_text() == log  # kept
    assert (out / "seed1" / "model.pt").exists()
    results = json.loads((out / "results.json").read_text())
    assert len(results["test"]["per_seed"]) == 2
    assert results["test"]["per_seed"][0] == load_checkpoint(model)["meta"]["test"]

    # A snapshot of another configuration is refused, not mixed into this run.
    state = out / "seed0" / "state.pt"
    from spexphormer.utils.checksum import save_sealed
    save_sealed({"format": "spexphormer-training-state", "version": 1, "key": "another run"}, state)
    capsys.readouterr()
    assert main(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", "--resume", *FAST]) == 2
    assert "belongs to another run" in capsys.readouterr().err
    # Without --resume the run starts over (the stale snapshot is removed).
    assert main(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST]) == 0
    assert not state.exists()
