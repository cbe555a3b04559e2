"""Metadata filters: parsed strictly, stored per document, applied inside each method."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import QueryError
from ingest.filters import parse_where
from ingest.pipeline import ingest_paths
from ingest.store import SCHEMA_VERSION, Store
from tests.conftest import QUERIES
from tests.test_cli import run_cli

NOTES = {
    "notes/2026/faiss.md": "---\ntitle: FAISS notes\ntags: [faiss, search]\nauthor: Ann\n"
                           "date: 2026-03-01\npriority: 3\n---\n# ignored heading\n\n"
                           "FAISS searches vectors with flat, HNSW and IVF indexes.\n",
    "notes/2025/bm25.md": "---\ntags: bm25\ndate: 2025-06-30\npriority: 1\n---\n# BM25 notes\n\n"
                          "BM25 ranks documents by term frequency and inverse document "
                          "frequency.\n",
    "notes/broken.md": "---\ntags: [unclosed\n---\n# Broken front matter\n\nStill indexed.\n",
    "plain.txt": "Plain text\n\nA text file about vectors and search.\n",
}


@pytest.fixture
def notes_store(tmp_path):
    for name, text in NOTES.items():
        path = tmp_path / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    with Store.open(tmp_path / "store", create=True) as store:
        report = ingest_paths(store, [tmp_path / "docs"], progress=False)
        yield store, report


def _docs(store, *where):
    return sorted(store.select_doc_ids(parse_where(list(where))))


def test_front_matter_becomes_metadata_and_leaves_the_text(notes_store):
    store, report = notes_store
    assert any("front matter is not valid YAML" in n for n in report.notes)
    rows = {c.doc_id: c for batch in store.iter_chunks() for c in batch}
    assert rows["notes/2026/faiss.md"].title == "FAISS notes"  # front matter title wins
    assert "tags:" not in rows["notes/2026/faiss.md"].text
    assert rows["notes/2025/bm25.md"].title == "BM25 notes"
    keys = store.metadata_keys()
    assert {"source", "type", "title", "modified", "size", "tags", "author", "date",
            "priority"} <= set(keys)


@pytest.mark.parametrize("where,expected", [
    (["tags=faiss"], ["notes/2026/faiss.md"]),
    (["tags=FAISS"], ["notes/2026/faiss.md"]),  # values compare case-insensitively
    (["source=notes/**"], ["notes/2025/bm25.md", "notes/2026/faiss.md", "notes/broken.md"]),
    (["source=notes/2026/"], ["notes/2026/faiss.md"]),
    (["source=*.txt"], ["plain.txt"]),
    (["type=md", "tags!=faiss"], ["notes/2025/bm25.md", "notes/broken.md"]),
    (["date>=2026-01-01"], ["notes/2026/faiss.md"]),
    (["date<2026-01-01"], ["notes/2025/bm25.md"]),
    (["priority>1"], ["notes/2026/faiss.md"]),
    (["priority<=1"], ["notes/2025/bm25.md"]),
    (["title~NOTES"], ["notes/2025/bm25.md", "notes/2026/faiss.md"]),
    (["modified>=2000-01-01", "size>0", "type!=md"], ["plain.txt"]),
    (["tags=f*"], ["notes/2026/faiss.md"]),
    (["author=nobody"], []),
])
def test_filter_semantics(notes_store, where, expected):
    assert _docs(notes_store[0], *where) == expected


@pytest.mark.parametrize("expr,message", [
    ("nonsense", "cannot read filter 'nonsense'"),
    ("tags=", "cannot read filter 'tags='"),
    ("=faiss", "cannot read filter '=faiss'"),
    ("date>=yesterday", ">= needs a number or a date"),
    ("title<3", "title is text"),
    ("colour=red", "unknown filter key 'colour'; this collection has: source, type"),
])
def test_bad_filters_are_one_line_errors_listing_the_keys(notes_store, expr, message):
    store, _ = notes_store
    with pytest.raises(QueryError, match=message.replace("(", r"\(")) as info:
        store.select_chunks(parse_where([expr]))
    assert info.value.param == "where" and "\n" not in str(info.value)


@pytest.mark.parametrize("method", ["glove", "sbert", "bm25", "hybrid", "hybrid-rrf"])
def test_every_method_returns_k_hits_from_the_slice(served_store, method):
    from retrieval.contract import search_one
    from retrieval.methods import open_searcher, select

    with Store.open(served_store) as store:
        allowed = select(store, ["source=*.txt"])
        n_txt = len(allowed)
        assert 10 < n_txt < store.count("chunks") / 2
        hits = search_one(open_searcher(store, method), "vectors for words", 10, allowed)
        assert len(hits) == 10
        assert all(h.doc_id.endswith(".txt") for h in hits)
        # more asked than the slice holds: all of it, never padding from outside
        everything = search_one(open_searcher(store, method), "vectors for words", 500, allowed)
        assert all(h.doc_id.endswith(".txt") for h in everything)
        if method in ("glove", "sbert"):
            assert len(everything) == n_txt


@pytest.mark.parametrize("index_type,walk_from", [("flat", 0.5), ("hnsw", 0.0), ("hnsw", 1.0),
                                                  ("ivf-pq", 0.5), ("sq8", 0.5)])
def test_the_faiss_selector_path_equals_exact_search_of_the_subset(store_copy, monkeypatch,
                                                                     index_type, walk_from):
    """Force the in-index paths (an IDSelector in the scan or the graph walk, HNSW's
    own storage scanned) on every index type and compare with exact search over the
    kept vectors."""
    import retrieval.vectorstore as dense
    from retrieval.contract import search_one
    from retrieval.index import exact_top_k
    from retrieval.methods import get_method, open_searcher, select

    with Store.open(store_copy) as store:
        get_method("sbert").rebuild(store, index_type)
        allowed = select(store, ["type=md"])
        searcher = open_searcher(store, "sbert")
        query = searcher.embedder.embed(["how do approximate indexes trade recall for speed"])
        ids, vectors = store.vectors("sbert", ids=allowed)
        _, exact = exact_top_k(ids, vectors, query, 5)
        monkeypatch.setattr(dense, "FILTER_EXACT_BELOW", 0)
        monkeypatch.setattr(dense, "HNSW_WALK_FROM", walk_from)
        hits = search_one(searcher, "how do approximate indexes trade recall for speed", 5,
                          allowed)
    assert len(hits) == 5 and all(h.chunk_id in set(allowed.tolist()) for h in hits)
    overlap = len({h.chunk_id for h in hits} & set(exact[0].tolist())) / 5
    assert overlap >= (1.0 if index_type in ("flat", "hnsw") else 0.6)


def test_search_cli_filters_and_reports_them(capsys, served_store):
    code, out, err = run_cli(capsys, "search", "how are word vectors trained", "--store",
                             str(served_store), "--where", "type=txt", "--where",
                             "title~word", "-k", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["where"] == ["type=txt", "title~word"]
    assert data["hits"] and all(h["doc_id"].endswith(".txt") and "word" in h["title"].lower()
                                for h in data["hits"])


def test_search_cli_bad_filter_is_one_line(capsys, served_store):
    code, _, err = run_cli(capsys, "search", "x", "--store", str(served_store), "--where",
                           "colour=red")
    assert code != 0 and "unknown filter key 'colour'" in err and "type" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_eval_on_a_slice_drops_judgements_outside_it(served_store):
    from eval.runs import evaluate_store

    whole = evaluate_store(served_store, QUERIES, methods=["bm25"], resamples=200).result
    sliced = evaluate_store(served_store, QUERIES, methods=["bm25"], resamples=200,
                            where=["type=md"]).result
    n_md = sum(1 for line in QUERIES.read_text().splitlines()
               if any(d.endswith(".md") for d in json.loads(line)["relevant"]))
    assert sliced.where == "type=md" and sliced.n_queries == n_md < whole.n_queries
    # Fewer candidates, same judgements: no query ranks its document lower.
    assert sliced.methods["bm25"].metrics["recall@10"] >= 0.9


def test_ask_answers_from_the_slice_only(served_store):
    from generation.ask import ask
    from generation.models import load_generator

    with Store.open(served_store) as store:
        done = ask(store, "what is BM25?", load_generator("extractive"), method="bm25",
                   where=["type=txt"], abstain=False)
    assert done.answer.sources and all(s.doc_id.endswith(".txt")
                                       for s in done.answer.sources)


def test_an_older_store_is_migrated_and_gains_metadata(tmp_path):
    """A schema-2 store (before metadata) opens, and its next ingest fills in the
    metadata of unchanged documents without re-embedding anything."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("---\ntags: [x]\n---\n# A\n\nSome text about search.\n")
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_paths(store, [docs], progress=False)
        store.db.execute("DROP TABLE doc_meta")
        store.db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        store.db.conn.commit()
    with Store.open(tmp_path / "s") as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        with pytest.raises(QueryError, match="unknown filter key 'tags'"):
            _docs(store, "tags=x")
        generation = store.generation
        report = ingest_paths(store, [docs], progress=False)
        assert report.unchanged == 1 and store.generation == generation
        assert _docs(store, "tags=x") == ["a.md"]


def test_beir_metadata_is_filterable(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in [
        {"_id": "ls.1", "title": "ls(1)", "text": "list directory contents",
         "metadata": {"package": "coreutils", "section": 1}},
        {"_id": "tc.8", "title": "tc(8)", "text": "show and manipulate traffic control",
         "metadata": {"package": "iproute2", "section": 8}},
    ]) + "\n")
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_paths(store, [corpus], progress=False)
        assert _docs(store, "package=iproute2") == ["tc.8"]
        assert _docs(store, "section>=8") == ["tc.8"]
        assert _docs(store, "source=*.1") == ["ls.1"]
        assert np.array_equal(store.select_chunks(parse_where(["type=jsonl"])),
                              store.chunk_ids())


def test_http_api_takes_the_same_filters(served_store):
    from fastapi.testclient import TestClient

    from ragmini.server.app import Settings, create_app

    # A loopback Host: the server refuses TestClient's default "testserver" (421).
    client = TestClient(create_app(Settings(store=served_store)), base_url="http://127.0.0.1")
    r = client.get("/api/search", params=[("q", "vectors"), ("method", "bm25"), ("k", "5"),
                                          ("where", "type=txt"), ("where", "title~vector")])
    assert r.status_code == 200 and r.json()["where"] == ["type=txt", "title~vector"]
    assert r.json()["hits"] and all(h["doc_id"].endswith(".txt") for h in r.json()["hits"])
    r = client.post("/api/compare", json={"q": "vectors", "methods": ["bm25", "tfidf"], "k": 3,
                                          "where": ["source=*.html"]})
    assert all(h["doc_id"].endswith(".html") for m in r.json()["methods"].values()
               for h in m["hits"])
    r = client.get("/api/search", params={"q": "vectors", "where": "colour=red"})
    assert r.status_code == 400 and "unknown filter key 'colour'" in r.json()["error"]["message"]
