"""Where a dense method's vectors are searched: the narrow interface, and FAISS.

A ``VectorStore`` holds one method's vectors by chunk id and answers batch
searches, with an optional filter. Two implementations:

- ``FaissVectors`` (here): an id-mapped FAISS index of any type, saved as files
  beside the SQLite store (``retrieval/index.py``). The default, and the
  single-machine answer.
- ``MilvusVectors`` (``retrieval/milvus.py``): a collection in Milvus Lite (a
  folder inside the store) or in a Milvus server reached by URI.

The store's SQLite ``vectors`` table stays the source of truth either way: a
vector store is derived from it, checked against it (`ragmini status`), and
rebuilt from it (`ragmini reindex`) without loading a model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from core.errors import RagminiError

FAISS = "faiss"
# Filtered search on FAISS (bench/filters.py measures each choice on the man-page vectors):
# - flat: the IDSelector inside the scan is exact, and fastest at every share.
# - hnsw: a graph walk with a selector loses recall when the kept chunks are few or
#   clustered (0.53 at 10% of the man pages kept by one package's pages, efSearch 128),
#   so below HNSW_WALK_FROM of the collection it scans its stored vectors exactly
#   with the selector instead (still inside FAISS, no store read).
# - ivf-pq, sq8 (quantized storage): the selector inside the index, except that a
#   slice under FILTER_EXACT_BELOW chunks is scanned exactly over the store's vectors.
HNSW_WALK_FROM = 0.5
FILTER_EXACT_BELOW = 2000


class VectorStore(Protocol):
    """One method's vectors, by chunk id, ready to search."""

    backend: str  # "faiss", or a Milvus URI

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: list[dict] | None = None
            ) -> None:
        """Add vectors (n, dim) for chunk `ids`, replacing any held under the same id;
        `fields` are each chunk's filterable metadata (a store that filters by its own
        copy keeps them; FAISS filters through the SQLite store and ignores them)."""

    def delete(self, ids: np.ndarray) -> None:
        """Remove the vectors of `ids` (unknown ids are ignored)."""

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, chunk ids), each (n_queries, <= k), best first, -1 ids padding.
        `allowed` (sorted chunk ids; an `ingest.filters.Selection` also names its
        filter) keeps only those chunks, inside the search: k hits whenever k
        allowed chunks are held."""

    def count(self) -> int:
        """Vectors held (for the generation this store was opened at)."""

    def params(self) -> dict:
        """What it was built with: backend, index type, search settings."""


class FaissVectors:
    """An IndexIDMap2 FAISS index as a VectorStore.

    `exact` (ids -> (ids, vectors)) reads kept vectors back from the SQLite store,
    for a filtered search on a quantized index whose own answer comes back short.
    """

    backend = FAISS

    def __init__(self, index, index_type: str = "flat", search_params: dict | None = None,
                 exact=None):
        self.index = index
        self.index_type = index_type
        self.search_params = search_params
        self.exact = exact

    @classmethod
    def empty(cls, dim: int, index_type: str = "flat") -> FaissVectors:
        from retrieval.index import build_index, search_params

        index = build_index(np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32),
                            index_type)
        return cls(index, index_type, search_params(index_type))

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: list[dict] | None = None
            ) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.index.ntotal == 0 and self.index_type in ("sq8", "ivf-pq"):
            # Quantizers are trained on the vectors they will hold: the first add does it.
            from retrieval.index import apply_search_params, build_index

            self.index = build_index(ids, vectors, self.index_type)
            apply_search_params(self.index, self.search_params)
            return
        self.delete(ids)
        self.index.add_with_ids(vectors, ids)

    def delete(self, ids: np.ndarray) -> None:
        import faiss

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids) or not self.index.ntotal:
            return
        if self.index_type != "hnsw":
            self.index.remove_ids(faiss.IDSelectorBatch(ids))
            return
        # An HNSW graph cannot drop nodes: rebuild it from the vectors it keeps.
        from retrieval.index import apply_search_params, build_index

        held = faiss.vector_to_array(self.index.id_map)
        keep = ~np.isin(held, ids)
        if keep.all():
            return
        vectors = self.index.index.reconstruct_n(0, self.index.ntotal)
        self.index = build_index(held[keep], vectors[keep], "hnsw")
        apply_search_params(self.index, self.search_params)

    def count(self) -> int:
        return int(self.index.ntotal)

    def params(self) -> dict:
        return {"backend": FAISS, "index_type": self.index_type,
                "search_params": self.search_params}

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        n = len(queries)
        if self.index.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        k_index = min(k, self.index.ntotal)
        with one_thread_for(n):
            if allowed is None:
                return self.index.search(queries, k_index)
            return self._filtered(queries, k, k_index, np.asarray(allowed, dtype=np.int64))

    def _filtered(self, queries: np.ndarray, k: int, k_index: int, allowed: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k among `allowed`, by an IDSelector inside FAISS or an exact scan of
        the kept vectors, chosen by index type and share (see HNSW_WALK_FROM)."""
        import faiss

        from retrieval.index import exact_top_k, filtered_params

        kind = self.index_type
        if kind == "hnsw" and len(allowed) < HNSW_WALK_FROM * self.index.ntotal:
            # The graph's own flat storage, scanned exactly; the selector sees internal
            # row numbers, translated to chunk ids through the id map.
            storage = faiss.downcast_index(self.index.index).storage
            selector = faiss.IDSelectorBatch(allowed)
            translated = faiss.IDSelectorTranslated(self.index.id_map, selector)
            scores, rows = storage.search(queries, k_index,
                                          params=faiss.SearchParameters(sel=translated))
            id_map = faiss.vector_to_array(self.index.id_map)
            return scores, np.where(rows >= 0, id_map[np.maximum(rows, 0)], -1)
        if kind in ("flat", "hnsw") or len(allowed) >= FILTER_EXACT_BELOW or self.exact is None:
            scores, ids = self.index.search(
                queries, k_index, params=filtered_params(allowed, self.search_params, k_index))
            # flat is exact; a walk or quantized search that comes back short is redone
            if kind == "flat" or self.exact is None or \
                    (ids >= 0).sum(axis=1).min() >= min(k_index, len(allowed)):
                return scores, ids
        kept_ids, kept = self.exact(allowed)
        return exact_top_k(kept_ids, kept, queries, k)


@contextlib.contextmanager
def one_thread_for(n_queries: int) -> Iterator[None]:
    """One query: FAISS runs on the calling thread alone for the block.

    FAISS splits even one query's scan or walk over an OpenMP team, whose threads sleep
    between queries and must all be woken and finish for the answer: with the cores
    busy (a server's other requests, an encoder, other programs) that wait is most of
    the search. Measured on 2 busy cores, one query over 30,000 vectors: 93 ms with two
    threads, 3.4 ms with one (over 300 vectors: 22 ms against 0.1). A server already
    runs queries side by side on its request threads. The setting is the calling
    thread's own (an OpenMP ICV), and is put back, so builds keep every core."""
    if n_queries != 1:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def vector_store(store) -> str:
    """The vector store a Store's dense methods use: "faiss" (the default),
    "milvus" (Milvus Lite in the store folder) or a Milvus server URI."""
    return store.get_meta("vector_store") or FAISS


def backend_label(backend: str) -> str:
    """Where an index lives, as `ragmini status` says it."""
    if backend == FAISS:
        return "files"
    return "milvus lite" if backend == "milvus" else f"milvus {backend}"


def parse_backend(spec: str | None) -> str:
    """The vector store a `--vector-store` value names, spelled as stored: "faiss",
    "milvus" (Milvus Lite inside the store folder), or a server's http(s) URI
    (`milvus://HOST:PORT` is read as http://HOST:PORT)."""
    from urllib.parse import urlsplit

    spec = (spec or FAISS).strip()
    if spec.lower() in (FAISS, "milvus", "milvus-lite"):
        return "milvus" if spec.lower().startswith("milvus") else FAISS
    parts = urlsplit(spec)
    if parts.scheme in ("milvus", "http", "https", "tcp") and parts.hostname:
        scheme = "https" if parts.scheme == "https" else "http"
        return f"{scheme}://{parts.hostname}:{parts.port or 19530}"
    raise RagminiError(f"unknown vector store '{spec}': use faiss (the default), milvus "
                       "(Milvus Lite in the store folder), or milvus://HOST:PORT / "
                       "http(s)://HOST:PORT for a Milvus server", param="vector_store")


MILVUS_INDEX_TYPES = ("flat", "hnsw")


def check_index_type(backend: str, index_type: str | None) -> None:
    """Refuse, before anything is written, an index type the backend does not build."""
    if index_type is not None and backend != FAISS and index_type not in MILVUS_INDEX_TYPES:
        raise RagminiError(f"on Milvus, --index is flat or hnsw (not {index_type}); "
                           "ivf-pq and sq8 are FAISS index types", param="index_type")
