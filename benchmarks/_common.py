"""Shared helpers of the benchmark scripts: child processes, a small job pool, JSON, machine info.

Every measured job runs in its own child process (so peak RSS is per job), with one PyTorch/numba
thread and ``THP_MEM_ALLOC_ENABLE=1`` (see the Makefile), and at most ``workers`` at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from statistics import stdev
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS = ROOT / "results"
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "datasets"


def int_list(text: str) -> list[int]:
    """An argparse type: comma-separated whole numbers (``"0,1,2"``), a usage error otherwise."""
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def sample_std(values) -> float:
    """The sample standard deviation (n - 1 in the denominator), 0 for fewer than two values: what
    every ± in our tables reports."""
    values = list(values)
    return stdev(values) if len(values) > 1 else 0.0


def child_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env.update(THP_MEM_ALLOC_ENABLE="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               NUMBA_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def machine(device: str = "cpu") -> dict:
    """Where the numbers were measured."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "threads_per_job": 1, "device": device,
            "load_avg_at_write": [round(x, 2) for x in os.getloadavg()]}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = round(int(mem) / 2**20, 1)
    except OSError:
        pass
    try:
        import torch
        info["torch"] = torch.__version__
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def save_json(obj, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def load_json(path: Path):
    return json.loads(Path(path).read_text())


@dataclass
class Job:
    """A child process: ``argv`` runs with the benchmark environment; ``after`` lists job names
    that must have finished (successfully) first."""

    name: str
    argv: list
    after: list = field(default_factory=list)
    cost: float = 1.0  # rough seconds, to start long jobs first
    log: Path | None = None
    timeout: float | None = None
    done: Path | None = None  # output file: when it exists already, the job is not run again
    # filled in by run_jobs
    rc: int | None = None
    seconds: float = 0.0
    status: str = "pending"


def run_jobs(jobs: list[Job], workers: int = 2, threads: int = 1, verbose: bool = True) -> dict[str, Job]:
    """Run ``jobs`` with at most ``workers`` at once, respecting ``after``; longest first."""
    by_name = {j.name: j for j in jobs}
    pending = sorted(jobs, key=lambda j: -j.cost)
    for job in list(pending):
        if job.done is not None and Path(job.done).exists():
            job.status = "ok"
            pending.remove(job)
            if verbose:
                print(f"[{time.strftime('%H:%M:%S')}] reuse   {job.name} ({job.done} exists)", flush=True)
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    env = child_env(threads)
    while pending or running:
        for name, (proc, start, handle) in list(running.items()):
            job = by_name[name]
            rc = proc.poll()
            if rc is None and job.timeout and time.time() - start > job.timeout:
                proc.kill()
                rc = proc.wait()
                job.status = "timeout"
            if rc is not None:
                job.rc, job.seconds = rc, time.time() - start
                if job.status != "timeout":
                    job.status = "ok" if rc == 0 else "failed"
                handle.close()
                del running[name]
                if verbose:
                    print(f"[{time.strftime('%H:%M:%S')}] {job.status:<7} {name} ({job.seconds:.0f} s)"
                          + (f"  log: {job.log}" if job.status != "ok" else ""), flush=True)
        for job in list(pending):
            if len(running) >= workers:
                break
            deps = [by_name[d] for d in job.after if d in by_name]
            if any(d.status in ("failed", "timeout", "skipped") for d in deps):
                job.status = "skipped"
                pending.remove(job)
                if verbose:
                    print(f"[{time.strftime('%H:%M:%S')}] skipped {job.name} (a prerequisite failed)", flush=True)
                continue
            if any(d.status != "ok" for d in deps):
                continue
            log = job.log or (RESULTS / "logs" / f"{job.name}.log")
            log.parent.mkdir(parents=True, exist_ok=True)
            job.log = log
            handle = open(log, "w")
            if verbose:
                print(f"[{time.strftime('%H:%M:%S')}] start   {job.name}", flush=True)
            proc = subprocess.Popen([str(a) for a in job.argv], stdout=handle, stderr=subprocess.STDOUT,
                                    env=env, cwd=str(REPO))
            running[job.name] = (proc, time.time(), handle)
            pending.remove(job)
        if running:
            time.sleep(0.5)
    return by_name


def python() -> str:
    return sys.executable


def gib(b) -> float:
    return round(b / 2**30, 3) if b is not None else None


def fmt_bytes(b) -> str:
    if b is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= scale:
            return f"{b / scale:.2f} {unit}" if unit == "GiB" else f"{b / scale:.0f} {unit}"
    return f"{b} B"


def table(rows: list[dict], title: str | None = None) -> str:
    """A plain fixed-width table of ``rows`` (all rows share the first row's keys)."""
    if not rows:
        return title or ""
    keys = list(rows[0].keys())
    cells = [[str(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ([title] if title else []) + ["  ".join(k.ljust(w) for k, w in zip(keys, widths)),
                                          "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def save_figure(fig, path: Path, title: str, quick: bool, fontsize: int = 10) -> Path:
    """Title (marked SMOKE in quick mode), tight layout, PNG at 110 dpi, close."""
    import matplotlib.pyplot as plt

    fig.suptitle(("SMOKE (quick) " if quick else "") + title, fontsize=fontsize)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
