"""Shared fixtures: a small seeded graph with a real signal (in memory and as a file), and the local
dataset root."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch_geometric.data import Data

from tests.helpers import make_toy_graph, write_graph_file

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture
def toy_graph() -> Data:
    return make_toy_graph()


@pytest.fixture
def graph_file(tmp_path) -> Path:
    """A toy graph as a user's ``.pt`` file."""
    return write_graph_file(tmp_path / "toy.pt")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED_DATASETS.is_dir():
        pytest.skip("the local dataset copy ../shared/datasets is not present")
    return SHARED_DATASETS
