"""The embeddings lab: numbers first, then that each plot is a real PNG."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from generation.answer import Sampling
from generation.inspect import continuations, next_token_probs, token_view
from generation.models import load_generator
from core.errors import QueryError
from retrieval.geometry import analogy, close_spellings, corpus_map, mds_layout, neighbors, pairwise
from tests.test_cli import run_cli

SENTENCES = ["dog bites man", "man bites dog", "The cat sat on the mat",
             "A kitten rested on the rug", "Stock markets fell sharply today",
             "Shares dropped as investors panicked", "How do I reset my password?",
             "I forgot my login credentials"]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
def test_neighbours_and_analogy_on_glove(glove):
    kv = glove.keyed_vectors
    top = neighbors(kv, "King", 5)
    assert [w for w, _ in top] == ["prince", "queen", "ii", "emperor", "son"]
    assert top[0][1] == pytest.approx(0.824, abs=1e-3) and top[1][1] == pytest.approx(0.784, abs=1e-3)
    assert [w for w, _ in neighbors(kv, "diamond", 5)] == ["gold", "diamonds", "gem", "silver",
                                                            "jewel"]
    result = analogy(kv, "king", "man", "woman", 3)
    assert result[0][0] == "queen" and result[0][1] == pytest.approx(0.852, abs=1e-3)
    assert not {"king", "man", "woman"} & {w for w, _ in result}


@pytest.mark.slow
def test_unknown_word_suggests_spellings(glove):
    assert close_spellings(glove.keyed_vectors, "embeddng")[0] == "embedding"
    with pytest.raises(QueryError, match="did you mean embedding"):
        neighbors(glove.keyed_vectors, "embeddng")
    with pytest.raises(QueryError, match="'qwzxvq' is not in the GloVe vocabulary$"):
        analogy(glove.keyed_vectors, "king", "qwzxvq", "woman")


def test_pairwise_matrices_by_hand():
    v = np.array([[3.0, 4.0], [4.0, 3.0], [0.0, 2.0]])
    cos = pairwise(v, "cosine")
    np.testing.assert_allclose(np.diag(cos), 1.0)
    np.testing.assert_allclose(cos, cos.T)
    assert cos[0, 1] == pytest.approx(24 / 25) and cos[0, 2] == pytest.approx(0.8)
    np.testing.assert_allclose(pairwise(v, "dot")[0], [25, 24, 8])
    euc = pairwise(v, "euclidean")
    assert euc[0, 1] == pytest.approx(np.sqrt(2)) and euc[1, 1] == 0
    with pytest.raises(QueryError, match="unknown metric"):
        pairwise(v, "manhattan")


@pytest.mark.slow
def test_word_order_blind_spot(glove, sbert):
    g, s = glove.embed(SENTENCES[:2]), sbert.embed(SENTENCES[:2])
    assert pairwise(g, "cosine")[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert pairwise(s, "cosine")[0, 1] < 0.95


@pytest.mark.slow
def test_mds_layout_is_faithful_and_clusters_pairs(sbert):
    from scipy.stats import spearmanr

    vectors = sbert.embed(SENTENCES)
    d = 1 - pairwise(vectors, "cosine")
    layout = mds_layout(d)
    planar = pairwise(layout.coords, "euclidean")
    iu = np.triu_indices(len(SENTENCES), 1)
    assert spearmanr(d[iu], planar[iu]).statistic > 0.8
    # The sentences come in four paraphrase pairs; the silhouette-chosen clusters find them.
    pairs = [set(np.flatnonzero(layout.clusters == c)) for c in np.unique(layout.clusters)]
    assert sorted(map(sorted, pairs)) == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_corpus_map_counts_same_document_neighbours():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    vectors = np.vstack([c + 0.01 * rng.normal(size=(5, 16)) for c in centres])
    docs = [d for d in "abc" for _ in range(5)]
    m = corpus_map(vectors, docs)
    assert m.same_doc_neighbour == 1.0
    assert m.chance == pytest.approx(3 * 5 * 4 / (15 * 14))
    assert m.pca.shape == (15, 2) and m.tsne.shape == (15, 2)


def test_token_views(tokenizer, tiny_gpt2_dir):
    wp = token_view(tokenizer, "Tokenisation splits words")
    assert wp.tokens == ["token", "##isation", "splits", "words"] and wp.n_words == 3
    bpe = token_view(load_generator(str(tiny_gpt2_dir), fallback=False).tokenizer,
                     "the tokens of a query")
    assert any(t.startswith("Ġ") for t in bpe.tokens)  # GPT-2's leading-space marker
    assert len(bpe.ids) == len(bpe.tokens) >= 5


def test_sampling_reproducible_and_temperature_flattens(tiny_gpt2_dir):
    gen = load_generator(str(tiny_gpt2_dir), fallback=False)
    s = Sampling(temperature=1.0, max_new_tokens=12, seed=3, no_repeat_ngram=0)
    first = continuations(gen, "retrieval", 3, s)
    assert first == continuations(gen, "retrieval", 3, s)
    assert len(set(first)) > 1  # different seeds within the set
    cold = next_token_probs(gen, "retrieval", temperature=0.2, top=50)
    hot = next_token_probs(gen, "retrieval", temperature=5.0, top=50)
    assert cold[0][0] == hot[0][0]  # temperature never changes the order
    assert cold[0][1] > hot[0][1]
    assert all(0 <= p <= 1 for _, p in cold) and sum(p for _, p in cold) <= 1 + 1e-6


@pytest.mark.slow
def test_similarity_command_plot_and_json(capsys, tmp_path):
    plot = tmp_path / "sim.png"
    code, out, err = run_cli(capsys, "explore", "similarity", *SENTENCES, "--method", "glove",
                             "--plot", str(plot), "--json")
    assert code == 0, err
    data = json.loads(out)
    m = np.array(data["matrix"])
    assert m.shape == (8, 8) and np.allclose(m, m.T) and np.allclose(np.diag(m), 1)
    assert m[0, 1] == pytest.approx(1.0)  # glove: word order invisible
    width, height = png_size(plot)
    assert width >= 1200 and height >= 600 and plot.stat().st_size > 30_000


@pytest.mark.slow
def test_map_command_uses_stored_vectors(capsys, corpus_store_path, tmp_path):
    plot = tmp_path / "map.png"
    code, out, err = run_cli(capsys, "explore", "map", "--store", str(corpus_store_path),
                             "--plot", str(plot), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["documents"] == 41 and data["chunks"] > 41
    assert data["same_doc_neighbour"] > 0.8 > 0.05 > data["chance"]
    width, height = png_size(plot)
    assert width >= 1200 and height >= 600 and plot.stat().st_size > 30_000


@pytest.mark.parametrize("args,message", [
    (["explore", "similarity", "only one"], "at least two sentences"),
    (["explore", "similarity", "a b", "  "], "a sentence is empty"),
    (["explore", "tokens", ""], "the text is empty"),
    (["explore", "generate", "", "--generator", "smollm2"], "the prompt is empty"),
    (["explore", "map", "--store", "nowhere"], "no ragmini store"),
])
def test_explore_errors(capsys, args, message):
    code, _, err = run_cli(capsys, *args)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
