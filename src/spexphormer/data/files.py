"""Bring your own graph: load a graph from a file, the format detected from its keys.

Formats:

* Platonov ``.npz`` (heterophilous-graphs): ``node_features`` ``[N, F]``, ``node_labels`` ``[N]``,
  ``edges`` ``[E, 2]``, and optionally ``train_masks`` / ``val_masks`` / ``test_masks`` as
  ``[S, N]`` or ``[N]`` (``split_index`` selects the row).
* gnn-benchmark CSR ``.npz`` (shchur/gnn-benchmark): ``adj_data`` / ``adj_indices`` /
  ``adj_indptr`` / ``adj_shape``, features as ``attr_data`` / ``attr_indices`` / ``attr_indptr`` /
  ``attr_shape`` or a dense ``attr_matrix``, and ``labels``. Features are kept as stored (PyG's
  Amazon/Coauthor loaders binarise them; this loader does not).
* A ``torch.save``-d PyG :class:`~torch_geometric.data.Data` (or a dict) in ``.pt`` / ``.pth``
  with ``x``, ``y``, ``edge_index`` and optional ``train_mask`` / ``val_mask`` / ``test_mask``
  (``[N]``, or ``[N, S]`` as PyG stacks splits), optional ``edge_attr`` and ``num_classes``.
  It is read with ``weights_only=True`` (tensors, containers and PyG's ``Data`` types only); a
  file that needs other types is refused unless the caller passes ``trust_pickle=True``.
* A folder of ``.npy`` files, for graphs close to the machine's memory: ``x.npy`` ``[N, F]``
  (float32 is used in place: memory-mapped, not copied), ``y.npy`` ``[N]``, ``edge_index.npy``
  ``[2, E]`` or ``[E, 2]``, and optionally ``train_mask.npy`` / ``val_mask.npy`` /
  ``test_mask.npy`` (``[N]`` or ``[N, S]``).

Without masks the split is a seeded random 60/20/20 over the labelled nodes. Binary labels
get the ROC-AUC metric, others accuracy; a float ``[N, C]`` target is multilabel (ROC-AUC).
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from spexphormer.data.edges import assemble
from spexphormer.data.roots import one_line
from spexphormer.data.splits import describe_random, random_split, select_mask
from spexphormer.errors import DataError, shown

PLATONOV = ("node_features", "node_labels", "edges")
BENCH_ADJ = ("adj_data", "adj_indices", "adj_indptr", "adj_shape")
MASK_KEYS = {"platonov": ("train_masks", "val_masks", "test_masks"),
             "pyg": ("train_mask", "val_mask", "test_mask")}
FRACTIONS = (0.6, 0.2, 0.2)


def _get(store: Mapping, key: str, path: Path, fmt: str) -> Any:
    if key not in store:
        raise DataError(f"{path}: missing key '{key}' ({fmt} format)")
    try:
        return store[key]
    except Exception as exc:  # noqa: BLE001 - a corrupt member fails in numpy's or zipfile's parser in many ways
        raise DataError(f"{path}: cannot read key '{key}' ({type(exc).__name__}: {one_line(exc, 120)})") from None


def _numeric(a: Any, path: Path, what: str) -> np.ndarray:
    """``a`` as a numpy array of numbers (bool, int or float); strings and objects are refused."""
    try:
        arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    except (TypeError, RuntimeError, ValueError) as exc:  # e.g. bfloat16, ragged lists
        raise DataError(f"{path}: {what} must be an array of numbers ({one_line(exc, 120)})") from None
    if arr.dtype.kind not in "biuf":
        first = f" (first: {str(arr.flat[0])[:20]!r})" if arr.size else ""
        raise DataError(f"{path}: {what} must be numeric, got dtype {arr.dtype}{first}")
    return arr


def _labels(y: Any, path: Path) -> torch.Tensor:
    t = torch.as_tensor(_numeric(y, path, "labels"))
    if t.dim() == 2 and t.size(1) > 1:  # multilabel
        return t.to(torch.float32)
    t = t.reshape(-1)
    if t.is_floating_point():
        if not bool(torch.isfinite(t).all()) or bool((t != t.round()).any()):
            raise DataError(f"{path}: labels must be integers (class ids, -1 = unlabelled)")
    elif t.dtype == torch.bool or t.is_complex():
        raise DataError(f"{path}: labels must be integers, got {t.dtype}")
    return t.to(torch.int64)


def finish_graph(path: Path, x, y, edge_index, masks, split_index, seed, symmetrize, edge_attr=None,
            num_classes=None) -> Data:
    x = torch.as_tensor(_numeric(x, path, "node features"))
    if x.dim() != 2:
        raise DataError(f"{path}: node features must have shape [N, F], got {list(x.shape)}")
    if not (x.is_floating_point() or x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64,
                                                 torch.uint8, torch.bool)):
        raise DataError(f"{path}: node features must be numeric, got {x.dtype}")
    n = x.size(0)
    y = _labels(y, path)
    multilabel = y.dim() == 2
    labelled = torch.ones(y.size(0), dtype=torch.bool) if multilabel else y >= 0
    top = int(y.max()) + 1 if not multilabel and bool(labelled.any()) else 0
    if top > max(n, 2):  # e.g. a stray label of 10**9: refused before it sizes the model's outputs
        raise DataError(f"{path}: labels go up to {top - 1:,} but the graph has {n:,} nodes: class ids must be "
                        "0..C-1 with at most one class per node")
    if num_classes is None:
        num_classes = y.size(1) if multilabel else top
    if isinstance(num_classes, torch.Tensor) and num_classes.numel() == 1:
        num_classes = num_classes.item()
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, float, np.integer, np.floating)) \
            or not float(num_classes).is_integer() or num_classes < 0:
        raise DataError(f"{path}: num_classes must be a non-negative integer, got {shown(num_classes)}")
    num_classes = int(num_classes)
    task = "multilabel" if multilabel else ("binary" if num_classes == 2 else "multiclass")
    metric = "rocauc" if task in ("binary", "multilabel") else "accuracy"
    masks = {k: (None if m is None else _numeric(m, path, k)) for k, m in masks.items()}
    present = [m is not None for m in masks.values()]
    if any(present) and not all(present):
        absent = [k for k, m in masks.items() if m is None]
        raise DataError(f"{path}: missing key '{absent[0]}' (give all three masks or none)")
    if all(present):
        picked = []
        layout_rows = "train_masks" in masks
        for key, m in masks.items():
            mk, count = select_mask(m, split_index, n, key, str(path), splits_in_rows=layout_rows)
            picked.append(mk)
        split = f"file mask {split_index} of {count}"
    else:
        if split_index != 0:
            raise DataError(
                f"{path}: split_index {split_index} out of range: the file has no masks, so there is one "
                f"split, a random {'/'.join(str(round(100 * f)) for f in FRACTIONS)} split with seed {seed} "
                "(leave --split-index out)"
            )
        cand = labelled.numpy() if labelled.size(0) == n else None
        picked = list(random_split(n, FRACTIONS, seed, candidates=cand))
        split = describe_random(FRACTIONS, seed, labelled_only=cand is not None and not bool(labelled.all()))
    return assemble(
        x=x, y=y, edge_index=edge_index, train_mask=picked[0], val_mask=picked[1],
        test_mask=picked[2], name=path.stem, metric=metric, task=task, num_classes=num_classes,
        split=split, symmetrize=symmetrize, edge_attr=edge_attr,
    )


def _platonov(f, path: Path, split_index: int, seed: int, symmetrize: bool) -> Data:
    x, y, edges = (_get(f, k, path, "Platonov") for k in PLATONOV)
    edges = np.asarray(edges)
    if edges.ndim != 2 or 2 not in edges.shape:
        raise DataError(f"{path}: 'edges' must have shape [E, 2], got {list(edges.shape)}")
    ei = edges.T if edges.shape[1] == 2 else edges
    masks = {k: (_get(f, k, path, "Platonov") if k in f else None) for k in MASK_KEYS["platonov"]}
    return finish_graph(path, x, y, ei, masks, split_index, seed, symmetrize)


def _csr(f, prefix: str, path: Path) -> sp.csr_matrix:
    parts = [_get(f, f"{prefix}_{k}", path, "gnn-benchmark") for k in ("data", "indices", "indptr", "shape")]
    try:
        return sp.csr_matrix(tuple(parts[:3]), shape=tuple(int(s) for s in parts[3]))
    except (ValueError, TypeError, IndexError) as exc:
        raise DataError(f"{path}: corrupt CSR arrays '{prefix}_*': {one_line(exc)}") from exc


def _gnn_benchmark(f, path: Path, split_index: int, seed: int, symmetrize: bool) -> Data:
    adj = _csr(f, "adj", path)
    adj.eliminate_zeros()
    if "attr_matrix" in f:
        x = _get(f, "attr_matrix", path, "gnn-benchmark")
        x = x.toarray() if sp.issparse(x) else np.asarray(x)
    elif "attr_data" in f:
        x = _csr(f, "attr", path).toarray()
    else:
        raise DataError(f"{path}: missing key 'attr_data' or 'attr_matrix' (gnn-benchmark format)")
    y = _get(f, "labels", path, "gnn-benchmark")
    if adj.shape[0] != adj.shape[1] or adj.shape[0] != x.shape[0]:
        raise DataError(f"{path}: adjacency is {adj.shape[0]}x{adj.shape[1]} but there are {x.shape[0]} nodes")
    coo = adj.tocoo()
    ei = np.stack([coo.row.astype(np.int64), coo.col.astype(np.int64)])
    masks = {k: None for k in MASK_KEYS["pyg"]}
    return finish_graph(path, x, y, ei, masks, split_index, seed, symmetrize)


def pyg_safe_globals() -> list:
    """The PyG types a saved ``Data`` (or a PyG ``processed/data.pt``) pickles."""
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.feature_store import TensorAttr
    from torch_geometric.data.graph_store import EdgeAttr
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    return [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage,
            TensorAttr, EdgeAttr]


TRUST_FLAG = "--trust-pickle"


def _weights_only_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with PyG's ``Data`` types allow-listed and torch's own
    warnings about the file's pickle protocol silenced (the refusal below says what matters)."""
    with torch.serialization.safe_globals(pyg_safe_globals()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)


def _plain_pickle(path: Path) -> bool:
    """A pickle (protocol 2 or later) that is not torch.save's zip archive."""
    with open(path, "rb") as handle:
        return handle.read(1) == b"\x80" and not zipfile.is_zipfile(path)


def _torch_load(path: Path, trust_pickle: bool = False) -> Any:
    """``torch.load`` with PyG's ``Data`` types allow-listed; anything else only if trusted.

    Full unpickling runs whatever code the file names, so it needs the user's explicit consent
    for this one file (``trust_pickle``, the CLI's ``--trust-pickle``), never a fallback.
    """
    if not trust_pickle:
        try:
            return _weights_only_load(path)
        except pickle.UnpicklingError as exc:
            name = re.search(r"GLOBAL ([\w.]+)", str(exc))
            if "unsupported global" in str(exc).lower() or _plain_pickle(path):
                what = (f"types outside PyG's Data ({name.group(1)})" if name else
                        "a plain pickle, not tensors and PyG's Data as torch.save writes them")
                raise DataError(f"{path} holds {what}; loading it could run code from the file: refused (if you "
                                f"trust this file, pass {TRUST_FLAG})") from None
            raise DataError(f"cannot read {path}: not a torch file of tensors and PyG's Data "
                            f"({one_line(exc, 120)})") from None
        except Exception as exc:  # noqa: BLE001 - any other file: the loader's errors are its own
            raise DataError(f"cannot read {path}: not a readable torch file ({type(exc).__name__}: "
                            f"{one_line(exc, 120)})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - arbitrary unpickling failures
        raise DataError(f"cannot read {path}: {one_line(exc)}") from exc


def _torch(path: Path, split_index: int, seed: int, symmetrize: bool, trust_pickle: bool = False) -> Data:
    obj = _torch_load(path, trust_pickle)
    if isinstance(obj, Data):
        store: Dict[str, Any] = {k: obj[k] for k in obj.keys()}
    elif isinstance(obj, Mapping):
        store = dict(obj)
    else:
        raise DataError(f"{path}: expected a torch_geometric Data or a dict, got {type(obj).__name__}")
    x, y, ei = (_get(store, k, path, "PyG Data") for k in ("x", "y", "edge_index"))
    if not isinstance(ei, (torch.Tensor, np.ndarray)):
        raise DataError(f"{path}: 'edge_index' must be a tensor, got {type(ei).__name__}")
    masks = {k: store.get(k) for k in MASK_KEYS["pyg"]}
    return finish_graph(path, x, y, ei, masks, split_index, seed, symmetrize,
                   edge_attr=store.get("edge_attr"), num_classes=store.get("num_classes"))


NPY_DIR = ("x", "y", "edge_index")


def _npy(path: Path, name: str, required: bool = True):
    file = path / f"{name}.npy"
    if not file.is_file():
        if required:
            raise DataError(f"{path}: missing file '{name}.npy' (folder of .npy files)")
        return None
    try:  # memory-mapped: the pages are read when used, and the OS may drop them again
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - a corrupt header fails in numpy's parser in many ways
        raise DataError(f"cannot read {file}: not a valid .npy file ({type(exc).__name__}: "
                        f"{one_line(exc, 120)})") from None


def _npy_dir(path: Path, split_index: int, seed: int, symmetrize: bool) -> Data:
    x, y, ei = (_npy(path, k) for k in NPY_DIR)
    if ei.ndim == 2 and ei.shape[0] != 2 and ei.shape[1] == 2:
        ei = ei.T
    masks = {k: _npy(path, k, required=False) for k in MASK_KEYS["pyg"]}
    absent = [k for k, m in masks.items() if m is None]
    if 0 < len(absent) < len(masks):
        raise DataError(f"{path}: missing file '{absent[0]}.npy' (give all three mask files or none)")
    masks = {k: (None if m is None else np.asarray(m)) for k, m in masks.items()}
    with warnings.catch_warnings():  # a read-only map: torch may only read it, which is all we do
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return finish_graph(path, x, np.asarray(y), ei, masks, split_index, seed, symmetrize)


def load_file(path, split_index: int = 0, seed: int = 0, symmetrize: bool = True,
              trust_pickle: bool = False) -> Data:
    r"""Loads a user graph file (see the module docstring for the formats).

    Args:
        path (str or Path): ``.npz``, ``.pt`` or ``.pth`` file, or a folder of ``.npy`` files.
        split_index (int): Which mask of a stack of masks. (default: 0)
        seed (int): Seed of the random split when the file has no masks. (default: 0)
        symmetrize (bool): Add reverse edges. (default: :obj:`True`)
        trust_pickle (bool): Allow a ``.pt`` file to unpickle types beyond PyG's ``Data`` (which
            can run code from the file); without it such a file is refused. (default: :obj:`False`)

    Returns:
        Data: The graph (not yet validated), named after the file stem.

    Raises:
        DataError: Missing or corrupt file, unknown format, missing keys.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        return _npy_dir(path, split_index, seed, symmetrize)
    if not path.is_file():
        raise DataError(f"graph file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        return _torch(path, split_index, seed, symmetrize, trust_pickle)
    if suffix != ".npz":
        raise DataError(f"{path}: unsupported file type '{suffix}' (expected .npz, .pt or .pth)")
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - as above
        raise DataError(f"cannot read {path}: not a valid .npz archive ({one_line(exc)})") from exc
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single array, not an .npz archive of named arrays")
    with f:
        keys = set(f.files)
        if keys & set(PLATONOV):
            return _platonov(f, path, split_index, seed, symmetrize)
        if keys & set(BENCH_ADJ):
            return _gnn_benchmark(f, path, split_index, seed, symmetrize)
        raise DataError(
            f"{path}: unrecognised keys {sorted(keys)}; expected Platonov "
            f"({', '.join(PLATONOV)}) or gnn-benchmark ({', '.join(BENCH_ADJ)}, labels)"
        )
