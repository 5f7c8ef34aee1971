"""Locating, fetching and loading the named datasets of the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

from torch_geometric.data import Data

from spexphormer.data.download import missing
from spexphormer.data.registry import DATASETS, DatasetSpec, get_spec
from spexphormer.data.roots import PathLike, copy_files, is_writable, resolve_root, user_cache_dir
from spexphormer.data.validate import validate_graph
from spexphormer.errors import DataError


def _bases(root: Path) -> List[Path]:
    cache = user_cache_dir()
    return [root] if cache == root else [root, cache]


def _writable_folder(base: Path, spec: DatasetSpec) -> bool:
    folder = base / spec.folder
    processed = folder / "processed"
    return is_writable(folder) and (not processed.exists() or is_writable(processed))


def _processed_here(spec: DatasetSpec, base: Path) -> bool:
    """A processed cache in a writable place lets the dataset load without its raw files."""
    return bool(spec.processed) and not missing(base, spec.processed) and _writable_folder(base, spec)


def prepare(spec: DatasetSpec, root: Optional[PathLike] = None) -> Tuple[Path, Path]:
    r"""Makes a named dataset's files ready to load.

    Order: the raw files under the root, then under the per-user cache; then a processed cache
    (writable location only); else the files are downloaded into the root if it is writable,
    otherwise into the cache. For PyG-backed datasets in a read-only root, the raw files are
    copied into the cache, because PyG writes ``processed/`` next to ``raw/``.

    Args:
        spec (DatasetSpec): The dataset.
        root (str or Path, optional): Data root (see :func:`resolve_root`).

    Returns:
        (Path, Path): The base holding the raw files and the writable base for caches.

    Raises:
        DataError: If the files are missing and cannot be downloaded (naming the files expected
            and the folder to put them in).
    """
    root = resolve_root(root)
    cache = user_cache_dir()
    raw_base = next((b for b in _bases(root) if not missing(b, spec.files)), None)
    if raw_base is None:
        for b in _bases(root):
            if _processed_here(spec, b):
                return b, b
        target = root if is_writable(root) else cache
        if spec.fetch is None:
            raise DataError(
                f"{spec.name}: missing files [{', '.join(missing(target, spec.files))}]; "
                f"place them under {target}"
            )
        spec.fetch(spec, target)
        still = missing(target, spec.files)
        if still:
            raise DataError(f"{spec.name}: files still missing after download: {still} under {target}")
        raw_base = target
    work = raw_base if _writable_folder(raw_base, spec) else cache
    if spec.copy_raw and work != raw_base:
        copy_files(raw_base, work, spec.files)
        raw_base = work
    return raw_base, work


def load_named(
    name: str,
    root: Optional[PathLike] = None,
    split_index: int = 0,
    seed: int = 0,
    symmetrize: Optional[bool] = None,
) -> Data:
    r"""Loads a named dataset (see :data:`~spexphormer.data.registry.DATASETS`).

    Args:
        name (str): Dataset name.
        root (str or Path, optional): Data root.
        split_index (int): Which official split (datasets that ship several).
        seed (int): Seed of random splits.
        symmetrize (bool, optional): Add reverse edges. ``None`` follows the dataset's protocol:
            directed for ``pokec`` and ``actor-reference`` (as the reference results were
            obtained), symmetrised for the others (undirected ones are symmetric anyway).

    Returns:
        Data: The validated graph.
    """
    spec = get_spec(name)
    raw_base, work = prepare(spec, root)
    if symmetrize is None:
        symmetrize = not spec.directed
    return validate_graph(spec.loader(spec, raw_base, work, split_index, seed, symmetrize))


def list_datasets(root: Optional[PathLike] = None) -> List[Dict[str, object]]:
    r"""One summary per named dataset.

    Args:
        root (str or Path, optional): Data root (see :func:`resolve_root`).

    Returns:
        list of dict: ``name``, ``nodes``, ``edges``, ``features``, ``classes``, ``split``,
        ``metric``, ``task`` and ``available`` (raw files present under the root or the cache, or
        a processed cache in a writable place: what :func:`load_named` can load offline).
    """
    bases = _bases(resolve_root(root))
    out = []
    for spec in DATASETS.values():
        available = any(not missing(b, spec.files) or _processed_here(spec, b) for b in bases)
        out.append({
            "name": spec.name, "nodes": spec.nodes, "edges": spec.edges,
            "features": spec.features, "classes": spec.classes, "split": spec.split,
            "metric": spec.metric, "task": spec.task, "available": bool(available),
        })
    return out
