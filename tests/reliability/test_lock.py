"""Item 2 of issue 15: one writer per run folder; a crashed writer does not leave it locked."""

import fcntl
import os
import signal
import subprocess
import sys

import pytest

from spexphormer.cli import main
from spexphormer.errors import RunFolderBusy
from spexphormer.utils.lock import LOCK_NAME, run_folder_lock
from tests.helpers import FAST


def _hold_like_another_process(folder, pid):
    """flock locks belong to an open file description: a second open in this process competes."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "w")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(f"{pid}\n"), handle.flush()
    return handle


@pytest.mark.parametrize("command", [["run"], ["estimate"], ["train", "--model", "exphormer"]])
def test_second_writer_gets_one_line_and_exit_2(command, graph_file, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "out"
    handle = _hold_like_another_process(out, 4242)
    try:
        assert main([*command, "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: {out.resolve()} is in use by another spexphormer run (pid 4242)"]
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        handle.close()
    with run_folder_lock(out):  # free again once the other writer is gone
        pass


def test_lock_is_reentrant_in_one_process(tmp_path):
    with run_folder_lock(tmp_path / "o"):
        with run_folder_lock(tmp_path / "o"):
            pass
        handle = open(tmp_path / "o" / LOCK_NAME)
        with pytest.raises(BlockingIOError):  # still held after the inner block
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.close()


@pytest.mark.slow
def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    folder = tmp_path / "o"
    code = ("import sys, time; from spexphormer.utils.lock import run_folder_lock\n"
            f"with run_folder_lock({str(folder)!r}):\n print('held', flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=f"in use by another spexphormer run \\(pid {proc.pid}\\)"):
            with run_folder_lock(folder):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with run_folder_lock(folder):  # the kernel released the dead holder's lock
        pass
