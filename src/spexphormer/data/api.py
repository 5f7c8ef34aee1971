"""The public entry points: :func:`load_graph` and :func:`describe`."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import torch
from torch_geometric.data import Data

from spexphormer.data.files import load_file
from spexphormer.data.info import declared, with_info
from spexphormer.data.named import load_named
from spexphormer.data.roots import PathLike
from spexphormer.data.validate import validate_graph
from spexphormer.errors import DataError


def load_graph(
    dataset: Optional[str] = None,
    path: Optional[PathLike] = None,
    root: Optional[PathLike] = None,
    split_index: int = 0,
    seed: int = 0,
    symmetrize: Optional[bool] = None,
    trust_pickle: bool = False,
) -> Data:
    r"""Loads a graph, named or from a file, and validates it.

    Args:
        dataset (str, optional): A name from :data:`~spexphormer.data.DATASETS` (e.g.
            ``"cora"``, ``"minesweeper"``, ``"ogbn-arxiv"``).
        path (str or Path, optional): A graph file (Platonov ``.npz``, gnn-benchmark ``.npz``, or
            a saved PyG ``Data`` ``.pt``/``.pth``). Exactly one of ``dataset`` and ``path``.
        root (str or Path, optional): Data root for named datasets (see
            :func:`~spexphormer.data.resolve_root`).
        split_index (int): Which shipped split, for datasets and files that have several
            (Actor, Minesweeper, Tolokers: 0..9). Must be 0 where the split is random.
        seed (int): Seed of random splits (same seed, same split).
        symmetrize (bool, optional): Add the reverse of every edge. ``None`` (default): yes for
            files, and for named datasets what their reference protocol does (Pokec and
            ``actor-reference`` stay directed).
        trust_pickle (bool): Let a ``.pt`` ``path`` unpickle types beyond PyG's ``Data``, which
            can run code from the file. Only for a file you trust. (default: :obj:`False`)

    Returns:
        Data: ``x`` float32 ``[N, F]``; ``y`` int64 ``[N]`` (``-1`` = unlabelled) or float32
        ``[N, C]`` (multilabel); ``edge_index`` int64 ``[2, E]`` (deduplicated, no self-loops,
        sorted by ``(dst, src)``); ``train_mask``/``val_mask``/``test_mask`` bool ``[N]``;
        optional ``edge_attr``; and ``info``, a :class:`~spexphormer.data.GraphInfo` (name, task,
        metric, classes, the split in words, and the arguments that load it again).

    Raises:
        DataError: Unknown dataset, missing or corrupt files, invalid graph.
    """
    if (dataset is None) == (path is None):
        raise DataError("load_graph needs exactly one of dataset= or path=")
    for arg, value in (("split_index", split_index), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DataError(f"{arg} must be a non-negative integer, got {value!r}")
    if dataset is not None:
        data = load_named(dataset, root=root, split_index=split_index, seed=seed, symmetrize=symmetrize)
    else:
        data = validate_graph(load_file(path, split_index=split_index, seed=seed,
                                        symmetrize=True if symmetrize is None else symmetrize,
                                        trust_pickle=trust_pickle))
    source = {"dataset": dataset, "path": str(Path(path).resolve()) if path is not None else None,
              "split_index": split_index, "symmetrize": symmetrize}
    return with_info(data, source=source)


def describe(data: Data) -> Dict[str, object]:
    r"""Summary of a loaded graph.

    Args:
        data (Data): A graph from :func:`load_graph` or
            :func:`~spexphormer.data.planted_partition`.

    Returns:
        dict: ``name``, ``nodes``, ``edges`` (directed, as stored), ``features``, ``classes``,
        ``train`` / ``val`` / ``test`` (mask sizes), ``unlabelled`` (nodes with label ``-1``),
        ``metric``, ``task``, ``split``.
    """
    y = data.y
    multilabel = y.dim() == 2
    labelled = torch.ones(y.size(0), dtype=torch.bool) if multilabel else y >= 0

    def count(key: str) -> int:
        m = getattr(data, key, None)
        return int(m.sum()) if isinstance(m, torch.Tensor) else 0

    return {
        "name": declared(data, "name"),
        "nodes": int(data.num_nodes),
        "edges": int(data.edge_index.size(1)),
        "features": int(data.x.size(1)),
        "classes": int(declared(data, "num_classes") or (y.size(1) if multilabel else int(y.max()) + 1)),
        "train": count("train_mask"),
        "val": count("val_mask"),
        "test": count("test_mask"),
        "unlabelled": int((~labelled).sum()),
        "metric": declared(data, "metric"),
        "task": declared(data, "task"),
        "split": declared(data, "split"),
    }
