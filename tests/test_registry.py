"""The method contract: a new method is one class and one registry line, and ingest,
search, status, reindex and eval take it without naming it anywhere else."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import QueryError
from ingest.store import Store
from retrieval import methods
from retrieval.contract import search_one
from retrieval.dense import DenseMethod
from retrieval.indexing import reindex
from retrieval.ingesting import ingest_and_index, remove_and_index
from retrieval.status import check_store

WORDS = ("tide", "moon", "lava", "volcano", "glacier", "ice")


class KeywordEmbedder:
    """One dimension per keyword: every similarity can be worked out by hand."""

    name, model, dim = "keywords", "keywords-v1", len(WORDS)

    def embed(self, texts):
        rows = np.array([[t.lower().count(w) for w in WORDS] for t in texts], dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


@pytest.fixture
def keyword_method(monkeypatch):
    monkeypatch.setitem(methods.INDEXED, "keywords",
                        lambda: DenseMethod("keywords", lambda store: KeywordEmbedder()))


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tide.txt").write_text("The moon pulls the tide; the tide follows the moon.")
    (folder / "volcano.txt").write_text("Lava flows from the volcano when the volcano erupts.")
    (folder / "glacier.txt").write_text("A glacier is ice that moves; glacier ice carves valleys.")
    return folder


def test_a_registered_method_goes_through_every_stage(keyword_method, docs, tmp_path):
    with Store.open(tmp_path / "store", create=True) as store:
        done = ingest_and_index(store, [docs], ["keywords"], progress=False)
        assert [r.method for r in done.methods] == ["keywords"] and done.methods[0].embedded == 3
        hits = search_one(methods.open_searcher(store, "keywords"), "lava and volcano", 3)
        # "volcano" (title) + text: lava 1, volcano 3; the query: lava 1, volcano 1.
        assert hits[0].doc_id == "volcano.txt"
        assert hits[0].score == pytest.approx((1 + 3) / np.sqrt(2 * 10))
        # A fusion takes it as a part without a line of its own.
        fused = search_one(methods.open_searcher(store, "hybrid:keywords+keywords"), "ice", 2)
        assert fused[0].doc_id == "glacier.txt"
        status = check_store(store)
        assert status.consistent and [m.method for m in status.methods] == ["keywords"]
        assert [r.n_vectors for r in reindex(store)] == [3]
        remove_and_index(store, [docs / "tide.txt"])
        hits = search_one(methods.open_searcher(store, "keywords"), "moon tide", 3)
        assert "tide.txt" not in {h.doc_id for h in hits}
        assert check_store(store).consistent


def test_unknown_names_list_the_registry(keyword_method):
    with pytest.raises(QueryError, match="choose from glove, glove-sif, sbert, bm25, tfidf, w2v, "
                       "w2v-sif, keywords, hybrid, hybrid-rrf, hybrid-wrrf"):
        methods.check_method("elmo")
    assert methods.index_parts(["hybrid", "keywords", "sbert"]) == ["bm25", "sbert", "keywords"]
    assert methods.parse_methods("keywords, bm25,keywords") == ["keywords", "bm25"]
