"""Keep every method's index in step with the store, through the Method contract.

Nothing here names a method: each one is asked, through the registry, to
update, rebuild or check itself. Ingesting a folder end to end (load, chunk,
store, then these updates) is retrieval/ingesting.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import RagminiError
from ingest.store import Store
from retrieval import w2v
from retrieval.contract import Embedder, MethodReport
from retrieval.methods import get_embedder, get_method, index_parts
# (aliased: `vector_store` is also the name of the callers' parameter)
from retrieval.vectorstore import check_index_type, parse_backend
from retrieval.vectorstore import vector_store as current_vector_store


def update_index(store: Store, method: str, embedder: Embedder | None = None,
                 progress: bool = True, force_rebuild: bool = False,
                 index_type: str | None = None) -> MethodReport:
    """Bring one method's data and index up to date with the store's chunks."""
    return get_method(method).update(store, embedder=embedder, progress=progress,
                                     force_rebuild=force_rebuild, index_type=index_type)


def update_indexes(store: Store, methods: Iterable[str] = (), progress: bool = True,
                   embedders: dict | None = None, force_rebuild: frozenset[str] = frozenset(),
                   index_type: str | None = None) -> list[MethodReport]:
    """Update `methods` and every method the store already has, then purge rows
    that no index can refer to any more.

    Updating all of them matters: a changed document makes every method's index
    stale, not only the ones named on this run.
    """
    embedders = embedders or {}
    names = index_parts([*methods, *store.methods()])
    reports = [update_index(store, m, embedders.get(m), progress=progress,
                            force_rebuild=m in force_rebuild, index_type=index_type)
               for m in names]
    _purge(store)
    return reports


def _purge(store: Store) -> None:
    generations = [get_method(m).index_generation(store) for m in store.methods()]
    oldest = min((g for g in generations if g is not None), default=None)
    if oldest is not None:
        store.purge(oldest)


def rebuild_index(store: Store, method: str, index_type: str | None = None) -> MethodReport:
    """Rebuild `method`'s index from what the store holds (no model is loaded);
    `index_type` also becomes a dense method's choice for later rebuilds."""
    return get_method(method).rebuild(store, index_type)


def reindex(store: Store, methods: Iterable[str] = (), index_type: str | None = None,
            vector_store: str | None = None) -> list[MethodReport]:
    """Rebuild the indexes of `methods` (default: every method in the store), in
    `vector_store` when given (it becomes the store's choice)."""
    chosen = index_parts(methods) if methods else store.methods()
    if not chosen:
        raise RagminiError("the store has no vectors yet; run `ragmini ingest PATH` first")
    backend = chosen_backend(store, vector_store, index_type)
    if backend is not None:
        store.set_meta("vector_store", backend)
        if methods:  # every dense method moves, or the store would use two backends
            chosen = store.methods()
    return [rebuild_index(store, m, index_type) for m in chosen]


def chosen_backend(store: Store, spec: str | None, index_type: str | None) -> str | None:
    """The vector store `spec` names (None: the store keeps its own), refused with
    `index_type` before anything is written if it cannot build that type."""
    backend = parse_backend(spec) if spec is not None else None
    check_index_type(backend or current_vector_store(store), index_type)
    return backend


def retrain_w2v(store: Store, progress: bool = False) -> list[MethodReport]:
    """Train a new w2v model on the store's live chunks and re-embed every chunk with
    it, for w2v and for w2v-sif if the store has it (a new model id makes the update
    drop the old vectors); their MethodReports. The way to refresh the vocabulary
    once the corpus has grown or changed."""
    with store.writer_lock():
        w2v.train_for_store(store)
        # Forced: the same chunks at the same generation look current to the index
        # check, which compares counts, not the model that made the vectors.
        return [update_index(store, m, get_embedder(m, store), progress=progress,
                             force_rebuild=True)
                for m in (w2v.METHOD, w2v.SIF_METHOD)
                if m == w2v.METHOD or store.method_info(m)]

