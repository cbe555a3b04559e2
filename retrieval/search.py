"""Query a method's FAISS index and return ranked chunks with their documents."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.store import Store
from ragmini.errors import IndexStale, QueryError
from retrieval.embedder import Embedder, get_embedder
from retrieval.index import load_index, read_params

MAX_QUERY_CHARS = 10_000


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float  # cosine similarity
    chunk_id: int
    doc_id: str
    source: str
    title: str
    text: str


class Retriever:
    """A method's index, its embedder and the store, checked against each other.

    Example:
        >>> with Store.open(".ragmini") as store:
        ...     hits = Retriever(store, "sbert").search("what is BM25?", k=3)
        >>> hits[0].doc_id
        'bm25.md'
    """

    def __init__(self, store: Store, method: str, embedder: Embedder | None = None):
        self.store = store
        self.method = method
        params = read_params(store.index_dir, method)
        if params is None:
            built = ", ".join(store.methods()) or "none"
            raise IndexStale(
                f"the store has no '{method}' index (indexes: {built}); "
                f"run `ragmini ingest PATH --methods {method}`"
            )
        # An index may be behind the store (an ingest is running, or was killed):
        # its chunk rows are kept until every index has caught up, so it still
        # answers for the state it was built from, never a mix.
        if params.store_generation > store.generation or (
            params.n_vectors != store.vector_counts(method, params.store_generation)[0]
        ):
            raise IndexStale(
                f"the '{method}' index does not match the store; run `ragmini status --repair`"
            )
        self.behind = store.generation - params.store_generation
        self.params = params
        self.index = load_index(store.index_dir, params)
        self.embedder = embedder or get_embedder(method)
        if (self.embedder.model, self.embedder.dim) != (params.model, params.dim):
            raise IndexStale(
                f"the '{method}' index was built with {params.model} ({params.dim}-d) but the "
                f"query embedder is {self.embedder.model} ({self.embedder.dim}-d); "
                "run `ragmini ingest` again to re-embed"
            )

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The top-`k` chunks for `query`, best first (fewer if the index is smaller)."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: list[str], k: int = 5) -> list[list[Hit]]:
        """Batch search: one embed call, one FAISS call, one store read."""
        if k < 1:
            raise QueryError(f"k must be at least 1 (got {k})")
        for q in queries:
            if not q or not q.strip():
                raise QueryError("the query is empty; type some words to search for")
        vectors = self.embedder.embed([q[:MAX_QUERY_CHARS] for q in queries])
        empty = ~vectors.any(axis=1)
        if empty.any():
            q = queries[int(np.argmax(empty))]
            raise QueryError(
                f"none of the words in '{q[:80]}' are in the {self.method} vocabulary; "
                "rephrase, or use --method sbert"
            )
        if self.index.ntotal == 0:
            return [[] for _ in queries]
        scores, ids = self.index.search(vectors, min(k, self.index.ntotal))
        rows = self.store.chunk_rows(sorted({int(i) for i in ids.ravel() if i >= 0}))
        results = []
        for q_scores, q_ids in zip(scores, ids):
            hits = []
            for score, cid in zip(q_scores, q_ids):
                row = rows.get(int(cid))
                if row is None:  # -1 padding, or a row purged since the index was read
                    continue
                hits.append(Hit(len(hits) + 1, float(score), row.chunk_id, row.doc_id,
                                row.source, row.title, row.text))
            results.append(hits)
        return results
