"""`ragmini explore ...`: the embeddings-and-LLM lab, on the models the pipeline uses."""

from __future__ import annotations

from pathlib import Path

import click

from ragmini.clitools import emit as _emit
from ragmini.clitools import json_option as _json_option
from ragmini.clitools import open_store as _open_store
from ragmini.clitools import store_option as _store_option
from core.errors import RagminiError


def _glove():
    from retrieval.glove import GloveEmbedder

    return GloveEmbedder.packaged()


@click.group()
def explore() -> None:
    """See the geometry and the generator: neighbours, analogies, similarity, tokens, sampling, maps."""


@explore.command()
@click.argument("word")
@click.option("-n", "n", default=5, show_default=True)
@click.option("--method", type=click.Choice(["glove", "w2v"]), default="glove", show_default=True,
              help="glove: the packaged GloVe 6B (Wikipedia and news); w2v: the word2vec model "
                   "trained on the store's own chunks (--store).")
@_store_option
@_json_option
def neighbors(word, n, method, store, as_json):
    """Nearest words to WORD by cosine similarity, under GloVe or the store's w2v.

    \b
    Examples:
      ragmini explore neighbors king
      ragmini explore neighbors socket --method w2v --store .ragmini
    """
    from retrieval.geometry import neighbors as nearest

    if method == "w2v":
        from retrieval.w2v import w2v_for_store

        with _open_store(store) as st:
            embedder = w2v_for_store(st, train=False)  # explore never trains a model
        vocabulary = "store's w2v"  # the words its chunks use at least twice
    else:
        embedder, vocabulary = _glove(), "GloVe"
    result = nearest(embedder.keyed_vectors, word, n, vocabulary=vocabulary)
    if as_json:
        from ragmini.api import Neighbors

        _emit(Neighbors(word, method, embedder.model, tuple(result)).to_dict())
        return
    for w, s in result:
        click.echo(f"{s:.3f}  {w}")


@explore.command()
@click.argument("a")
@click.argument("b")
@click.argument("c")
@click.option("-n", "n", default=5, show_default=True)
@_json_option
def analogy(a, b, c, n, as_json):
    """A - B + C: the words nearest to it, inputs excluded.

    \b
    Example (king - man + woman):
      ragmini explore analogy king man woman
    """
    from retrieval.geometry import analogy as solve

    result = solve(_glove().keyed_vectors, a, b, c, n)
    if as_json:
        from ragmini.api import Analogy

        _emit(Analogy(a, b, c, tuple(result)).to_dict())
        return
    click.echo(f"{a} - {b} + {c} =")
    for w, s in result:
        click.echo(f"  {s:.3f}  {w}")


@explore.command()
@click.argument("sentences", nargs=-1, required=True)
@click.option("--method", type=click.Choice(["glove", "sbert"]), default="sbert", show_default=True)
@click.option("--metric", type=click.Choice(["cosine", "euclidean", "dot"]), default="cosine",
              show_default=True)
@click.option("--plot", type=click.Path(path_type=Path), help="Write a PNG: heatmap + MDS layout.")
@_json_option
def similarity(sentences, method, metric, plot, as_json):
    """Pairwise similarity of SENTENCES, and a 2-D layout of them (MDS on cosine distances).

    \b
    Averaging is blind to word order; a sentence encoder is not:
      ragmini explore similarity "dog bites man" "man bites dog" --method glove
      ragmini explore similarity "dog bites man" "man bites dog" --method sbert
    """
    from retrieval.geometry import mds_layout, pairwise

    if len(sentences) < 2:
        raise RagminiError("give at least two sentences to compare")
    if any(not s.strip() for s in sentences):
        raise RagminiError("a sentence is empty")
    from retrieval.methods import get_embedder

    embedder = get_embedder(method, None)
    # Averaged word vectors keep their lengths for the dot product; an encoder
    # without mean_vectors gives unit vectors only.
    keeps_lengths = metric == "dot" and hasattr(embedder, "mean_vectors")
    vectors = (embedder.mean_vectors(list(sentences)) if keeps_lengths
               else embedder.embed(list(sentences)))
    empty = [s for s, v in zip(sentences, vectors) if not v.any()]
    if empty:
        raise RagminiError(f"no word of '{empty[0]}' is in the {method} vocabulary")
    matrix = pairwise(vectors, metric)
    layout = mds_layout(1.0 - pairwise(vectors, "cosine"))
    note = ""
    if metric == "dot" and not keeps_lengths:
        note = f"{embedder.model} normalises its outputs, so dot equals cosine here"
    if plot:
        from eval.plots import plot_similarity

        plot_similarity(list(sentences), matrix, layout.coords, layout.clusters, plot,
                        method=method, metric=metric)
    if as_json:
        from ragmini.api import Similarity

        _emit(Similarity(method, metric, tuple(sentences), matrix, layout.coords,
                         layout.clusters, note, plot).to_dict())
        return
    n = len(sentences)
    click.echo(f"{metric} ({method})")
    click.echo(" " * 42 + "".join(f"{j + 1:>8}" for j in range(n)))
    for i, s in enumerate(sentences):
        label = f"{i + 1:>2}. {s}"
        label = label if len(label) <= 40 else label[:39] + "…"
        click.echo(f"{label:<42}" + "".join(f"{matrix[i, j]:>8.3f}" for j in range(n)))
    click.echo("clusters: " + ", ".join(f"{i + 1}->{c + 1}" for i, c in enumerate(layout.clusters)))
    if note:
        click.echo(f"note: {note}", err=True)
    if plot:
        click.echo(f"plot written to {plot}")


@explore.command()
@click.argument("text")
@click.option("--tokenizer", "which", default="generator", show_default=True,
              help="'generator' (the ask model's BPE), 'sbert' (MiniLM WordPiece), or a model folder/id.")
@_json_option
def tokens(text, which, as_json):
    """How TEXT is cut into tokens: BPE (Ġ marks a leading space) or WordPiece (## continues a word).

    \b
    Examples:
      ragmini explore tokens "Tokenisation splits unbelievable words"
      ragmini explore tokens "Tokenisation splits unbelievable words" --tokenizer sbert
    """
    from generation.inspect import token_view

    if not text.strip():
        raise RagminiError("the text is empty")
    if which == "sbert":
        from ingest.chunk import load_tokenizer

        tokenizer, name = load_tokenizer(), "all-MiniLM-L6-v2 (WordPiece)"
    else:
        from generation.models import load_generator

        gen = load_generator("distilgpt2" if which == "generator" else which,
                             fallback=which == "generator", torch=True)
        tokenizer, name = gen.tokenizer, gen.name
    view = token_view(tokenizer, text)
    if as_json:
        from ragmini.api import Tokens

        _emit(Tokens(name, tuple(view.tokens), tuple(view.ids), view.n_words).to_dict())
        return
    click.echo(f"tokenizer: {name}")
    click.echo(f"{'#':>3}  {'token':<20} id")
    for i, (t, tid) in enumerate(zip(view.tokens, view.ids), 1):
        click.echo(f"{i:>3}  {t:<20} {tid}")
    click.echo(f"{view.n_words} words -> {len(view.ids)} tokens "
               f"({view.tokens_per_word:.2f} tokens per word)")


@explore.command()
@click.argument("prompt")
@click.option("-n", "n", default=3, show_default=True, help="Number of continuations.")
@click.option("--temperature", default=0.8, show_default=True, help="0 is greedy.")
@click.option("--top-p", default=1.0, show_default=True)
@click.option("--top-k", default=0, show_default=True, help="0 is off.")
@click.option("--seed", default=0, show_default=True, help="Continuation i uses seed+i.")
@click.option("--max-new-tokens", default=40, show_default=True)
@click.option("--show-probs", is_flag=True,
              help="Also print the 10 likeliest first tokens at this temperature.")
@click.option("--generator", default="distilgpt2", show_default=True)
@_json_option
def generate(prompt, n, temperature, top_p, top_k, seed, max_new_tokens, show_probs, generator,
             as_json):
    """Sample N continuations of PROMPT side by side; the same seed gives the same ones.

    \b
    Examples:
      ragmini explore generate "Retrieval-augmented generation is" --seed 1
      ragmini explore generate "The capital of France is" --temperature 2 --show-probs
    """
    from generation.answer import Sampling
    from generation.inspect import continuations, next_token_probs
    from generation.models import load_generator

    if not prompt.strip():
        raise RagminiError("the prompt is empty")
    if n < 1:
        raise RagminiError("-n must be at least 1")
    sampling = Sampling(temperature, top_p, top_k, max_new_tokens, seed, no_repeat_ngram=0)
    gen = load_generator(generator, torch=True)
    if gen.fallback_from:
        click.echo(f"note: '{gen.fallback_from}' is not available offline; using {gen.name}",
                   err=True)
    texts = continuations(gen, prompt, n, sampling)
    probs = next_token_probs(gen, prompt, temperature) if show_probs else []
    if as_json:
        from ragmini.api import Generation

        _emit(Generation(prompt, gen.name, temperature, top_p, top_k, seed, tuple(texts),
                         tuple(probs)).to_dict())
        return
    for i, text in enumerate(texts):
        click.echo(f"[{i + 1}] (seed {seed + i}) {prompt}{'' if text[:1] in ',.;:' else ' '}"
                   + " ".join(text.split()))
    if probs:
        click.echo(f"\nnext-token probabilities at temperature {temperature}:")
        for t, p in probs:
            click.echo(f"  {p:7.3f}  {t!r}  {'#' * max(1, round(p * 40)) if p >= 0.0125 else ''}")


@explore.command("map")
@click.option("--method", type=click.Choice(["glove", "sbert"]), default="sbert", show_default=True)
@click.option("--plot", type=click.Path(path_type=Path), help="Write a PNG (PCA and t-SNE panels).")
@click.option("--store", type=click.Path(path_type=Path), default=None,
              help="Store folder (default $RAGMINI_STORE or .ragmini).")
@_json_option
def corpus_map_cmd(method, plot, store, as_json):
    """The store's chunks in 2-D, coloured by document: do topics cluster?

    Uses the vectors stored at ingest; no model is loaded.
    """
    import os

    from ingest.store import Store
    from retrieval.geometry import corpus_map

    store = store or Path(os.environ.get("RAGMINI_STORE", ".ragmini"))
    with Store.open(store) as st:
        ids, vectors = st.vectors(method)
        if not len(ids):
            raise RagminiError(f"the store has no {method} vectors; run `ragmini ingest PATH`")
        rows = st.chunk_rows(ids.tolist())
    doc_ids = [rows[int(i)].doc_id for i in ids]
    result = corpus_map(vectors, doc_ids)
    if plot:
        from eval.plots import plot_corpus_map

        plot_corpus_map(result.pca, result.tsne, doc_ids, plot, method=method,
                        same_doc_neighbour=result.same_doc_neighbour, chance=result.chance)
    if as_json:
        from ragmini.api import CorpusMap

        _emit(CorpusMap(method, tuple(doc_ids), result.same_doc_neighbour, result.chance,
                        result.pca, result.tsne, plot).to_dict())
        return
    click.echo(f"{len(doc_ids)} chunks of {len(set(doc_ids))} documents ({method}): the nearest "
               f"other chunk is from the same document for {result.same_doc_neighbour:.0%} of "
               f"chunks (random: {result.chance:.0%})")
    if plot:
        click.echo(f"plot written to {plot}")
