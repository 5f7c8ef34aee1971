"""``--nproc N``: start N local ranks of the same command with PyTorch's elastic launcher.

This is what ``torchrun --standalone --nproc-per-node N -m spexphormer ...`` does, started from
inside the CLI: a c10d rendezvous on a free local port, no restarts, and the agent's monitor, which
stops every other rank as soon as one exits with an error (so a failed rank never leaves the
others waiting in a collective). Ranks launched this way hand their one-line error to the
launcher through torchelastic's per-rank error file, and the launcher prints one line for the job:
the first error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid

from spexphormer.distributed.world import is_communication_failure, launched, world
from spexphormer.errors import one_error_line

__all__ = ["launch_local", "report_crash", "report_error", "report_rank_failure", "threads_per_rank"]

#: Set for ranks started by :func:`launch_local`: report errors to the launcher, not to stderr.
LAUNCHER_ENV = "SPEXPHORMER_LAUNCHER"


def threads_per_rank(nproc: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // nproc)


def report_error(message: str, peer_lost: bool = False, status: int = 2, echo: bool = True) -> None:
    """Report an error of this process: one ``error: ...`` line on stderr, or, in a rank started by
    :func:`launch_local`, a record in its error file for the launcher to print. ``peer_lost``: the
    error is the echo of another rank's failure (a collective lost its peer); the launcher then
    prints that other rank's error instead. ``status``: the exit status the job should end with
    (this rank may be stopped by the launcher before its own exit status is seen). ``echo=False``:
    print nothing here (a traceback follows)."""
    message = one_error_line(message)  # one line, of bounded length, whatever the message quotes
    w = world() if launched() else None
    text = f"rank {w.rank} of {w.size}: {message}" if w is not None and w.active else message
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if launched() and os.environ.get(LAUNCHER_ENV) and path:
        with open(path, "w") as handle:  # the format torchelastic's ProcessFailure reads
            json.dump({"message": text, "timestamp": int(time.time()), "peer_lost": peer_lost,
                       "status": status}, handle)
        return
    if echo:
        print(f"error: {text}", file=sys.stderr)


def report_rank_failure(exc: BaseException) -> bool:
    """A collective of this rank failed because another rank is gone or stuck: report it in one
    line (True). Anything else is a bug of this rank and keeps its traceback (False)."""
    if not (launched() and is_communication_failure(exc)):
        return False
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    report_error(f"lost contact with another rank, which failed or stopped ({first})", peer_lost=True, status=1)
    return True


def report_crash(exc: BaseException) -> None:
    """An unexpected exception of this rank (a bug): its traceback is printed by the caller; the
    launcher gets one line naming it."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    report_error(f"{type(exc).__name__}: {first} (its traceback is above)", status=1, echo=False)


def _quiet_elastic_logs() -> None:
    """The agent logs every SIGTERM it sends and every rank's exit; we print one line instead."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def launch_local(nproc: int, argv: list[str], entry: list[str] | None = None) -> int:
    """Run ``python -m spexphormer ARGV`` (or ``python ENTRY ARGV``) as ``nproc`` ranks; return the
    job's exit status (0, or that of the first rank that failed, after stopping the others)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    _quiet_elastic_logs()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_rank(nproc)))
    os.environ[LAUNCHER_ENV] = "1"
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.1, start_method="spawn")
    try:
        elastic_launch(config, sys.executable)(*(entry or ["-m", "spexphormer"]), *argv)
    except ChildFailedError as exc:
        ours = {r: f for r, f in exc.failures.items() if "peer_lost" in f.error_file_data}
        causes = {r: f for r, f in ours.items() if not f.error_file_data["peer_lost"]}
        crashes = {r: f for r, f in exc.failures.items() if r not in ours}  # a traceback, a signal
        failures = causes or crashes or ours  # the echo of a lost peer comes last
        rank = min(failures, key=lambda r: (failures[r].timestamp, r))
        failure = failures[rank]
        if rank in ours:
            print(f"error: {failure.message}", file=sys.stderr)
            return int(failure.error_file_data.get("status", 1))
        how = f"exit status {failure.exitcode}" if failure.exitcode > 0 else f"signal {-failure.exitcode}"
        print(f"error: rank {rank} of {nproc} ended with {how} (its output is above); the other ranks were "
              f"stopped", file=sys.stderr)
        return failure.exitcode if failure.exitcode > 0 else 1
    return 0
