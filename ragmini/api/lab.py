"""The embeddings lab: word neighbours, analogies, sentence similarity, tokens and
sampled continuations (`ragmini explore ...`). None of it needs a store except the
w2v neighbours, which ask the store for its model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ragmini.api import defaults as D
from ragmini.api.errors import QueryError, no_string
from ragmini.api.lab_records import Analogy, Generation, Neighbors, Similarity, Tokens
from ragmini.api.records import PathLike
from ragmini.api.generators import shared_generator
from ragmini.api.store import Store, as_store


def _glove():
    from retrieval.methods import MODELS

    from retrieval.glove import GloveEmbedder

    return MODELS.get("glove", GloveEmbedder.packaged)


def neighbors(word: str, n: int = 5, *, method: str = "glove",
              store: Store | PathLike | None = None) -> Neighbors:
    """The `n` words nearest to `word` by cosine similarity (`explore neighbors`).

    `method` "glove" reads the packaged GloVe 6B; "w2v" the word2vec model trained
    on a store's chunks (pass `store`; it is never trained here).

    Example:
        >>> [w for w, _ in ragmini.neighbors("king", 3).neighbors]
        ['prince', 'queen', 'ii']
    """
    from retrieval.geometry import neighbors as nearest

    if method == "w2v":
        return as_store(store if store is not None else D.store_path()).neighbors(word, n)
    if method != "glove":
        raise QueryError(f"neighbors takes glove or w2v, not '{method}'", param="method")
    embedder = _glove()
    result = nearest(embedder.keyed_vectors, word, n, vocabulary="GloVe")
    return Neighbors(word, method, embedder.model, tuple(result))


def analogy(a: str, b: str, c: str, n: int = 5) -> Analogy:
    """The words nearest to a - b + c under GloVe, the inputs excluded
    (`explore analogy`).

    Example:
        >>> ragmini.analogy("king", "man", "woman", n=1).results[0][0]
        'queen'
    """
    from retrieval.geometry import analogy as solve

    return Analogy(a, b, c, tuple(solve(_glove().keyed_vectors, a, b, c, n)))


def similarity(sentences: Sequence[str], *, method: str = D.METHOD, metric: str = "cosine",
               plot: PathLike | None = None) -> Similarity:
    """Pairwise similarity of `sentences` and a 2-D layout of them (MDS on cosine
    distances), with clusters (`explore similarity`).

    `method` is "glove" (averaged word vectors: blind to word order) or "sbert";
    `metric` is cosine, euclidean or dot. `plot` writes a PNG (heatmap + layout).

    Example:
        >>> same = ragmini.similarity(["dog bites man", "man bites dog"], method="glove")
        >>> round(float(same.matrix[0, 1]), 3)
        1.0
    """
    from retrieval.geometry import METRICS, mds_layout, pairwise
    from retrieval.methods import get_embedder

    items = no_string(sentences, "sentences")
    if len(items) < 2:
        raise QueryError("give at least two sentences to compare", param="sentences")
    if any(not s.strip() for s in items):
        raise QueryError("a sentence is empty", param="sentences")
    if method not in ("glove", "sbert"):
        raise QueryError(f"similarity takes glove or sbert, not '{method}'", param="method")
    if metric not in METRICS:
        raise QueryError(f"unknown metric '{metric}'; choose from {', '.join(METRICS)}",
                         param="metric")
    embedder = get_embedder(method, None)
    keeps_lengths = metric == "dot" and hasattr(embedder, "mean_vectors")
    vectors = embedder.mean_vectors(items) if keeps_lengths else embedder.embed(items)
    empty = [s for s, v in zip(items, vectors) if not v.any()]
    if empty:
        raise QueryError(f"no word of '{empty[0]}' is in the {method} vocabulary")
    matrix = pairwise(vectors, metric)
    layout = mds_layout(1.0 - pairwise(vectors, "cosine"))
    note = (f"{embedder.model} normalises its outputs, so dot equals cosine here"
            if metric == "dot" and not keeps_lengths else "")
    if plot:
        from eval.plots import plot_similarity

        plot_similarity(items, matrix, layout.coords, layout.clusters, Path(plot),
                        method=method, metric=metric)
    return Similarity(method, metric, tuple(items), matrix, layout.coords, layout.clusters,
                      note, Path(plot) if plot else None)


def tokens(text: str, tokenizer: str = "generator") -> Tokens:
    """How `text` is cut into tokens (`explore tokens`): "generator" (the ask model's
    byte-level BPE; Ġ marks a leading space), "sbert" (MiniLM WordPiece; ## continues
    a word), or a model folder or id."""
    from generation.inspect import token_view

    if not text.strip():
        raise QueryError("the text is empty", param="text")
    if tokenizer == "sbert":
        from ingest.chunk import load_tokenizer

        tok, name = load_tokenizer(), "all-MiniLM-L6-v2 (WordPiece)"
    else:
        gen = shared_generator(D.LAB_GENERATOR if tokenizer == "generator" else tokenizer,
                         fallback=tokenizer == "generator")
        tok, name = gen.tokenizer, gen.name
    view = token_view(tok, text)
    return Tokens(name, tuple(view.tokens), tuple(view.ids), view.n_words)


def generate(prompt: str, n: int = 3, *, temperature: float = 0.8, top_p: float = 1.0,
             top_k: int = 0, seed: int = 0, max_new_tokens: int = 40,
             show_probs: bool = False, generator: str = D.LAB_GENERATOR) -> Generation:
    """`n` sampled continuations of `prompt` side by side (`explore generate`);
    continuation i uses seed `seed + i`, so the same seed gives the same set. With
    `show_probs`, also the 10 likeliest first tokens at this temperature."""
    from generation.answer import Sampling
    from generation.inspect import continuations, next_token_probs

    if not prompt.strip():
        raise QueryError("the prompt is empty", param="prompt")
    if n < 1:
        raise QueryError("n must be at least 1", param="n")
    sampling = Sampling(temperature, top_p, top_k, max_new_tokens, seed, no_repeat_ngram=0)
    gen = shared_generator(generator, torch=True)
    texts = continuations(gen, prompt, n, sampling)
    probs = next_token_probs(gen, prompt, temperature) if show_probs else []
    return Generation(prompt, gen.name, temperature, top_p, top_k, seed, tuple(texts),
                      tuple(probs), gen.fallback_from)
