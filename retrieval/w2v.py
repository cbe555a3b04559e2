"""Word2Vec trained on the store's own chunks, averaged like GloVe.

The corpus-trained counterpart of GloVe: a chunk (or query) is the L2-normalised
mean of its known words' vectors, tokenized exactly as GloVe's (lower-case runs
of letters and digits); a text with no known word gets an all-zero row. Its
vocabulary is the store's own words, so "qdisc" or "nftables" have vectors when
the corpus uses them twice, which the packaged GloVe never will.

Training: gensim word2vec with negative sampling (skip-gram for a small corpus,
CBOW above 100,000 words, see `architecture`), one worker thread and a fixed
seed, so the same chunks give the same vectors bit for bit (gensim's vocabulary
order follows the text, not Python's string hash, and `hashfxn` is a stable
CRC32 anyway). The model is trained once, the first time the method is needed
(usually the first `ragmini ingest --methods w2v`), and then kept fixed: a later
ingest embeds its new chunks with the same vectors, so stored vectors never go
stale, and the vocabulary is the first corpus's: words that only later
documents use are unknown to it (tfidf and bm25 see them at once). To retrain
on what the store holds now, call `retrieval.indexing.retrain_w2v(store)`: the new model has another
id, so every chunk is re-embedded and the index rebuilt.

Files in ``<store>/models/``: ``w2v.json`` (params, the commit point) naming a
folder ``w2v-<digest>/`` with ``vectors.npy`` (float32, memory-mapped on load),
``words.json`` (row -> word) and ``counts.npy`` (corpus frequency of each word).
The digest is of the vectors and words, so it names the content.

``w2v-sif`` is the same model with SIF word weights from the corpus counts
(`W2vSifEmbedder`); both methods share one trained model.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import numpy as np

from core.errors import IndexStale, RagminiError
from retrieval.contract import l2_normalize, passage_text
from retrieval.glove import WordMeanEmbedder, dict_lookup, keyed_vectors, tokenize
from retrieval.index import LOADED, atomic_write, fsync_dir

METHOD = "w2v"
VECTOR_SIZE = 100
WINDOW = 5
MIN_COUNT = 2  # a word seen once has a vector of its one context; mostly typos and numbers
NEGATIVE = 5
SAMPLE = 1e-3  # downsamples the frequent words
SEED = 0
# Passes: about TARGET_WORDS words in all, at least 5 (gensim's default, plenty for
# millions of words), at most 40 (a small corpus needs many passes to move at all).
TARGET_WORDS = 20_000_000
MIN_EPOCHS, MAX_EPOCHS = 5, 40
# Skip-gram learns far better vectors from little text (bundled corpus, 9k words:
# top-1 0.62 against CBOW's 0.45) but costs about 4x a word on one thread, so it
# is used only while the corpus is small; above, CBOW keeps 30,000 chunks near a
# minute. CBOW's learning rate is word2vec.c's 0.05, not gensim's 0.025: on the
# man pages (2.7M words, 7 passes, 400 dev queries) recall@10 0.45 against 0.31.
SG_MAX_TOKENS = 100_000
ALPHA = {"sg": 0.025, "cbow": 0.05}
SIF_METHOD = "w2v-sif"
SIF_A = 1e-3  # as glove-sif


def architecture(n_tokens: int) -> str:
    return "sg" if n_tokens <= SG_MAX_TOKENS else "cbow"


@dataclass(frozen=True)
class W2vParams:
    model: str  # recorded with the index and checked at query time
    folder: str
    sha256: str  # of words.json then vectors.npy's array bytes
    n_words: int
    dim: int
    n_chunks: int  # what it was trained on
    n_tokens: int
    epochs: int
    train_seconds: float
    trained_at: str = ""


def epochs_for(n_tokens: int) -> int:
    return int(np.clip(round(TARGET_WORDS / max(n_tokens, 1)), MIN_EPOCHS, MAX_EPOCHS))


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def train_vectors(sentences: list[list[str]], epochs: int | None = None
                  ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(words, vectors float32 (n_words, VECTOR_SIZE), counts int64) trained on
    `sentences`, most frequent word first. Deterministic for the same input."""
    from gensim.models import Word2Vec

    n_tokens = sum(len(s) for s in sentences)
    arch = architecture(n_tokens)
    model = Word2Vec(vector_size=VECTOR_SIZE, window=WINDOW, min_count=MIN_COUNT,
                     sg=int(arch == "sg"), alpha=ALPHA[arch], negative=NEGATIVE, sample=SAMPLE,
                     workers=1, seed=SEED, hashfxn=_stable_hash)
    model.build_vocab(sentences)
    if len(model.wv) == 0:
        return [], np.zeros((0, VECTOR_SIZE), dtype=np.float32), np.zeros(0, dtype=np.int64)
    model.train(sentences, total_examples=len(sentences),
                epochs=epochs if epochs is not None else epochs_for(n_tokens))
    words = list(model.wv.index_to_key)
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words], dtype=np.int64)
    return words, np.ascontiguousarray(model.wv.vectors, dtype=np.float32), counts


def store_sentences(store) -> list[list[str]]:
    """Every live chunk (title + text) as GloVe's tokens; strings interned, since
    30,000 chunks hold millions of tokens but only tens of thousands of words."""
    intern = sys.intern
    return [[intern(t) for t in tokenize(passage_text(c.title, c.text))]
            for batch in store.iter_chunks() for c in batch]


def _digest(words_json: bytes, vectors: np.ndarray) -> str:
    sha = hashlib.sha256(words_json)
    sha.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return sha.hexdigest()


def _model_string(digest: str, n_words: int, n_tokens: int, epochs: int) -> str:
    arch = architecture(n_tokens)
    return (f"w2v {digest[:12]} {arch} alpha={ALPHA[arch]:g} d={VECTOR_SIZE} window={WINDOW} "
            f"negative={NEGATIVE} "
            f"sample={SAMPLE:g} min_count={MIN_COUNT} epochs={epochs} seed={SEED}, "
            f"{n_words} words (gensim {version('gensim')})")


def models_dir(store) -> Path:
    return store.root / "models"


def read_w2v_params(directory: Path) -> W2vParams | None:
    path = directory / f"{METHOD}.json"
    try:
        return W2vParams(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise IndexStale(f"{path} is damaged ({exc}); retrain the w2v model with "
                         "`retrieval.indexing.retrain_w2v(store)`") from exc


def train_for_store(store) -> W2vParams:
    """Train on the store's live chunks and commit the model atomically."""
    started = time.perf_counter()
    sentences = store_sentences(store)
    n_tokens = sum(len(s) for s in sentences)
    epochs = epochs_for(n_tokens)
    words, vectors, counts = train_vectors(sentences, epochs)
    seconds = time.perf_counter() - started
    words_json = json.dumps(words, ensure_ascii=False).encode("utf-8")
    digest = _digest(words_json, vectors)
    directory = models_dir(store)
    directory.mkdir(parents=True, exist_ok=True)
    folder = f"{METHOD}-{digest[:16]}"
    tmp = directory / f".{folder}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    (tmp / "words.json").write_bytes(words_json)
    np.save(tmp / "vectors.npy", vectors)
    np.save(tmp / "counts.npy", counts)
    for f in tmp.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())
    if (directory / folder).is_dir():  # the same content, trained before: keep it
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, directory / folder)
    params = W2vParams(_model_string(digest, len(words), n_tokens, epochs), folder, digest,
                       len(words), VECTOR_SIZE, len(sentences), n_tokens, epochs, round(seconds, 3),
                       datetime.now(timezone.utc).isoformat(timespec="seconds"))
    atomic_write(directory / f"{METHOD}.json", json.dumps(asdict(params), indent=2).encode())
    fsync_dir(directory)
    for old in directory.glob(f"{METHOD}-*"):
        if old.is_dir() and old.name != folder:
            shutil.rmtree(old, ignore_errors=True)
    return params


class W2vEmbedder(WordMeanEmbedder):
    """Mean of the store's word2vec vectors, L2-normalised (cosine = inner product);
    all zeros for a text with no known word. `counts` are corpus frequencies."""

    name = METHOD

    def __init__(self, keyed_vectors, model: str, counts: np.ndarray):
        super().__init__(keyed_vectors.vectors, dict_lookup(keyed_vectors.key_to_index), model)
        self.keyed_vectors = keyed_vectors
        self.counts = counts


class W2vSifEmbedder(W2vEmbedder):
    """The same vectors, each word weighted a / (a + p(w)) before the mean (the SIF
    weights of Arora, Liang and Ma 2017), p(w) from the training corpus's own
    counts, so frequent words stop dominating every chunk. Unlike glove-sif there
    is no common-component removal: on the man pages it added 0.01 recall@10 to
    the weights' 0.09, not worth a second frozen fit."""

    name = SIF_METHOD

    def __init__(self, base: W2vEmbedder, a: float = SIF_A):
        super().__init__(base.keyed_vectors, f"w2v-sif a={a:g} corpus counts; {base.model}",
                         base.counts)
        p = self.counts / max(int(self.counts.sum()), 1)
        self.weights = (a / (a + p)).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(self.weighted_sums(list(texts), self.weights)[0])


def load_keyed_vectors(folder: Path, params: W2vParams):
    """gensim KeyedVectors over the memory-mapped vectors, checked against `params`."""
    try:
        words_json = (folder / "words.json").read_bytes()
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        counts = np.load(folder / "counts.npy")
        if _digest(words_json, vectors) != params.sha256:
            raise ValueError("checksum mismatch")
        words = json.loads(words_json)
    except (OSError, ValueError) as exc:
        raise IndexStale(f"the w2v model in {folder} is missing or damaged ({exc}); "
                         "retrain it with `retrieval.indexing.retrain_w2v(store)`, which re-embeds "
                         "every chunk") from exc
    kv = keyed_vectors(vectors, words)
    kv.expandos["count"] = counts  # so kv.get_vecattr(word, "count") works
    return kv, counts


def w2v_for_store(store, train: bool = True) -> W2vEmbedder:
    """The store's w2v embedder: its frozen model, trained now if the store has
    none (with `train`; otherwise RagminiError). Shared by the process once loaded.

    A model with no word at all (the store held too little text to see any word
    twice) is not kept: it embedded nothing, so it is trained again, at no cost
    to stored vectors, until the store has words to learn. A model that embedded
    the stored vectors but whose files are gone is never silently replaced: new
    vectors would not match the old ones.
    """
    directory = models_dir(store)
    params = read_w2v_params(directory)
    if params is None or (params.n_words == 0 and train):
        if params is None and any(store.method_info(m) for m in (METHOD, SIF_METHOD)):
            raise IndexStale(f"the store's w2v model ({directory / 'w2v.json'}) is missing; "
                             "retrain it with `retrieval.indexing.retrain_w2v(store)`, which "
                             "re-embeds every chunk")
        if params is None and not train:
            raise RagminiError(f"the store {store.root} has no w2v model; run "
                               "`ragmini ingest PATH --methods w2v` to train one")
        params = train_for_store(store)
    folder = directory / params.folder

    def load() -> W2vEmbedder:
        kv, counts = load_keyed_vectors(folder, params)
        return W2vEmbedder(kv, params.model, counts)

    return LOADED.get((str(folder), params.sha256), load)
