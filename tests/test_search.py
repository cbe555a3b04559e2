"""Search on the real bundled corpus with both real methods."""

from __future__ import annotations

import pytest

from core.errors import QueryError
from tests.conftest import dense_search

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["glove", "sbert"])
def test_top_hit_for_a_plain_question(corpus_store, glove, sbert, method):
    embedder = {"glove": glove, "sbert": sbert}[method]
    query = "GloVe co-occurrence counts word vectors"
    hits = dense_search(corpus_store, method, embedder, query, k=5)
    assert hits[0].doc_id == "glove.md"
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert hits[0].title.startswith("GloVe") and "co-occurrence" in hits[0].text


def test_sbert_finds_paraphrase_glove_misses(corpus_store, glove, sbert):
    query = "why does my decoder keep saying the same phrase over and over"
    sb = dense_search(corpus_store, "sbert", sbert, query, k=3)
    assert sb[0].doc_id == "greedy-and-beam-search.txt"


def test_k_larger_than_corpus_returns_everything(corpus_store, sbert):
    n = corpus_store.count("chunks")
    hits = dense_search(corpus_store, "sbert", sbert, "anything at all", k=n + 50)
    assert len(hits) == n
    assert len({h.chunk_id for h in hits}) == n


@pytest.mark.parametrize("query,k,message", [
    ("", 5, "empty"),
    ("   \n", 5, "empty"),
    ("bm25", 0, "k must be at least 1"),
    ("qwzxv blorptastic", 5, "none of the words"),
])
def test_bad_queries(corpus_store, glove, query, k, message):
    with pytest.raises(QueryError, match=message):
        dense_search(corpus_store, "glove", glove, query, k=k)


def test_huge_query_is_answered(corpus_store, sbert):
    hits = dense_search(corpus_store, "sbert", sbert, "product quantization " * 10_000, k=3)
    assert hits[0].doc_id == "product-quantization.md"


def test_glove_chunks_without_known_words_are_counted_not_indexed(tmp_path, glove):
    from ingest.pipeline import ingest_paths
    from ingest.store import Store
    from retrieval.indexing import update_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "real.txt").write_text("retrieval finds relevant documents")
    # The title (from the file name) is embedded too, so it must be unknown as well.
    (docs / "zzkx.txt").write_text("qwzxv blorptastic zzkrrt")
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_paths(store, [docs], progress=False)
        report = update_index(store, "glove", glove, progress=False)
        assert (report.n_vectors, report.empty) == (1, 1)
        hits = dense_search(store, "glove", glove, "documents", k=5)
        assert [h.doc_id for h in hits] == ["real.txt"]
