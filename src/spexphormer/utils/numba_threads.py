"""numba's threading layer, chosen once, before any parallel kernel of ours starts.

numba's default OpenMP threading layer leaves its worker threads spinning after every parallel
kernel, and they starve PyTorch's own OpenMP pool: measured here, a BatchNorm step became 25x
slower once the sampler had run. The work-queue layer has no such threads. A user's own
``NUMBA_THREADING_LAYER`` still wins.

Every module that defines a ``parallel=True`` kernel imports this one first; numba reads its
environment at its own import, which may already have happened, so the config is set too.
"""

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"


def set_numba_threads(threads: int) -> None:
    """Use at most ``threads`` numba threads (no more than numba was started with)."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
