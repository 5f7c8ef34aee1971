"""Named datasets read through PyG's own dataset classes (Planetoid, Actor, Heterophilous,
Amazon, Coauthor).

PyG writes ``processed/`` next to ``raw/``; :mod:`spexphormer.data.named` makes sure that folder
is writable (copying ``raw/`` into the cache for read-only roots) and that every raw file is in
place before a class is constructed. The classes are wrapped so that they never print and never
download: a missing raw file at that point is a bug upstream and raises ``DataError``.

Staleness: the raw files' fingerprint (path, size, mtime) is stamped next to PyG's processed
file; a different fingerprint forces PyG to re-process.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Callable

import torch
from torch_geometric.data import Data
from torch_geometric.datasets import Actor, Amazon, Coauthor, HeterophilousGraphDataset, Planetoid

from spexphormer.data.download import missing
from spexphormer.data.edges import assemble
from spexphormer.data.files import pyg_safe_globals
from spexphormer.data.roots import fingerprint, one_line, read_stamp, write_stamp
from spexphormer.data.splits import describe_random, random_split, select_mask, stratified_split
from spexphormer.errors import DataError

STAMP = "spexphormer_raw.json"

# Errors PyG raises on corrupt or truncated raw files.
READ_ERRORS = (OSError, ValueError, KeyError, IndexError, EOFError, RuntimeError,
               pickle.UnpicklingError, zipfile.BadZipFile)


def _quiet(cls: type) -> type:
    """Subclass of a PyG dataset that never logs and never downloads."""

    class Quiet(cls):  # type: ignore[misc, valid-type]
        log = property(lambda self: False, lambda self, value: None)

        def download(self) -> None:
            if not Path(self.processed_paths[0]).exists():
                raise DataError(f"{cls.__name__}: raw files missing in {self.raw_dir}")

    Quiet.__name__ = Quiet.__qualname__ = cls.__name__
    return Quiet


_Planetoid, _Actor, _Hetero = _quiet(Planetoid), _quiet(Actor), _quiet(HeterophilousGraphDataset)
_Amazon, _Coauthor = _quiet(Amazon), _quiet(Coauthor)

# spec name -> factory(base, force_reload) building the PyG dataset under root ``base``.
FACTORIES: dict = {
    "cora": lambda b, f: _Planetoid(str(b / "Planetoid"), "Cora", force_reload=f),
    "actor": lambda b, f: _Actor(str(b / "Actor"), force_reload=f),
    "actor-reference": lambda b, f: _Actor(str(b / "Actor"), force_reload=f),
    "minesweeper": lambda b, f: _Hetero(str(b / "Heterophilous"), "Minesweeper", force_reload=f),
    "tolokers": lambda b, f: _Hetero(str(b / "Heterophilous"), "Tolokers", force_reload=f),
    "photo": lambda b, f: _Amazon(str(b / "Amazon"), "Photo", force_reload=f),
    "computer": lambda b, f: _Amazon(str(b / "Amazon"), "Computers", force_reload=f),
    "cs": lambda b, f: _Coauthor(str(b / "Coauthor"), "CS", force_reload=f),
    "physics": lambda b, f: _Coauthor(str(b / "Coauthor"), "Physics", force_reload=f),
}


def raw_graph(spec, base: Path) -> Data:
    r"""The graph exactly as PyG's dataset class yields it (no clean-up, all split masks).

    Args:
        spec (DatasetSpec): A PyG-backed dataset.
        base (Path): A writable root holding the raw files.

    Returns:
        Data: ``dataset[0]``.

    Raises:
        DataError: If the raw files cannot be read.
    """
    folder = base / spec.folder
    stamp = folder / "processed" / STAMP
    fp = None if missing(base, spec.files) else fingerprint(base, spec.files)
    force = fp is not None and (folder / "processed").exists() and read_stamp(stamp) != fp
    try:
        with torch.serialization.safe_globals(pyg_safe_globals()):  # PyG's data.pt, weights only
            data = FACTORIES[spec.name](base, force)[0]
    except DataError:
        raise
    except READ_ERRORS as exc:
        raise DataError(f"{spec.name}: cannot read the raw files under {folder}: {one_line(exc)}") from exc
    if fp is not None:
        write_stamp(stamp, fp)
    return data


def _random(fractions=(0.6, 0.2, 0.2)) -> Callable:
    def loader(spec, base: Path, work: Path, split_index: int, seed: int, symmetrize: bool) -> Data:
        if split_index != 0:
            raise DataError(
                f"{spec.name}: split_index {split_index} out of range: the split is random, "
                f"choose it with seed="
            )
        g = raw_graph(spec, base)
        tr, va, te = random_split(g.num_nodes, fractions, seed)
        return assemble(
            x=g.x, y=g.y, edge_index=g.edge_index, train_mask=tr, val_mask=va, test_mask=te,
            name=spec.name, metric=spec.metric, task=spec.task, num_classes=spec.classes,
            split=describe_random(fractions, seed), symmetrize=symmetrize,
        )

    return loader


def _official(what: str) -> Callable:
    def loader(spec, base: Path, work: Path, split_index: int, seed: int, symmetrize: bool) -> Data:
        g = raw_graph(spec, base)
        n = g.num_nodes
        masks = []
        for key in ("train_mask", "val_mask", "test_mask"):
            m, count = select_mask(g[key], split_index, n, key, spec.name, splits_in_rows=False)
            masks.append(m)
        return assemble(
            x=g.x, y=g.y, edge_index=g.edge_index, train_mask=masks[0], val_mask=masks[1],
            test_mask=masks[2], name=spec.name, metric=spec.metric, task=spec.task,
            num_classes=spec.classes, split=f"{what} {split_index} of {count}",
            symmetrize=symmetrize,
        )

    return loader


def load_actor_reference(spec, base: Path, work: Path, split_index: int, seed: int, symmetrize: bool) -> Data:
    r"""Actor as the authors' code prepares it: row-normalised features, directed edges, and a
    class-balanced random 50/25/25 split (seeded here; the authors' is not) instead of the
    geom-gcn splits. Each node keeps its own features and label (PyG's ``Actor`` reads them by
    ``node_id``); the authors' loader reads them by file row, which the file's order scrambles."""
    if split_index != 0:
        raise DataError(f"{spec.name}: split_index {split_index} out of range: the split is random, "
                        f"choose it with seed=")
    g = raw_graph(spec, base)
    x = g.x / g.x.sum(dim=1, keepdim=True).clamp(min=1.0)
    tr, va, te = stratified_split(g.y.numpy(), ACTOR_REFERENCE_FRACTIONS, seed)
    return assemble(
        x=x, y=g.y, edge_index=g.edge_index, train_mask=tr, val_mask=va, test_mask=te, name=spec.name,
        metric=spec.metric, task=spec.task, num_classes=spec.classes,
        split=f"class-balanced random 50/25/25, seed {seed}", symmetrize=symmetrize,
    )


ACTOR_REFERENCE_FRACTIONS = (0.5, 0.25, 0.25)
load_random_60_20_20 = _random()
load_geom_gcn = _official("geom-gcn split")
load_official_mask = _official("official mask")
