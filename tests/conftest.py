"""Shared fixtures: a small seeded graph with a real signal, and the local dataset root."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


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
    data.name, data.task, data.num_classes = "toy", task, classes
    data.metric = "rocauc" if task == "binary" else "accuracy"
    data.split = "random 60/20/20, seed 0"
    return data


@pytest.fixture
def toy_graph() -> Data:
    return make_toy_graph()


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.skip("the local dataset copy ../shared/datasets is not present")
    return SHARED_DATASETS
