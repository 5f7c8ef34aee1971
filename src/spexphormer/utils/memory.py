"""Peak memory of one stage, in one process.

On Linux the kernel keeps the process's peak resident set size (``VmHWM``) and lets a process
reset it by writing ``5`` to ``/proc/self/clear_refs``; that gives per-stage CPU peaks without a
child process per stage. On CUDA the allocator's own peak counter is used.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")


def _status_kib(key: str) -> int | None:
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def current_rss() -> int:
    """Resident set size of this process in bytes (0 where unknown)."""
    return (_status_kib("VmRSS") or 0) * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter; False where the platform does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def release_free_memory() -> bool:
    """Hand memory that is freed but still held by the C allocator back to the system.

    glibc keeps freed blocks below its (self-raising) mmap threshold in its heap, so the resident
    set of a process that has freed a training step's node-sized tensors stays at its peak and
    the next large allocation (e.g. stage 1's exported scores, L x E floats) comes on top of it.
    ``malloc_trim(0)`` returns those pages. False where there is no glibc.
    """
    try:
        import ctypes
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def peak_rss() -> int:
    """Peak resident set size in bytes since start or the last reset."""
    kib = _status_kib("VmHWM")
    if kib is None:  # not Linux: fall back to the lifetime peak
        import sys
        try:
            import resource
        except ImportError:  # Windows: no portable meter, report nothing rather than fail
            return 0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    return kib * 1024


@dataclass
class StageMeter:
    """Wall time and peak memory of a block of work.

    ``peak_memory_bytes`` is the process's peak RSS during the block (CPU) or the allocator's peak
    (CUDA); ``baseline_bytes`` is what was held when the block started, so
    ``peak - baseline`` is the block's working memory.

    Example::

        with StageMeter(device) as meter:
            train(...)
        meter.seconds, meter.peak_memory_bytes
    """

    device: torch.device | str = "cpu"
    seconds: float = 0.0
    peak_memory_bytes: int = 0
    baseline_bytes: int = 0
    exact: bool = field(default=True)  # False: the peak could not be reset (a lifetime peak)

    def __enter__(self) -> "StageMeter":
        self._cuda = torch.device(self.device).type == "cuda"
        if self._cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline_bytes = torch.cuda.memory_allocated(self.device)
        else:
            self.exact = reset_peak_rss()
            self.baseline_bytes = current_rss()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.device)
            self.peak_memory_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak_memory_bytes = peak_rss()
        self.seconds = time.perf_counter() - self._start

    @property
    def working_bytes(self) -> int:
        return max(self.peak_memory_bytes - self.baseline_bytes, 0)

    def as_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "peak_memory_bytes": self.peak_memory_bytes,
                "baseline_memory_bytes": self.baseline_bytes,
                "memory_kind": "cuda_max_allocated" if self._cuda else
                ("peak_rss" if self.exact else "peak_rss_since_process_start")}


def machine_memory() -> int:
    """This machine's physical memory in bytes (0 where unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def fits_in_memory(nbytes: int) -> bool:
    """Whether ``nbytes`` could be held at all by this machine (an upper bound: a check against
    sizes that ask for terabytes, made before anything is allocated)."""
    total = machine_memory()
    return total == 0 or nbytes <= total
