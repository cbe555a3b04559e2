"""Embed the chunks a method has not seen yet, then rebuild its FAISS index."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ingest.store import Store
from ragmini.errors import RagminiError
from retrieval.embedder import Embedder, get_embedder, passage_text
from retrieval.index import build_index, read_params, save_index

EMBED_BATCH = 256  # chunks per embed call and per transaction


@dataclass(frozen=True)
class MethodReport:
    method: str
    model: str
    embedded: int  # chunks embedded in this run
    empty: int  # chunks in the store this method has no vector for (GloVe: no known word)
    n_vectors: int  # vectors in the index
    rebuilt: bool
    seconds: float


def index_is_current(store: Store, method: str) -> bool:
    params = read_params(store.index_dir, method)
    if params is None:
        return False
    with_vector, _ = store.vector_counts(method)
    return params.store_generation == store.generation and params.n_vectors == with_vector


def index_generation(store: Store, method: str) -> int | None:
    """The store generation `method`'s committed index was built from, if any."""
    if method == "bm25":
        from retrieval.bm25 import read_bm25_params

        params = read_bm25_params(store.index_dir)
    else:
        params = read_params(store.index_dir, method)
    return None if params is None else params.store_generation


def update_indexes(store: Store, methods: list[str] = (), progress: bool = True,
                   embedders: dict | None = None, force_rebuild: frozenset[str] = frozenset(),
                   index_type: str | None = None) -> list[MethodReport]:
    """Update `methods` and every method the store already has, then purge rows
    that no index can refer to any more.

    Updating all of them matters: a changed document makes every method's index
    stale, not only the ones named on this run.
    """
    embedders = embedders or {}
    names = expand_methods([*methods, *store.methods()])
    reports = [update_index(store, m, embedders.get(m), progress=progress,
                            force_rebuild=m in force_rebuild,
                            index_type=index_type if m != "bm25" else None) for m in names]
    oldest = min((g for m in store.methods() if (g := index_generation(store, m)) is not None),
                 default=None)
    if oldest is not None:
        store.purge(oldest)
    return reports


def expand_methods(methods) -> list[str]:
    """The indexes behind `methods`: a hybrid needs its two parts, nothing of its own."""
    from retrieval.search import parse_hybrid

    out: list[str] = []
    for m in methods:
        out.extend(parse_hybrid(m) or (m,))
    return list(dict.fromkeys(out))


def index_type_of(store: Store, method: str) -> str:
    """The FAISS index type chosen for `method` (flat unless `--index` said otherwise)."""
    return store.get_meta(f"index_type.{method}") or "flat"


def rebuild_index(store: Store, method: str, index_type: str | None = None) -> int:
    """Rebuild `method`'s index from its stored vectors (bm25: from the chunks);
    no model is loaded. `index_type` also becomes the method's choice for later
    rebuilds. Returns the number of vectors or chunks indexed."""
    if method == "bm25":
        from retrieval.bm25 import build_bm25

        return build_bm25(store).n_chunks
    info = store.method_info(method)
    if info is None:
        raise RagminiError(
            f"the store has no '{method}' vectors; run `ragmini ingest PATH --methods {method}`"
        )
    if index_type is not None:
        store.set_meta(f"index_type.{method}", index_type)
    chosen = index_type_of(store, method)
    ids, vectors = store.vectors(method)
    index = build_index(ids, vectors, chosen)
    save_index(index, store.index_dir, method=method, model=info["model"],
               store_generation=store.generation, chunking=store.chunk_config() or {},
               index_type=chosen)
    return len(ids)


def update_index(store: Store, method: str, embedder: Embedder | None = None,
                 progress: bool = True, force_rebuild: bool = False,
                 index_type: str | None = None) -> MethodReport:
    """Bring `method`'s stored vectors and index up to date with the store's chunks.

    The embedder is loaded only if some chunk lacks a vector or the method is
    new, so re-ingesting an unchanged corpus does no model work.
    """
    started = time.perf_counter()
    if method == "bm25":
        from retrieval.bm25 import bm25_is_current, build_bm25

        rebuilt = force_rebuild or not bm25_is_current(store)
        params = build_bm25(store) if rebuilt else None
        n = params.n_chunks if params else store.count("chunks")
        return MethodReport(method, store.method_info(method)["model"], 0, 0, n, rebuilt,
                            time.perf_counter() - started)
    missing = store.chunks_without_vectors(method)
    info = store.method_info(method)
    embedded = 0
    if missing or info is None or embedder is not None:
        embedder = embedder or get_embedder(method, store)
        if store.register_method(method, embedder.model, embedder.dim):
            missing = store.chunks_without_vectors(method)  # model changed: all again
        embedded = _embed_missing(store, method, embedder, missing, progress)
        info = store.method_info(method)
    params = read_params(store.index_dir, method)
    rebuilt = (force_rebuild or not index_is_current(store, method)
               or (index_type is not None and params is not None
                   and params.index_type != index_type))
    if rebuilt:
        rebuild_index(store, method, index_type)
    with_vector, empty = store.vector_counts(method)
    return MethodReport(method, info["model"], embedded, empty, with_vector, rebuilt,
                        time.perf_counter() - started)


def _embed_missing(store: Store, method: str, embedder: Embedder, missing, progress: bool) -> int:
    from tqdm import tqdm

    bar = tqdm(total=len(missing), desc=f"embedding ({method})", unit="chunk",
               disable=not progress or None, leave=False)
    with bar:
        for i in range(0, len(missing), EMBED_BATCH):
            batch = missing[i : i + EMBED_BATCH]
            vectors = embedder.embed([passage_text(c.title, c.text) for c in batch])
            store.put_vectors(method, [c.chunk_id for c in batch], vectors)
            bar.update(len(batch))
    return len(missing)
