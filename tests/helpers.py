"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch_geometric.data import Data

from spexphormer.data import GraphInfo
from spexphormer.graph import augment
from spexphormer.scores import Scores

#: CLI flags that make a run take seconds: few epochs, small expander degree, big batches.
FAST = ["--set", "stage1.epochs=3", "--set", "stage2.epochs=2", "--set", "graph.exp_deg=2",
        "--set", "stage2.batch_size=128", "--quiet"]
#: CLI flags of a short run that snapshots every epoch (for the kill-and-resume tests).
RESUMABLE = ["--seeds", "2", "--set", "stage1.epochs=8", "--set", "stage2.epochs=6", "--set", "graph.exp_deg=2",
             "--set", "stage2.batch_size=64", "--set", "run.threads=1", "--set", "run.checkpoint_seconds=0", "--quiet"]


def make_toy_graph(num_nodes: int = 300, num_edges: int = 2400, seed: int = 0, task: str = "binary") -> Data:
    """A random graph whose labels leak into features and neighbours (so models can learn)."""
    g = torch.Generator().manual_seed(seed)
    classes = 2 if task == "binary" else 3
    y = torch.randint(0, classes, (num_nodes,), generator=g)
    x = torch.randn(num_nodes, 6, generator=g) + torch.nn.functional.one_hot(y, 6).float()
    src = torch.randint(0, num_nodes, (num_edges,), generator=g)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=g)
    keep = src != dst
    edge_index = torch.unique(torch.stack([src[keep], dst[keep]]), dim=1)
    perm = torch.randperm(num_nodes, generator=g)
    cut = [0, int(0.6 * num_nodes), int(0.8 * num_nodes), num_nodes]
    masks = [torch.zeros(num_nodes, dtype=torch.bool).index_fill_(0, perm[a:b], True) for a, b in zip(cut, cut[1:])]
    data = Data(x=x, y=y, edge_index=edge_index, train_mask=masks[0], val_mask=masks[1], test_mask=masks[2])
    data.info = GraphInfo(name="toy", task=task, metric="rocauc" if task == "binary" else "accuracy",
                          num_classes=classes, split="random 60/20/20, seed 0")
    return data


def write_graph_file(path: Path, **kwargs) -> Path:
    """A toy graph saved as a plain PyG ``Data`` ``.pt`` file (what a user's file looks like)."""
    data = make_toy_graph(**kwargs)
    torch.save(Data(x=data.x, y=data.y, edge_index=data.edge_index, train_mask=data.train_mask,
                    val_mask=data.val_mask, test_mask=data.test_mask), path)
    return path


def toy_scores(n=30):
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, n, (2, 90), generator=g)
    ei = torch.unique(ei[:, ei[0] != ei[1]], dim=1)
    aug = augment(ei, n, 2, seed=0)
    raw = torch.rand(3, aug.num_edges, generator=g)
    per_node = torch.zeros(3, n).index_add_(1, aug.edge_index[1], raw)  # normalise over each node's in-edges
    return Scores(raw / per_node[:, aug.edge_index[1]], aug, "abc123", {"stage1": {"hidden": 4}}, "key",
                  0.5, {"val": 0.7})


def type_tables(attn) -> tuple[torch.Tensor, torch.Tensor]:
    """An attention module's per-type gate ``[T, G]`` and bias ``[T, H]``, written from the two
    forms' formulas: ``"table"``: the learned tables; ``"embedding"`` (the authors'):
    ``g_t = W1 e_t``, ``b_t = W2 e_t + c`` with ``e_t`` the type embedding's row ``t``."""
    terms = attn.types
    if terms.form == "table":
        return terms.gate, terms.bias
    e = terms.embedding.weight
    return e @ terms.E1.weight.T, e @ terms.E2.weight.T + terms.E2.bias


def run_outcome(out: Path) -> dict:
    """What a finished run folder reports, without wall times: per-seed test and validation metrics,
    every epoch record of stage 1 and of each seed, and the process count. Two runs that should
    be the same run compare equal on this."""
    results = json.loads((out / "results.json").read_text())
    untimed = lambda path: [{k: v for k, v in json.loads(line).items() if k != "seconds"}  # noqa: E731
                            for line in path.read_text().splitlines()]
    return {"test": results["test"]["per_seed"], "val": results["val"]["per_seed"],
            "logs": {p.parent.name: untimed(p) for p in out.glob("seed*/log.jsonl")},
            "stage1": untimed(out / "stage1.jsonl"), "world_size": results.get("world_size")}


def mapped_file_of(ptr: int) -> str | None:
    """The file this process has memory-mapped at address ``ptr`` (``/proc/self/maps``), if any."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        lo, hi = (int(v, 16) for v in parts[0].split("-"))
        if lo <= ptr < hi:
            return parts[-1] if len(parts) >= 6 else None
    return None


def cli_run(graph: Path, out: Path, *args: str) -> subprocess.Popen:
    """``spexphormer run --data GRAPH --out OUT ARGS`` in a child process (stdout dropped, stderr piped)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "spexphormer", "run", "--data", str(graph), "--out", str(out),
                             *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_when(proc: subprocess.Popen, trigger: Path, delay: float, timeout: float = 60,
              whole_job: bool = False) -> bool:
    """SIGKILL ``proc`` ``delay`` seconds after ``trigger`` appears; False if it finished first.
    ``whole_job``: its descendants too (a launcher's ranks die with it, as on a lost machine)."""
    end = time.monotonic() + timeout
    while not trigger.exists() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    for pid in [proc.pid, *(_descendants(proc.pid) if whole_job else [])]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    return True
