"""The contracts every retrieval method honours, and the records they pass on.

Three small shapes, at the bottom of retrieval (they import nothing of it):

- ``Embedder``: ``embed(list[str]) -> float32 (n, dim)``, rows L2-normalised.
  Dense methods are an embedder plus a FAISS index (``retrieval/dense.py``).
- ``Method``: one way of ranking chunks, as the store sees it. It is built from
  the store at a generation, saved beside its parameters, checked against the
  store, and opened as a ``Searcher``. Dense methods, bm25 and any later one
  (TF-IDF, a new encoder) implement it; indexing, status and reindex loop over
  Methods and never name one.
- ``Searcher``: ``search(queries, k, allowed=None) -> list[list[Hit]]``, best
  first, and ``behind``: how many store commits its index lags (0 when current).
  ``allowed`` (sorted int64 chunk ids, from a metadata filter) restricts the
  ranking to those chunks inside the method, not after it: k hits whenever k
  allowed chunks match.

The registry that names methods is ``retrieval/methods.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from core.errors import QueryError
from ingest.store import ChunkRow, OfChunk, Store

MAX_QUERY_CHARS = 10_000  # longer queries are cut: no encoder reads that far


class Embedder(Protocol):
    """Turns texts into vectors.

    `embed(texts)` returns a float32 array of shape (len(texts), dim) whose rows
    are L2-normalised, except that a text with nothing to embed (GloVe: no
    known word) gets an all-zero row, which callers must treat as "no vector".
    """

    name: str  # method name, e.g. "glove"
    model: str  # what produced the vectors, recorded beside every index
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit(OfChunk):
    """One ranked chunk. The chunk is the store's own record, passed on whole, so
    a field added where chunks are born (metadata, a page span) reaches every
    search result, citation and JSON body without another copy of the shape."""

    rank: int
    score: float  # the method's own score: cosine for dense methods, BM25, fused RRF
    chunk: ChunkRow

    def to_dict(self) -> dict:
        """The `search --json` hit: the same body for the CLI, the API and the server."""
        return {"rank": self.rank, "score": round(self.score, 6), "chunk_id": self.chunk_id,
                "doc_id": self.doc_id, "source": self.source, "title": self.title,
                "text": self.text, **self.chunk.location_fields()}


class Searcher(Protocol):
    """A method's index opened for one store generation."""

    method: str
    behind: int  # store commits the index does not reflect yet

    def search(self, queries: list[str], k: int, allowed: np.ndarray | None = None
               ) -> list[list[Hit]]: ...


@dataclass(frozen=True)
class MethodReport:
    """What bringing one method up to date (or rebuilding it) did."""

    method: str
    model: str
    embedded: int  # chunks embedded in this run
    empty: int  # chunks in the store this method has no vector for (GloVe: no known word)
    n_vectors: int  # vectors (or chunks) in the index
    rebuilt: bool
    seconds: float
    unembedded: int = 0  # live chunks still without a vector (an embed is needed)


@dataclass(frozen=True)
class MethodStatus:
    method: str
    model: str
    vectors: int  # live chunks with a vector
    empty: int  # live chunks embedded with nothing to embed
    unembedded: int  # live chunks with no vector row yet
    index_file_bytes: int
    index_generation: int | None
    behind: int  # store commits the index does not reflect yet
    problems: list[str] = field(default_factory=list)  # the index disagrees with the store
    backend: str = "files"  # where the index lives: files, or a Milvus (Lite, or a URI)

    @property
    def consistent(self) -> bool:
        return not self.problems


class Method(Protocol):
    """One ranking method as the store sees it: built, saved, checked, opened."""

    name: str

    def update(self, store: Store, *, embedder: Embedder | None = None, progress: bool = True,
               force_rebuild: bool = False, index_type: str | None = None) -> MethodReport:
        """Bring the method's data and index up to date with the store's chunks."""

    def rebuild(self, store: Store, index_type: str | None = None) -> MethodReport:
        """Rebuild the index from what the store holds, loading no model."""

    def index_generation(self, store: Store) -> int | None:
        """The store generation the committed index was built from, if any."""

    def check(self, store: Store) -> MethodStatus:
        """Compare the committed index with the store."""

    def open(self, store: Store, embedder: Embedder | None = None) -> Searcher:
        """The committed index, checked against the store, ready to search."""


def check_queries(queries: list[str], k: int) -> None:
    """The one query check; messages name the parameter, callers map it to a flag."""
    if k < 1:
        raise QueryError(f"k must be at least 1 (got {k})", param="k")
    for q in queries:
        if not q or not q.strip():
            raise QueryError("the query is empty; type some words to search for", param="query")


def search_one(searcher: Searcher, query: str, k: int = 5,
               allowed: np.ndarray | None = None) -> list[Hit]:
    """The top-`k` hits for one query."""
    return searcher.search([query], k, allowed)[0]


def allowed_mask(ids: np.ndarray, allowed: np.ndarray | None) -> np.ndarray | None:
    """For methods that score every row: True where the row's chunk id is allowed
    (None when nothing is filtered)."""
    if allowed is None:
        return None
    return np.isin(ids, allowed, assume_unique=False)


def passage_text(title: str, text: str) -> str:
    """What a chunk is embedded as: its document's title helps every method place it."""
    return f"{title}\n{text}" if title else text


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit rows; zero rows stay zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


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
            hits.append(Hit(len(hits) + 1, float(score), row))
        results.append(hits)
    return results
