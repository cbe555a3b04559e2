"""TF-IDF with cosine similarity, with scikit-learn, over the same chunks as every method.

The classic sparse baseline beside bm25: sublinear term frequency (1 + log tf),
smoothed idf, rows L2-normalised so a dot product is the cosine. Like bm25 it
matches words exactly (no stemming) and is rebuilt on every change: fitting
the vectorizer is a pass over the chunk texts.

Files in ``<store>/index/``: ``tfidf.json`` (params, the commit point) naming a
folder ``tfidf-g<generation>-<tag>/`` with ``matrix.npz`` (chunks x terms, CSR),
``vocabulary.json`` (term -> column), ``idf.npy`` and ``chunk_ids.npy`` (row ->
chunk id). Nothing is pickled: every file is a plain array or JSON.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np

from core.errors import IndexStale, NoMatch
from ingest.store import Store
from retrieval.contract import (
    MAX_QUERY_CHARS,
    Hit,
    MethodReport,
    MethodStatus,
    allowed_mask,
    check_queries,
    hits_from_ids,
    passage_text,
)
from retrieval.index import LOADED, commit_params, read_folder_params, write_folder

METHOD = "tfidf"
# Words of two or more letters/digits/underscores: keeps "ls", "qdisc", "x86_64",
# "ip6tables"; splits "ssh-keygen" and "resolv.conf" at the punctuation.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# Lucene's English stop set, as bm25 uses. scikit-learn's own 318-word list drops
# words that name things in technical text: find, top, show, system, name, fill.
STOP_WORDS = ("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
              "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
              "there", "these", "they", "this", "to", "was", "will", "with")
QUERY_BATCH = 64  # queries scored at once: a dense (64, n_chunks) float32 block


@dataclass(frozen=True)
class TfidfParams:
    method: str
    model: str
    n_chunks: int
    n_terms: int
    store_generation: int
    folder: str
    ids_sha256: str
    built_at: str = ""


def _model() -> str:
    return (f"tfidf scikit-learn {version('scikit-learn')} sublinear_tf smooth_idf l2, "
            f"token {TOKEN_PATTERN}, lowercase, lucene english stopwords, no stemming")


def _vectorizer(vocabulary: dict[str, int] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN,
                           stop_words=list(STOP_WORDS), sublinear_tf=True, smooth_idf=True,
                           norm="l2", min_df=1, dtype=np.float32, vocabulary=vocabulary)


def build_tfidf(store: Store) -> TfidfParams:
    """Fit on every live chunk (title + text) and commit the index atomically."""
    from scipy import sparse

    ids, texts = [], []
    for batch in store.iter_chunks():
        ids.extend(c.chunk_id for c in batch)
        texts.extend(passage_text(c.title, c.text) for c in batch)
    store.register_method(METHOD, _model(), 0)
    vectorizer = _vectorizer()
    try:
        matrix = vectorizer.fit_transform(texts).tocsr()
        vocabulary = {t: int(i) for t, i in vectorizer.vocabulary_.items()}
        idf = vectorizer.idf_.astype(np.float32)
    except ValueError:  # no chunks, or not one word outside the stop list
        matrix = sparse.csr_matrix((len(texts), 0), dtype=np.float32)
        vocabulary, idf = {}, np.zeros(0, dtype=np.float32)
    id_array = np.asarray(ids, dtype=np.int64)

    def write(tmp: Path) -> None:
        sparse.save_npz(tmp / "matrix.npz", matrix, compressed=False)
        (tmp / "vocabulary.json").write_text(json.dumps(vocabulary, ensure_ascii=False))
        np.save(tmp / "idf.npy", idf)
        np.save(tmp / "chunk_ids.npy", id_array)

    folder = write_folder(store.index_dir, METHOD, store.generation, write)
    params = TfidfParams(METHOD, _model(), len(ids), len(vocabulary), store.generation, folder,
                         hashlib.sha256(id_array.tobytes()).hexdigest(),
                         datetime.now(timezone.utc).isoformat(timespec="seconds"))
    commit_params(store.index_dir, METHOD, params)
    return params


def read_tfidf_params(directory: Path) -> TfidfParams | None:
    return read_folder_params(directory, METHOD, TfidfParams)


def tfidf_is_current(store: Store) -> bool:
    params = read_tfidf_params(store.index_dir)
    return (params is not None and params.store_generation == store.generation
            and params.model == _model())


class TfidfMethod:
    """The Method contract for tfidf: built from chunk texts, like bm25, so there
    are no vectors to embed and no FAISS index type to choose."""

    name = METHOD

    def index_generation(self, store: Store) -> int | None:
        params = read_tfidf_params(store.index_dir)
        return None if params is None else params.store_generation

    def update(self, store: Store, *, embedder=None, progress: bool = True,
               force_rebuild: bool = False, index_type: str | None = None) -> MethodReport:
        started = time.perf_counter()
        rebuilt = force_rebuild or not tfidf_is_current(store)
        n = build_tfidf(store).n_chunks if rebuilt else store.count("chunks")
        return MethodReport(METHOD, store.method_info(METHOD)["model"], 0, 0, n, rebuilt,
                            time.perf_counter() - started)

    def rebuild(self, store: Store, index_type: str | None = None) -> MethodReport:
        started = time.perf_counter()
        params = build_tfidf(store)
        return MethodReport(METHOD, params.model, 0, 0, params.n_chunks, True,
                            time.perf_counter() - started)

    def check(self, store: Store) -> MethodStatus:
        """Compare the index's chunk ids with the store's at its generation."""
        info = store.method_info(METHOD) or {"model": "?"}
        problems: list[str] = []
        size, generation, behind, n = 0, None, 0, 0
        try:
            params = read_tfidf_params(store.index_dir)
        except IndexStale as exc:
            params, problems = None, [str(exc)]
        if params is None:
            problems = problems or ["no index file"]
        else:
            generation, behind = params.store_generation, store.generation - params.store_generation
            folder = store.index_dir / params.folder
            size = sum(f.stat().st_size for f in folder.iterdir()) if folder.is_dir() else 0
            if params.model != info["model"]:
                problems.append(f"index built with {params.model}, the store records "
                                f"{info['model']}")
            try:
                ids, _ = _load(folder, params, cached=False)
            except IndexStale as exc:
                problems.append(str(exc))
            else:
                n = len(ids)
                live = store.chunk_ids(generation)
                if not np.array_equal(np.sort(ids), live):
                    problems.append(f"index holds {n} chunks, the store had {len(live)} at "
                                    f"generation {generation}")
        return MethodStatus(METHOD, info["model"], n, 0, 0, size, generation, behind, problems)

    def open(self, store: Store, embedder=None) -> TfidfSearcher:
        return TfidfSearcher(store)


@dataclass(frozen=True)
class _Loaded:
    by_term: object  # scipy CSR (n_terms, n_chunks): the transpose, so queries @ it is fast
    vectorizer: object | None  # fitted (vocabulary and idf) for queries; None: no terms


def _load(folder: Path, params: TfidfParams, cached: bool = True) -> tuple[np.ndarray, _Loaded]:
    """(chunk ids, the matrix and vocabulary), checked against `params`. With
    `cached`, matrices already loaded by this process are shared (a folder name
    is never reused for other content)."""
    from scipy import sparse

    def read() -> _Loaded:
        matrix = sparse.load_npz(folder / "matrix.npz").tocsr()
        vocabulary = json.loads((folder / "vocabulary.json").read_text())
        idf = np.load(folder / "idf.npy")
        if matrix.shape != (params.n_chunks, params.n_terms) or len(vocabulary) != len(idf) \
                or len(idf) != params.n_terms:
            raise ValueError("the matrix, vocabulary and idf disagree with the params")
        vectorizer = None
        if vocabulary:
            vectorizer = _vectorizer(vocabulary)
            vectorizer.idf_ = idf  # its fitted state; transform only reads it after this
        return _Loaded(matrix.T.tocsr(), vectorizer)

    try:
        ids = np.load(folder / "chunk_ids.npy")
        if hashlib.sha256(ids.astype(np.int64).tobytes()).hexdigest() != params.ids_sha256:
            raise ValueError("chunk id checksum mismatch")
        loaded = (LOADED.get((str(folder), params.ids_sha256), read) if cached else read())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise IndexStale(f"the 'tfidf' index in {folder} is damaged ({exc}); "
                         "run `ragmini status --repair`") from exc
    return ids, loaded


class TfidfSearcher:
    """TF-IDF cosine over the chunks of one store generation; the Searcher contract."""

    method = METHOD
    score_floor = 0.0  # cosine of non-negative vectors: what no shared word scores

    def __init__(self, store: Store):
        params = read_tfidf_params(store.index_dir)
        if params is None:
            raise IndexStale("the store has no 'tfidf' index; "
                             "run `ragmini ingest PATH --methods tfidf`")
        if params.store_generation > store.generation:
            raise IndexStale("the 'tfidf' index does not match the store; "
                             "run `ragmini status --repair`")
        self.ids, loaded = _load(store.index_dir / params.folder, params)
        self.by_term, self.vectorizer = loaded.by_term, loaded.vectorizer
        self.store = store
        self.params = params
        self.behind = store.generation - params.store_generation

    def search(self, queries: list[str], k: int = 5, allowed: np.ndarray | None = None
               ) -> list[list[Hit]]:
        check_queries(queries, k)
        queries = [q[:MAX_QUERY_CHARS] for q in queries]
        if self.vectorizer is None:
            if len(self.ids):  # chunks, but not one indexable word among them
                self._no_words(queries[0])
            return [[] for _ in queries]
        q_matrix = self.vectorizer.transform(queries).tocsr()
        nnz = np.diff(q_matrix.indptr)
        if (nnz == 0).any():
            self._no_words(queries[int(np.argmin(nnz))])
        mask = allowed_mask(self.ids, allowed)
        k = min(k, len(self.ids))
        all_ids, all_scores = [], []
        for start in range(0, len(queries), QUERY_BATCH):
            scores = (q_matrix[start:start + QUERY_BATCH] @ self.by_term).toarray()
            if mask is not None:
                scores[:, ~mask] = 0.0  # filtered out inside the ranking, before top-k
            rows = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            top = np.take_along_axis(scores, rows, axis=1)
            order = np.lexsort((self.ids[rows], -top), axis=1)  # best first, ties by id
            rows, top = np.take_along_axis(rows, order, 1), np.take_along_axis(top, order, 1)
            # No shared word, or a chunk the filter excludes: not a hit.
            all_ids.append(np.where(top > 0, self.ids[rows], -1))
            all_scores.append(top)
        return hits_from_ids(self.store, np.vstack(all_ids), np.vstack(all_scores))

    @staticmethod
    def _no_words(query: str):
        raise NoMatch(f"no word of '{query[:80]}' occurs in the corpus (tfidf matches "
                      "words exactly and skips common words); rephrase, or use the "
                      "sbert method", param="query")
