"""Validation of a loaded graph: every check raises :class:`~spexphormer.errors.DataError`."""

from __future__ import annotations

from typing import Any, Dict

import torch
from torch_geometric.data import Data

from spexphormer.errors import DataError

METRICS = ("accuracy", "rocauc")
TASKS = ("multiclass", "binary", "multilabel")


def _name(data: Data) -> str:
    return str(getattr(data, "name", None) or "graph")


def validate_graph(data: Data) -> Data:
    r"""Checks that a graph follows the project's conventions.

    Checks: ``x`` is a finite float ``[N, F]`` tensor; ``y`` has ``N`` rows and labels in
    ``[-1, C)`` (or 0/1 values for a multilabel ``[N, C]`` target); ``edge_index`` is an integer
    ``[2, E]`` tensor with indices in ``[0, N)``; ``edge_attr`` (if any) has ``E`` rows; the three
    masks are boolean of length ``N``; at least one labelled training node exists; no node is
    both a training and a test node.

    Args:
        data (Data): The graph. ``num_classes`` and ``task`` attributes are used when present
            (else ``C = max(y) + 1`` and the task is inferred from the shape of ``y``).

    Returns:
        Data: The same object, for chaining.

    Raises:
        DataError: Naming the first problem found.
    """
    name = _name(data)
    x = getattr(data, "x", None)
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(f"{name}: node features x must be a [N, F] tensor, got {shape}")
    if not x.is_floating_point():
        raise DataError(f"{name}: node features x must be floating point, got {x.dtype}")
    n = x.size(0)
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        n_nan = int(torch.isnan(x).sum())
        raise DataError(
            f"{name}: node features contain {bad} non-finite values ({n_nan} NaN, {bad - n_nan} inf)"
        )

    y = getattr(data, "y", None)
    if not isinstance(y, torch.Tensor):
        raise DataError(f"{name}: labels y are missing")
    if y.size(0) != n:
        raise DataError(f"{name}: x has {n} rows but y has {y.size(0)} (one label per node)")
    task = getattr(data, "task", None) or ("multilabel" if y.dim() == 2 and y.size(1) > 1 else None)
    if task is not None and task not in TASKS:
        raise DataError(f"{name}: unknown task '{task}', expected one of {TASKS}")
    metric = getattr(data, "metric", None)
    if metric is not None and metric not in METRICS:
        raise DataError(f"{name}: unknown metric '{metric}', expected one of {METRICS}")
    if task == "multilabel":
        if y.dim() != 2:
            raise DataError(f"{name}: multilabel y must be [N, C], got {list(y.shape)}")
        if not bool(((y == 0) | (y == 1)).all()):
            raise DataError(f"{name}: multilabel y must hold only 0/1 values")
        labelled = torch.ones(n, dtype=torch.bool)
    else:
        if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
            raise DataError(f"{name}: y must be an integer [N] tensor, got {y.dtype} {list(y.shape)}")
        c = getattr(data, "num_classes", None)
        c = int(c) if c is not None else (int(y.max()) + 1 if y.numel() else 0)
        out = (y < -1) | (y >= c)
        if bool(out.any()):
            raise DataError(
                f"{name}: {int(out.sum())} labels out of range [-1, {c}) "
                f"(min {int(y.min())}, max {int(y.max())}, {c} classes)"
            )
        labelled = y >= 0

    ei = getattr(data, "edge_index", None)
    if not isinstance(ei, torch.Tensor) or ei.dim() != 2 or ei.size(0) != 2:
        shape = list(ei.shape) if isinstance(ei, torch.Tensor) else type(ei).__name__
        raise DataError(f"{name}: edge_index must be a [2, E] tensor, got {shape}")
    if ei.is_floating_point() or ei.dtype == torch.bool:
        raise DataError(f"{name}: edge_index must be integer typed, got {ei.dtype}")
    if ei.numel():
        out = (ei < 0) | (ei >= n)
        if bool(out.any()):
            raise DataError(
                f"{name}: {int(out.sum())} edge indices out of range [0, {n}) "
                f"(min {int(ei.min())}, max {int(ei.max())})"
            )
    ea = getattr(data, "edge_attr", None)
    if ea is not None and (not isinstance(ea, torch.Tensor) or ea.size(0) != ei.size(1)):
        rows = ea.size(0) if isinstance(ea, torch.Tensor) else type(ea).__name__
        raise DataError(f"{name}: edge_attr has {rows} rows but there are {ei.size(1)} edges")

    masks: Dict[str, Any] = {}
    for key in ("train_mask", "val_mask", "test_mask"):
        m = getattr(data, key, None)
        if not isinstance(m, torch.Tensor):
            raise DataError(f"{name}: {key} is missing")
        if m.dtype != torch.bool:
            raise DataError(f"{name}: {key} must be boolean, got {m.dtype}")
        if m.dim() != 1 or m.size(0) != n:
            raise DataError(f"{name}: {key} has shape {list(m.shape)}, expected [{n}] (one per node)")
        masks[key] = m
    if not bool((masks["train_mask"] & labelled).any()):
        raise DataError(f"{name}: empty training set (no labelled node in train_mask)")
    both = int((masks["train_mask"] & masks["test_mask"]).sum())
    if both:
        raise DataError(f"{name}: {both} nodes are in both train_mask and test_mask")
    return data
