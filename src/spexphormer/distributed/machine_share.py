r"""One copy per machine: read-only arrays that the local ranks memory-map instead of each holding them.

Under ``torchrun`` every rank used to load the graph, build the augmented graph and hold both in
its own memory: :math:`W` local ranks, :math:`W` copies. Here local rank 0 of each machine builds
such arrays once, writes them as a folder of ``.npy`` files (:mod:`spexphormer.utils.npy_folder`)
in a per-job folder on the machine's own disk, and every local rank (rank 0 too, after dropping its
own copy) maps them read-only: the page cache holds each array once, and each process's
proportional set size (PSS) counts :math:`1/W` of the pages it reads.

The job folder is ``$SPEXPHORMER_SHARED_DIR`` (default: the system's temporary folder)
``/spexphormer-shared-<token>``, the token drawn by rank 0 and broadcast, so all ranks of one job
agree on it and two jobs never meet. Local rank 0 removes it at exit; the folder of a job killed
with SIGKILL is removed by the next job on the machine (its owner's pid is gone).

In one process nothing is written: the arrays are returned as built.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor
from torch_geometric.data import Data

from spexphormer.data.info import GraphInfo, graph_info
from spexphormer.distributed.world import world
from spexphormer.errors import SpexphormerError
from spexphormer.sampling import SampledLayers
from spexphormer.utils import npy_folder
from spexphormer.utils.io import _alive

__all__ = ["job_folder", "share_arrays", "drop_shared", "shared_graph", "SharedSamples"]

FORMAT, VERSION = "spexphormer-shared-arrays", 1
_PREFIX = "spexphormer-shared-"
_OWNER = "owner.pid"
_folder: Path | None = None


def _remove_stale(root: Path) -> None:
    for folder in root.glob(f"{_PREFIX}*"):
        try:
            pid = int((folder / _OWNER).read_text())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def job_folder() -> Path:
    """This job's folder on this machine (created by local rank 0; all ranks call it together)."""
    global _folder
    if _folder is None:
        token = torch.tensor([int.from_bytes(os.urandom(7), "little")], dtype=torch.int64)
        dist.broadcast(token, src=0)
        root = Path(os.environ.get("SPEXPHORMER_SHARED_DIR") or tempfile.gettempdir())
        folder = root / f"{_PREFIX}{int(token):x}"
        if world().local_rank == 0:
            root.mkdir(parents=True, exist_ok=True)
            _remove_stale(root)
            folder.mkdir()
            (folder / _OWNER).write_text(str(os.getpid()))
            atexit.register(shutil.rmtree, folder, True)
        dist.barrier()
        _folder = folder
    return _folder


def share_arrays(name: str, build: Callable[[], tuple[dict[str, Tensor], dict]]) -> tuple[dict[str, Tensor], dict]:
    """``build()`` run once per machine, its arrays memory-mapped by every local rank.

    Args:
        name: the arrays' folder in the job folder (unique per call site).
        build: returns ``(arrays, meta)``: named tensors and a JSON-able dict.

    Returns:
        ``(arrays, meta)``: in one process ``build()``'s own; under torchrun read-only tensors
        over the machine's one copy (writing to them would fault: they are inputs, never written).
    """
    if not world().active:
        return build()
    target = job_folder() / name
    if world().local_rank == 0:
        arrays, meta = build()
        tmp = npy_folder.start_folder(target)
        for key, value in arrays.items():
            npy_folder.write_array(tmp, key, value)
        del arrays  # this rank's own copy: from here on it reads the mapped one like the others
        npy_folder.seal_folder(tmp, target, FORMAT, VERSION, meta)
    dist.barrier()
    # written by this job's local rank 0 a moment ago: the checksums are for files that outlive a job
    mapped, meta, _ = npy_folder.read_folder(target, FORMAT, (VERSION,), SpexphormerError, verify=False)
    return {key: npy_folder.as_tensor(a) for key, a in mapped.items()}, meta


def drop_shared(name: str) -> None:
    """Local rank 0 removes the folder of an earlier :func:`share_arrays` call (its files stay
    readable to ranks that still map them, until they unmap them). Call it once every local rank
    has mapped that folder (e.g. after a later ``share_arrays``, whose barrier they all passed)."""
    if world().active and world().local_rank == 0:
        shutil.rmtree(job_folder() / name, ignore_errors=True)


def shared_graph(load: Callable[[], Data]) -> Data:
    """The graph ``load()`` returns, loaded by local rank 0 only and mapped by every local rank.

    Its tensors (features, labels, masks, edges) are shared; its :class:`GraphInfo` travels in
    the folder's manifest. In one process: ``load()``.
    """
    if not world().active:
        return load()

    def build():
        data = load()
        arrays = {key: value for key, value in data.items() if isinstance(value, Tensor)}
        return arrays, asdict(graph_info(data))

    arrays, info = share_arrays("graph", build)
    data = Data(**arrays)
    data.info = GraphInfo(**info)
    return data


class SharedSamples:
    """A :class:`~spexphormer.sampling.LayerSampler`'s ``share``: each sample drawn by local rank 0
    and memory-mapped by every local rank (the folder of the sample before it removed). Every rank
    draws its samples together, in the same order (a count per process names them)."""

    count = 0  # samples shared by this process so far

    def __init__(self) -> None:
        self.last: str | None = None

    def __call__(self, draw: Callable[[], SampledLayers]) -> SampledLayers:
        name, SharedSamples.count = f"sample-{SharedSamples.count}", SharedSamples.count + 1

        def build():
            layers = draw()
            tables = {f"{kind}{i}": t for kind, ts in (("neighbours", layers.neighbours), ("types", layers.edge_types))
                      for i, t in enumerate(ts)}
            return tables, {"num_layers": layers.num_layers}

        tables, meta = share_arrays(name, build)
        if self.last is not None:  # every local rank has passed this call's barrier: none maps it any more
            drop_shared(self.last)
        self.last, count = name, int(meta["num_layers"])
        return SampledLayers([tables[f"neighbours{i}"] for i in range(count)],
                             [tables[f"types{i}"] for i in range(count)])
