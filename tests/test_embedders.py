"""The two embedders on their real packaged models."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_glove_neighbours_match_published_values(glove):
    top = glove.keyed_vectors.most_similar("king", topn=5)
    assert [w for w, _ in top] == ["prince", "queen", "ii", "emperor", "son"]
    assert top[0][1] == pytest.approx(0.8236, abs=1e-3)
    assert top[1][1] == pytest.approx(0.7839, abs=1e-3)


def test_glove_mean_is_normalised_and_order_blind(glove):
    vecs = glove.embed(["dog bites man", "man bites dog", "qwzxv blorptastic", ""])
    assert vecs.shape == (4, 50) and vecs.dtype == np.float32
    assert np.linalg.norm(vecs[0]) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-6)  # averaging ignores order
    assert not vecs[2].any() and not vecs[3].any()  # nothing known: zero row, not NaN


def test_glove_mean_equals_gensim_mean(glove):
    words = ["retrieval", "of", "documents"]
    expected = glove.keyed_vectors.get_mean_vector(words, pre_normalize=False)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(glove.embed(["Retrieval of DOCUMENTS!"])[0], expected, atol=1e-5)


def test_sbert_shape_norm_and_semantics(sbert):
    vecs = sbert.embed([
        "How do I make my search results more relevant?",
        "Ways to improve the ranking quality of a search engine",
        "The recipe needs two eggs and a cup of flour.",
        "man bites dog",
        "dog bites man",
    ])
    assert vecs.shape == (5, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3
    assert vecs[3] @ vecs[4] < 0.999  # word order changes the vector
    assert sbert.max_seq_length == 256 and sbert.dim == 384


def test_empty_batches(glove, sbert):
    assert glove.embed([]).shape == (0, 50)
    assert sbert.embed([]).shape == (0, 384)
