"""Run logs: JSON lines, CSV, TensorBoard events and curves.png; bars only on a terminal."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest
import torch

from spexphormer.train import fit
from spexphormer.train.logs import EpochLogger


def _fit(tmp_path, epochs=6, progress=False, stream=None, name="log.jsonl", monkeypatch=None):
    torch.manual_seed(0)
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    model = torch.nn.Linear(3, 2)

    def train_epoch(epoch, optimize):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimize(loss)
        return loss.item()

    def evaluate(epoch):
        acc = (model(x).argmax(-1) == y).float().mean().item()
        return {"train": acc, "val": acc, "test": acc}

    if stream is not None:
        monkeypatch.setattr(sys, "stderr", stream)
    return fit(model, train_epoch, evaluate, epochs, lr=0.05, warmup_epochs=1,
               log_path=tmp_path / "run" / name, desc="toy", progress=progress)


def test_jsonl_csv_tensorboard_and_curves_hold_every_epoch(tmp_path):
    result = _fit(tmp_path)
    folder = tmp_path / "run"
    records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    assert records == result.history and len(records) == 6
    with open(folder / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["loss"]) for r in rows] == [r["loss"] for r in records]
    assert list(rows[0]) == list(records[0])
    png = (folder / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image
    assert matplotlib.image.imread(folder / "curves.png").shape[:2] == (340, 900)
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    assert {"loss", "val", "test", "lr"} <= set(events.Tags()["scalars"])
    assert [round(e.value, 6) for e in events.Scalars("loss")] == [round(r["loss"], 6) for r in records]
    assert [e.step for e in events.Scalars("val")] == list(range(6))


def test_other_log_names_get_their_own_curves(tmp_path):
    _fit(tmp_path, name="stage1.jsonl")
    assert (tmp_path / "run" / "stage1.csv").is_file() and (tmp_path / "run" / "stage1-curves.png").is_file()


def test_without_tensorboard_the_rest_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    _fit(tmp_path)
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert (tmp_path / "run" / "log.csv").is_file() and (tmp_path / "run" / "curves.png").is_file()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_file_gets_one_line_per_stage_a_terminal_gets_a_bar(tmp_path, monkeypatch):
    to_file = io.StringIO()
    result = _fit(tmp_path, epochs=30, progress=True, stream=to_file, monkeypatch=monkeypatch)
    lines = to_file.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in to_file.getvalue()
    assert lines[0].startswith("toy: 30 epochs in ") and f"at epoch {result.best_epoch}" in lines[0]
    terminal = _Terminal()
    _fit(tmp_path, epochs=3, progress=True, stream=terminal, monkeypatch=monkeypatch)
    assert "\r" in terminal.getvalue() and "toy" in terminal.getvalue()
    quiet = io.StringIO()
    _fit(tmp_path, epochs=3, progress=False, stream=quiet, monkeypatch=monkeypatch)
    assert quiet.getvalue() == ""


def test_heartbeat_lines_while_a_long_stage_runs(monkeypatch):
    out = io.StringIO()
    clock = iter([0.0, 100.0, 130.0, 300.0, 400.0])
    monkeypatch.setattr("spexphormer.train.logs.time.perf_counter", lambda: next(clock))
    logger = EpochLogger(None, "slow", epochs=3, progress=True, stream=out)
    for epoch in range(3):
        logger.log({"epoch": epoch, "loss": 1.0, "val": 0.5}, best=0.5)
    logger.close(2, 0.5, 0.4)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == [
        "slow: epoch 1/3", "slow: 3 epochs in 400.0 s"]
