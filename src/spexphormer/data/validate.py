"""Validation of a loaded graph: every check raises :class:`~spexphormer.errors.DataError`."""

from __future__ import annotations

import warnings
import weakref
from typing import Any, Dict

import torch
from torch_geometric.data import Data

from spexphormer.data.info import METRICS, TASKS, declared
from spexphormer.errors import DataError
from spexphormer.utils.memory import fits_in_memory


def _name(data: Data) -> str:
    return str(declared(data, "name") or "graph")


def validate_graph(data: Data) -> Data:
    r"""Checks that a graph follows the project's conventions.

    Checks: ``x`` is a finite float ``[N, F]`` tensor; ``y`` has ``N`` rows and labels in
    ``[-1, C)`` (or 0/1 values for a multilabel ``[N, C]`` target); ``edge_index`` is an integer
    ``[2, E]`` tensor with indices in ``[0, N)``; ``edge_attr`` (if any) has ``E`` rows; the three
    masks are boolean of length ``N``; then :func:`check_split` (no empty and no overlapping sets).

    Args:
        data (Data): The graph. Its declared ``num_classes`` and ``task`` are used when present
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
    task = declared(data, "task") or ("multilabel" if y.dim() == 2 and y.size(1) > 1 else None)
    if task is not None and task not in TASKS:
        raise DataError(f"{name}: unknown task '{task}', expected one of {TASKS}")
    metric = declared(data, "metric")
    if metric is not None and metric not in METRICS:
        raise DataError(f"{name}: unknown metric '{metric}', expected one of {METRICS}")
    if task == "multilabel":
        if y.dim() != 2:
            raise DataError(f"{name}: multilabel y must be [N, C], got {list(y.shape)}")
        if not bool(((y == 0) | (y == 1)).all()):
            raise DataError(f"{name}: multilabel y must hold only 0/1 values")
    else:
        if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
            raise DataError(f"{name}: y must be an integer [N] tensor, got {y.dtype} {list(y.shape)}")
        c = declared(data, "num_classes")
        c = int(c) if c is not None else (int(y.max()) + 1 if y.numel() else 0)
        _check_class_count(name, c, n)
        out = (y < -1) | (y >= c)
        if bool(out.any()):
            raise DataError(
                f"{name}: {int(out.sum())} labels out of range [-1, {c}) "
                f"(min {int(y.min())}, max {int(y.max())}, {c} classes)"
            )

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
    check_split(data)
    return data


#: The widest output layer a class count is checked against (C x width float32 weights).
WIDEST_HEAD = 1024


def _check_class_count(name: str, classes: int, n: int) -> None:
    """The N x C outputs of one forward pass, and an output layer of C x ``WIDEST_HEAD`` weights,
    must fit in memory: a stray label or class count of 10**9 must not ask for terabytes."""
    if not fits_in_memory(4 * classes * max(n, WIDEST_HEAD)):
        raise DataError(f"{name}: {classes:,} classes (for {n:,} nodes) need more memory for the model's outputs "
                        "than this machine has: class ids must be 0..C-1")


SET_NAME = {"train": "training", "val": "validation", "test": "test"}
PURPOSE = {"train": "nothing to train on", "val": "nothing to select the model on", "test": "nothing to measure"}
#: The training masks already warned about: a graph is checked when loaded and again when a run
#: starts, and its warning is said once.
_WARNED: dict[int, weakref.ref] = {}  # id -> the mask itself (ids of dead tensors are reused)


def _first_warning(mask: torch.Tensor) -> bool:
    """True the first time ``mask`` (this very tensor) is seen."""
    known = _WARNED.get(id(mask))
    if known is not None and known() is mask:
        return False
    for dead in [k for k, ref in _WARNED.items() if ref() is None]:
        del _WARNED[dead]
    _WARNED[id(mask)] = weakref.ref(mask)
    return True


def check_split(data: Data) -> None:
    r"""Refuses a split that cannot give honest numbers; warns on a suspicious one.

    Errors: a mask with no labelled node (its metric would be NaN), and any overlap between the
    training, validation and test sets (each makes a reported number wrong: training nodes in the
    test set inflate the test metric, in the validation set they select a memorising model, and
    validation nodes in the test set let model selection see the test); under ROC-AUC, a
    validation or test set of one class (the metric is undefined there). Warning (once per
    graph): a training set of a single class (a trivial classifier scores perfectly on it).

    Raises:
        DataError: Naming the mask or the pair of masks.
    """
    name, y = _name(data), data.y
    labelled = torch.ones(y.size(0), dtype=torch.bool) if y.dim() == 2 else y >= 0
    masks = {key: getattr(data, f"{key}_mask") for key in ("train", "val", "test")}
    for key, mask in masks.items():
        if not bool((mask & labelled).any()):
            raise DataError(f"{name}: empty {SET_NAME[key]} set (no labelled node in {key}_mask: {PURPOSE[key]})")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = int((masks[a] & masks[b]).sum())
        if both:
            raise DataError(f"{name}: {both} nodes are in both {a}_mask and {b}_mask (the sets must be disjoint)")
    if y.dim() == 1 and declared(data, "metric") == "rocauc":
        for key in ("val", "test"):
            classes = torch.unique(y[masks[key] & labelled])
            if classes.numel() < 2:
                raise DataError(f"{name}: every {SET_NAME[key]} node has label {int(classes[0])}: ROC-AUC is "
                                f"undefined on one class, so the {SET_NAME[key]} metric would be NaN; use a "
                                "split whose sets hold both classes")
    if y.dim() == 1 and _first_warning(masks["train"]):
        classes = torch.unique(y[masks["train"] & labelled])
        if classes.numel() == 1:
            warnings.warn(f"{name}: every training node has label {int(classes[0])}: a model that always "
                          "predicts it is perfect on the training set; check the labels and the split",
                          stacklevel=2)
