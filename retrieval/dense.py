"""Dense methods: an embedder, the vectors it gives every chunk, and a FAISS index.

Every embedding method (glove, glove-sif, sbert, any later encoder) is a
`DenseMethod` with its own embedder loader; nothing here names one of them.
Vectors live in the store's `vectors` table, so rebuilding an index or switching
its type never loads a model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.errors import IndexStale, NoMatch, RagminiError
from ingest.store import Store
from retrieval.contract import (
    MAX_QUERY_CHARS,
    Embedder,
    Hit,
    MethodReport,
    MethodStatus,
    check_queries,
    hits_from_ids,
    passage_text,
)
from retrieval.index import build_index, load_index, read_params, save_index
from retrieval.vectorstore import (
    FAISS,
    FaissVectors,
    VectorStore,
    backend_label,
    vector_store,
)

EMBED_BATCH = 256  # chunks per embed call and per transaction


@dataclass(frozen=True)
class DenseMethod:
    """A Method whose chunks are vectors from `load_embedder(store)` in a FAISS index."""

    name: str
    load_embedder: Callable[[Store], Embedder]  # loads the model: called only when needed
    # Loads the same model from its package alone, with no store (the argument names
    # the sbert encoder): what a Ray worker can load. None: fitted on the store.
    portable: Callable[[str | None], Embedder] | None = None

    def index_type(self, store: Store) -> str:
        """The FAISS index type chosen for this method (flat unless `--index` said otherwise)."""
        return store.get_meta(f"index_type.{self.name}") or "flat"

    def index_generation(self, store: Store) -> int | None:
        params = read_params(store.index_dir, self.name)
        return None if params is None else params.store_generation

    def is_current(self, store: Store) -> bool:
        params = read_params(store.index_dir, self.name)
        if params is None:
            return False
        with_vector, _ = store.vector_counts(self.name)
        info = store.method_info(self.name)
        # A new model (a package upgrade, a retrained w2v) re-embeds every chunk; the
        # index of the old vectors must go even if the counts happen to agree.
        return (params.store_generation == store.generation and params.n_vectors == with_vector
                and info is not None and params.model == info["model"]
                and params.backend == vector_store(store)
                and (params.backend == FAISS or
                     params.meta_version == store.meta_version))

    def update(self, store: Store, *, embedder: Embedder | None = None, progress: bool = True,
               force_rebuild: bool = False, index_type: str | None = None) -> MethodReport:
        """Embed the chunks that lack a vector, then rebuild the index if it is stale.

        The embedder is loaded only if some chunk lacks a vector or the method is
        new, so re-ingesting an unchanged corpus does no model work.
        """
        started = time.perf_counter()
        missing = store.ids_without_vectors(self.name)
        embedded = 0
        if len(missing) or store.method_info(self.name) is None or embedder is not None:
            embedder = embedder or self.load_embedder(store)
            if store.register_method(self.name, embedder.model, embedder.dim):
                missing = store.ids_without_vectors(self.name)  # model changed: all again
            embedded = _embed_missing(store, self.name, embedder, missing, progress)
        params = read_params(store.index_dir, self.name)
        rebuilt = (force_rebuild or not self.is_current(store)
                   or (index_type is not None and params is not None
                       and params.index_type != index_type))
        if rebuilt:
            if not force_rebuild and self._can_sync(store, params, index_type):
                self._sync(store, params, progress)
            else:
                self.rebuild(store, index_type, progress=progress)
        with_vector, empty = store.vector_counts(self.name)
        return MethodReport(self.name, store.method_info(self.name)["model"], embedded, empty,
                            with_vector, rebuilt, time.perf_counter() - started)

    def _can_sync(self, store: Store, params, index_type: str | None) -> bool:
        """A Milvus collection catches up in place (only the changed chunks are
        written) when it holds this model's vectors in the chosen type and store."""
        info = store.method_info(self.name)
        return (params is not None and params.backend != FAISS
                and params.backend == vector_store(store) and info is not None
                and params.model == info["model"] and params.store_generation <= store.generation
                and params.index_type == (index_type or self.index_type(store)))

    def _sync(self, store: Store, params, progress: bool) -> None:
        from retrieval import milvus

        try:
            milvus.sync(store, self.name, store.method_info(self.name), params, progress)
        except IndexStale:  # the collection is gone: build it again
            self.rebuild(store, progress=progress)

    def rebuild(self, store: Store, index_type: str | None = None,
                progress: bool = False) -> MethodReport:
        """Rebuild the index from the stored vectors, in the store's vector store;
        `index_type` also becomes the method's choice for later rebuilds."""
        started = time.perf_counter()
        info = store.method_info(self.name)
        if info is None:
            raise RagminiError(f"the store has no '{self.name}' vectors; run "
                               f"`ragmini ingest PATH --methods {self.name}`")
        if index_type is not None:
            store.set_meta(f"index_type.{self.name}", index_type)
        chosen = self.index_type(store)
        backend = vector_store(store)
        try:
            old = read_params(store.index_dir, self.name)
        except IndexStale:
            old = None
        if backend == FAISS:
            index = build_from_store(store, self.name, int(info["dim"]), chosen)
            save_index(index, store.index_dir, method=self.name, model=info["model"],
                       store_generation=store.generation,
                       chunking=store.chunk_config() or {}, index_type=chosen)
            n = int(index.ntotal)
            del index
            if old is not None and old.backend != FAISS:
                from retrieval import milvus

                milvus.drop(store, old)
        else:
            from retrieval import milvus

            n = milvus.build(store, self.name, info, chosen, backend, old, progress).n_vectors
        _, empty = store.vector_counts(self.name)
        return MethodReport(self.name, info["model"], 0, empty, n, True,
                            time.perf_counter() - started,
                            len(store.ids_without_vectors(self.name)))

    def check(self, store: Store) -> MethodStatus:
        """Compare the index with the store: params, checksum and the exact id set."""
        info = store.method_info(self.name) or {"model": "?", "dim": 0}
        vectors, empty = store.vector_counts(self.name)
        unembedded = len(store.ids_without_vectors(self.name))
        problems: list[str] = []
        size, generation, behind = 0, None, 0
        try:
            params = read_params(store.index_dir, self.name)
        except IndexStale as exc:
            params, problems = None, [str(exc)]
        if params is None:
            problems = problems or ["no index file"]
        else:
            generation = params.store_generation
            behind = store.generation - generation
            path = store.index_dir / params.file
            size = path.stat().st_size if params.file and path.exists() else 0
            if params.backend != vector_store(store):
                problems.append(f"index is in {params.backend}, the store asks for "
                                f"{vector_store(store)}; run `ragmini reindex`")
            if params.model != info["model"]:
                problems.append(f"index built with {params.model}, store vectors from "
                                f"{info['model']}")
            if behind < 0:
                problems.append(f"index generation {generation} is ahead of the store "
                                f"({store.generation})")
            if params.backend != FAISS:
                from retrieval import milvus

                problems.extend(milvus.check(store, self.name, params))
                return MethodStatus(self.name, info["model"], vectors, empty, unembedded,
                                    size, generation, behind, problems,
                                    backend=backend_label(params.backend))
            try:
                index = load_index(store.index_dir, params)
            except IndexStale as exc:
                problems.append(str(exc))
            else:
                import faiss

                indexed = np.sort(faiss.vector_to_array(index.id_map))
                expected = store.vector_ids(self.name, generation)
                if not np.array_equal(indexed, expected):
                    problems.append(
                        f"index holds {len(indexed)} ids, the store has {len(expected)} vectors "
                        f"for generation {generation} ({len(np.setdiff1d(indexed, expected))} "
                        f"unknown, {len(np.setdiff1d(expected, indexed))} missing)")
        return MethodStatus(self.name, info["model"], vectors, empty, unembedded, size,
                            generation, behind, problems)

    def open(self, store: Store, embedder: Embedder | None = None) -> DenseSearcher:
        return DenseSearcher(store, self, embedder)


class DenseSearcher:
    """A dense method's index, its embedder and the store, checked against each other.

    Example:
        >>> with Store.open(".ragmini") as store:
        ...     hits = open_searcher(store, "sbert").search(["what is BM25?"], k=3)[0]
        >>> hits[0].doc_id
        'bm25.md'
    """

    score_floor = -1.0  # cosine, for fusions normalising by a theoretical minimum

    def __init__(self, store: Store, method: DenseMethod, embedder: Embedder | None = None):
        name = method.name
        params = read_params(store.index_dir, name)
        if params is None:
            built = ", ".join(store.methods()) or "none"
            raise IndexStale(f"the store has no '{name}' index (indexes: {built}); "
                             f"run `ragmini ingest PATH --methods {name}`")
        # An index may be behind the store (an ingest is running, or was killed):
        # its chunk rows are kept until every index has caught up, so it still
        # answers for the state it was built from, never a mix. What is checked here
        # costs the same at any size (two small rows): the only write that takes
        # vectors from under a committed index is a model change (register_method
        # drops the old model's vectors), which the methods row shows. `ragmini
        # status` compares the exact id sets.
        info = store.method_info(name)
        if params.store_generation > store.generation or info is None or (
                info["model"], info["dim"]) != (params.model, params.dim):
            raise IndexStale(f"the '{name}' index does not match the store; "
                             "run `ragmini status --repair`")
        self.store = store
        self.method = name
        self.behind = store.generation - params.store_generation
        self.params = params
        self.vectors: VectorStore = _open_vectors(store, params)
        self.embedder = embedder or method.load_embedder(store)
        if (getattr(self.embedder, "model", None), getattr(self.embedder, "dim", None)) != (
                params.model, params.dim):
            raise IndexStale(
                f"the '{name}' index was built with {params.model} ({params.dim}-d) but the "
                f"query embedder is {getattr(self.embedder, 'model', '?')} "
                f"({getattr(self.embedder, 'dim', '?')}-d); run `ragmini ingest` again to "
                "re-embed")

    def search(self, queries: list[str], k: int = 5, allowed: np.ndarray | None = None
               ) -> list[list[Hit]]:
        """Batch search: one embed call, one vector-store call, one store read. With
        `allowed`, only those chunk ids are ranked, inside the vector store."""
        check_queries(queries, k)
        vectors = self.embedder.embed([q[:MAX_QUERY_CHARS] for q in queries])
        empty = ~vectors.any(axis=1)
        if empty.any():
            q = queries[int(np.argmax(empty))]
            raise NoMatch(f"none of the words in '{q[:80]}' are in the {self.method} "
                          "vocabulary; rephrase, or use the sbert method", param="query")
        if self.params.n_vectors == 0:
            return [[] for _ in queries]
        scores, ids = self.vectors.search(vectors, k, allowed)
        return hits_from_ids(self.store, ids, scores)


def _open_vectors(store: Store, params) -> VectorStore:
    if params.backend != FAISS:
        from retrieval import milvus

        return milvus.open_vectors(store, params)
    generation = params.store_generation
    return FaissVectors(load_index(store.index_dir, params, cached=True), params.index_type,
                        params.search_params,
                        exact=lambda ids: store.vectors(params.method, generation, ids=ids))


def build_from_store(store: Store, method: str, dim: int, index_type: str):
    """A FAISS index of `method`'s live vectors, the collection held once.

    flat and hnsw keep full vectors: they are added a batch at a time as the store
    is read, so the index is the only copy. sq8 and ivf-pq train their quantizers
    on every vector first: those are read into one array, and the index built from
    it is a quarter (sq8) or a thirty-second (ivf-pq) of its size."""
    if index_type in ("flat", "hnsw"):
        import faiss

        index = build_index(np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32),
                            index_type)
        inner = faiss.downcast_index(index.index)
        flat = faiss.downcast_index(inner.storage) if index_type == "hnsw" else inner
        # Room for every vector up front: grown a batch at a time, the codes would be
        # copied into a buffer twice the size at each doubling, both held during the copy
        # (up to 2x the collection, at 1.1 million vectors just after one).
        n = store.vector_counts(method)[0]
        flat.codes.resize(n * flat.code_size)
        flat.codes.resize(0)  # a vector keeps its capacity when it shrinks
        for ids, vectors in store.iter_vectors(method):
            index.add_with_ids(np.ascontiguousarray(vectors), ids)
        return index
    ids, vectors = store.vectors(method)
    return build_index(ids, vectors, index_type)


def _embed_missing(store: Store, method: str, embedder: Embedder, missing: np.ndarray,
                   progress: bool) -> int:
    """Embed the chunks `missing` (ids), reading their texts a batch at a time: the
    collection's texts are never all in memory."""
    from tqdm import tqdm

    bar = tqdm(total=len(missing), desc=f"embedding ({method})", unit="chunk",
               disable=not progress or None, leave=False)
    done = 0
    with bar:
        for i in range(0, len(missing), EMBED_BATCH):
            rows = store.chunk_rows(missing[i : i + EMBED_BATCH])
            batch = [rows[int(c)] for c in missing[i : i + EMBED_BATCH] if int(c) in rows]
            if batch:
                vectors = embedder.embed([passage_text(c.title, c.text) for c in batch])
                store.put_vectors(method, [c.chunk_id for c in batch], vectors)
            done += len(batch)
            bar.update(len(batch))
    return done
