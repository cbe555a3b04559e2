"""The CLI contract: JSON shapes, and user mistakes as one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ragmini.cli import main
from tests.conftest import CORPUS, REPO


def run_cli(capsys, *args):
    """(exit code, stdout, stderr) of `ragmini args` run in-process."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def small_store(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nRetrieval finds relevant passages for a query.")
    (docs / "b.txt").write_text("Sampling temperature changes how random the generated text is.")
    store = tmp_path / "store"
    code, out, err = run_cli(capsys, "ingest", str(docs), "--store", str(store), "--methods",
                             "sbert", "--no-progress")
    assert code == 0, err
    return store


def _schema_99(path):
    from ingest.store import Store

    with Store.open(path, create=True) as s:
        s.db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        s.db.conn.commit()


# (arguments, expected fragment of the one-line error). STORE is replaced by a
# store holding an sbert index only; MISSING by a path that does not exist.
ERRORS = [
    (["search", "", "--store", "STORE"], "the query is empty"),
    (["search", "   ", "--store", "STORE"], "the query is empty"),
    (["search", "x", "-k", "0", "--store", "STORE"], "-k must be at least 1"),
    (["search", "x", "--store", "MISSING"], "no ragmini store at"),
    (["search", "x", "--method", "glove", "--store", "STORE"], "has no 'glove' index"),
    (["search", "x", "--method", "bogus", "--store", "STORE"], "unknown method 'bogus'"),
    (["search", "x", "--method", "hybrid:bm25", "--store", "STORE"], "write a hybrid as hybrid:A+B"),
    (["search", "x", "--method", "bm25", "--store", "STORE"], "has no 'bm25' index"),
    (["ingest", "CORPUS", "--store", "NEW", "--methods", "hybrid:glove+elmo"], "unknown method 'elmo'"),
    (["search", "x", "--store", "SCHEMA99"], "schema version 99"),
    (["ingest", "MISSING", "--store", "NEW"], "nothing to ingest"),
    (["ingest", "CORPUS", "--store", "NEW", "--chunk-size", "300"], "over the encoder's limit"),
    (["ingest", "CORPUS", "--store", "NEW", "--methods", "glove,elmo"], "unknown method 'elmo'"),
    (["eval", "--store", "STORE", "--queries", "MISSING"], "cannot read query file"),
    (["eval", "--store", "STORE", "-k", "1,x"], "comma-separated whole numbers"),
    (["ask", "q", "--store", "STORE", "--temperature", "-1"], "--temperature must be"),
    (["ask", "q", "--store", "STORE", "--max-new-tokens", "0"], "--max-new-tokens must be"),
    (["ask", "q", "--store", "STORE", "--generator", "MISSING", "--no-fallback"],
     "cannot be loaded"),
    (["ask", "", "--store", "STORE"], "the query is empty"),
]


@pytest.mark.parametrize("args,message", ERRORS, ids=[" ".join(a[:2]) for a, _ in ERRORS])
def test_user_errors_are_one_line(capsys, tmp_path, small_store, args, message):
    _schema_99(tmp_path / "s99")
    swap = {"STORE": str(small_store), "MISSING": str(tmp_path / "missing"),
            "SCHEMA99": str(tmp_path / "s99"), "NEW": str(tmp_path / "new"), "CORPUS": str(CORPUS)}
    code, out, err = run_cli(capsys, *[swap.get(a, a) for a in args])
    assert code != 0
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_search_json_contract(capsys, small_store):
    code, out, _ = run_cli(capsys, "search", "how random is generated text", "--store",
                           str(small_store), "-k", "2", "--json")
    data = json.loads(out)
    assert code == 0 and data["query"] == "how random is generated text"
    assert data["method"] == "sbert" and len(data["hits"]) == 2
    first = data["hits"][0]
    assert set(first) == {"rank", "score", "chunk_id", "doc_id", "source", "title", "text",
                          "pages", "section", "location"}
    assert first["doc_id"] == "b.txt" and first["rank"] == 1
    # a text file has no pages or sections
    assert (first["pages"], first["section"], first["location"]) == (None, None, "")


def test_ingest_again_reports_no_work(capsys, small_store, tmp_path):
    code, out, _ = run_cli(capsys, "ingest", str(tmp_path / "docs"), "--store", str(small_store),
                           "--methods", "sbert", "--json")
    data = json.loads(out)
    assert (data["new"], data["changed"], data["removed"], data["unchanged"]) == (0, 0, 0, 2)
    assert data["chunks_embedded"] == 0 and data["documents"] == 2


@pytest.mark.slow
def test_eval_json_contract(capsys, corpus_store_path):
    code, out, err = run_cli(capsys, "eval", "--store", str(corpus_store_path), "--queries",
                             str(REPO / "corpus" / "queries.jsonl"), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["n_queries"] >= 60
    for method in ("glove", "sbert"):
        assert set(data["methods"][method]) >= {"recall@1", "recall@3", "recall@5", "recall@10",
                                                "mrr@10", "ndcg@10", "map", "precision@5"}
    assert {(c["a"], c["b"]) for c in data["comparisons"]} == {("glove", "sbert")}
    assert data["methods"]["sbert"]["mrr@10"] > data["methods"]["glove"]["mrr@10"]


@pytest.mark.slow
def test_ask_json_contract(capsys, corpus_store_path, smollm2):
    code, out, err = run_cli(capsys, "ask", "What does BM25 do?", "--store",
                             str(corpus_store_path), "--json", "--max-new-tokens", "32",
                             "--generator", "distilgpt2")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) >= {"question", "answer", "citations", "sources", "generator"}
    assert "standing in for distilgpt2" in data["generator"]
    note = next(line for line in err.splitlines() if "not available offline" in line)
    # the note names the generator that stood in, whole (its name holds a comma)
    assert f"the packaged {data['generator'].split(', standing in for')[0]} (" in note
    assert note.count("(") == note.count(")")
    assert [s["n"] for s in data["sources"]] == [1, 2, 3]
    assert set(data["sources"][0]) >= {"n", "doc_id", "source", "chunk_id"}
    assert data["sources"][0]["doc_id"] == "bm25.md"


def test_console_script_error_has_no_traceback(tmp_path):
    exe = REPO / ".venv" / "bin" / "ragmini"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ragmini.cli"]
    proc = subprocess.run([*cmd, "search", "x", "--store", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no ragmini store at") and "Traceback" not in proc.stderr


def test_help_lists_commands(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("ingest", "search", "ask", "eval"):
        assert command in out


@pytest.mark.slow
def test_ingest_counts_chunks_not_chunk_method_pairs(tmp_path, capsys):
    """Two methods embedding the same 2 chunks made 4 vectors: the line says 2 chunks."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tide.txt").write_text("The moon pulls the tide.")
    (docs / "lava.txt").write_text("Lava flows from the volcano.")
    code, out, err = run_cli(capsys, "ingest", str(docs), "--store", str(tmp_path / "store"),
                             "--methods", "glove,glove-sif", "--no-progress")
    assert code == 0, err
    assert "2 new, 0 changed, 0 removed, 0 unchanged; 2 chunks embedded (by glove, glove-sif)" \
        in out
