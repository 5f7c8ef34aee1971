"""Item 7 of issue 15: a full disk is one `error:` line with earlier files intact; no orphaned temp files."""

import errno
import os
import subprocess

import pytest
import torch

from spexphormer.cli import main
from spexphormer.errors import WriteError
from spexphormer.train.checkpoint import load_checkpoint, save_checkpoint
from spexphormer.utils.io import TEMP_SUFFIX, remove_stale_temps
from tests.helpers import FAST
from tests.helpers import toy_scores


def _disk_full_after(monkeypatch, limit: int, only: str = "") -> None:
    """Files opened by atomic writes (whose name contains ``only``) fail with ENOSPC after ``limit`` bytes."""
    real = os.fdopen

    def fdopen(fd, *args, **kwargs):
        handle = real(fd, *args, **kwargs)
        return Full(handle) if only in os.readlink(f"/proc/self/fd/{fd}") else handle

    class Full:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            self.written += len(data)
            if self.written > limit:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(os, "fdopen", fdopen)


def _model(path, value: float):
    return save_checkpoint(path, "exphormer", {}, {"w": torch.full((256,), value)}, "fp", {}, {})


@pytest.mark.parametrize("limit", [0, 100, 2000])
def test_disk_full_during_a_checkpoint_keeps_the_old_one(tmp_path, monkeypatch, limit):
    path = _model(tmp_path / "model.pt", 1.0)
    before = path.read_bytes()
    _disk_full_after(monkeypatch, limit)
    with pytest.raises(WriteError, match=f"cannot write {path}: No space left on device"):
        _model(path, 2.0)
    monkeypatch.undo()
    assert path.read_bytes() == before and load_checkpoint(path)["state_dict"]["w"][0] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left


def test_disk_full_during_a_scores_file(tmp_path, monkeypatch):
    path = toy_scores().save(tmp_path / "s.pt")
    before = path.read_bytes()
    _disk_full_after(monkeypatch, 500)
    with pytest.raises(WriteError, match="No space left on device"):
        toy_scores().save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["s.pt"]


def test_cli_disk_full_is_one_line_and_exit_2(graph_file, tmp_path, monkeypatch, capsys):  # noqa: F811
    out = tmp_path / "out"
    _disk_full_after(monkeypatch, 1000, only="scores-")
    assert main(["estimate", "--data", str(graph_file), "--out", str(out), "--set", "run.checkpoint_every=0",
                 *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {out}/scores-") and "No space left" in err[0]
    assert not list(out.glob("scores-*")) and not list(out.glob(f".*{TEMP_SUFFIX}"))


def test_temp_files_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now
    stale = tmp_path / f".model.pt.{dead.pid}.k3j2_x{TEMP_SUFFIX}"
    live = tmp_path / f".model.pt.{os.getppid()}.a8b1{TEMP_SUFFIX}"  # a writer that is still running
    foreign = tmp_path / ".model.pt.notours.tmp"
    for p in (stale, live, foreign):
        p.write_bytes(b"half a file")
    _model(tmp_path / "model.pt", 1.0)
    assert not stale.exists() and live.exists() and foreign.exists()
    assert remove_stale_temps(tmp_path) == []
