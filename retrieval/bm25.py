"""BM25 over the same chunks as the dense methods, with bm25s.

bm25s cannot add documents to an index, so every change rebuilds it; over
sparse matrices that takes a fraction of a second per 10,000 chunks. Files in
``<store>/index/``: ``bm25.json`` (params, the commit point) naming a folder
``bm25-g<generation>-<tag>/`` written by bm25s (its arrays, vocabulary and
params.index.json), plus ``chunk_ids.npy`` mapping its rows to chunk ids.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np

from core.errors import IndexStale, NoMatch
from ingest.store import Store
from retrieval.contract import (
    Hit,
    MethodReport,
    MethodStatus,
    allowed_mask,
    check_queries,
    hits_from_ids,
    passage_text,
)
from retrieval.index import LOADED, commit_params, read_folder_params, write_folder

METHOD = "bm25"
K1, B = 1.5, 0.75


@dataclass(frozen=True)
class Bm25Params:
    method: str
    model: str
    n_chunks: int
    store_generation: int
    folder: str
    ids_sha256: str
    built_at: str = ""


def _model() -> str:
    return f"bm25s {version('bm25s')} k1={K1} b={B} lucene, english stopwords, snowball stemmer"


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def build_bm25(store: Store) -> Bm25Params:
    """Index every live chunk (title + text) and commit it atomically."""
    import bm25s

    ids, texts = [], []
    for batch in store.iter_chunks():
        ids.extend(c.chunk_id for c in batch)
        texts.extend(passage_text(c.title, c.text) for c in batch)
    store.register_method(METHOD, _model(), 0)
    retriever = bm25s.BM25(k1=K1, b=B)
    tokens = (bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)
              if texts else None)
    # Chunks of nothing but stop words leave no vocabulary, which bm25s cannot index:
    # such a collection is indexed as empty (every search finds nothing).
    indexable = tokens is not None and bool(tokens.vocab)
    if indexable:
        retriever.index(tokens, show_progress=False)
    id_array = np.asarray(ids, dtype=np.int64)

    def write(tmp: Path) -> None:
        if indexable:
            retriever.save(str(tmp), show_progress=False)
        np.save(tmp / "chunk_ids.npy", id_array)

    folder = write_folder(store.index_dir, METHOD, store.generation, write)
    params = Bm25Params(METHOD, _model(), len(ids), store.generation, folder,
                        hashlib.sha256(id_array.tobytes()).hexdigest(),
                        datetime.now(timezone.utc).isoformat(timespec="seconds"))
    commit_params(store.index_dir, METHOD, params)
    return params


def read_bm25_params(directory: Path) -> Bm25Params | None:
    return read_folder_params(directory, METHOD, Bm25Params)


def bm25_is_current(store: Store) -> bool:
    params = read_bm25_params(store.index_dir)
    return (params is not None and params.store_generation == store.generation
            and params.model == _model())


class Bm25Method:
    """The Method contract for bm25: its index is built from chunk texts, so there
    are no vectors to embed and no FAISS index type to choose."""

    name = METHOD

    def index_generation(self, store: Store) -> int | None:
        params = read_bm25_params(store.index_dir)
        return None if params is None else params.store_generation

    def update(self, store: Store, *, embedder=None, progress: bool = True,
               force_rebuild: bool = False, index_type: str | None = None) -> MethodReport:
        started = time.perf_counter()
        rebuilt = force_rebuild or not bm25_is_current(store)
        n = build_bm25(store).n_chunks if rebuilt else store.count("chunks")
        return MethodReport(METHOD, store.method_info(METHOD)["model"], 0, 0, n, rebuilt,
                            time.perf_counter() - started)

    def rebuild(self, store: Store, index_type: str | None = None) -> MethodReport:
        started = time.perf_counter()
        params = build_bm25(store)
        return MethodReport(METHOD, params.model, 0, 0, params.n_chunks, True,
                            time.perf_counter() - started)

    def check(self, store: Store) -> MethodStatus:
        """bm25 indexes chunk texts: compare its chunk ids with the store's at its generation."""
        info = store.method_info(METHOD) or {"model": "?"}
        problems: list[str] = []
        size, generation, behind, n = 0, None, 0, 0
        try:
            params = read_bm25_params(store.index_dir)
        except IndexStale as exc:
            params, problems = None, [str(exc)]
        if params is None:
            problems = problems or ["no index file"]
        else:
            generation, behind = params.store_generation, store.generation - params.store_generation
            folder = store.index_dir / params.folder
            size = sum(f.stat().st_size for f in folder.iterdir()) if folder.is_dir() else 0
            try:
                searcher = Bm25Searcher(store)
            except IndexStale as exc:
                problems.append(str(exc))
            else:
                n = len(searcher.ids)
                live = store.chunk_ids(generation)
                if not np.array_equal(np.sort(searcher.ids), live):
                    problems.append(f"index holds {n} chunks, the store had {len(live)} at "
                                    f"generation {generation}")
        return MethodStatus(METHOD, info["model"], n, 0, 0, size, generation, behind, problems)

    def open(self, store: Store, embedder=None) -> Bm25Searcher:
        return Bm25Searcher(store)


class Bm25Searcher:
    """BM25 over the chunks of one store generation; the Searcher contract."""

    method = METHOD
    score_floor = 0.0  # for fusions normalising by a theoretical minimum

    def __init__(self, store: Store):
        import bm25s

        params = read_bm25_params(store.index_dir)
        if params is None:
            raise IndexStale("the store has no 'bm25' index; run `ragmini ingest PATH --methods bm25`")
        if params.store_generation > store.generation:
            raise IndexStale("the 'bm25' index does not match the store; run `ragmini status --repair`")
        folder = store.index_dir / params.folder
        try:
            self.ids = np.load(folder / "chunk_ids.npy")
            if hashlib.sha256(self.ids.astype(np.int64).tobytes()).hexdigest() != params.ids_sha256:
                raise ValueError("chunk id checksum mismatch")
            indexed = len(self.ids) and (folder / "params.index.json").exists()
            self.bm25 = LOADED.get((str(folder), params.ids_sha256), lambda: bm25s.BM25.load(
                str(folder), show_progress=False)) if indexed else None
        except (OSError, ValueError) as exc:
            raise IndexStale(
                f"the 'bm25' index in {folder} is damaged ({exc}); run `ragmini status --repair`"
            ) from exc
        self.store = store
        self.params = params
        self.behind = store.generation - params.store_generation
        # A Stemmer must not be called from two threads at once, and a searcher may
        # be shared by several (retrieval/searchers.py): one stemmer per thread.
        self._stemmers = threading.local()

    @property
    def _stemmer(self):
        stemmer = getattr(self._stemmers, "stemmer", None)
        if stemmer is None:
            stemmer = self._stemmers.stemmer = _stemmer()
        return stemmer

    def search(self, queries: list[str], k: int = 5, allowed: np.ndarray | None = None
               ) -> list[list[Hit]]:
        """With `allowed`, other chunks' scores are masked to 0 inside bm25s, so
        the top k are the best allowed chunks."""
        import bm25s

        check_queries(queries, k)
        if self.bm25 is None:
            return [[] for _ in queries]
        mask = allowed_mask(self.ids, allowed)
        if mask is not None and not mask.any():
            return [[] for _ in queries]
        tokens = bm25s.tokenize(list(queries), stopwords="en", stemmer=self._stemmer,
                                return_ids=False, show_progress=False)
        vocab = self.bm25.vocab_dict
        tokens = [[t for t in q if t in vocab] for q in tokens]
        for q, t in zip(queries, tokens):
            if not t:
                raise NoMatch(f"no word of '{q[:80]}' occurs in the corpus (bm25 matches "
                              "words exactly); rephrase, or use the sbert method",
                              param="query")
        k = min(k, len(self.ids))
        # n_threads=0 scores in this thread; any other number starts a thread pool
        # on every call (most of a search's time on a small collection).
        rows, scores = self.bm25.retrieve(
            tokens, k=k, show_progress=False, n_threads=0,
            weight_mask=None if mask is None else mask.astype(np.float32))
        chunk_ids = self.ids[rows]
        # bm25s returns k rows even when fewer chunks match; a zero score is no match.
        chunk_ids = np.where(scores > 0, chunk_ids, -1)
        return hits_from_ids(self.store, chunk_ids, scores)
