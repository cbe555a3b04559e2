"""`ragmini explore ...`: the embeddings-and-LLM lab, on the models the pipeline uses."""

from __future__ import annotations

from pathlib import Path

import click

import ragmini
from ragmini.api import defaults as D
from ragmini.clitools import emit as _emit
from ragmini.clitools import json_option as _json_option
from ragmini.clitools import store_option as _store_option


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
    # explore never trains a model: w2v reads the one the store already has
    found = ragmini.neighbors(word, n, method=method, store=store)
    if as_json:
        _emit(found.to_dict())
        return
    for w, s in found.neighbors:
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
    found = ragmini.analogy(a, b, c, n)
    if as_json:
        _emit(found.to_dict())
        return
    click.echo(f"{a} - {b} + {c} =")
    for w, s in found.results:
        click.echo(f"  {s:.3f}  {w}")


@explore.command()
@click.argument("sentences", nargs=-1, required=True)
@click.option("--method", type=click.Choice(["glove", "sbert"]), default=D.METHOD,
              show_default=True)
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
    found = ragmini.similarity(list(sentences), method=method, metric=metric, plot=plot)
    if as_json:
        _emit(found.to_dict())
        return
    matrix, note = found.matrix, found.note
    n = len(sentences)
    click.echo(f"{metric} ({method})")
    click.echo(" " * 42 + "".join(f"{j + 1:>8}" for j in range(n)))
    for i, s in enumerate(sentences):
        label = f"{i + 1:>2}. {s}"
        label = label if len(label) <= 40 else label[:39] + "…"
        click.echo(f"{label:<42}" + "".join(f"{matrix[i, j]:>8.3f}" for j in range(n)))
    click.echo("clusters: " + ", ".join(f"{i + 1}->{c + 1}" for i, c in enumerate(found.clusters)))
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
    view = ragmini.tokens(text, which)
    if as_json:
        _emit(view.to_dict())
        return
    click.echo(f"tokenizer: {view.tokenizer}")
    click.echo(f"{'#':>3}  {'token':<20} id")
    for i, (t, tid) in enumerate(zip(view.tokens, view.ids), 1):
        click.echo(f"{i:>3}  {t:<20} {tid}")
    click.echo(f"{view.n_words} words -> {len(view.ids)} tokens "
               f"({len(view.ids) / max(view.n_words, 1):.2f} tokens per word)")


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
@click.option("--generator", default=D.LAB_GENERATOR, show_default=True)
@_json_option
def generate(prompt, n, temperature, top_p, top_k, seed, max_new_tokens, show_probs, generator,
             as_json):
    """Sample N continuations of PROMPT side by side; the same seed gives the same ones.

    \b
    Examples:
      ragmini explore generate "Retrieval-augmented generation is" --seed 1
      ragmini explore generate "The capital of France is" --temperature 2 --show-probs
    """
    found = ragmini.generate(prompt, n, temperature=temperature, top_p=top_p, top_k=top_k,
                             seed=seed, max_new_tokens=max_new_tokens, show_probs=show_probs,
                             generator=generator)
    if found.fallback_from:
        click.echo(f"note: '{found.fallback_from}' is not available offline; using "
                   f"{found.generator}", err=True)
    if as_json:
        _emit(found.to_dict())
        return
    probs = found.next_token_probs
    for i, text in enumerate(found.continuations):
        click.echo(f"[{i + 1}] (seed {seed + i}) {prompt}{'' if text[:1] in ',.;:' else ' '}"
                   + " ".join(text.split()))
    if probs:
        click.echo(f"\nnext-token probabilities at temperature {temperature}:")
        for t, p in probs:
            click.echo(f"  {p:7.3f}  {t!r}  {'#' * max(1, round(p * 40)) if p >= 0.0125 else ''}")


@explore.command("map")
@click.option("--method", type=click.Choice(["glove", "sbert"]), default=D.METHOD,
              show_default=True)
@click.option("--plot", type=click.Path(path_type=Path), help="Write a PNG (PCA and t-SNE panels).")
@click.option("--store", type=click.Path(path_type=Path), default=None,
              help="Store folder (default $RAGMINI_STORE or .ragmini).")
@_json_option
def corpus_map_cmd(method, plot, store, as_json):
    """The store's chunks in 2-D, coloured by document: do topics cluster?

    Uses the vectors stored at ingest; no model is loaded.
    """
    with ragmini.open(store) as st:
        result = st.corpus_map(method, plot=plot)
    if as_json:
        _emit(result.to_dict())
        return
    doc_ids = result.doc_ids
    click.echo(f"{len(doc_ids)} chunks of {len(set(doc_ids))} documents ({method}): the nearest "
               f"other chunk is from the same document for {result.same_doc_neighbour:.0%} of "
               f"chunks (random: {result.chance:.0%})")
    if plot:
        click.echo(f"plot written to {plot}")
