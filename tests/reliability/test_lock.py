"""Item 2 of issue 15: one writer per run folder; a crashed writer does not leave it locked."""

import fcntl
import json
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


# -- issue 23: no environment variable turns the lock off ------------------------------------------

def _cli(args, env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT", "LOCAL_WORLD_SIZE")}
    env.update(env_extra, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "spexphormer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("env", [
    {"RANK": "1"},  # what schedulers and containers set
    pytest.param({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}, marks=pytest.mark.slow),  # no rendezvous
])
def test_a_rank_variable_does_not_turn_the_lock_off(graph_file, tmp_path, env):
    out = tmp_path / "out"
    handle = _hold_like_another_process(out, 4242)
    try:
        proc = _cli(["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST], env)
        _, err = proc.communicate(timeout=120)
    finally:
        handle.close()
    assert proc.returncode == 2
    assert err.strip().splitlines() == [f"error: {out.resolve()} is in use by another spexphormer run (pid 4242)"]
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


@pytest.mark.slow
def test_two_runs_with_rank_set_cannot_share_a_folder(graph_file, tmp_path):
    """The probe's reproduction: two `RANK=1 spexphormer run` at once into one folder."""
    out = tmp_path / "out"
    args = ["run", "--data", str(graph_file), "--out", str(out), "--seeds", "1", *FAST,
            "--set", "stage1.epochs=30"]
    procs = [_cli(args, {"RANK": "1"}) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close(), p.stderr.close()
    codes = sorted(code for code, _ in results)
    if codes == [0, 0]:  # the second started only after the first had finished: not a race, but allowed
        pytest.skip("the two runs did not overlap on this machine")
    assert codes == [0, 2], results
    assert "is in use by another spexphormer run" in next(err for code, err in results if code == 2)
    log = (out / "seed0" / "log.jsonl").read_bytes()
    assert b"\0" not in log
    epochs = [json.loads(line)["epoch"] for line in log.splitlines()]
    assert epochs == list(range(len(epochs)))  # one writer's epochs, in order


def test_launched_needs_the_whole_launcher_environment(monkeypatch):
    from spexphormer.utils.device import launched
    full = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}
    for key, value in full.items():
        monkeypatch.setenv(key, value)
    assert launched()
    for key in full:
        monkeypatch.delenv(key)
        assert not launched(), f"launched without {key}"
        monkeypatch.setenv(key, full[key])
    for key, value in [("WORLD_SIZE", "1"), ("WORLD_SIZE", "two"), ("RANK", "2")]:
        monkeypatch.setenv(key, value)
        assert not launched(), f"launched with {key}={value}"
        monkeypatch.setenv(key, full[key])
