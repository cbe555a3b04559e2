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
        self.embedder = embedder or get_embedder(method, store)
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
        check_queries(queries, k)
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
        return hits_from_ids(self.store, ids, scores)


def check_queries(queries: list[str], k: int) -> None:
    if k < 1:
        raise QueryError(f"k must be at least 1 (got {k})")
    for q in queries:
        if not q or not q.strip():
            raise QueryError("the query is empty; type some words to search for")


def hits_from_ids(store: Store, ids: np.ndarray, scores: np.ndarray) -> list[list[Hit]]:
    """Turn (n_queries, k) chunk ids and scores into ranked hits; -1 ids are skipped."""
    rows = store.chunk_rows(sorted({int(i) for i in np.ravel(ids) if i >= 0}))
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


RRF_K = 60
HYBRID_DEFAULT = ("bm25", "sbert")


class HybridSearcher:
    """Reciprocal rank fusion of two methods (Cormack et al. 2009): a chunk scores
    the sum over both rankings of 1 / (60 + rank); absent from one, it gets 0 there."""

    def __init__(self, first, second, depth: int = 100):
        self.parts = (first, second)
        self.method = f"hybrid:{first.method}+{second.method}"
        self.behind = max(first.behind, second.behind)
        self.depth = depth

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: list[str], k: int = 5) -> list[list[Hit]]:
        check_queries(queries, k)
        depth = max(self.depth, k)
        rankings = [part.search_many(queries, depth) for part in self.parts]
        results = []
        for per_query in zip(*rankings):
            fused: dict[int, float] = {}
            by_id: dict[int, Hit] = {}
            for hits in per_query:
                for hit in hits:
                    fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + hit.rank)
                    by_id.setdefault(hit.chunk_id, hit)
            best = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
            results.append([Hit(i, fused[cid], cid, by_id[cid].doc_id, by_id[cid].source,
                                by_id[cid].title, by_id[cid].text)
                            for i, cid in enumerate(best, 1)])
        return results


def parse_hybrid(method: str) -> tuple[str, str] | None:
    """("bm25", "sbert") for "hybrid", (a, b) for "hybrid:a+b", None otherwise."""
    if method == "hybrid":
        return HYBRID_DEFAULT
    if method.startswith("hybrid:"):
        parts = method.split(":", 1)[1].split("+")
        if len(parts) == 2 and all(parts) and not any(p.startswith("hybrid") for p in parts):
            return parts[0], parts[1]
        raise QueryError(f"'{method}': write a hybrid as hybrid:A+B, e.g. hybrid:bm25+sbert")
    return None


def open_searcher(store: Store, method: str, embedders: dict | None = None):
    """A searcher for any method: dense (glove, glove-sif, sbert), bm25, or a hybrid.

    All of them answer `search(query, k)` and `search_many(queries, k)` with Hits
    and say in `.behind` how many store commits their index lags.
    """
    embedders = embedders or {}
    pair = parse_hybrid(method)
    if pair is not None:
        return HybridSearcher(*(open_searcher(store, m, embedders) for m in pair))
    if method == "bm25":
        from retrieval.bm25 import Bm25Searcher

        return Bm25Searcher(store)
    return Retriever(store, method, embedders.get(method))
