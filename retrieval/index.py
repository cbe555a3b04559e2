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
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ragmini.errors import IndexStale

INDEX_TYPES = ("flat",)


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
    metric: str = "inner_product"  # on L2-normalised vectors, i.e. cosine
    normalized: bool = True
    faiss_version: str = ""
    built_at: str = ""


def build_index(ids: np.ndarray, vectors: np.ndarray, index_type: str = "flat"):
    """An id-mapped exact inner-product index over `vectors` (n, dim) float32."""
    import faiss

    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type}")
    dim = vectors.shape[1]
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
    return index


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_index(index, directory: Path, *, method: str, model: str, store_generation: int,
               chunking: dict, index_type: str = "flat") -> IndexParams:
    """Write `index` and its params atomically (see the module docstring)."""
    import faiss

    directory.mkdir(parents=True, exist_ok=True)
    data = faiss.serialize_index(index).tobytes()
    name = f"{method}-g{store_generation}-{secrets.token_hex(4)}.faiss"
    tmp = directory / f".{name}.tmp"
    _fsync_write(tmp, data)
    os.replace(tmp, directory / name)
    params = IndexParams(
        method=method,
        model=model,
        dim=int(index.d),
        n_vectors=int(index.ntotal),
        store_generation=store_generation,
        chunking=chunking,
        file=name,
        sha256=hashlib.sha256(data).hexdigest(),
        index_type=index_type,
        faiss_version=faiss.__version__,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    params_tmp = directory / f".{method}.json.tmp"
    _fsync_write(params_tmp, json.dumps(asdict(params), indent=2).encode())
    os.replace(params_tmp, directory / f"{method}.json")
    _fsync_dir(directory)
    for old in directory.glob(f"{method}-g*.faiss"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return params


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


def load_index(directory: Path, params: IndexParams, verify: bool = True):
    """Read the FAISS file named by `params`, checking its checksum."""
    import faiss

    path = directory / params.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexStale(
            f"index file {path} is missing; run `ragmini ingest` again to rebuild"
        ) from None
    if verify and hashlib.sha256(data).hexdigest() != params.sha256:
        raise IndexStale(
            f"index file {path} is corrupt (checksum mismatch); run `ragmini ingest` again to rebuild"
        )
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexStale(
            f"index file {path} cannot be read by FAISS; run `ragmini ingest` again to rebuild"
        ) from exc
    if index.ntotal != params.n_vectors or index.d != params.dim:
        raise IndexStale(f"index file {path} does not match its params; run `ragmini ingest` again")
    return index
