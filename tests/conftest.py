"""Shared fixtures: a small seeded graph with a real signal (in memory and as a file), and the local
dataset root."""

from __future__ import annotations

from pathlib import Path

import numba
import pytest
import torch
from torch_geometric.data import Data

import spexphormer.utils.numba_threads  # noqa: F401  (numba's threading layer, before numba starts its threads)
from tests.helpers import make_toy_graph, write_graph_file

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _restore_thread_counts():
    """Each test starts with the thread counts the session started with. The CLI sets PyTorch's and
    numba's thread counts for the whole process (``run.threads``), and training results differ
    between thread counts (measured: stage-1 scores are not bit-identical with 1 and 2 threads),
    so without this a test's numbers would depend on which tests ran before it."""
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(torch_threads)
    numba.set_num_threads(numba_threads)


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
