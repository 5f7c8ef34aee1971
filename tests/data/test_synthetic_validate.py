"""planted_partition, validate_graph on hand-made graphs, describe, resolve_root, staleness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spexphormer.data import describe, load_graph, planted_partition, resolve_root, validate_graph
from spexphormer.data.edges import clean_edges
from spexphormer.errors import DataError
from spexphormer.data import graph_info, with_info


def _homophily(d) -> float:
    ei = d.edge_index
    return float((d.y[ei[0]] == d.y[ei[1]]).float().mean())


@pytest.mark.parametrize("h", [0.1, 0.5, 0.9])
def test_planted_partition_homophily_and_sizes(h):
    d = planted_partition(3000, avg_degree=10, num_classes=4, num_features=16, homophily=h, seed=1)
    info = describe(d)
    assert (info["nodes"], info["features"], info["classes"]) == (3000, 16, 4)
    assert abs(info["edges"] - 30000) <= 0.01 * 30000
    assert abs(_homophily(d) - h) < 0.02
    assert (info["train"], info["val"], info["test"]) == (1800, 600, 600)
    assert graph_info(d).metric == "accuracy" and graph_info(d).split == "random 60/20/20, seed 1"
    assert torch.bincount(d.y).tolist() == [750] * 4
    ei = d.edge_index  # symmetric, no self-loops
    assert not bool((ei[0] == ei[1]).any())
    fwd = set(map(tuple, ei.t().tolist()))
    assert all((v, u) in fwd for u, v in list(fwd)[:500])


def test_planted_partition_determinism():
    a = planted_partition(500, avg_degree=6, seed=3)
    b = planted_partition(500, avg_degree=6, seed=3)
    c = planted_partition(500, avg_degree=6, seed=4)
    for k in ("x", "y", "edge_index", "train_mask"):
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a.edge_index, c.edge_index) and not torch.equal(a.y, c.y)


def test_planted_partition_features_follow_classes():
    d = planted_partition(2000, avg_degree=4, num_classes=2, num_features=64, feature_noise=0.05, seed=0)
    mu0, mu1 = d.x[d.y == 0].mean(0), d.x[d.y == 1].mean(0)
    proj = (d.x - (mu0 + mu1) / 2) @ (mu1 - mu0)
    assert float(((proj > 0).long() == d.y).float().mean()) > 0.99
    assert graph_info(d).task == "binary"


@pytest.mark.parametrize("kw, msg", [
    (dict(num_classes=1), "num_classes must be >= 2"),
    (dict(homophily=1.5), "homophily must be in"),
    (dict(num_nodes=3, num_classes=5), "must be >= num_classes"),
])
def test_planted_partition_bad_args(kw, msg):
    args = dict(num_nodes=100)
    args.update(kw)
    with pytest.raises(DataError, match=msg):
        planted_partition(**args)


def _valid():
    return planted_partition(60, avg_degree=4, num_classes=3, num_features=5, seed=0)


@pytest.mark.parametrize("mutate, msg", [
    (lambda d: d.x.__setitem__((0, 0), float("nan")), "non-finite"),
    (lambda d: d.x.__setitem__((0, 0), float("inf")), "non-finite"),
    (lambda d: d.y.__setitem__(0, 3), "labels out of range \\[-1, 3\\)"),
    (lambda d: d.y.__setitem__(0, -2), "labels out of range"),
    (lambda d: setattr(d, "val_mask", d.val_mask[:-1]), "val_mask has shape \\[59\\], expected \\[60\\]"),
    (lambda d: d.edge_index.__setitem__((0, 0), 60), "edge indices out of range \\[0, 60\\)"),
    (lambda d: d.edge_index.__setitem__((1, 0), -1), "edge indices out of range"),
    (lambda d: setattr(d, "train_mask", torch.zeros(60, dtype=torch.bool)), "empty training set"),
    (lambda d: setattr(d, "y", d.y[:-1]), "x has 60 rows but y has 59"),
    (lambda d: setattr(d, "test_mask", d.train_mask.clone()), "in both train_mask and test_mask"),
    (lambda d: (delattr(d, "info"), setattr(d, "metric", "f1")), "unknown metric"),  # a raw Data's metric
])
def test_validate_graph_errors(mutate, msg):
    d = _valid()
    validate_graph(d)
    mutate(d)
    with pytest.raises(DataError, match=msg):
        validate_graph(d)


def test_graph_info_refuses_unknown_task_and_metric():
    d = _valid()
    with pytest.raises(DataError, match="unknown metric 'f1'"):
        with_info(d, metric="f1")
    with pytest.raises(DataError, match="unknown task 'regression'"):
        with_info(d, task="regression")
    assert graph_info(d).metric == "accuracy"  # unchanged by the refused edits


def test_graph_info_of_an_unprepared_data_says_what_to_do():
    d = _valid()
    del d.info
    with pytest.raises(DataError, match="from_pyg"):
        graph_info(d)


def test_clean_edges_with_attributes():
    ei = np.array([[0, 1, 1, 2, 2], [1, 0, 1, 0, 0]])
    ea = np.array([[1.0], [2.0], [9.0], [3.0], [4.0]])
    out, attr = clean_edges(ei, 3, symmetrize=True, edge_attr=ea)
    pairs = list(map(tuple, out.t().tolist()))
    assert pairs == [(1, 0), (2, 0), (0, 1), (0, 2)]  # sorted by (dst, src)
    assert attr.squeeze(1).tolist() == [2.0, 3.0, 1.0, 3.0]  # first occurrence wins


def test_resolve_root(tmp_path, monkeypatch, cache):
    assert resolve_root() == cache
    monkeypatch.setenv("SPEXPHORMER_DATA_ROOT", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("SPEXPHORMER_DATA_ROOT")
    assert resolve_root() == Path.home() / ".cache" / "spexphormer" / "datasets"


def _write_hetero(root: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    folder = root / "Heterophilous" / "minesweeper" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    train, val = np.zeros((10, n), bool), np.zeros((10, n), bool)
    train[:, : n // 2] = True
    val[:, n // 2: 3 * n // 4] = True  # non-empty: an empty validation set is refused
    np.savez(folder / "minesweeper.npz", node_features=rng.standard_normal((n, 7)).astype(np.float32),
             node_labels=rng.integers(0, 2, n), edges=rng.integers(0, n, (3 * n, 2)),
             train_masks=train, val_masks=val, test_masks=~(train | val))


def test_pyg_processed_cache_not_stale(tmp_path):
    _write_hetero(tmp_path, 40)
    assert load_graph("minesweeper", root=tmp_path).num_nodes == 40
    _write_hetero(tmp_path, 24)  # raw file replaced: PyG's processed/data.pt must be rebuilt
    assert load_graph("minesweeper", root=tmp_path).num_nodes == 24
