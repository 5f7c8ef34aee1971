"""The four datasets shipped in the shared read-only mirror, loaded offline."""

from __future__ import annotations

import pytest
import torch

from spexphormer.data import DATASETS, describe, list_datasets, load_graph
from spexphormer.data.named import prepare
from spexphormer.data.pyg_sources import raw_graph
from spexphormer.errors import DataError
from spexphormer.data import graph_info

# name -> (nodes, directed edges as PyG loads, features, classes): the table of ../shared/datasets/README.md.
README = {
    "cora": (2708, 10556, 1433, 7),
    "actor": (7600, 30019, 932, 5),
    "minesweeper": (10000, 78804, 7, 2),
    "tolokers": (11758, 1038000, 10, 2),
}
# What load_graph yields (self-loops and duplicates removed, symmetrised). Actor's PyG graph is
# directed with 93 self-loops: 30019 -> 29926 without them -> 53318 symmetrised.
YIELDS = {"cora": 10556, "actor": 53318, "minesweeper": 78804, "tolokers": 1038000}


@pytest.fixture(scope="module")
def tolokers(shared, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
        mp.delenv("SPEXPHORMER_DATA_ROOT", raising=False)
        return load_graph("tolokers", root=shared)


def _assert_canonical(d):
    assert d.x.dtype == torch.float32 and d.y.dtype == torch.int64
    ei = d.edge_index
    assert ei.dtype == torch.int64 and not bool((ei[0] == ei[1]).any())
    key = ei[1] * d.num_nodes + ei[0]
    assert bool((key[1:] > key[:-1]).all())  # sorted by (dst, src), no duplicates
    for m in (d.train_mask, d.val_mask, d.test_mask):
        assert m.dtype == torch.bool and m.numel() == d.num_nodes


@pytest.mark.parametrize("name", ["cora", "actor", "minesweeper"])
def test_counts_match_readme(name, shared, cache, snapshot):
    before = snapshot(shared)
    d = load_graph(name, root=shared)
    nodes, _, features, classes = README[name]
    info = describe(d)
    assert (info["nodes"], info["features"], info["classes"]) == (nodes, features, classes)
    assert info["edges"] == YIELDS[name]
    assert info["train"] > 0 and info["name"] == name
    _assert_canonical(d)
    assert snapshot(shared) == before  # the read-only mirror is untouched
    assert (cache / DATASETS[name].folder / "processed" / "data.pt").exists()  # work went to cache


@pytest.mark.parametrize("name", ["cora", "actor", "minesweeper"])
def test_raw_pyg_counts_match_spec(name, shared):
    spec = DATASETS[name]
    base, _ = prepare(spec, shared)
    g = raw_graph(spec, base)
    assert (g.num_nodes, g.edge_index.size(1), g.x.size(1)) == README[name][:3]
    assert (spec.nodes, spec.edges, spec.features, spec.classes) == README[name]


def test_tolokers(tolokers):
    info = describe(tolokers)
    assert (info["nodes"], info["edges"], info["features"], info["classes"]) == (11758, 1038000, 10, 2)
    assert info["metric"] == "rocauc" and info["task"] == "binary"
    assert info["split"] == "official mask 0 of 10"
    _assert_canonical(tolokers)


def test_metadata(shared):
    d = load_graph("minesweeper", root=shared, split_index=3)
    assert (graph_info(d).metric, graph_info(d).task, graph_info(d).num_classes, graph_info(d).split) == ("rocauc", "binary", 2, "official mask 3 of 10")
    a = load_graph("actor", root=shared, split_index=2)
    assert graph_info(a).split == "geom-gcn split 2 of 10" and graph_info(a).metric == "accuracy"


def test_random_split_determinism(shared):
    a = load_graph("cora", root=shared, seed=0)
    b = load_graph("cora", root=shared, seed=0)
    c = load_graph("cora", root=shared, seed=1)
    assert torch.equal(a.train_mask, b.train_mask) and torch.equal(a.test_mask, b.test_mask)
    assert not torch.equal(a.train_mask, c.train_mask)
    assert graph_info(a).split == "random 60/20/20, seed 0" and graph_info(c).split == "random 60/20/20, seed 1"
    n = a.num_nodes
    assert int(a.train_mask.sum()) == round(0.6 * n)
    assert not bool((a.train_mask & a.val_mask).any() | (a.val_mask & a.test_mask).any())
    assert bool((a.train_mask | a.val_mask | a.test_mask).all())


@pytest.mark.parametrize("name", ["actor", "minesweeper"])
def test_split_index_selects_official_mask(name, shared):
    a = load_graph(name, root=shared, split_index=0)
    b = load_graph(name, root=shared, split_index=1)
    assert not torch.equal(a.train_mask, b.train_mask)
    assert torch.equal(a.edge_index, b.edge_index)
    with pytest.raises(DataError, match="split_index 10 out of range"):
        load_graph(name, root=shared, split_index=10)


def test_random_split_rejects_split_index(shared):
    with pytest.raises(DataError, match="split is random"):
        load_graph("cora", root=shared, split_index=1)


def test_symmetrize_false_keeps_direction(shared):
    d = load_graph("actor", root=shared, symmetrize=False)
    assert d.edge_index.size(1) == 30019 - 93


def test_no_network_when_files_are_local(shared, monkeypatch):
    import spexphormer.data.download as dl

    def boom(*a, **k):
        raise AssertionError("download attempted although the raw files are local")

    monkeypatch.setattr(dl, "download_url", boom)
    load_graph("cora", root=shared)


def test_list_datasets(shared):
    rows = {r["name"]: r for r in list_datasets(shared)}
    assert set(rows) == set(DATASETS)
    for name in README:
        assert rows[name]["available"] is True
    assert rows["ogbn-arxiv"]["available"] is False
    assert rows["cora"]["nodes"] == 2708 and rows["pokec"]["metric"] == "accuracy"
    assert set(rows["cora"]) >= {"name", "nodes", "edges", "features", "classes", "split", "metric", "available"}
