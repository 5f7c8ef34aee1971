"""Bring-your-own graph files: the three formats, and every bad input raising DataError."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from spexphormer.data import describe, load_graph
from spexphormer.errors import DataError
from spexphormer.data import graph_info

N, F = 30, 4


def _graph(seed=0, classes=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, F)).astype(np.float32)
    y = rng.integers(0, classes, N)
    edges = np.array([[0, 1], [1, 2], [2, 2], [1, 0], [3, 4], [3, 4], [5, 6], [7, 8], [9, 29]])
    return x, y, edges


def _masks(splits=3, seed=0):
    rng = np.random.default_rng(seed)
    tr, va, te = (np.zeros((splits, N), bool) for _ in range(3))
    for s in range(splits):
        p = rng.permutation(N)
        tr[s, p[:15]], va[s, p[15:22]], te[s, p[22:]] = True, True, True
    return tr, va, te


def _platonov(path, **override):
    x, y, edges = _graph()
    tr, va, te = _masks()
    arrays = dict(node_features=x, node_labels=y, edges=edges, train_masks=tr, val_masks=va, test_masks=te)
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _bench(path, dense=False, **override):
    x, y, edges = _graph(classes=2)
    adj = sp.csr_matrix((np.ones(len(edges), np.float32), (edges[:, 0], edges[:, 1])), shape=(N, N))
    arrays = dict(adj_data=adj.data, adj_indices=adj.indices, adj_indptr=adj.indptr, adj_shape=np.array(adj.shape),
                  labels=y)
    if dense:
        arrays["attr_matrix"] = x
    else:
        a = sp.csr_matrix(x)
        arrays.update(attr_data=a.data, attr_indices=a.indices, attr_indptr=a.indptr, attr_shape=np.array(a.shape))
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _pt(path, masks=True, **override):
    x, y, edges = _graph()
    d = Data(x=torch.from_numpy(x), y=torch.from_numpy(y), edge_index=torch.from_numpy(edges.T.copy()))
    if masks:
        tr, va, te = _masks(splits=2)
        d.train_mask, d.val_mask, d.test_mask = (torch.from_numpy(m.T.copy()) for m in (tr, va, te))
    for k, v in override.items():
        d[k] = v
    torch.save(d, path)
    return path


# ------------------------------------------------------------------------------- good files

def test_platonov_npz(tmp_path):
    p = _platonov(tmp_path / "mygraph.npz")
    d = load_graph(path=p)
    tr, _, _ = _masks()
    assert graph_info(d).name == "mygraph" and graph_info(d).split == "file mask 0 of 3" and graph_info(d).metric == "accuracy"
    assert torch.equal(d.train_mask, torch.from_numpy(tr[0]))
    # self-loop (2,2) dropped, (3,4) deduplicated, (0,1)/(1,0) merged, symmetrised
    assert d.edge_index.size(1) == 2 * 6
    d2 = load_graph(path=p, split_index=2)
    assert torch.equal(d2.train_mask, torch.from_numpy(tr[2])) and graph_info(d2).split == "file mask 2 of 3"
    directed = load_graph(path=p, symmetrize=False)
    assert directed.edge_index.size(1) == 7


def test_platonov_single_mask(tmp_path):
    tr, va, te = _masks(splits=1)
    p = _platonov(tmp_path / "g.npz", train_masks=tr[0], val_masks=va[0], test_masks=te[0])
    assert graph_info(load_graph(path=p)).split == "file mask 0 of 1"
    with pytest.raises(DataError, match="split_index 1 out of range"):
        load_graph(path=p, split_index=1)


@pytest.mark.parametrize("dense", [False, True])
def test_gnn_benchmark_npz(tmp_path, dense):
    p = _bench(tmp_path / "bench.npz", dense=dense)
    d = load_graph(path=p, seed=5)
    x, _, _ = _graph(classes=2)
    assert torch.allclose(d.x, torch.from_numpy(x))
    assert (graph_info(d).task, graph_info(d).metric, graph_info(d).num_classes) == ("binary", "rocauc", 2)
    assert graph_info(d).split == "random 60/20/20, seed 5"
    assert torch.equal(d.train_mask, load_graph(path=p, seed=5).train_mask)
    assert not torch.equal(d.train_mask, load_graph(path=p, seed=6).train_mask)


def test_shipped_cora_npz_format(shared, tmp_path):
    import shutil

    shutil.copy(shared / "npz" / "cora.npz", tmp_path / "cora.npz")
    info = describe(load_graph(path=tmp_path / "cora.npz"))
    assert (info["nodes"], info["edges"], info["features"], info["classes"]) == (2708, 10556, 1433, 7)


def test_torch_data(tmp_path):
    p = _pt(tmp_path / "g.pt")
    d = load_graph(path=p, split_index=1)
    tr, _, _ = _masks(splits=2)
    assert torch.equal(d.train_mask, torch.from_numpy(tr[1])) and graph_info(d).split == "file mask 1 of 2"
    assert graph_info(d).name == "g" and graph_info(d).metric == "accuracy"


def test_torch_data_without_masks_and_unlabelled(tmp_path):
    x, y, edges = _graph()
    y[:6] = -1
    p = _pt(tmp_path / "g.pth", masks=False, y=torch.from_numpy(y))
    d = load_graph(path=p, seed=1)
    assert not bool((d.train_mask & (d.y < 0)).any())
    assert describe(d)["unlabelled"] == 6
    assert graph_info(d).split == "random 60/20/20 over labelled nodes, seed 1"


def test_torch_dict(tmp_path):
    x, y, edges = _graph()
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y),
                "edge_index": torch.from_numpy(edges.T.copy())}, tmp_path / "d.pt")
    assert load_graph(path=tmp_path / "d.pt").num_nodes == N


# -------------------------------------------------------------------------------- bad input

def test_exactly_one_source(tmp_path):
    with pytest.raises(DataError, match="exactly one"):
        load_graph()
    with pytest.raises(DataError, match="exactly one"):
        load_graph("cora", path=tmp_path / "x.npz")


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_graph("nope")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="graph file not found: .*absent.npz"):
        load_graph(path=tmp_path / "absent.npz")


@pytest.mark.parametrize("name, content", [
    ("bad.npz", b"PK\x03\x04 this is not a zip"),
    ("bad.npz", b"plain text"),
    ("bad.pt", b"garbage bytes"),
])
def test_corrupt_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=f"cannot read .*{name}") as err:
        load_graph(path=tmp_path / name)
    assert "\n" not in str(err.value)


def test_unsupported_suffix(tmp_path):
    (tmp_path / "g.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        load_graph(path=tmp_path / "g.csv")


def test_wrong_keys(tmp_path):
    np.savez(tmp_path / "w.npz", foo=np.zeros(3), bar=np.ones(2))
    with pytest.raises(DataError, match="unrecognised keys \\['bar', 'foo'\\]"):
        load_graph(path=tmp_path / "w.npz")


@pytest.mark.parametrize("maker, drop, key", [
    (_platonov, "edges", "edges"),
    (_platonov, "val_masks", "val_masks"),
    (_bench, "labels", "labels"),
    (_bench, "adj_indptr", "adj_indptr"),
])
def test_missing_key(tmp_path, maker, drop, key):
    p = maker(tmp_path / "m.npz", **{drop: None})
    with pytest.raises(DataError, match=f"missing key '{key}'"):
        load_graph(path=p)


def test_missing_key_torch(tmp_path):
    x, y, edges = _graph()
    torch.save(Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(edges.T.copy())), tmp_path / "n.pt")
    with pytest.raises(DataError, match="missing key 'y'"):
        load_graph(path=tmp_path / "n.pt")


@pytest.mark.parametrize("bad, what", [(np.nan, "1 NaN, 0 inf"), (np.inf, "0 NaN, 1 inf")])
def test_non_finite_features(tmp_path, bad, what):
    x, _, _ = _graph()
    x[3, 1] = bad
    with pytest.raises(DataError, match=f"non-finite values \\({what}\\)"):
        load_graph(path=_platonov(tmp_path / "f.npz", node_features=x))


def test_labels_out_of_range(tmp_path):
    _, y, _ = _graph()
    y[0] = -2
    with pytest.raises(DataError, match="1 labels out of range \\[-1, 3\\)"):
        load_graph(path=_platonov(tmp_path / "l.npz", node_labels=y))
    x, y, edges = _graph()
    p = _pt(tmp_path / "c.pt", num_classes=2)  # labels go up to 2 but only 2 classes declared
    with pytest.raises(DataError, match="labels out of range \\[-1, 2\\)"):
        load_graph(path=p)


def test_masks_of_wrong_length(tmp_path):
    tr, va, te = _masks(splits=1)
    p = _platonov(tmp_path / "m.npz", train_masks=tr[0, :-1], val_masks=va[0], test_masks=te[0])
    with pytest.raises(DataError, match=f"train_mask has shape \\[{N - 1}\\], expected \\[{N}\\]"):
        load_graph(path=p)
    p = _platonov(tmp_path / "m2.npz", val_masks=va[:, :-2])
    with pytest.raises(DataError, match="'val_masks' has shape \\[1, 28\\], no axis matches the 30 nodes"):
        load_graph(path=p)


def test_edge_index_out_of_range(tmp_path):
    _, _, edges = _graph()
    edges[0, 1] = N + 5
    with pytest.raises(DataError, match=f"1 edge indices out of range \\[0, {N}\\)"):
        load_graph(path=_platonov(tmp_path / "e.npz", edges=edges))
    edges[0, 1] = -1
    with pytest.raises(DataError, match="edge indices out of range"):
        load_graph(path=_platonov(tmp_path / "e2.npz", edges=edges))


def test_empty_training_set(tmp_path):
    tr, va, te = _masks()
    with pytest.raises(DataError, match="empty training set"):
        load_graph(path=_platonov(tmp_path / "t.npz", train_masks=np.zeros_like(tr)))
    _, y, _ = _graph()
    y[tr[0]] = -1  # training nodes all unlabelled
    with pytest.raises(DataError, match="empty training set"):
        load_graph(path=_platonov(tmp_path / "t2.npz", node_labels=y))


def test_row_count_mismatch(tmp_path):
    _, y, _ = _graph()
    with pytest.raises(DataError, match=f"x has {N} rows but y has {N - 1}"):
        load_graph(path=_platonov(tmp_path / "r.npz", node_labels=y[:-1]))


def test_non_integer_labels(tmp_path):
    _, y, _ = _graph()
    with pytest.raises(DataError, match="labels must be integers"):
        load_graph(path=_platonov(tmp_path / "y.npz", node_labels=y + 0.5))


def test_negative_seed_rejected(tmp_path):
    with pytest.raises(DataError, match="seed must be a non-negative integer"):
        load_graph(path=_platonov(tmp_path / "s.npz"), seed=-1)


def test_torch_file_with_extra_types_needs_trust_pickle(tmp_path):
    import fractions

    x, y, edges = _graph()
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y),
                "edge_index": torch.from_numpy(edges.T.copy()), "note": fractions.Fraction(1, 3)},
               tmp_path / "extra.pt")
    with pytest.raises(DataError, match="Fraction.*--trust-pickle"):
        load_graph(path=tmp_path / "extra.pt")
    d = load_graph(path=tmp_path / "extra.pt", trust_pickle=True)
    assert d.num_nodes == N


def test_torch_file_of_wrong_type(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(DataError, match="expected a torch_geometric Data or a dict, got Tensor"):
        load_graph(path=tmp_path / "t.pt")


def test_dataset_aliases():
    from spexphormer.data.registry import get_spec

    assert get_spec("Computers").name == "computer"
    assert get_spec("ogbn_products").name == "amazon2m"
    assert get_spec("OGBN-ARXIV").name == "ogbn-arxiv"
