"""A search reads the same number of SQLite rows whatever the collection's size, and
searchers stay open across calls until a commit changes what they would see.

The cost test counts SQLite virtual-machine steps (the progress handler called on
every instruction) of one search on a store and on the same store ten times
larger: the counts must be equal up to noise. A row count, a scan of the vectors
or chunks table, or a read of every metadata row would multiply them by ten.
"""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path

import pytest

import ragmini
from core.errors import IndexStale, NoMatch, StoreError
from ingest.filters import parse_where
from ingest.store import Store
from retrieval.contract import search_one
from retrieval.indexing import reindex
from retrieval.ingesting import ingest_and_index
from retrieval.methods import open_searcher, select
from retrieval.searchers import SEARCHERS, SearcherCache, find, forget, open_cached

SMALL, FACTOR = 120, 10  # documents (one chunk each) in the small store, and the factor
# A fusion reads its parts' top 100 (hybrid.DEPTH): the small store holds more.
KEPT = 6  # documents a filter keeps, in both stores
QUERY = "garden river music"
FILTER = ["source=keep-*"]
FAST_METHODS = ["glove", "glove-sif", "bm25", "tfidf", "w2v", "w2v-sif"]
FUSIONS = ["hybrid:bm25+glove", "hybrid-rrf:tfidf+glove-sif", "hybrid-wrrf:w2v+bm25"]


def _words() -> list[str]:
    from retrieval.glove import glove_word_list

    # Common words GloVe knows, past the stop words.
    return [w for w in glove_word_list()[200:1400] if w.isalpha()]


def _write_docs(folder: Path, n: int, seed: int = 0) -> Path:
    """`n` one-chunk documents of 60 common words, each holding the query's words,
    so that every method (and each part of a fusion) finds as many hits as it asks
    for in either store."""
    rng = random.Random(seed)
    words = _words()
    folder.mkdir(parents=True)
    for i in range(n):
        text = rng.sample(words, 60)
        text[5:8] = QUERY.split()
        name = f"keep-{i:02d}.txt" if i < KEPT else f"doc-{i:05d}.txt"
        (folder / name).write_text(" ".join(text) + ".\n")
    return folder


@pytest.fixture(scope="module")
def sized_stores(tmp_path_factory, glove):
    """Two stores of the same kind of documents, one ten times the other, with every
    method that loads no large model."""
    root = tmp_path_factory.mktemp("search-cost")
    out = {}
    for label, n in (("small", SMALL), ("large", SMALL * FACTOR)):
        docs = _write_docs(root / f"docs-{label}", n)
        with Store.open(root / label, create=True) as store:
            ingest_and_index(store, [docs], FAST_METHODS, progress=False,
                             embedders={"glove": glove})
        out[label] = root / label
    return out


def _steps(db: Store, run) -> tuple[int, list[str]]:
    """(SQLite VM steps, statements) of `run()` on `db`'s connection."""
    conn = db.db.conn
    steps, statements = [0], []

    def count():
        steps[0] += 1  # returning None (falsy) lets the statement go on

    conn.set_progress_handler(count, 1)
    conn.set_trace_callback(statements.append)
    try:
        run()
    finally:
        conn.set_progress_handler(None, 1)
        conn.set_trace_callback(None)
    return steps[0], statements


def _search_steps(path: Path, method: str, where=None, cached: bool = False) -> dict:
    """Steps of: opening a searcher (cold), a search through the kept one (warm), and
    choosing the filtered chunks; from one store."""
    with Store.open(path) as db:
        forget()
        allowed = select(db, parse_where(where))
        select_steps = _steps(db, lambda: select(db, parse_where(where)))
        cold = _steps(db, lambda: find(open_cached(db, method), QUERY, 5, allowed))
        warm = _steps(db, lambda: find(open_cached(db, method), QUERY, 5, allowed))
        hits, reason = find(open_cached(db, method), QUERY, 5, allowed)
    forget()
    assert len(hits) == 5 and reason is None
    return {"cold": cold, "warm": warm, "select": select_steps}


def _same(small: tuple[int, list[str]], large: tuple[int, list[str]], what: str) -> None:
    # Equal statements, equal plans: only B-tree depth may differ, which the VM
    # does not count. A little slack keeps the test about growth, not about noise.
    assert large[0] <= small[0] * 1.05 + 20, (
        f"{what}: {small[0]} SQLite steps on {SMALL} chunks, {large[0]} on "
        f"{SMALL * FACTOR}; statements on the large store:\n" + "\n".join(large[1]))


@pytest.mark.parametrize("method", FAST_METHODS + FUSIONS)
def test_search_reads_no_more_rows_on_a_larger_store(sized_stores, method):
    small = _search_steps(sized_stores["small"], method)
    large = _search_steps(sized_stores["large"], method)
    _same(small["cold"], large["cold"], f"{method}, opening and searching")
    _same(small["warm"], large["warm"], f"{method}, searching a kept searcher")
    # A few primary-key reads and the rows of the hits: k of them, or a fusion's
    # parts' top 100 each (hybrid.DEPTH: the fusion is over those).
    assert small["warm"][0] < (400 if ":" not in method else 5000)


@pytest.mark.parametrize("method", ["glove", "bm25", "tfidf", "hybrid:bm25+glove"])
def test_filtered_search_reads_rows_for_its_selection_only(sized_stores, method):
    """The filter's own selection reads the documents table (it is an SQL condition
    on them); the search with the chosen ids reads no more on a larger store."""
    small = _search_steps(sized_stores["small"], method, FILTER)
    large = _search_steps(sized_stores["large"], method, FILTER)
    _same(small["warm"], large["warm"], f"{method} filtered, searching")
    _same(small["cold"], large["cold"], f"{method} filtered, opening and searching")
    # The selection grows with the documents, and no faster (no read per chunk pair).
    assert large["select"][0] <= small["select"][0] * FACTOR * 1.2


def test_a_filter_reads_documents_then_their_chunks(sized_stores):
    """The selection tests its condition once per document and reads the chunks of
    the kept documents only (not every chunk, with its document looked up)."""
    with Store.open(sized_stores["small"]) as db:
        _, statements = _steps(db, lambda: select(db, parse_where(FILTER)))
        chosen = [s for s in statements if "FROM documents d CROSS JOIN chunks c" in s]
        plan = [r[3] for r in db.db.conn.execute("EXPLAIN QUERY PLAN " + chosen[0])]
    assert plan[0].startswith("SCAN d") and not any(p.startswith("SCAN c") for p in plan)
    assert "SEARCH c USING COVERING INDEX chunks_document (document=?)" in plan


@pytest.mark.parametrize("index_type", ["hnsw", "ivf-pq", "sq8"])
def test_every_faiss_index_type_searches_in_constant_rows(sized_stores, tmp_path,
                                                          index_type):
    stores = _copies(sized_stores, tmp_path,
                     lambda db: reindex(db, ["glove"], index_type=index_type))
    # A small slice of a quantized index is scanned exactly over the store's vectors
    # of the kept chunks: as many as the filter keeps, in both stores.
    steps = {label: (_search_steps(path, "glove"), _search_steps(path, "glove", FILTER))
             for label, path in stores.items()}
    for i, what in enumerate(("", " filtered")):
        _same(steps["small"][i]["cold"], steps["large"][i]["cold"], f"{index_type}{what}")
        _same(steps["small"][i]["warm"], steps["large"][i]["warm"], f"{index_type}{what}")


def _copies(sized_stores, tmp_path, prepare) -> dict[str, Path]:
    out = {}
    for label in ("small", "large"):
        out[label] = tmp_path / label
        shutil.copytree(sized_stores[label], out[label])
        with Store.open(out[label]) as db:
            prepare(db)
    return out


@pytest.mark.slow
def test_sbert_and_the_default_hybrid_search_in_constant_rows(sized_stores, tmp_path):
    """The sentence encoder (MiniLM, ONNX int8), alone and in the default fusion."""
    stores = _copies(sized_stores, tmp_path, lambda db: ingest_and_index(
        db, [], ["sbert"], progress=False, require_documents=False))
    for method in ("sbert", "hybrid"):
        small, large = (_search_steps(stores[label], method) for label in ("small", "large"))
        _same(small["cold"], large["cold"], f"{method}, opening and searching")
        _same(small["warm"], large["warm"], f"{method}, searching a kept searcher")


@pytest.mark.slow
@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_milvus_searches_in_constant_rows(sized_stores, tmp_path, index_type):
    """Milvus Lite holds the vectors: the store is read for the hit rows only."""
    pytest.importorskip("pymilvus")
    from retrieval import milvus

    def move(db):
        with db.writer_lock():
            reindex(db, ["glove"], index_type=index_type, vector_store="milvus")
        milvus.release(db)

    stores = _copies(sized_stores, tmp_path, move)
    steps = {}
    try:
        for label, path in stores.items():
            steps[label] = (_search_steps(path, "glove"), _search_steps(path, "glove", FILTER))
            with Store.open(path) as db:
                milvus.release(db)
    finally:
        for path in stores.values():
            milvus.release(path)
    for i, what in enumerate(("", " filtered")):
        _same(steps["small"][i]["cold"], steps["large"][i]["cold"], f"milvus{what}")
        _same(steps["small"][i]["warm"], steps["large"][i]["warm"], f"milvus{what}")


def test_the_python_api_search_reads_constant_rows(sized_stores):
    counts = []
    for label in ("small", "large"):
        with ragmini.open(sized_stores[label]) as store:
            store.search(QUERY, method="glove")  # opens the searcher
            counts.append(_steps(store._db(), lambda: store.search(QUERY, method="glove")))
    _same(counts[0], counts[1], "Store.search")


def test_metadata_keys_are_read_key_by_key(sized_stores):
    """The filter's key check reads one index entry per distinct key, not every row."""
    counts = []
    for label in ("small", "large"):
        with Store.open(sized_stores[label]) as db:
            keys = db.metadata_keys()
            counts.append(_steps(db, db.metadata_keys))
    assert "type" in keys
    _same(counts[0], counts[1], "metadata_keys")


# -- searchers kept open -------------------------------------------------------------

@pytest.fixture
def writable(sized_stores, tmp_path):
    path = tmp_path / "store"
    shutil.copytree(sized_stores["small"], path)
    forget()
    yield path
    forget()


def test_a_searcher_stays_open_until_a_commit(writable, tmp_path, glove):
    with Store.open(writable) as db:
        first = open_cached(db, "glove")
        assert open_cached(db, "glove") is first and first.behind == 0
        # New chunks: the generation moves, the searcher reopens and sees them.
        docs = tmp_path / "more"
        docs.mkdir()
        (docs / "zebra.txt").write_text("zebra stripes savanna grazing herd")
        ingest_and_index(db, [docs], [], progress=False, embedders={"glove": glove})
        second = open_cached(db, "glove")
        assert second is not first
        assert search_one(second, "zebra stripes", 1)[0].doc_id == "zebra.txt"
        assert open_cached(db, "glove") is second
        # A new index at the same generation (another type): its params file changed.
        reindex(db, ["glove"], index_type="hnsw")
        third = open_cached(db, "glove")
        assert third is not second and third.params.index_type == "hnsw"
        # A new model drops the vectors under the index: reopening refuses it.
        db.register_method("glove", "another-model", 50)
        with pytest.raises(IndexStale, match="status --repair"):
            open_cached(db, "glove")


def test_a_commit_by_another_process_is_seen(writable, tmp_path):
    """The state is read from the database and the index folder, not remembered:
    a writer elsewhere (here, another connection) is noticed on the next call."""
    with Store.open(writable) as reader, Store.open(writable) as writer:
        before = open_cached(reader, "bm25")
        docs = tmp_path / "more"
        docs.mkdir()
        (docs / "zebra.txt").write_text("zebra stripes savanna grazing herd")
        ingest_and_index(writer, [docs], [], progress=False)
        after = open_cached(reader, "bm25")
        assert after is not before and after.behind == 0
        assert find(after, "zebra", 1)[0][0].doc_id == "zebra.txt"


def test_fusions_share_their_parts(writable):
    with Store.open(writable) as db:
        fused = open_cached(db, "hybrid:bm25+glove")
        assert fused.parts[0] is open_cached(db, "bm25")
        assert fused.parts[1] is open_cached(db, "glove")
        assert open_cached(db, "hybrid:bm25+glove") is fused


def test_searchers_are_shared_by_threads(writable):
    """Each thread searches through its own connection; the searcher is one."""
    methods = ["glove", "bm25", "tfidf", "hybrid:bm25+glove"]
    with Store.open(writable) as db:
        expected = {m: [h.chunk_id for h in find(open_cached(db, m), QUERY, 5)[0]]
                    for m in methods}
    seen, errors = [], []

    def work():
        try:
            with Store.open(writable) as mine:
                for _ in range(15):
                    for m in methods:
                        searcher = open_cached(mine, m)
                        seen.append(searcher)
                        hits = find(searcher, QUERY, 5)[0]
                        assert [h.chunk_id for h in hits] == expected[m]
        except Exception as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({id(s) for s in seen}) == len(methods)


def test_a_searcher_used_from_a_thread_that_did_not_ask_says_so(writable):
    with Store.open(writable) as db:
        searcher = open_cached(db, "bm25")
    failure = []

    def other():
        try:
            searcher.search([QUERY], 3)
        except StoreError as exc:
            failure.append(str(exc))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert failure and "open_cached(store, method) in that thread" in failure[0]


def test_the_cache_is_bounded(writable):
    cache = SearcherCache(size=2)
    with Store.open(writable) as db:
        for m in ("glove", "bm25", "tfidf"):
            cache.get(db, m)
        assert len(cache) == 2
        cache.forget(writable)
        assert len(cache) == 0


def test_closing_a_store_forgets_its_searchers(writable):
    store = ragmini.open(writable)
    store.search(QUERY, method="bm25")
    assert any(root == str(writable) for root, _ in SEARCHERS._entries)
    store.close()
    assert not any(root == str(writable) for root, _ in SEARCHERS._entries)


def test_an_impostor_embedder_is_not_kept(writable, glove):
    class Impostor:
        name, model, dim = "glove", "some-other-model", 50

        def embed(self, texts):
            return glove.embed(texts)

    with Store.open(writable) as db:
        with pytest.raises(IndexStale, match="some-other-model"):
            open_cached(db, "glove", {"glove": Impostor()})
        # The store's own model is what the kept searcher uses anyway.
        assert open_cached(db, "glove", {"glove": glove}) is open_cached(db, "glove")


# -- finding nothing is a result, with its reason ----------------------------------

@pytest.mark.parametrize("method, fragment", [
    ("bm25", "occurs in the corpus"),
    ("tfidf", "occurs in the corpus"),
    ("glove", "glove vocabulary"),
    ("glove-sif", "glove-sif vocabulary"),
    ("w2v", "w2v vocabulary"),
    ("hybrid:bm25+glove", "occurs in the corpus"),  # neither part can: the first says why
])
def test_a_query_that_matches_nothing_returns_why(sized_stores, method, fragment):
    with ragmini.open(sized_stores["small"]) as store:
        result = store.search("qwzxv blorptastic", method=method)
    assert len(result) == 0 and fragment in result.reason
    assert result.to_dict()["hits"] == [] and result.to_dict()["reason"] == result.reason
    with Store.open(sized_stores["small"]) as db:  # the searcher itself still raises
        with pytest.raises(NoMatch, match=fragment):
            search_one(open_searcher(db, method), "qwzxv blorptastic", 5)


def test_a_filter_that_keeps_nothing_that_matches_says_so(sized_stores):
    with ragmini.open(sized_stores["small"]) as store:
        found = store.search(QUERY, method="bm25", k=3)
        missed = store.search("zebra", method="bm25", where=["type=md"])
        empty = store.search(QUERY, method="bm25", where=["type=md"])
    assert len(found) == 3 and found.reason is None and found.to_dict()["reason"] is None
    assert missed.reason is not None  # "zebra" is in no chunk: the method says so
    assert len(empty) == 0 and empty.reason == (
        "no chunk of a document matching type=md matches the query")


def test_the_cli_keeps_its_message(sized_stores, capsys):
    from ragmini.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["search", "qwzxv blorptastic", "--method", "bm25", "--store",
              str(sized_stores["small"])])
    assert exited.value.code != 0
    assert "occurs in the corpus" in capsys.readouterr().err
