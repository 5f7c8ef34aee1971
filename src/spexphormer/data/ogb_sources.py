"""OGB node-property datasets read from OGB's on-disk layout, without the ``ogb`` package.

Layout (as OGB's ``NodePropPredDataset`` leaves it, folder name = dataset name with ``_``)::

    <root>/ogbn_arxiv/raw/edge.csv.gz         # [E, 2] src,dst per line, no header
    <root>/ogbn_arxiv/raw/node-feat.csv.gz    # [N, F] (arxiv, products)
    <root>/ogbn_arxiv/raw/edge-feat.csv.gz    # [E, D] (proteins)
    <root>/ogbn_arxiv/raw/node-label.csv.gz   # [N, 1], or [N, 112] for proteins
    <root>/ogbn_arxiv/split/time/{train,valid,test}.csv.gz   # node indices, one per line

Undirected datasets (proteins, products) store each edge once; the reverse is added, as OGB
does. The archive (e.g. ``arxiv.zip``, top folder ``arxiv/``) is downloaded and renamed when
files are missing. Parsed arrays are cached in ``processed/spexphormer_ogb.pt`` together with
the raw files' fingerprint, and re-parsed when the raw files change.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
from torch_geometric.data import Data

from spexphormer.data.download import fetch_zip, missing
from spexphormer.data.edges import assemble
from spexphormer.data.roots import fingerprint, one_line
from spexphormer.data.splits import describe_random, random_split
from spexphormer.errors import DataError

OGB_URL = "http://snap.stanford.edu/ogb/data/nodeproppred/"
CACHE = "spexphormer_ogb.pt"
FORMAT = 1


@dataclass(frozen=True)
class OgbLayout:
    r"""What one OGB dataset ships: folder, archive, which files, which split."""

    folder: str                     # e.g. "ogbn_arxiv"
    archive: str                    # e.g. "arxiv" (archive arxiv.zip, top folder arxiv/)
    node_feat: bool
    edge_feat: bool
    add_inverse: bool
    split_dir: Optional[str]        # official split folder, or None for a random split
    fractions: Tuple[float, float, float] = (0.0, 0.0, 0.0)

    def files(self) -> Tuple[str, ...]:
        raw = [f"{self.folder}/raw/edge.csv.gz", f"{self.folder}/raw/node-label.csv.gz"]
        if self.node_feat:
            raw.append(f"{self.folder}/raw/node-feat.csv.gz")
        if self.edge_feat:
            raw.append(f"{self.folder}/raw/edge-feat.csv.gz")
        if self.split_dir:
            raw += [f"{self.folder}/split/{self.split_dir}/{s}.csv.gz" for s in ("train", "valid", "test")]
        return tuple(raw)

    def fetcher(self) -> Callable:
        return fetch_zip(f"{OGB_URL}{self.archive}.zip", self.archive, self.folder)


def read_csv(path: Path, dtype) -> np.ndarray:
    r"""Reads a headerless, comma-separated (optionally gzipped) matrix.

    Args:
        path (Path): The file.
        dtype: numpy dtype to parse into.

    Returns:
        ndarray: 2-D array, one row per line.

    Raises:
        DataError: If the file is missing, truncated or not numeric.
    """
    try:
        return np.loadtxt(path, delimiter=",", dtype=dtype, ndmin=2)
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot parse {path}: {one_line(exc)}") from exc


def _parse(layout: OgbLayout, base: Path, name: str) -> Dict[str, torch.Tensor]:
    raw = base / layout.folder / "raw"
    edge = read_csv(raw / "edge.csv.gz", np.int64)
    if edge.shape[1] != 2:
        raise DataError(f"{raw / 'edge.csv.gz'}: expected 2 columns (src,dst), got {edge.shape[1]}")
    labels = read_csv(raw / "node-label.csv.gz", np.float64)
    n = labels.shape[0]
    out: Dict[str, torch.Tensor] = {}
    if layout.node_feat:
        x = read_csv(raw / "node-feat.csv.gz", np.float32)
        if x.shape[0] != n:
            raise DataError(f"{raw / 'node-feat.csv.gz'}: {x.shape[0]} rows, node-label has {n}")
        out["x"] = torch.from_numpy(x)
    ei = edge.T
    ef = None
    if layout.edge_feat:
        ef = read_csv(raw / "edge-feat.csv.gz", np.float32)
        if ef.shape[0] != edge.shape[0]:
            raise DataError(f"{raw / 'edge-feat.csv.gz'}: {ef.shape[0]} rows, edge.csv.gz has {edge.shape[0]}")
    if ei.size and (ei.min() < 0 or ei.max() >= n):
        raise DataError(f"{raw / 'edge.csv.gz'}: edge indices out of range [0, {n})")
    if layout.add_inverse:
        ei = np.concatenate([ei, ei[::-1]], axis=1)
        ef = None if ef is None else np.concatenate([ef, ef])
    out["edge_index"] = torch.from_numpy(np.ascontiguousarray(ei))
    if ef is not None:
        eft = torch.from_numpy(ef)
        out["edge_attr"] = eft
        if not layout.node_feat:  # node features = mean of the incident edges' features
            dst = out["edge_index"][1]
            s = torch.zeros(n, eft.size(1)).index_add_(0, dst, eft)
            deg = torch.bincount(dst, minlength=n).clamp(min=1).unsqueeze(1)
            out["x"] = s / deg
    out["y"] = torch.from_numpy(labels)
    if layout.split_dir:
        folder = base / layout.folder / "split" / layout.split_dir
        for s in ("train", "valid", "test"):
            idx = read_csv(folder / f"{s}.csv.gz", np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise DataError(f"{folder / f'{s}.csv.gz'}: node indices out of range [0, {n})")
            out[f"idx_{s}"] = torch.from_numpy(idx)
    return out


def read_arrays(spec, layout: OgbLayout, base: Path, work: Path) -> Dict[str, torch.Tensor]:
    r"""Parsed arrays of an OGB dataset, from the cache when it matches the raw files.

    Args:
        spec (DatasetSpec): The dataset.
        layout (OgbLayout): Its layout.
        base (Path): Root holding the raw files (may be read-only).
        work (Path): Writable root for the cache.

    Returns:
        dict: ``edge_index``, ``x``, ``y`` (float64 ``[N, T]``), optional ``edge_attr`` and
        ``idx_train`` / ``idx_valid`` / ``idx_test``.
    """
    cache = work / layout.folder / "processed" / CACHE
    have_raw = not missing(base, spec.files)
    fp = fingerprint(base, spec.files) if have_raw else None
    if cache.exists():
        try:
            blob = torch.load(cache, weights_only=True)
        except Exception:  # a corrupt cache is rebuilt from the raw files
            blob = None
        if (isinstance(blob, dict) and blob.get("format") == FORMAT
                and (fp is None or blob.get("fingerprint") == fp)):
            return blob["arrays"]
    if not have_raw:
        raise DataError(f"{spec.name}: missing {missing(base, spec.files)} under {base}")
    arrays = _parse(layout, base, spec.name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    torch.save({"format": FORMAT, "fingerprint": fp, "arrays": arrays}, tmp)
    os.replace(tmp, cache)
    return arrays


def ogb_loader(layout: OgbLayout) -> Callable:
    r"""Builds the loader of one OGB dataset (see :class:`OgbLayout`)."""

    def loader(spec, base: Path, work: Path, split_index: int, seed: int, symmetrize: bool) -> Data:
        if split_index != 0:
            kind = "the official split is single" if layout.split_dir else "the split is random, choose it with seed="
            raise DataError(f"{spec.name}: split_index {split_index} out of range: {kind}")
        a = read_arrays(spec, layout, base, work)
        n = a["y"].size(0)
        if layout.split_dir:
            masks = []
            for s in ("train", "valid", "test"):
                m = torch.zeros(n, dtype=torch.bool)
                m[a[f"idx_{s}"]] = True
                masks.append(m)
            split = f"official {layout.split_dir} split"
        else:
            masks = list(random_split(n, layout.fractions, seed))
            split = describe_random(layout.fractions, seed)
        num_classes = spec.classes
        if spec.task == "multilabel":
            y = a["y"].to(torch.float32)
            num_classes = y.size(1)
        else:
            y = a["y"][:, 0]
            y = torch.where(torch.isnan(y), torch.full_like(y, -1), y).to(torch.int64)
        return assemble(
            x=a["x"], y=y, edge_index=a["edge_index"], train_mask=masks[0], val_mask=masks[1],
            test_mask=masks[2], name=spec.name, metric=spec.metric, task=spec.task,
            num_classes=num_classes, split=split,
            symmetrize=symmetrize and not layout.add_inverse,  # already symmetric
            edge_attr=a.get("edge_attr"),
        )

    return loader


ARXIV = OgbLayout("ogbn_arxiv", "arxiv", True, False, False, "time")
PROTEINS = OgbLayout("ogbn_proteins", "proteins", False, True, True, "species")
PRODUCTS = OgbLayout("ogbn_products", "products", True, False, True, None, (0.5, 0.25, 0.25))
