"""from_pyg: a raw user Data becomes a project graph, as a saved .pt file would."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from spexphormer.data import from_pyg, load_graph
from spexphormer.errors import DataError
from spexphormer.data import graph_info


def _raw(n=50):
    g = torch.Generator().manual_seed(0)
    return Data(x=torch.randn(n, 4, generator=g), y=torch.randint(0, 3, (n,), generator=g),
                edge_index=torch.randint(0, n, (2, 200), generator=g))


def test_same_graph_as_the_saved_file(tmp_path):
    raw = _raw()
    torch.save(raw, tmp_path / "mine.pt")
    mine, saved = from_pyg(raw, name="mine"), load_graph(path=tmp_path / "mine.pt")
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(mine[key], saved[key]), key
    assert (graph_info(mine).name, graph_info(mine).task, graph_info(mine).metric, graph_info(mine).num_classes) == ("mine", "multiclass", "accuracy", 3)
    assert bool((mine.edge_index[0] != mine.edge_index[1]).all())
    assert raw.edge_index.size(1) == 200 and "train_mask" not in raw  # the input is not changed


def test_missing_labels_and_partial_masks_are_errors():
    raw = _raw()
    del raw.y
    with pytest.raises(DataError, match="no y"):
        from_pyg(raw)
    raw = _raw()
    raw.train_mask = torch.ones(50, dtype=torch.bool)
    with pytest.raises(DataError, match="give all three masks or none"):
        from_pyg(raw)
