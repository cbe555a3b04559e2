"""One FAISS index per method, saved beside the parameters that built it.

Files in ``<store>/index/``::

    <method>.json                     params: the commit point
    <method>-g<generation>-<tag>.faiss the vectors, named by the params

An index is written under a fresh name first, then the params file is
atomically replaced to point at it, then older index files are deleted. A
reader therefore sees the old index or the new one, never half of either,
and a crash at any point leaves the last committed pair intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.cache import Memo
from core.errors import IndexStale

INDEX_TYPES = ("flat", "hnsw", "ivf-pq", "sq8")
# Search-time settings, recorded in the params and applied on every load.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128
IVF_NPROBE = 16


@dataclass(frozen=True)
class IndexParams:
    method: str
    model: str
    dim: int
    n_vectors: int
    store_generation: int
    chunking: dict
    file: str
    sha256: str
    index_type: str = "flat"
    search_params: dict | None = None  # efSearch (hnsw), nprobe (ivf-pq)
    metric: str = "inner_product"  # on L2-normalised vectors, i.e. cosine
    normalized: bool = True
    faiss_version: str = ""
    built_at: str = ""
    backend: str = "faiss"  # or "milvus" (Lite, in the store folder), or a server URI
    collection: str = ""  # Milvus: the collection holding the vectors
    meta_version: int = 0  # Milvus: the store's metadata version its records copy


def build_index(ids: np.ndarray, vectors: np.ndarray, index_type: str = "flat"):
    """An id-mapped inner-product index over `vectors` (n, dim) float32.

    flat: exact. hnsw: graph (M=32, efConstruction=200). sq8: one byte per
    dimension, exact scan. ivf-pq: k-means cells (about 4 sqrt(n)) with product
    quantization (8 dimensions a code, 8 bits, fewer for small collections so
    k-means has 39 points a centroid). Every type sits inside an
    IndexIDMap2, so chunk ids, status checks and rebuilds work the same way.
    """
    import faiss

    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type}; choose from {', '.join(INDEX_TYPES)}")
    dim = vectors.shape[1]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if index_type == "flat":
        inner = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    elif index_type == "sq8":
        inner = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit,
                                           faiss.METRIC_INNER_PRODUCT)
        inner.train(vectors if len(vectors) else np.zeros((1, dim), dtype=np.float32))
    else:  # ivf-pq
        n = len(vectors)
        nlist = max(1, min(int(4 * np.sqrt(max(n, 1))), n // 39))
        m = next(m for m in (dim // 8, dim // 4, dim // 2, dim) if m and dim % m == 0)
        # k-means wants about 39 points a centroid: 2**bits codes per sub-space.
        bits = int(min(8, np.floor(np.log2(max(n, 1) / 39)))) if n else 8
        spec = f"IVF{nlist},PQ{m}x{bits}" if bits >= 4 else f"IVF{nlist},Flat"
        inner = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
        inner.train(vectors if n else np.zeros((max(nlist, 1), dim), dtype=np.float32))
        faiss.extract_index_ivf(inner).nprobe = IVF_NPROBE
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        index.add_with_ids(vectors, ids.astype(np.int64))
    return index


def search_params(index_type: str) -> dict | None:
    return {"hnsw": {"efSearch": HNSW_EF_SEARCH}, "ivf-pq": {"nprobe": IVF_NPROBE}}.get(index_type)


def apply_search_params(index, params: dict | None) -> None:
    """Set efSearch / nprobe on a loaded index (they are not saved by FAISS)."""
    import faiss

    if not params:
        return
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    if "efSearch" in params and hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = int(params["efSearch"])
    if "nprobe" in params:
        faiss.extract_index_ivf(inner).nprobe = int(params["nprobe"])


def filtered_params(allowed: np.ndarray, params: dict | None, k: int):
    """FAISS SearchParameters that keep only `allowed` ids, inside the search.

    The selector carries the index's own efSearch / nprobe (a SearchParameters
    object replaces them, and the FAISS defaults are far lower). HNSW explores
    at least 2k candidates, since many it meets are filtered out."""
    import faiss

    selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    params = params or {}
    if "efSearch" in params:
        return faiss.SearchParametersHNSW(sel=selector,
                                          efSearch=max(int(params["efSearch"]), 2 * k))
    if "nprobe" in params:
        return faiss.SearchParametersIVF(sel=selector, nprobe=int(params["nprobe"]))
    return faiss.SearchParameters(sel=selector)


def exact_top_k(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids), each (n_queries, k), by inner product over `vectors`, padded
    with -1 ids like a FAISS search."""
    n = len(ids)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    out = np.full((len(queries), k), -1, dtype=np.int64)
    if n == 0:
        return scores, out
    sims = queries @ vectors.T
    top = min(k, n)
    part = np.argpartition(-sims, top - 1, axis=1)[:, :top]
    order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
    best = np.take_along_axis(part, order, axis=1)
    scores[:, :top] = np.take_along_axis(sims, best, axis=1)
    out[:, :top] = ids[best]
    return scores, out


def write_folder(directory: Path, method: str, generation: int,
                 write: Callable[[Path], None]) -> str:
    """The files of one index in a fresh folder ``<method>-g<generation>-<tag>/``:
    `write(tmp)` fills a temporary folder, every file is fsynced, then it is renamed
    into place. Returns the folder's name; `commit_params` makes it the current one."""
    directory.mkdir(parents=True, exist_ok=True)
    folder = f"{method}-g{generation}-{secrets.token_hex(4)}"
    tmp = directory / f".{folder}.tmp"
    tmp.mkdir()
    write(tmp)
    for f in tmp.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(tmp, directory / folder)
    return folder


def commit_params(directory: Path, method: str, params) -> None:
    """Replace ``<method>.json`` with `params` (a dataclass naming its folder) in one
    rename, the commit point; then delete the method's other folders but the one
    just replaced (`_committed`)."""
    import shutil

    spared = _committed(directory, method, "folder")
    write_params(directory, method, params)
    for old in directory.glob(f"{method}-g*"):
        if old.name not in (params.folder, spared):
            shutil.rmtree(old, ignore_errors=True)


def _committed(directory: Path, method: str, key: str) -> str | None:
    """The folder or file `method`'s params name now, before a new commit. It is kept
    through that commit: a search that read the params just before it is still
    opening those files (`ragmini watch` commits while searches run), and would
    otherwise find them gone. The one before is deleted, so two generations at most."""
    try:
        return json.loads((directory / f"{method}.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def write_params(directory: Path, method: str, params) -> None:
    """Replace ``<method>.json`` with `params` (a dataclass) atomically and durably:
    the commit point of every index, whatever holds its data."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / f"{method}.json", json.dumps(asdict(params), indent=2).encode())
    fsync_dir(directory)


def read_folder_params(directory: Path, method: str, cls):
    """The committed ``<method>.json`` as `cls`, None when there is none; IndexStale
    when it is damaged."""
    path = directory / f"{method}.json"
    try:
        return cls(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise IndexStale(f"{path} is damaged ({exc}); run `ragmini status --repair`") from exc


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary sibling, fsync it, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    _fsync_write(tmp, data)
    os.replace(tmp, path)


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_index(index, directory: Path, *, method: str, model: str, store_generation: int,
               chunking: dict, index_type: str = "flat") -> IndexParams:
    """Write `index` and its params atomically (see the module docstring).

    FAISS writes the file itself and the checksum is read back from it: no copy of
    the index is made in memory (serialising to bytes first held it three times)."""
    import faiss

    directory.mkdir(parents=True, exist_ok=True)
    name = f"{method}-g{store_generation}-{secrets.token_hex(4)}.faiss"
    tmp = directory / f".{name}.tmp"
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    digest = file_sha256(tmp)
    os.replace(tmp, directory / name)
    params = IndexParams(
        method=method,
        model=model,
        dim=int(index.d),
        n_vectors=int(index.ntotal),
        store_generation=store_generation,
        chunking=chunking,
        file=name,
        sha256=digest,
        index_type=index_type,
        search_params=search_params(index_type),
        faiss_version=faiss.__version__,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    spared = _committed(directory, method, "file")
    write_params(directory, method, params)
    for old in directory.glob(f"{method}-g*.faiss"):
        if old.name not in (name, spared):
            old.unlink(missing_ok=True)
    return params


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """The sha256 of a file, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while data := handle.read(block):
            digest.update(data)
    return digest.hexdigest()


def read_params(directory: Path, method: str) -> IndexParams | None:
    path = directory / f"{method}.json"
    try:
        raw = json.loads(path.read_text())
        return IndexParams(**raw)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise IndexStale(
            f"index params {path} are damaged ({exc}); run `ragmini ingest` again to rebuild"
        ) from exc


# Loaded index files by (path, checksum): a file name is never reused for other
# content, so a searcher opened again (each request of the server) reads nothing.
LOADED = Memo(size=8)


def load_index(directory: Path, params: IndexParams, verify: bool = True,
               cached: bool = False):
    """Read the FAISS file named by `params`, checking its checksum. With `cached`,
    an index already loaded by this process is shared (FAISS searches are
    thread-safe); status checks leave it off, to read what is on disk."""
    if cached:
        return LOADED.get((str(directory / params.file), params.sha256),
                          lambda: load_index(directory, params, verify))
    import faiss

    path = directory / params.file
    missing = IndexStale(f"index file {path} is missing; run `ragmini ingest` again to rebuild")
    # Checked by streaming the file, then read by FAISS from it: the index is held
    # once (reading the bytes first, then deserialising them, held it twice).
    try:
        if verify and file_sha256(path) != params.sha256:
            raise IndexStale(f"index file {path} is corrupt (checksum mismatch); run "
                             "`ragmini ingest` again to rebuild")
    except FileNotFoundError:
        raise missing from None
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        if not path.exists():  # replaced and deleted by a newer commit since the check
            raise missing from None
        raise IndexStale(
            f"index file {path} cannot be read by FAISS; run `ragmini ingest` again to rebuild"
        ) from exc
    if index.ntotal != params.n_vectors or index.d != params.dim:
        raise IndexStale(f"index file {path} does not match its params; run `ragmini ingest` again")
    apply_search_params(index, params.search_params)
    return index
