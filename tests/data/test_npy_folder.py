"""A folder of .npy files: loaded through the same checks, features memory-mapped, not copied."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spexphormer.data import planted_partition
from spexphormer.data.files import load_file
from spexphormer.errors import DataError
from spexphormer.data import graph_info
from tests.helpers import mapped_file_of


def write_folder(folder: Path, data, edges_rows: bool = True, masks: bool = False) -> Path:
    folder.mkdir(exist_ok=True)
    np.save(folder / "x.npy", data.x.numpy())
    np.save(folder / "y.npy", data.y.numpy())
    ei = data.edge_index.numpy()
    np.save(folder / "edge_index.npy", ei if edges_rows else ei.T)
    if masks:
        for name in ("train_mask", "val_mask", "test_mask"):
            np.save(folder / f"{name}.npy", getattr(data, name).numpy())
    return folder


@pytest.mark.parametrize("edges_rows", [True, False])
def test_npy_folder_loads_the_same_graph(tmp_path, edges_rows):
    data = planted_partition(400, avg_degree=6, num_features=8, seed=1)
    g = load_file(write_folder(tmp_path / "g", data, edges_rows, masks=True))
    assert torch.equal(g.x, data.x) and torch.equal(g.y, data.y)
    assert torch.equal(g.edge_index, data.edge_index)
    assert torch.equal(g.train_mask, data.train_mask) and torch.equal(g.test_mask, data.test_mask)
    assert graph_info(g).split.startswith("file mask")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_npy_folder_features_are_memory_mapped(tmp_path):
    data = planted_partition(300, avg_degree=4, num_features=16, seed=2)
    g = load_file(write_folder(tmp_path / "g", data))
    assert mapped_file_of(g.x.data_ptr()) == str(tmp_path / "g" / "x.npy")
    assert graph_info(g).split.startswith("random 60/20/20")


def test_npy_folder_missing_file(tmp_path):
    folder = write_folder(tmp_path / "g", planted_partition(100, avg_degree=4, num_features=4, seed=0))
    (folder / "y.npy").unlink()
    with pytest.raises(DataError, match="missing file 'y.npy'"):
        load_file(folder)
