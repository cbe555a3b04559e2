"""The one contract every embedding method honours, and the method registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from ragmini.errors import RagminiError


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


def passage_text(title: str, text: str) -> str:
    """What a chunk is embedded as: its document's title helps both methods place it."""
    return f"{title}\n{text}" if title else text


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit rows; zero rows stay zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _glove(store=None) -> Embedder:
    from retrieval.glove import GloveEmbedder

    return GloveEmbedder.packaged()


def _glove_sif(store=None) -> Embedder:
    from retrieval.sif import sif_for_store

    if store is None:
        raise RagminiError("glove-sif is fitted on a store's chunks; open a store first")
    return sif_for_store(store)


def _sbert(store=None) -> Embedder:
    from retrieval.sbert import SbertEmbedder

    return SbertEmbedder.packaged()


# Factories, not instances: each loads its model only when asked for. Each takes
# the store, since a method may be fitted on its corpus (glove-sif).
METHODS: dict[str, Callable[..., Embedder]] = {
    "glove": _glove, "glove-sif": _glove_sif, "sbert": _sbert,
}
# Every method `ragmini` knows: dense ones above, bm25, and hybrids of two.
ALL_METHODS = ("glove", "glove-sif", "sbert", "bm25", "hybrid")


def get_embedder(method: str, store=None) -> Embedder:
    """Load the default embedder of a dense `method` ("glove", "glove-sif", "sbert")."""
    try:
        factory = METHODS[method]
    except KeyError:
        raise RagminiError(
            f"unknown method '{method}'; choose one of: {', '.join(ALL_METHODS)}"
        ) from None
    return factory(store)
