"""Pokec, in the LINKX release format (``pokec.mat``).

The MATLAB file holds ``edge_index`` ``[2, E]`` (directed friendships), ``node_feat``
``[N, 65]``, ``label`` ``[1, N]`` (gender; ``-1`` = unknown) and ``num_nodes``. The reference
uses a random 10/10/80 split of the labelled nodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp
from torch_geometric.data import Data

from spexphormer.data.download import fetch
from spexphormer.data.edges import assemble
from spexphormer.data.roots import one_line
from spexphormer.data.splits import describe_random, random_split
from spexphormer.errors import DataError

FILE = "pokec/raw/pokec.mat"
# LINKX's Google-Drive file id for pokec.mat, through the direct-download endpoint PyG uses.
URL = "https://drive.usercontent.google.com/download?id=1dNs5E7BrWJbgcHeQ_zuy5Ozp2tRCWG0y&confirm=t"
FRACTIONS = (0.1, 0.1, 0.8)
KEYS = ("edge_index", "node_feat", "label")


def fetch_pokec(spec, base: Path) -> None:
    r"""Downloads ``pokec.mat`` into ``base/pokec/raw``, rejecting an HTML answer (Drive's
    quota or confirmation page) so that it never passes for the data file."""
    path = fetch(URL, base / "pokec" / "raw", "pokec.mat", spec.name, spec.files, base)
    with open(path, "rb") as f:
        head = f.read(64).lstrip().lower()
    if head.startswith(b"<"):
        path.unlink()
        raise DataError(
            f"download of pokec.mat returned a web page, not the file; fetch it from {URL} "
            f"and place it at {base / FILE}"
        )


def read_mat(path: Path) -> dict:
    r"""Reads a LINKX ``.mat`` file and checks its keys.

    Raises:
        DataError: If the file cannot be read or lacks a key.
    """
    try:
        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {one_line(exc)}") from exc
    for key in KEYS:
        if key not in mat:
            raise DataError(f"{path}: missing key '{key}' (expected {', '.join(KEYS)})")
    return mat


def load_pokec(spec, base: Path, work: Path, split_index: int, seed: int, symmetrize: bool) -> Data:
    r"""Loader of ``pokec`` (see :mod:`spexphormer.data.registry`)."""
    if split_index != 0:
        raise DataError(
            f"{spec.name}: split_index {split_index} out of range: the split is random, choose it with seed="
        )
    path = base / FILE
    mat = read_mat(path)
    x = mat["node_feat"]
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    y = np.asarray(mat["label"]).reshape(-1).astype(np.int64)
    ei = np.asarray(mat["edge_index"])
    if ei.ndim == 2 and ei.shape[0] != 2 and ei.shape[1] == 2:
        ei = ei.T
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{path}: node_feat has {x.shape[0]} rows but label has {y.shape[0]}")
    tr, va, te = random_split(y.shape[0], FRACTIONS, seed, candidates=y >= 0)
    return assemble(
        x=x.astype(np.float32), y=y, edge_index=ei, train_mask=tr, val_mask=va, test_mask=te,
        name=spec.name, metric=spec.metric, task=spec.task, num_classes=spec.classes,
        split=describe_random(FRACTIONS, seed, labelled_only=True), symmetrize=symmetrize,
    )
