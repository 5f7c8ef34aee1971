"""The registry of named datasets: a plain dict ``DATASETS`` of name -> :class:`DatasetSpec`.

Reference sizes are those of the standard loader (PyG's classes, OGB's PyG loader, LINKX):
``edges`` counts directed edges as that loader yields them (each undirected edge twice;
ogbn-arxiv and Pokec are directed). :func:`~spexphormer.data.load_graph` may yield a different
count: it removes self-loops and duplicates and, by default, symmetrises.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Tuple

from torch_geometric.datasets import Actor, HeterophilousGraphDataset, Planetoid

from spexphormer.data import ogb_sources as ogb
from spexphormer.data import pokec, pyg_sources as pyg
from spexphormer.data.download import fetch_urls
from spexphormer.errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    r"""Static description of a named dataset.

    Attributes:
        name (str): Registry name.
        metric (str): ``"accuracy"`` or ``"rocauc"``.
        task (str): ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
        split (str): The split the loader makes.
        nodes, edges, features, classes (int): Reference sizes (see module docstring).
        folder (str): The dataset's folder relative to the root.
        files (tuple of str): Raw files expected, relative to the root.
        loader (callable): ``loader(spec, raw_base, work_base, split_index, seed, symmetrize)``.
        fetch (callable, optional): ``fetch(spec, base)`` downloads the missing files into base.
        processed (tuple of str): Cache files (relative to the root) that make the dataset
            loadable without its raw files.
        copy_raw (bool): ``raw/`` must sit next to a writable ``processed/`` (PyG classes), so it
            is copied into the cache when the root is read-only.
        directed (bool): Keep the edges directed unless the user asks to symmetrise (the
            protocol of the reference results); otherwise reverse edges are added.
    """

    name: str
    metric: str
    task: str
    split: str
    nodes: int
    edges: int
    features: int
    classes: int
    folder: str
    files: Tuple[str, ...]
    loader: Callable
    fetch: Optional[Callable] = None
    processed: Tuple[str, ...] = ()
    copy_raw: bool = False
    directed: bool = False


def _pyg(name, metric, task, split, sizes, folder, raw, urls, loader) -> DatasetSpec:
    files = tuple(f"{folder}/raw/{f}" for f in raw)
    return DatasetSpec(
        name, metric, task, split, *sizes, folder=folder, files=files, loader=loader,
        fetch=fetch_urls(tuple(zip(urls, files))), processed=(f"{folder}/processed/data.pt",),
        copy_raw=True,
    )


def _ogb(name, metric, task, split, sizes, layout: ogb.OgbLayout) -> DatasetSpec:
    return DatasetSpec(
        name, metric, task, split, *sizes, folder=layout.folder, files=layout.files(),
        loader=ogb.ogb_loader(layout), fetch=layout.fetcher(),
        processed=(f"{layout.folder}/processed/{ogb.CACHE}",),
    )


_CORA = [f"ind.cora.{e}" for e in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]
_ACTOR = ["out1_node_feature_label.txt", "out1_graph_edges.txt"] + [
    f"film_split_0.6_0.2_{i}.npz" for i in range(10)]
_ACTOR_URLS = [f"{Actor.url}/new_data/film/{f}" for f in _ACTOR[:2]] + [
    f"{Actor.url}/splits/{f}" for f in _ACTOR[2:]]
_GNN_BENCH = "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/"
_R622 = "random 60/20/20, seeded"


def _bench(name, sizes, folder, file) -> DatasetSpec:
    return _pyg(name, "accuracy", "multiclass", _R622, sizes, folder, [file],
                [_GNN_BENCH + file], pyg.load_random_60_20_20)


def _hetero(name, sizes) -> DatasetSpec:
    folder = f"Heterophilous/{name}"
    return _pyg(name, "rocauc", "binary", "official masks 0..9", sizes, folder, [f"{name}.npz"],
                [f"{HeterophilousGraphDataset.url}/{name}.npz"], pyg.load_official_mask)


DATASETS = {
    "cora": _pyg("cora", "accuracy", "multiclass", _R622, (2708, 10556, 1433, 7), "Planetoid/Cora",
                 _CORA, [f"{Planetoid.url}/{f}" for f in _CORA], pyg.load_random_60_20_20),
    "actor": _pyg("actor", "accuracy", "multiclass", "geom-gcn splits 0..9", (7600, 30019, 932, 5),
                  "Actor", _ACTOR, _ACTOR_URLS, pyg.load_geom_gcn),
    # The protocol of the authors' code, behind the paper-side Actor figure (docs/results.md, "Accuracy").
    "actor-reference": replace(
        _pyg("actor-reference", "accuracy", "multiclass",
             "class-balanced random 50/25/25, seeded; row-normalised features; directed edges",
             (7600, 30019, 932, 5), "Actor", _ACTOR, _ACTOR_URLS, pyg.load_actor_reference), directed=True),
    "minesweeper": _hetero("minesweeper", (10000, 78804, 7, 2)),
    "tolokers": _hetero("tolokers", (11758, 1038000, 10, 2)),
    "photo": _bench("photo", (7650, 238162, 745, 8), "Amazon/Photo", "amazon_electronics_photo.npz"),
    "computer": _bench("computer", (13752, 491722, 767, 10), "Amazon/Computers",
                       "amazon_electronics_computers.npz"),
    "cs": _bench("cs", (18333, 163788, 6805, 15), "Coauthor/CS", "ms_academic_cs.npz"),
    "physics": _bench("physics", (34493, 495924, 8415, 5), "Coauthor/Physics", "ms_academic_phy.npz"),
    "ogbn-arxiv": _ogb("ogbn-arxiv", "accuracy", "multiclass", "official time split",
                       (169343, 1166243, 128, 40), ogb.ARXIV),
    "ogbn-proteins": _ogb("ogbn-proteins", "rocauc", "multilabel", "official species split",
                          (132534, 79122504, 8, 112), ogb.PROTEINS),
    "amazon2m": _ogb("amazon2m", "accuracy", "multiclass", "random 50/25/25, seeded",
                     (2449029, 123718280, 100, 47), ogb.PRODUCTS),
    "pokec": DatasetSpec(
        "pokec", "accuracy", "binary", "random 10/10/80 over labelled nodes, seeded",
        1632803, 30622564, 65, 2, folder="pokec", files=(pokec.FILE,), loader=pokec.load_pokec,
        fetch=pokec.fetch_pokec, directed=True,
    ),
}

ALIASES = {
    "computers": "computer", "amazon-computers": "computer", "amazon-photo": "photo",
    "coauthor-cs": "cs", "coauthor-physics": "physics", "film": "actor",
    "arxiv": "ogbn-arxiv", "proteins": "ogbn-proteins", "ogbn-products": "amazon2m",
    "products": "amazon2m",
}


def get_spec(name: str) -> DatasetSpec:
    r"""Looks a dataset up by name (case-insensitive; ``_`` and ``-`` interchangeable; a few
    aliases such as ``"ogbn-products"`` for ``"amazon2m"``).

    Raises:
        DataError: For an unknown name, listing the known ones.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)}")
    return DATASETS[key]
