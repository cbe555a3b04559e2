"""The Milvus vector store, on a real Milvus Lite (and a Milvus Lite server by URI):
filters as Milvus expressions, generations, deletes, crash recovery, eval parity."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ingest.filters import parse_where
from ingest.store import Store
from tests.conftest import CORPUS, QUERIES, REPO

pytest.importorskip("pymilvus")
pytestmark = pytest.mark.slow

RAGMINI = [sys.executable, "-m", "ragmini.cli"]


def cli(*args, env=None, timeout=300):
    return subprocess.run([*RAGMINI, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout)


@pytest.fixture
def milvus_store(store_copy):
    """The bundled corpus store (glove + sbert, FAISS) moved into Milvus Lite."""
    from retrieval import milvus
    from retrieval.indexing import reindex

    with Store.open(store_copy) as store:
        with store.writer_lock():
            reindex(store, vector_store="milvus")
        milvus.release(store)  # other processes (a server, the CLI) may open it now
    yield store_copy
    with Store.open(store_copy) as store:
        milvus.release(store)


def test_backend_spellings():
    from core.errors import RagminiError
    from retrieval.vectorstore import check_index_type, parse_backend

    assert parse_backend(None) == "faiss"
    assert parse_backend("Milvus") == "milvus"
    assert parse_backend("milvus://db.example:19530") == "http://db.example:19530"
    assert parse_backend("https://x.example") == "https://x.example:19530"
    with pytest.raises(RagminiError, match="unknown vector store"):
        parse_backend("pinecone")
    check_index_type("faiss", "ivf-pq")
    check_index_type("milvus", "hnsw")
    with pytest.raises(RagminiError, match="on Milvus, --index is flat or hnsw"):
        check_index_type("http://db:19530", "sq8")


FILTERS = [["type=md"], ["type!=md"], ["source=*.md"], ["source!=bm25.md"], ["source=bm25.md"],
           ["title~search"], ["title=BM25"], ["title=*index*"], ["size<3000"], ["size>=3000"],
           ["modified>=2000-01-01"], ["type=md", "title~vector"], ["source=b?25.*"]]


def test_filters_become_milvus_expressions_that_keep_the_same_chunks(milvus_store):
    """Every filter, run inside Milvus on its own copy of the metadata, keeps exactly
    the chunks SQLite keeps (live ones); one Milvus cannot say falls back to ids."""
    from retrieval import milvus
    from retrieval.index import read_params

    with Store.open(milvus_store) as store:
        params = read_params(store.index_dir, "sbert")
        vectors = milvus.open_vectors(store, params)
        live = set(store.chunk_ids().tolist())
        kept_somewhere = 0
        for where in FILTERS:
            parsed = parse_where(where)
            expr = milvus.where_expr(parsed)
            assert expr is not None, where
            live_at = milvus.generation_expr(params.store_generation)
            held = vectors.ids(f"{live_at} and ({expr})", store.max_chunk_id())
            expected = sorted(set(store.select_chunks(parsed).tolist()) & live)
            assert held.tolist() == expected, (where, expr)
            kept_somewhere += 0 < len(expected) < len(live)
        assert kept_somewhere >= 8  # the filters do select, not all-or-nothing
        assert milvus.where_expr(parse_where(["source=[ab]*.md"])) is None


def test_ids_are_read_whole_past_the_query_cap(milvus_store, monkeypatch):
    """A Milvus query returns at most ID_PAGE rows: with a cap of 7, the 84 ids still
    come back whole, read by ranges."""
    from retrieval import milvus
    from retrieval.index import read_params

    monkeypatch.setattr(milvus, "ID_PAGE", 7)
    with Store.open(milvus_store) as store:
        params = read_params(store.index_dir, "sbert")
        held = milvus.open_vectors(store, params).ids(
            milvus.generation_expr(params.store_generation), store.max_chunk_id())
        assert held.tolist() == store.vector_ids("sbert").tolist() and len(held) == 84


def test_search_with_filters_matches_faiss(store_copy, milvus_store, corpus_store_path):
    """The same filtered searches on FAISS flat and Milvus FLAT return the same chunks."""
    from retrieval.contract import search_one
    from retrieval.methods import open_searcher, select

    queries = ["how do approximate indexes trade recall for speed", "word vectors",
               "what is BM25"]
    with Store.open(corpus_store_path) as faiss_store, Store.open(milvus_store) as store:
        for where in (["type=md"], ["source=*.txt"], ["title~search"], ["source=[hb]*"]):
            for q in queries:
                a = search_one(open_searcher(faiss_store, "glove"), q, 5,
                               select(faiss_store, where))
                b = search_one(open_searcher(store, "glove"), q, 5, select(store, where))
                assert [h.chunk_id for h in a] == [h.chunk_id for h in b], (where, q)
                assert len(b) == 5
                assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_eval_on_milvus_flat_equals_faiss_flat_and_hnsw_is_close(store_copy, milvus_store,
                                                                 corpus_store_path):
    from eval.harness import evaluate_methods
    from eval.queries import load_queries
    from retrieval.indexing import reindex

    queries = load_queries(QUERIES)
    with Store.open(corpus_store_path) as store:
        faiss = evaluate_methods(store, queries, ["glove", "sbert"])
    with Store.open(milvus_store) as store:
        flat = evaluate_methods(store, queries, ["glove", "sbert"])
        with store.writer_lock():
            reindex(store, ["sbert"], index_type="hnsw")
        hnsw = evaluate_methods(store, queries, ["sbert"])
    for method in ("glove", "sbert"):
        for qid, ranked in faiss.methods[method].run.items():
            assert list(ranked)[:10] == list(flat.methods[method].run[qid])[:10], (method, qid)
        assert flat.methods[method].metrics == faiss.methods[method].metrics
    assert abs(hnsw.methods["sbert"].metrics["recall@10"]
               - faiss.methods["sbert"].metrics["recall@10"]) <= 0.002


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_ingest_change_delete_and_generations(tmp_path, glove, monkeypatch):
    """A changed file and a removed one are updated in place (the same collection);
    while an ingest writes the collection, a searcher opened before it answers for
    its own generation: the old text, none of the new."""
    from retrieval import milvus
    from retrieval.contract import search_one
    from retrieval.ingesting import ingest_and_index, remove_and_index
    from retrieval.index import read_params
    from retrieval.methods import open_searcher
    from retrieval.status import check_store

    docs = tmp_path / "docs"
    docs.mkdir()
    _write(docs, "cats.md", "Cats purr and sleep in the sun all afternoon.")
    _write(docs, "ships.md", "Container ships carry steel boxes across the ocean.")
    _write(docs, "bread.md", "Bakers knead dough and bake bread in hot ovens.")
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_and_index(store, [docs], ["glove"], progress=False, vector_store="milvus",
                         embedders={"glove": glove})
        first = read_params(store.index_dir, "glove")
        old = open_searcher(store, "glove", {"glove": glove})
        assert search_one(old, "ocean shipping", 1)[0].doc_id == "ships.md"

        _write(docs, "ships.md", "Airplanes fly passengers between distant cities.")
        seen = {}
        real_commit = milvus.commit

        def look_then_commit(store_, params):
            # every record of the new generation is written; nothing is committed yet
            seen["old"] = search_one(old, "ocean shipping steel boxes", 1)[0].text
            seen["new"] = [h.text for h in search_one(old, "airplanes flying passengers", 3)]
            seen["written"] = milvus.open_vectors(store_, first).ids(
                "id >= 0", store_.max_chunk_id()).size
            real_commit(store_, params)

        monkeypatch.setattr(milvus, "commit", look_then_commit)
        ingest_and_index(store, [docs], ["glove"], progress=False, embedders={"glove": glove})
        monkeypatch.setattr(milvus, "commit", real_commit)
        assert "Container" in seen["old"] and seen["written"] == 4
        assert all("Airplanes" not in text for text in seen["new"])
        second = read_params(store.index_dir, "glove")
        assert second.collection == first.collection  # synced, not rebuilt
        assert second.store_generation == first.store_generation + 1
        new = open_searcher(store, "glove", {"glove": glove})
        top = search_one(new, "ocean shipping steel boxes", 3)
        assert all("Container" not in h.text for h in top)
        assert "Airplanes" in search_one(new, "airplanes flying passengers", 1)[0].text

        removed = remove_and_index(store, [docs / "bread.md"])
        assert removed and all(h.doc_id != "bread.md" for h in search_one(
            open_searcher(store, "glove", {"glove": glove}), "bakers knead dough bread", 3))
        status = check_store(store)
        assert status.consistent and status.up_to_date
        vectors = milvus.open_vectors(store, read_params(store.index_dir, "glove"))
        assert vectors.count() == len(store.vector_ids("glove")) == 2
        # records retired two generations back are gone from the collection
        assert len(vectors.ids("id >= 0", store.max_chunk_id())) <= 3
        milvus.release(store)


KILLER = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from retrieval import milvus
real = milvus.MilvusVectors.add
def add_then_die(self, ids, vectors, fields=None):
    real(self, ids[: len(ids) // 2], vectors[: len(ids) // 2], fields[: len(ids) // 2])
    os.kill(os.getpid(), signal.SIGKILL)
milvus.MilvusVectors.add = add_then_die
from ragmini.cli import main
main(["ingest", {docs!r}, "--store", {store!r}, "--methods", "glove", "--no-progress"])
"""


def test_kill_9_mid_update_leaves_old_state_and_next_ingest_repairs(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs)
    store_path = tmp_path / "s"
    done = cli("ingest", docs, "--store", store_path, "--methods", "glove", "--vector-store",
               "milvus", "--no-progress")
    assert done.returncode == 0, done.stderr
    before = cli("search", "how does BM25 rank documents", "--store", store_path, "--method",
                 "glove", "--json")
    for name in sorted(os.listdir(docs))[:6]:
        (docs / name).write_text((docs / name).read_text() + "\n\nA changed paragraph "
                                 "about tokenizers and embeddings.\n")
    script = KILLER.format(repo=str(REPO), docs=str(docs), store=str(store_path))
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]

    status = json.loads(cli("status", "--store", store_path, "--json").stdout)
    glove = next(m for m in status["methods"] if m["method"] == "glove")
    assert glove["problems"] == [] and glove["behind"] == 1  # old state intact, committed
    after_kill = cli("search", "how does BM25 rank documents", "--store", store_path,
                     "--method", "glove", "--json")
    assert json.loads(after_kill.stdout)["hits"] == json.loads(before.stdout)["hits"]

    again = cli("ingest", docs, "--store", store_path, "--methods", "glove", "--no-progress")
    assert again.returncode == 0, again.stderr
    status = json.loads(cli("status", "--store", store_path, "--json").stdout)
    assert status["consistent"] and status["up_to_date"], status
    with Store.open(store_path) as store:
        from retrieval import milvus
        from retrieval.index import read_params

        params = read_params(store.index_dir, "glove")
        vectors = milvus.open_vectors(store, params)
        # nothing the killed run wrote survives beside the repaired state: the live
        # records are the store's, and the only retired ones are this generation's
        gen = params.store_generation
        top = store.max_chunk_id()
        assert vectors.ids(f"removed_gen == {milvus.LIVE}", top).tolist() == \
            store.vector_ids("glove").tolist()
        assert vectors.ids(f"added_gen > {gen} or removed_gen < {gen}", top).size == 0
        milvus.release(store)


def test_lite_folder_held_by_another_process_is_a_clear_error(tmp_path, glove):
    from retrieval import milvus
    from retrieval.ingesting import ingest_and_index

    docs = tmp_path / "docs"
    docs.mkdir()
    _write(docs, "a.md", "Lighthouses guide ships at night.")
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_and_index(store, [docs], ["glove"], progress=False, vector_store="milvus",
                         embedders={"glove": glove})
        started = time.monotonic()
        out = cli("search", "lighthouse", "--store", tmp_path / "s", "--method", "glove",
                  env={"RAGMINI_MILVUS_WAIT": "1"})
        assert out.returncode == 1 and time.monotonic() - started < 30
        assert "open in another process" in out.stderr and "Traceback" not in out.stderr
        milvus.release(store)
    out = cli("search", "lighthouse", "--store", tmp_path / "s", "--method", "glove")
    assert out.returncode == 0 and "a.md" in out.stdout, out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_milvus_server_by_uri_serves_two_processes(tmp_path):
    """A Milvus server (Milvus Lite's gRPC server, the same API as standalone): the
    ingest and the searches are separate processes, and status agrees."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir",
                               str(tmp_path / "server.db"), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        uri = f"milvus://127.0.0.1:{port}"
        done = cli("ingest", CORPUS, "--store", tmp_path / "s", "--methods", "glove",
                   "--vector-store", uri, "--no-progress")
        assert done.returncode == 0, done.stderr
        out = cli("search", "how does BM25 rank documents", "--store", tmp_path / "s",
                  "--method", "glove", "--where", "type=md", "--json")
        hits = json.loads(out.stdout)["hits"]
        assert len(hits) == 5 and all(h["source"].endswith(".md") for h in hits)
        status = json.loads(cli("status", "--store", tmp_path / "s", "--json").stdout)
        assert status["consistent"], status
    finally:
        server.terminate()
        server.wait(timeout=30)
    started = time.monotonic()
    out = cli("search", "bm25", "--store", tmp_path / "s", "--method", "glove")
    assert out.returncode == 1 and time.monotonic() - started < 60
    assert "cannot reach the Milvus server" in out.stderr and "Traceback" not in out.stderr


def test_http_api_search_ask_and_status_on_milvus(milvus_store, corpus_store_path):
    """`ragmini serve` on a Milvus Lite store: the same search bodies as on FAISS,
    filters, a cited answer, and a consistent status."""
    import httpx

    from ragmini.server.process import running_server

    http = httpx.Client(timeout=120)
    params = {"q": "how does BM25 rank documents?", "method": "glove", "k": 5,
              "where": "type=md"}
    with running_server(corpus_store_path) as base:
        on_faiss = http.get(f"{base}/api/search", params=params).json()
    with running_server(milvus_store) as base:
        on_milvus = http.get(f"{base}/api/search", params=params).json()
        status = http.get(f"{base}/api/status").json()
        answer = http.post(f"{base}/api/ask", json={
            "question": "What is product quantization?", "generator": "extractive",
            "method": "glove"}, timeout=120).json()
    assert [h["chunk_id"] for h in on_milvus["hits"]] == [h["chunk_id"] for h in
                                                          on_faiss["hits"]]
    assert len(on_milvus["hits"]) == 5 and all(h["source"].endswith(".md")
                                               for h in on_milvus["hits"])
    assert status["consistent"] is True
    assert answer["abstained"] is False and answer["citations"], answer


@pytest.mark.parametrize("backend", ["faiss-flat", "faiss-hnsw", "faiss-sq8", "milvus"])
def test_one_vector_store_contract_two_implementations(backend, tmp_path):
    """add, replace, delete, search (with a filter), count, params: the same script
    holds for FAISS of every kind and for a Milvus collection."""
    from retrieval import milvus
    from retrieval.contract import l2_normalize
    from retrieval.vectorstore import FaissVectors

    rng = np.random.default_rng(0)
    vectors = l2_normalize(rng.standard_normal((50, 16)).astype(np.float32))
    ids = np.arange(1, 51, dtype=np.int64)
    fields = [{"doc_id": f"d{i % 5}.md", "source": f"/x/d{i % 5}.md", "title": "t",
               "meta": {"type": ["md"]}, "nmin": {}, "nmax": {}} for i in ids]
    if backend == "milvus":
        with Store.open(tmp_path / "s", create=True) as store:
            client = milvus.client_for(store, "milvus")
            milvus.create_collection(client, "contract", 16, "flat")
            vs = milvus.MilvusVectors(client, "contract", 1, "flat", "milvus", size=50)
    else:
        vs = FaissVectors.empty(16, backend.split("-")[1])
    vs.add(ids, vectors, fields)
    if backend == "milvus":
        client.flush("contract")
    assert vs.count() == 50
    scores, found = vs.search(vectors[:3], 5)
    assert found[:, 0].tolist() == [1, 2, 3]
    # replace chunk 1 by chunk 2's vector: it now ties with 2 for query 2
    vs.add(ids[:1], vectors[1:2], fields[:1])
    assert vs.count() == 50
    _, found = vs.search(vectors[1:2], 2)
    assert set(found[0].tolist()) == {1, 2}
    vs.delete(np.array([2, 3], dtype=np.int64))
    assert vs.count() == 48
    _, found = vs.search(vectors[1:3], 1)
    assert found[:, 0].tolist()[0] == 1 and 3 not in found[:, 0].tolist()
    allowed = np.array([10, 20, 30], dtype=np.int64)
    _, found = vs.search(vectors[:1], 5, allowed)
    assert set(found[0][found[0] >= 0].tolist()) == {10, 20, 30}
    assert vs.params()["index_type"] in ("flat", "hnsw", "sq8")
    if backend == "milvus":
        with Store.open(tmp_path / "s") as store:
            milvus.release(store)
