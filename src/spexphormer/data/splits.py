"""Train/validation/test splits: seeded random splits and selection of shipped split masks."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from spexphormer.errors import DataError

Masks = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def random_split(
    num_nodes: int,
    fractions: Sequence[float],
    seed: int,
    candidates: Optional[np.ndarray] = None,
) -> Masks:
    r"""A seeded random split of the nodes into train/validation/test.

    The candidate nodes are shuffled with ``numpy.random.default_rng(seed)``; the first
    ``round(f_train * n)`` go to training, the next ``round(f_val * n)`` to validation and, when
    the fractions sum to one, all the rest to test (else ``round(f_test * n)``).

    Args:
        num_nodes (int): Number of nodes ``N``.
        fractions (sequence of 3 floats): Train, validation, test fractions.
        seed (int): Seed of the permutation; same seed, same split.
        candidates (array, optional): Boolean ``[N]`` mask of the nodes that may be split (e.g.
            the labelled ones); the others are in no mask. (default: all nodes)

    Returns:
        (Tensor, Tensor, Tensor): Boolean ``[N]`` train, validation and test masks.
    """
    f_train, f_val, f_test = (float(f) for f in fractions)
    if min(f_train, f_val, f_test) < 0 or f_train + f_val + f_test > 1 + 1e-9:
        raise DataError(f"invalid split fractions {tuple(fractions)}: need >= 0, sum <= 1")
    idx = np.arange(num_nodes) if candidates is None else np.flatnonzero(candidates)
    rng = np.random.default_rng(seed)
    perm = idx[rng.permutation(idx.size)]
    n = idx.size
    n_train = int(round(f_train * n))
    n_val = min(int(round(f_val * n)), n - n_train)
    if abs(f_train + f_val + f_test - 1.0) < 1e-9:
        n_test = n - n_train - n_val
    else:
        n_test = min(int(round(f_test * n)), n - n_train - n_val)
    masks = []
    for lo, hi in ((0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_train + n_val + n_test)):
        m = np.zeros(num_nodes, dtype=bool)
        m[perm[lo:hi]] = True
        masks.append(torch.from_numpy(m))
    return masks[0], masks[1], masks[2]


def stratified_split(y: np.ndarray, fractions: Sequence[float], seed: int) -> Masks:
    r"""A seeded, class-balanced random split: each class is split with the same fractions.

    Nodes with label ``-1`` are in no mask. Within each class the nodes are shuffled with
    ``numpy.random.default_rng(seed)`` (one generator for all classes, classes in increasing
    order) and cut as in :func:`random_split`.

    Args:
        y (array): Integer labels ``[N]``.
        fractions (sequence of 3 floats): Train, validation, test fractions (summing to 1).
        seed (int): Seed of the permutations.

    Returns:
        (Tensor, Tensor, Tensor): Boolean ``[N]`` train, validation and test masks.
    """
    f_train, f_val, _ = (float(f) for f in fractions)
    y = np.asarray(y).reshape(-1)
    rng = np.random.default_rng(seed)
    masks = [np.zeros(y.size, dtype=bool) for _ in range(3)]
    for c in np.unique(y[y >= 0]):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        n_train, n_val = int(round(f_train * idx.size)), int(round(f_val * idx.size))
        masks[0][idx[:n_train]] = True
        masks[1][idx[n_train:n_train + n_val]] = True
        masks[2][idx[n_train + n_val:]] = True
    return tuple(torch.from_numpy(m) for m in masks)  # type: ignore[return-value]


def describe_random(fractions: Sequence[float], seed: int, labelled_only: bool = False) -> str:
    r"""Human description of a random split, e.g. ``"random 60/20/20, seed 0"``."""
    pct = "/".join(f"{100 * float(f):g}" for f in fractions)
    over = " over labelled nodes" if labelled_only else ""
    return f"random {pct}{over}, seed {seed}"


def select_mask(
    mask: object,
    split_index: int,
    num_nodes: int,
    key: str,
    source: str,
    splits_in_rows: bool = True,
) -> Tuple[torch.Tensor, int]:
    r"""Picks split ``split_index`` out of a stack of masks.

    Accepts a single ``[N]`` mask (one split) or a stack: ``[S, N]`` (Platonov ``.npz``, one split
    per row) or ``[N, S]`` (PyG, one split per column). Which axis holds the splits is decided
    by which one has length ``N``; ``splits_in_rows`` breaks the tie for a square stack.

    Args:
        mask (array or Tensor): The mask or stack of masks.
        split_index (int): Which split.
        num_nodes (int): Number of nodes ``N``.
        key (str): The key the mask came from (named in errors).
        source (str): File or dataset (named in errors).
        splits_in_rows (bool): Layout assumed for a square ``[N, N]`` stack.

    Returns:
        (Tensor, int): The boolean ``[N]`` mask and the number of splits available.

    Raises:
        DataError: For a stack whose dimensions do not match ``N``, or ``split_index`` out of
            range. A 1-D mask of the wrong length is returned as is, for the validator to report.
    """
    m = torch.as_tensor(mask.numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask))
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise DataError(f"{source}: '{key}' must be boolean (0/1), got dtype {m.dtype}")
        m = m.to(torch.bool)
    if m.dim() == 1:
        if split_index != 0:
            raise DataError(
                f"{source}: split_index {split_index} out of range: '{key}' holds 1 split"
            )
        return m, 1
    if m.dim() != 2:
        raise DataError(f"{source}: '{key}' must be [N] or a stack of masks, got {list(m.shape)}")
    rows_ok, cols_ok = m.size(1) == num_nodes, m.size(0) == num_nodes
    if rows_ok and (splits_in_rows or not cols_ok):
        stack = m
    elif cols_ok:
        stack = m.t()
    else:
        raise DataError(
            f"{source}: '{key}' has shape {list(m.shape)}, no axis matches the {num_nodes} nodes"
        )
    count = stack.size(0)
    if not 0 <= split_index < count:
        raise DataError(
            f"{source}: split_index {split_index} out of range: '{key}' holds {count} splits"
        )
    return stack[split_index].clone(), count
