"""The geometry behind retrieval, made visible: neighbours, analogies, similarity
matrices, 2-D layouts. Pure numbers; plots live in eval/plots.py."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from core.errors import QueryError

METRICS = ("cosine", "euclidean", "dot")


def _require_words(kv, words: list[str], vocabulary: str = "GloVe") -> None:
    for word in words:
        if word not in kv.key_to_index:
            close = close_spellings(kv, word)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise QueryError(f"'{word}' is not in the {vocabulary} vocabulary{hint}")


def close_spellings(kv, word: str, n: int = 3) -> list[str]:
    """Known words spelled like `word`: same first letter, similar length, difflib ratio.

    Filtering first keeps this at milliseconds instead of seconds over 400,000 words.
    """
    if not word:
        return []
    candidates = [w for w in kv.index_to_key
                  if w[:1] == word[:1] and abs(len(w) - len(word)) <= 2]
    return difflib.get_close_matches(word, candidates, n=n, cutoff=0.75)


def neighbors(kv, word: str, n: int = 5, vocabulary: str = "GloVe") -> list[tuple[str, float]]:
    """The `n` words nearest to `word` by cosine similarity (gensim KeyedVectors);
    `vocabulary` names the model in the message for an unknown word.

    Example:
        >>> neighbors(kv, "king", 2)
        [('prince', 0.8236...), ('queen', 0.7839...)]
    """
    word = word.strip().lower()
    _require_words(kv, [word], vocabulary)
    return [(w, float(s)) for w, s in kv.most_similar(word, topn=n)]


def analogy(kv, a: str, b: str, c: str, n: int = 5) -> list[tuple[str, float]]:
    """Words nearest to a - b + c, the three inputs excluded (king man woman -> queen).

    The exclusion matters: the result vector is usually still closest to `a`.
    """
    words = [w.strip().lower() for w in (a, b, c)]
    _require_words(kv, words)
    return [(w, float(s)) for w, s in
            kv.most_similar(positive=[words[0], words[2]], negative=[words[1]], topn=n)]


def pairwise(vectors: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """(n, n) matrix: cosine similarity, Euclidean distance, or raw dot product."""
    v = np.asarray(vectors, dtype=np.float64)
    if metric == "dot":
        return v @ v.T
    if metric == "cosine":
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        unit = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
        return np.clip(unit @ unit.T, -1.0, 1.0)
    if metric == "euclidean":
        sq = (v * v).sum(axis=1)
        return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * v @ v.T, 0.0))
    raise QueryError(f"unknown metric '{metric}'; choose from {', '.join(METRICS)}")


@dataclass(frozen=True)
class Layout:
    """2-D coordinates of n items and a cluster label for each."""

    coords: np.ndarray  # (n, 2)
    clusters: np.ndarray  # (n,) ints
    stress: float  # MDS stress (lower is a more faithful layout)


def mds_layout(distances: np.ndarray, seed: int = 0) -> Layout:
    """Multidimensional scaling of a precomputed distance matrix, with clusters
    from average-linkage agglomeration of the same distances."""
    from sklearn.manifold import MDS

    d = np.asarray(distances, dtype=np.float64)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    n = len(d)
    if n < 3:
        coords = np.array([[0.0, 0.0], [float(d[0, 1]) if n == 2 else 0.0, 0.0]])[:n]
        return Layout(coords, np.zeros(n, dtype=int), 0.0)
    mds = MDS(n_components=2, metric="precomputed", random_state=seed, n_init=4,
              init="random")
    coords = mds.fit_transform(d)
    return Layout(coords, _clusters(d), float(mds.stress_))


def _clusters(d: np.ndarray) -> np.ndarray:
    """Average-linkage clusters, their number chosen by the best silhouette score."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    best, best_score = np.zeros(len(d), dtype=int), -1.0
    for k in range(2, min(len(d) - 1, 12) + 1):
        labels = AgglomerativeClustering(n_clusters=k, metric="precomputed",
                                         linkage="average").fit_predict(d)
        score = silhouette_score(d, labels, metric="precomputed")
        if score > best_score:
            best, best_score = labels, score
    return best


@dataclass(frozen=True)
class CorpusMap:
    pca: np.ndarray  # (n, 2)
    tsne: np.ndarray | None  # (n, 2), None when there are too few points
    doc_ids: list[str]
    same_doc_neighbour: float  # share of chunks whose nearest other chunk is from the same document
    chance: float  # the same share if neighbours were random


def corpus_map(vectors: np.ndarray, doc_ids: list[str], seed: int = 0) -> CorpusMap:
    """Project chunk vectors to 2-D (PCA, and t-SNE when there are enough points)
    and measure how often a chunk's nearest neighbour shares its document."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    v = np.asarray(vectors, dtype=np.float32)
    n = len(v)
    if n < 3:
        raise QueryError(f"a corpus map needs at least 3 chunks with vectors (the store has {n})")
    pca = PCA(n_components=2, random_state=seed).fit_transform(v)
    tsne = None
    if n >= 10:
        perplexity = min(30.0, (n - 1) / 3)
        tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed,
                    init="pca").fit_transform(v)
    sims = pairwise(v, "cosine")
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)
    docs = np.array(doc_ids)
    same = float((docs[nearest] == docs).mean())
    _, counts = np.unique(docs, return_counts=True)
    chance = float(((counts * (counts - 1)).sum()) / (n * (n - 1)))
    return CorpusMap(pca, tsne, list(doc_ids), same, chance)
