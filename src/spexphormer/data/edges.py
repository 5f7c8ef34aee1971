"""Edge-list clean-up and assembly of the canonical :class:`~torch_geometric.data.Data`.

Every loader ends in :func:`assemble`, so all graphs share one convention: ``edge_index`` int64
``[2, E]`` with column ``(u, v)`` the edge u→v, input self-loops removed, duplicates removed,
optionally symmetrised, and sorted by ``(dst, src)``.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data

from spexphormer.data.info import GraphInfo
from spexphormer.errors import DataError

ArrayLike = Union[np.ndarray, torch.Tensor]


def _np(a: ArrayLike) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def clean_edges(
    edge_index: ArrayLike,
    num_nodes: int,
    symmetrize: bool = True,
    edge_attr: Optional[ArrayLike] = None,
    source: str = "graph",
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    r"""Removes self-loops and duplicates, optionally symmetrises, sorts by ``(dst, src)``.

    Vectorised: one sort of the keys ``dst * N + src`` (a plain sort and a run mask: much faster
    than :func:`numpy.unique` on numpy 2.x for tens of millions of keys).

    Args:
        edge_index (array ``[2, E]`` or tuple): Edges as columns ``(src, dst)``, or a tuple
            ``(src, dst)`` of two 1-D arrays; integer typed.
        num_nodes (int): Number of nodes ``N``.
        symmetrize (bool): Add the reverse of every edge. (default: :obj:`True`)
        edge_attr (array ``[E, D]``, optional): Per-edge features; a reverse edge copies the
            features of its forward edge, and of duplicate edges the first one is kept.
        source (str): Named in error messages (file or dataset name).

    Returns:
        (Tensor, Tensor or None): ``edge_index`` int64 ``[2, E']`` and ``edge_attr`` ``[E', D]``.

    Raises:
        DataError: If the array is not ``[2, E]`` integers, or an index is negative or ``>= N``.
    """
    if isinstance(edge_index, tuple) and len(edge_index) == 2:  # (src, dst): no stacking copy
        ei = np.empty((2, len(edge_index[0])), dtype=np.int64)
        ei[0], ei[1] = _np(edge_index[0]), _np(edge_index[1])
    else:
        ei = _np(edge_index)
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise DataError(f"{source}: edge_index must have shape [2, E], got {list(ei.shape)}")
    if ei.dtype.kind not in "biuf":  # strings, objects, complex numbers
        raise DataError(f"{source}: edge indices must be integers, got dtype {ei.dtype}")
    if ei.size and not np.issubdtype(ei.dtype, np.integer):
        if not np.all(np.isfinite(ei)) or np.any(ei != np.round(ei)):
            raise DataError(f"{source}: edge indices must be integers, got dtype {ei.dtype}")
    ei = ei.astype(np.int64, copy=False)
    if ei.size:
        lo, hi = int(ei.min()), int(ei.max())
        if lo < 0 or hi >= num_nodes:
            bad = int(np.count_nonzero((ei < 0) | (ei >= num_nodes)))
            raise DataError(
                f"{source}: {bad} edge indices out of range [0, {num_nodes}) "
                f"(min {lo}, max {hi})"
            )
    ea = None if edge_attr is None else _np(edge_attr)
    if ea is not None and (ea.ndim == 0 or ea.shape[0] != ei.shape[1]):
        raise DataError(
            f"{source}: edge_attr has {ea.shape[0] if ea.ndim else 'no'} rows but there are {ei.shape[1]} edges"
        )
    src, dst = ei[0], ei[1]
    keep = src != dst
    if not keep.all():
        src, dst = src[keep], dst[keep]
        ea = None if ea is None else ea[keep]
    m, n = src.size, np.int64(num_nodes)
    key = np.empty(2 * m if symmetrize else m, dtype=np.int64)
    np.multiply(dst, n, out=key[:m])
    key[:m] += src
    if symmetrize:  # reverse edges: key src * N + dst, same features as the forward edge
        np.multiply(src, n, out=key[m:])
        key[m:] += dst
        ea = None if ea is None else np.concatenate([ea, ea])
    if ea is None:
        key.sort()
    else:
        order = np.argsort(key, kind="stable")
        key, ea = key[order], ea[order]
    first = np.ones(key.size, dtype=bool)  # first of each run of equal keys
    np.not_equal(key[1:], key[:-1], out=first[1:])
    key = key[first]
    if ea is not None:
        ea = ea[first]
    out = np.empty((2, key.size), dtype=np.int64)
    np.divmod(key, n, out=(out[1], out[0]))
    return torch.from_numpy(out), (None if ea is None else torch.from_numpy(np.ascontiguousarray(ea)))


def assemble(
    *,
    x: ArrayLike,
    y: ArrayLike,
    edge_index: ArrayLike,
    train_mask: ArrayLike,
    val_mask: ArrayLike,
    test_mask: ArrayLike,
    name: str,
    metric: str,
    task: str,
    num_classes: int,
    split: str,
    symmetrize: bool = True,
    edge_attr: Optional[ArrayLike] = None,
    edges_clean: bool = False,
) -> Data:
    r"""Builds the canonical graph object that every loader returns.

    Args:
        x (array ``[N, F]``): Node features (cast to float32).
        y (array): Labels: int ``[N]`` with ``-1`` = unlabelled, or 0/1 ``[N, C]`` (multilabel).
        edge_index (array ``[2, E]``): Raw edges; cleaned with :func:`clean_edges`.
        train_mask, val_mask, test_mask (array ``[N]``): Boolean split masks.
        name (str): Dataset name.
        metric (str): ``"accuracy"`` or ``"rocauc"``.
        task (str): ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
        num_classes (int): Number of classes (2 for binary, tasks for multilabel).
        split (str): Human-readable description of the split.
        symmetrize (bool): Add reverse edges. (default: :obj:`True`)
        edge_attr (array ``[E, D]``, optional): Edge features, only where the dataset has them.
        edges_clean (bool): ``edge_index`` is already the output of :func:`clean_edges`; skip it.

    Returns:
        Data: with ``x``, ``y``, ``edge_index``, masks, optional ``edge_attr`` and ``info``
        (a :class:`~spexphormer.data.info.GraphInfo`).
    """
    xt = torch.as_tensor(_np(x)).to(torch.float32)
    if xt.dim() != 2:
        raise DataError(f"{name}: node features must have shape [N, F], got {list(xt.shape)}")
    n = xt.size(0)
    yt = torch.as_tensor(_np(y))
    yt = yt.to(torch.float32) if task == "multilabel" else yt.reshape(-1).to(torch.int64)
    if edges_clean:
        ei = torch.as_tensor(_np(edge_index)).to(torch.int64)
        ea = None if edge_attr is None else torch.as_tensor(_np(edge_attr))
    else:
        ei, ea = clean_edges(edge_index, n, symmetrize, edge_attr, source=name)
    data = Data(x=xt, y=yt, edge_index=ei)
    for key, m in (("train_mask", train_mask), ("val_mask", val_mask), ("test_mask", test_mask)):
        data[key] = torch.as_tensor(_np(m)).to(torch.bool).reshape(-1)
    if ea is not None:
        data.edge_attr = ea.to(torch.float32) if ea.is_floating_point() else ea
    data.info = GraphInfo(name=str(name), task=task, metric=metric, num_classes=int(num_classes), split=split)
    return data
