"""Amazon / Coauthor / OGB / Pokec code paths, on small fixture files of the real formats."""

from __future__ import annotations

import os
import shutil
import stat
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

import spexphormer.data.download as dl
from spexphormer.data import DATASETS, describe, list_datasets, load_graph
from spexphormer.errors import DataError
from spexphormer.data import graph_info


def _offline(monkeypatch):
    def refuse(url, folder, log=True, filename=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(dl, "download_url", refuse)


def _put(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)


def _bench_fixture(shared: Path, dst: Path, classes: int) -> None:
    """Cora in the gnn-benchmark format, labels folded onto ``classes`` classes."""
    with np.load(shared / "npz" / "cora.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["labels"] = arrays["labels"] % classes
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, **arrays)


def _read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


# ---------------------------------------------------------------- Amazon / Coauthor (gnn-bench)

@pytest.mark.parametrize("name, rel", [
    ("photo", "Amazon/Photo/raw/amazon_electronics_photo.npz"),
    ("computer", "Amazon/Computers/raw/amazon_electronics_computers.npz"),
    ("cs", "Coauthor/CS/raw/ms_academic_cs.npz"),
    ("physics", "Coauthor/Physics/raw/ms_academic_phy.npz"),
])
def test_gnn_benchmark_datasets(name, rel, shared, tmp_path, monkeypatch):
    _offline(monkeypatch)
    classes = DATASETS[name].classes
    _bench_fixture(shared, tmp_path / "root" / rel, classes)
    d = load_graph(name, root=tmp_path / "root", seed=3)
    info = describe(d)  # it is Cora under another name
    assert (info["nodes"], info["edges"], info["features"]) == (2708, 10556, 1433)
    assert info["classes"] == classes
    assert info["split"] == "random 60/20/20, seed 3" and info["metric"] == "accuracy"
    assert (tmp_path / "root" / rel).parent.parent.joinpath("processed", "data.pt").exists()


def test_read_only_root_copies_raw_to_cache(shared, tmp_path, cache, monkeypatch, snapshot):
    _offline(monkeypatch)
    rel = "Amazon/Photo/raw/amazon_electronics_photo.npz"
    _put(shared / "npz" / "cora.npz", tmp_path / "ro" / rel)
    _read_only(tmp_path / "ro")
    try:
        before = snapshot(tmp_path / "ro")
        load_graph("photo", root=tmp_path / "ro")
        assert snapshot(tmp_path / "ro") == before
        assert (cache / rel).exists() and (cache / "Amazon/Photo/processed/data.pt").exists()
    finally:
        _writable(tmp_path / "ro")


def test_missing_files_without_network_names_expected_files(tmp_path, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(DataError) as err:
        load_graph("photo", root=tmp_path / "empty")
    msg = str(err.value)
    assert "amazon_electronics_photo.npz" in msg and str(tmp_path / "empty") in msg
    assert "could not download" in msg and "\n" not in msg
    assert not list((tmp_path / "empty").rglob("*.part"))


def test_download_path_fetches_missing_files(shared, tmp_path, monkeypatch):
    calls = []

    def fake(url, folder, log=True, filename=None):
        calls.append(url)
        shutil.copy(shared / "npz" / "cora.npz", Path(folder) / filename)
        return str(Path(folder) / filename)

    monkeypatch.setattr(dl, "download_url", fake)
    d = load_graph("cs", root=tmp_path / "r")
    assert calls == ["https://github.com/shchur/gnn-benchmark/raw/master/data/npz/ms_academic_cs.npz"]
    assert d.num_nodes == 2708
    load_graph("cs", root=tmp_path / "r")
    assert len(calls) == 1  # files now local: no second download


# ---------------------------------------------------------------- OGB layout

def _write_ogb(folder: Path, n=40, e=120, feat=6, label_cols=1, classes=4, edge_feat=0,
               split_dir="time", seed=0, unique=False) -> None:
    rng = np.random.default_rng(seed)
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    edges = rng.integers(0, n, size=(e, 2))
    if unique:  # no self-loops, each undirected pair once (as OGB ships undirected graphs)
        edges = np.unique(np.sort(edges, axis=1), axis=0)
        edges = edges[edges[:, 0] != edges[:, 1]]
        e = len(edges)
    np.savetxt(raw / "edge.csv.gz", edges, fmt="%d", delimiter=",")
    if feat:
        np.savetxt(raw / "node-feat.csv.gz", rng.standard_normal((n, feat)), fmt="%.6f", delimiter=",")
    if edge_feat:
        np.savetxt(raw / "edge-feat.csv.gz", rng.random((e, edge_feat)), fmt="%.4f", delimiter=",")
    labels = rng.integers(0, classes, size=(n, label_cols))
    np.savetxt(raw / "node-label.csv.gz", labels, fmt="%d", delimiter=",")
    np.savetxt(raw / "num-node-list.csv.gz", [n], fmt="%d")
    if split_dir:
        perm = rng.permutation(n)
        sd = folder / "split" / split_dir
        sd.mkdir(parents=True, exist_ok=True)
        for s, idx in zip(("train", "valid", "test"), np.split(perm, [n // 2, 3 * n // 4])):
            np.savetxt(sd / f"{s}.csv.gz", idx, fmt="%d")


def test_ogbn_arxiv_layout(tmp_path, monkeypatch):
    _offline(monkeypatch)
    _write_ogb(tmp_path / "ogbn_arxiv")
    d = load_graph("ogbn-arxiv", root=tmp_path)
    info = describe(d)
    assert (info["nodes"], info["features"], info["classes"]) == (40, 6, 40)
    assert (info["train"], info["val"], info["test"]) == (20, 10, 10)
    assert graph_info(d).split == "official time split" and graph_info(d).metric == "accuracy"
    directed = load_graph("ogbn-arxiv", root=tmp_path, symmetrize=False)
    assert directed.edge_index.size(1) < d.edge_index.size(1)
    assert (tmp_path / "ogbn_arxiv" / "processed" / "spexphormer_ogb.pt").exists()


def test_ogb_cache_is_refreshed_when_raw_changes(tmp_path, monkeypatch):
    _offline(monkeypatch)
    _write_ogb(tmp_path / "ogbn_arxiv", n=40)
    assert load_graph("ogbn-arxiv", root=tmp_path).num_nodes == 40
    shutil.rmtree(tmp_path / "ogbn_arxiv" / "raw")
    _write_ogb(tmp_path / "ogbn_arxiv", n=30, seed=1)
    assert load_graph("ogbn-arxiv", root=tmp_path).num_nodes == 30


def test_ogbn_proteins_layout(tmp_path, monkeypatch):
    _offline(monkeypatch)
    _write_ogb(tmp_path / "ogbn_proteins", feat=0, label_cols=5, classes=2, edge_feat=8,
               split_dir="species", unique=True)
    d = load_graph("ogbn-proteins", root=tmp_path)
    assert graph_info(d).task == "multilabel" and graph_info(d).metric == "rocauc" and graph_info(d).num_classes == 5
    assert d.y.shape == (40, 5) and d.y.dtype == torch.float32
    assert d.x.shape == (40, 8) and d.edge_attr.size(0) == d.edge_index.size(1)
    # node features = mean of incident edge features
    ei, ea = d.edge_index, d.edge_attr
    v = int(ei[1, 0])
    assert torch.allclose(d.x[v], ea[ei[1] == v].mean(0), atol=1e-5)


def test_amazon2m_random_split(tmp_path, monkeypatch):
    _offline(monkeypatch)
    _write_ogb(tmp_path / "ogbn_products", n=80, classes=47, split_dir=None)
    a = load_graph("amazon2m", root=tmp_path, seed=0)
    b = load_graph("amazon2m", root=tmp_path, seed=1)
    assert (int(a.train_mask.sum()), int(a.val_mask.sum()), int(a.test_mask.sum())) == (40, 20, 20)
    assert not torch.equal(a.train_mask, b.train_mask)
    assert graph_info(a).split == "random 50/25/25, seed 0"


def test_ogb_download_extracts_archive(tmp_path, monkeypatch):
    src = tmp_path / "src"
    _write_ogb(src / "arxiv")
    archive = tmp_path / "arxiv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in (src / "arxiv").rglob("*"):
            zf.write(p, p.relative_to(src))

    def fake(url, folder, log=True, filename=None):
        assert url == "http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip"
        shutil.copy(archive, Path(folder) / filename)

    monkeypatch.setattr(dl, "download_url", fake)
    d = load_graph("ogbn-arxiv", root=tmp_path / "root")
    assert d.num_nodes == 40
    assert (tmp_path / "root" / "ogbn_arxiv" / "split" / "time" / "train.csv.gz").exists()
    assert not list((tmp_path / "root").glob(".*download"))


def test_ogb_missing_without_network(tmp_path, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(DataError, match=r"ogbn_arxiv/raw/edge\.csv\.gz.*under"):
        load_graph("ogbn-arxiv", root=tmp_path)


def test_ogb_corrupt_csv(tmp_path, monkeypatch):
    _offline(monkeypatch)
    _write_ogb(tmp_path / "ogbn_arxiv")
    (tmp_path / "ogbn_arxiv" / "raw" / "edge.csv.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(DataError, match="cannot parse .*edge.csv.gz"):
        load_graph("ogbn-arxiv", root=tmp_path)


# ---------------------------------------------------------------- Pokec

def _write_pokec(path: Path, n=50, e=200) -> np.ndarray:
    rng = np.random.default_rng(0)
    label = rng.integers(-1, 2, size=n)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {
        "edge_index": rng.integers(0, n, size=(2, e)), "node_feat": rng.integers(0, 5, size=(n, 65)),
        "label": label[None, :], "num_nodes": n,
    })
    return label


def test_pokec_mat(tmp_path, monkeypatch):
    _offline(monkeypatch)
    label = _write_pokec(tmp_path / "pokec" / "raw" / "pokec.mat")
    d = load_graph("pokec", root=tmp_path, seed=2)
    labelled = int((label >= 0).sum())
    info = describe(d)
    assert info["unlabelled"] == int((label < 0).sum()) and info["features"] == 65
    assert info["train"] + info["val"] + info["test"] == labelled
    assert info["train"] == round(0.1 * labelled)
    assert not bool((d.train_mask & (d.y < 0)).any())
    assert graph_info(d).split == "random 10/10/80 over labelled nodes, seed 2"
    assert (graph_info(d).metric, graph_info(d).task, graph_info(d).num_classes) == ("accuracy", "binary", 2)


def test_pokec_missing_key(tmp_path, monkeypatch):
    _offline(monkeypatch)
    path = tmp_path / "pokec" / "raw" / "pokec.mat"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"edge_index": np.zeros((2, 1)), "node_feat": np.zeros((3, 2))})
    with pytest.raises(DataError, match="missing key 'label'"):
        load_graph("pokec", root=tmp_path)


def test_pokec_missing_without_network(tmp_path, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(DataError, match=r"pokec/raw/pokec\.mat"):
        load_graph("pokec", root=tmp_path)


def test_available_flags(tmp_path):
    _write_ogb(tmp_path / "ogbn_arxiv")
    rows = {r["name"]: r["available"] for r in list_datasets(tmp_path)}
    assert rows["ogbn-arxiv"] is True and rows["pokec"] is False


def test_env_root(tmp_path, monkeypatch):
    _offline(monkeypatch)
    _write_ogb(tmp_path / "envroot" / "ogbn_arxiv")
    monkeypatch.setenv("SPEXPHORMER_DATA_ROOT", str(tmp_path / "envroot"))
    assert load_graph("ogbn_arxiv").num_nodes == 40
    assert os.path.exists(tmp_path / "envroot" / "ogbn_arxiv" / "processed")


def test_processed_cache_loads_without_raw(tmp_path, monkeypatch):
    _offline(monkeypatch)
    _write_ogb(tmp_path / "ogbn_arxiv")
    first = load_graph("ogbn-arxiv", root=tmp_path)
    shutil.rmtree(tmp_path / "ogbn_arxiv" / "raw")
    assert {r["name"]: r["available"] for r in list_datasets(tmp_path)}["ogbn-arxiv"] is True
    again = load_graph("ogbn-arxiv", root=tmp_path)
    assert torch.equal(first.edge_index, again.edge_index)


def test_pyg_processed_cache_loads_without_raw(shared, tmp_path, monkeypatch):
    _offline(monkeypatch)
    rel = "Amazon/Photo/raw/amazon_electronics_photo.npz"
    _put(shared / "npz" / "cora.npz", tmp_path / rel)
    first = load_graph("photo", root=tmp_path)
    (tmp_path / rel).unlink()
    assert torch.equal(first.x, load_graph("photo", root=tmp_path).x)
