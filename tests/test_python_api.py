"""The Python API (ragmini/api.py): the CLI's `--json` bodies from `to_dict()`, the
CLI's defaults, the library's own errors, quiet by default, cheap to import, shared
models, several threads, and a LangChain retriever in a real runnable chain."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import pydoc
import shutil
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import ragmini
from tests.conftest import REPO
from tests.test_cli import run_cli

pytestmark = pytest.mark.slow  # the bundled corpus with real GloVe and MiniLM

HEAVY = ("torch", "transformers", "sentence_transformers")


@pytest.fixture(scope="module", autouse=True)
def _shared_models(glove, sbert):
    """The API loads models through retrieval's process-wide memo; hand it the
    session's copies so nothing here loads them a second time."""
    from retrieval.methods import MODELS

    MODELS.get("glove", lambda: glove)
    MODELS.get("sbert", lambda: sbert)


@pytest.fixture(scope="module")
def api_store(served_store):
    with ragmini.open(served_store) as store:
        yield store


def cli_json(capsys, *args) -> dict:
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _without(body, key: str):
    """`body` with every `key` dropped at any depth (timings differ run to run)."""
    if isinstance(body, dict):
        return {k: _without(v, key) for k, v in body.items() if k != key}
    if isinstance(body, list):
        return [_without(v, key) for v in body]
    return body


# -- import cost and help ------------------------------------------------------------

def test_import_and_open_load_no_deep_learning_library(served_store):
    """`import ragmini`, `open`, `status` and a bm25 search leave torch unimported."""
    code = f"""
import sys, time
started = time.perf_counter()
import ragmini
after_import = sorted(m for m in {HEAVY!r} if m in sys.modules)
leaked = sorted(m for m in ("numpy", "ingest", "retrieval", "core") if m in sys.modules)
store = ragmini.open({str(served_store)!r})
store.status()
store.search("bm25 ranking", method="bm25", k=2)
after_open = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(after_import, leaked, after_open)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] [] []"
    assert done.stderr == ""


def test_help_explains_open_and_the_store():
    text = pydoc.render_doc(ragmini.open, renderer=pydoc.plaintext)
    for part in ("Open the ragmini store", "RAGMINI_STORE", "ingest", "StoreError",
                 "progress", "Example", "store.search("):
        assert part in text
    assert "frozen record" in (ragmini.Store.__doc__ or "") or "to_dict" in ragmini.Store.__doc__
    for name in ("search", "ask", "ingest", "remove", "status", "compare", "evaluate",
                 "as_langchain_retriever"):
        assert getattr(ragmini.Store, name).__doc__, name
    assert set(ragmini.__all__) >= {"open", "Store", "evaluate", "RagminiError"}
    assert "open" in dir(ragmini)


# -- the CLI's defaults ----------------------------------------------------------------

def _cli_defaults(*path: str) -> dict:
    from ragmini.cli import cli

    command = cli
    for name in path:
        command = command.commands[name]
    import click

    context = click.Context(command)
    return {p.name: p.get_default(context) for p in command.params}


def _api_defaults(func) -> dict:
    return {n: p.default for n, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize("func, command, names", [
    (ragmini.Store.search, ("search",), ["method", "k"]),
    (ragmini.Store.ask, ("ask",), ["method", "k", "generator", "temperature", "top_p", "top_k",
                                   "max_new_tokens", "seed", "no_repeat_ngram", "strict",
                                   "abstain", "allow_download"]),
    (ragmini.Store.ingest, ("ingest",), ["chunk_size", "overlap", "index_type", "prune",
                                         "max_file_mb", "follow_links"]),
    (ragmini.evaluate, ("eval", "run"), ["split", "seed", "resamples"]),
    (ragmini.evaluate_answers, ("eval", "answers"), ["split", "limit", "k", "strict",
                                                     "abstain", "seed", "resamples"]),
    (ragmini.Store.history, ("eval", "history"), ["limit"]),
    (ragmini.neighbors, ("explore", "neighbors"), ["n", "method"]),
    (ragmini.analogy, ("explore", "analogy"), ["n"]),
    (ragmini.similarity, ("explore", "similarity"), ["method", "metric"]),
    (ragmini.generate, ("explore", "generate"), ["n", "temperature", "top_p", "top_k", "seed",
                                                 "max_new_tokens", "generator"]),
])
def test_defaults_are_the_clis(func, command, names):
    api, cli = _api_defaults(func), _cli_defaults(*command)
    for name in names:
        assert api[name] == cli[name], name


def test_defaults_that_are_spelled_differently():
    from ragmini import api
    from ragmini.clitools import DEFAULT_STORE
    from retrieval.methods import DEFAULT_INGEST, DEFAULT_METHOD

    assert api.DEFAULT_STORE == DEFAULT_STORE
    assert _cli_defaults("ingest")["methods"] == ",".join(DEFAULT_INGEST)
    assert _api_defaults(ragmini.Store.search)["method"] == DEFAULT_METHOD
    assert _api_defaults(ragmini.Store.ask)["fallback"] is not _cli_defaults("ask")["no_fallback"]
    assert ",".join(_api_defaults(ragmini.evaluate_answers)["generators"]) == \
        _cli_defaults("eval", "answers")["generators"]
    assert _api_defaults(ragmini.tokens)["tokenizer"] == _cli_defaults("explore", "tokens")["which"]


# -- CLI --json == API to_dict() ---------------------------------------------------------

def test_search_is_the_cli_json(api_store, served_store, capsys):
    query = "how does BM25 rank documents?"
    assert api_store.search(query).to_dict() == cli_json(capsys, "search", query, "--store",
                                                         str(served_store))
    api = api_store.search(query, method="bm25", k=3, where=["type=md"]).to_dict()
    cli = cli_json(capsys, "search", query, "--method", "bm25", "-k", "3", "--where", "type=md",
                   "--store", str(served_store))
    assert api == cli and api["where"] == ["type=md"] and len(api["hits"]) == 3


def test_ask_is_the_cli_json(api_store, served_store, capsys):
    for question in ("What is product quantization?", "Who won the 2022 football World Cup?"):
        api = api_store.ask(question, generator="extractive")
        cli = cli_json(capsys, "ask", question, "--generator", "extractive", "--store",
                       str(served_store))
        assert api.to_dict() == cli
    assert api.abstained and str(api) == api.text == cli["answer"]


def test_eval_is_the_cli_json(api_store, served_store, capsys):
    api = ragmini.evaluate(api_store, methods=["glove", "bm25"], ks=[1, 5], resamples=200)
    cli = cli_json(capsys, "eval", "--methods", "glove,bm25", "-k", "1,5", "--resamples", "200",
                   "--store", str(served_store))
    assert _without(api.to_dict(), "latency_ms") == _without(cli, "latency_ms")
    assert set(api.to_dict()["latency_ms"]) == {"glove", "bm25"}
    assert api.metrics["bm25"]["recall@5"] > api.metrics["glove"]["recall@5"]
    rows = api.to_records()
    assert [r["method"] for r in rows] == ["glove", "bm25"]
    assert rows[1]["recall@5"] == api.metrics["bm25"]["recall@5"] and "p50_ms" in rows[1]
    history = api_store.history(limit=2)
    assert history.to_dict() == cli_json(capsys, "eval", "history", "-n", "2", "--store",
                                         str(served_store))
    assert [r["dataset"] for r in history] == ["corpus/queries.jsonl"] * 2


def test_status_is_the_cli_json(api_store, served_store, capsys):
    status = api_store.status()
    assert status.to_dict() == cli_json(capsys, "status", "--store", str(served_store))
    assert status.consistent and status.up_to_date and status.documents == 41
    assert {m.method for m in status.methods} >= {"glove", "sbert", "bm25", "glove-sif"}


def test_writes_are_the_cli_json(corpus_store_path, tmp_path, capsys):
    """ingest, remove and reindex through the CLI and through the API, on two copies."""
    new = tmp_path / "new"
    new.mkdir()
    (new / "faiss-notes.md").write_text("# FAISS notes\n\nHNSW graphs answer in microseconds.\n")
    via_cli, via_api = tmp_path / "cli-store", tmp_path / "api-store"
    shutil.copytree(corpus_store_path, via_cli)
    shutil.copytree(corpus_store_path, via_api)
    store = ragmini.open(via_api)

    cli = cli_json(capsys, "ingest", str(new), "--methods", "glove", "--no-progress",
                   "--store", str(via_cli))
    api = store.ingest([new], methods=["glove"]).to_dict()
    assert _without(api, "seconds") == _without(cli, "seconds")
    assert api["new"] == 1 and api["documents"] == 42 and set(api["methods"]) == {"glove", "sbert"}

    cli = cli_json(capsys, "reindex", "--method", "glove", "--store", str(via_cli))
    assert _without(store.reindex(methods=["glove"]).to_dict(), "seconds") == \
        _without(cli, "seconds")

    cli = cli_json(capsys, "remove", str(new), "--store", str(via_cli))
    removal = store.remove([new])
    assert removal.to_dict() == cli and removal.documents == 41
    assert store.status().to_dict()["generation"] == cli_json(
        capsys, "status", "--store", str(via_cli))["generation"]
    store.close()


def test_explore_is_the_cli_json(api_store, served_store, capsys):
    # The CLI calls the same lab functions; GloVe is the session's (the module fixture).
    assert ragmini.neighbors("king").to_dict() == cli_json(capsys, "explore", "neighbors", "king")
    assert ragmini.analogy("king", "man", "woman", n=3).to_dict() == cli_json(
        capsys, "explore", "analogy", "king", "man", "woman", "-n", "3")
    sentences = ["dog bites man", "man bites dog", "a man was bitten by a dog"]
    similar = ragmini.similarity(sentences, method="glove")
    assert similar.to_dict() == cli_json(capsys, "explore", "similarity", *sentences,
                                         "--method", "glove")
    assert similar.matrix.shape == (3, 3) and round(float(similar.matrix[0, 1]), 6) == 1.0
    text = "Tokenisation splits unbelievable words"
    assert ragmini.tokens(text, tokenizer="sbert").to_dict() == cli_json(
        capsys, "explore", "tokens", text, "--tokenizer", "sbert")
    mapped = api_store.corpus_map("glove")
    assert mapped.to_dict() == cli_json(capsys, "explore", "map", "--method", "glove",
                                        "--store", str(served_store))
    assert mapped.pca.shape == (84, 2)


# -- records -------------------------------------------------------------------------

def test_records_are_frozen_and_read_like_lists(api_store):
    result = api_store.search("cosine similarity", k=3)
    assert len(result) == 3 and result[0] is result.hits[0] and list(result) == list(result.hits)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.k = 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        api_store.status().repaired = True


def test_compare_lines_methods_up(api_store):
    result = api_store.compare("why average word vectors", methods=["glove", "sbert", "w2v"],
                               k=5)
    body = result.to_dict()
    assert list(result.results) == ["glove", "sbert"]
    assert isinstance(result.errors["w2v"], ragmini.IndexStale)
    assert body["methods"]["w2v"]["error"]["code"] == "index_unavailable"
    assert body["methods"]["sbert"]["hits"] == api_store.search(
        "why average word vectors", k=5).to_dict()["hits"]
    for entry in body["overlap"]:
        assert len(entry["methods"]) > 1 and set(entry["ranks"]) == set(entry["methods"])
    # The default: the dense default, bm25 and the default hybrid (ragmini.api.defaults).
    default = api_store.compare("bm25", k=2)
    assert list(default.results) == ["sbert", "bm25", "hybrid"] and not default.errors
    # GloVe does not know "bm25": its failure leaves the others standing.
    glove_too = api_store.compare("bm25", methods=["glove", "bm25"], k=2)
    assert set(glove_too.results) == {"bm25"} and set(glove_too.errors) == {"glove"}
    assert glove_too.to_dict()["methods"]["glove"]["error"]["code"] == "bad_request"


def test_eval_records_become_a_dataframe_when_pandas_is_there(api_store, monkeypatch):
    report = ragmini.evaluate(api_store, methods=["bm25"], ks=[1], resamples=100)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed
    with pytest.raises(ragmini.RagminiError, match="needs pandas"):
        report.to_dataframe()
    fake = types.ModuleType("pandas")
    fake.DataFrame = types.SimpleNamespace(from_records=lambda rows: ("frame", rows))
    monkeypatch.setitem(sys.modules, "pandas", fake)
    assert report.to_dataframe() == ("frame", report.to_records())
    sweep = ragmini.EvalSweep((report, report))  # as several chunkings of a dataset give
    assert sweep.to_dict() == {"settings": [report.to_dict(), report.to_dict()]}
    assert sweep.to_records() == report.to_records() * 2 and len(sweep) == 2


def test_open_defaults_to_the_clis_store(served_store, monkeypatch):
    monkeypatch.delenv("RAGMINI_STORE", raising=False)
    assert ragmini.open().path == Path(".ragmini") and not ragmini.open().exists
    monkeypatch.setenv("RAGMINI_STORE", str(served_store))
    with ragmini.open() as store:
        assert store.path == Path(served_store) and store.status().documents == 41


# -- errors, quiet, progress ------------------------------------------------------------

def _schema_99(path: Path) -> Path:
    from ingest.store import Store

    with Store.open(path, create=True) as s:
        s.db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        s.db.conn.commit()
    return path


ERRORS = [
    (lambda s: s.search(""), ragmini.QueryError, "the query is empty"),
    (lambda s: s.search("x", k=0), ragmini.QueryError, "k must be at least 1"),
    (lambda s: s.search("x", method="bogus"), ragmini.QueryError, "unknown method 'bogus'"),
    (lambda s: s.search("x", method="w2v"), ragmini.IndexStale, "has no 'w2v' index"),
    (lambda s: s.search("x", where=["nokey=1"]), ragmini.QueryError, "unknown filter key"),
    (lambda s: s.search("x", where=["type"]), ragmini.QueryError, "cannot read filter"),
    (lambda s: s.ask("x", k=0, generator="extractive"), ragmini.QueryError, "k must be"),
    (lambda s: s.ask("x", temperature=-1), ragmini.RagminiError, "temperature"),
    (lambda s: s.ingest("corpus/docs"), ragmini.QueryError, "takes a list"),
    (lambda s: s.compare("x", methods=["nope"]), ragmini.QueryError, "unknown method 'nope'"),
    (lambda s: ragmini.evaluate(s, chunk_size=[100, 200]), ragmini.RagminiError,
     "sweeps need a dataset"),
    (lambda s: s.as_langchain_retriever(k=0), ragmini.QueryError, "k must be at least 1"),
    (lambda s: ragmini.similarity(["one"]), ragmini.QueryError, "at least two sentences"),
    (lambda s: ragmini.neighbors("qzxv"), ragmini.QueryError, "not in the GloVe vocabulary"),
    (lambda s: ragmini.build_dataset("nope", "out"), ragmini.QueryError, "unknown dataset"),
]


@pytest.mark.parametrize("call, kind, fragment", ERRORS)
def test_errors_are_the_librarys_own(api_store, call, kind, fragment):
    with pytest.raises(kind, match=fragment) as caught:
        call(api_store)
    assert isinstance(caught.value, ragmini.RagminiError)


def test_a_search_that_finds_nothing_says_why(api_store):
    """Not an error: no hits, and the reason (the CLI prints it as its error line)."""
    result = api_store.search("zzzqqq", method="glove")
    assert len(result) == 0 and "glove vocabulary" in result.reason
    assert result.to_dict()["reason"] == result.reason


def test_store_errors(tmp_path):
    with pytest.raises(ragmini.StoreError, match="no ragmini store at"):
        ragmini.open(tmp_path / "missing").search("x")
    assert not (tmp_path / "missing").exists()  # reading never creates a store
    with pytest.raises(ragmini.StoreError, match="schema version 99"):
        ragmini.open(_schema_99(tmp_path / "s99"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ragmini.StoreError, match="not a folder"):
        ragmini.open(tmp_path / "file")
    with pytest.raises(ragmini.StoreError, match="no ragmini store at"):
        ragmini.evaluate(tmp_path / "missing")
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "ragmini.db").write_bytes(b"not a database" * 100)
    with pytest.raises(ragmini.StoreError, match="not a readable ragmini store"):
        ragmini.open(tmp_path / "damaged")


def test_a_closed_store_says_so(served_store):
    store = ragmini.open(served_store)
    store.search("bm25", method="bm25", k=1)
    store.close()
    with pytest.raises(ragmini.StoreError, match="was closed"):
        store.search("bm25", method="bm25", k=1)


def test_a_missing_generator_is_model_unavailable(api_store):
    with pytest.raises(ragmini.ModelUnavailable):
        api_store.ask("what is bm25?", generator=str(Path("no-such-model-folder").resolve()),
                      fallback=False)


def test_nothing_prints(store_copy, tmp_path, capfd):
    docs = tmp_path / "quiet"
    docs.mkdir()
    (docs / "q.md").write_text("# Quiet\n\nNothing is printed unless asked.\n")
    capfd.readouterr()
    store = ragmini.open(store_copy)
    store.ingest([docs], methods=["glove"])
    store.search("printed", k=2)
    store.ask("What is printed?", generator="extractive")
    store.status()
    store.remove([docs])
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("progress", [False, True])
def test_progress_bars_are_off_unless_asked(store_copy, tmp_path, monkeypatch, progress):
    docs = tmp_path / "bars"
    docs.mkdir()
    (docs / "b.md").write_text("# Bars\n\nProgress bars are switchable.\n")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # even on a terminal, off by default
    ragmini.open(store_copy).ingest([docs], methods=["glove"], **(
        {"progress": True} if progress else {}))
    shown = terminal.getvalue()
    assert ("embedding" in shown) is progress and (shown == "") is not progress
    terminal.truncate(0)
    ragmini.open(store_copy, progress=progress).remove([docs])
    (docs / "c.md").write_text("# More\n\nAnother file.\n")
    ragmini.open(store_copy, progress=progress).ingest([docs], methods=["glove"])
    assert (terminal.getvalue() == "") is not progress


# -- models and threads ------------------------------------------------------------------

def test_models_load_once_for_every_store(served_store, store_copy, glove, monkeypatch):
    from core.cache import Memo
    from retrieval import methods
    from retrieval.glove import GloveEmbedder

    loads = []

    def packaged():
        loads.append(1)
        return glove

    monkeypatch.setattr(methods, "MODELS", Memo(size=8))
    monkeypatch.setattr(GloveEmbedder, "packaged", staticmethod(packaged))
    first, second = ragmini.open(served_store), ragmini.open(store_copy)
    assert first.search("word vectors", method="glove", k=1)[0].chunk_id == \
        second.search("word vectors", method="glove", k=1)[0].chunk_id
    first.search("king", method="glove", k=1)
    assert len(loads) == 1
    from ragmini.api.generators import shared_generator

    assert shared_generator("extractive") is shared_generator("extractive")


def test_searches_from_several_threads(api_store):
    jobs = [(q, m) for q in ("bm25 saturation", "cosine similarity", "product quantization",
                             "chunk overlap", "nucleus sampling", "word embeddings")
            for m in ("glove", "sbert", "bm25", "hybrid")]
    expected = {job: api_store.search(job[0], method=job[1], k=3).to_dict() for job in jobs}

    def search(job):
        return api_store.search(job[0], method=job[1], k=3).to_dict(), id(api_store._db())

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(search, jobs * 3))
    assert [body for body, _ in got] == [expected[job] for job in jobs * 3]
    connections = {conn for _, conn in got}
    assert len(connections) > 1 and id(api_store._db()) not in connections  # one per thread


# -- LangChain ----------------------------------------------------------------------------

def test_langchain_retriever_in_a_runnable_chain(api_store):
    from langchain_core.documents import Document
    from langchain_core.prompts import PromptTemplate
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    retriever = api_store.as_langchain_retriever(method="bm25", k=3)
    assert isinstance(retriever, BaseRetriever)
    question = "how does BM25 rank documents?"
    docs = retriever.invoke(question)
    hits = api_store.search(question, method="bm25", k=3)
    assert all(isinstance(d, Document) for d in docs) and len(docs) == 3
    for doc, hit in zip(docs, hits):
        assert doc.page_content == hit.text and doc.id == str(hit.chunk_id)
        meta = doc.metadata
        assert {k: meta[k] for k in ("source", "doc_id", "title", "chunk_id", "score", "rank")} \
            == {"source": hit.source, "doc_id": hit.doc_id, "title": hit.title,
                "chunk_id": hit.chunk_id, "score": hit.score, "rank": hit.rank}
        assert meta["method"] == "bm25" and meta["end"] > meta["start"] >= 0

    def numbered(documents):
        return "\n".join(f"[{i}] {d.metadata['doc_id']} ({d.metadata['score']:.2f}): "
                         f"{d.page_content[:60]}" for i, d in enumerate(documents, 1))

    prompt = PromptTemplate.from_template("Sources:\n{context}\n\nQuestion: {question}")
    chain = {"context": retriever | RunnableLambda(numbered),
             "question": RunnablePassthrough()} | prompt
    text = chain.invoke(question).to_string()
    assert text.startswith("Sources:\n[1] bm25.md") and text.endswith(f"Question: {question}")
    assert "[3] " in text and "[4] " not in text

    queries = ["cosine similarity", "product quantization", "top-p sampling"]
    batched = retriever.batch(queries)  # runs on a thread pool
    assert [[d.id for d in docs] for docs in batched] == \
        [[str(h.chunk_id) for h in api_store.search(q, method="bm25", k=3)] for q in queries]

    sliced = api_store.as_langchain_retriever(method="sbert", k=5, where=["type=txt"])
    assert {d.metadata["doc_id"].rsplit(".", 1)[1] for d in sliced.invoke("prompts")} == {"txt"}
