"""Crash safety, snapshots, concurrent writers, status/repair, remove and reindex."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.load import Document
from ingest.store import Store
from retrieval.index import read_params
from retrieval.indexing import update_indexes
from retrieval.methods import open_searcher
from tests.conftest import dense_search
from retrieval.status import check_store
from tests.conftest import REPO

RAGMINI = [str(REPO / ".venv" / "bin" / "ragmini")] if (REPO / ".venv" / "bin" / "ragmini").exists() \
    else [sys.executable, "-c", "from ragmini.cli import main; main()"]
WORDS = ("retrieval embedding vector index query document passage ranking token model "
         "search chunk answer source cosine").split()


def _write_docs(folder: Path, n: int, salt: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(150 + i % 50))
        (folder / f"doc{i:04d}.txt").write_text(f"Document {i}{salt}\n\n{body} {salt}\n")


def _fingerprint(store_path: Path) -> set[tuple]:
    with Store.open(store_path) as store:
        rows = store.db.execute(
            "SELECT d.doc_id, c.position, c.text FROM chunks c JOIN documents d "
            "ON d.id = c.document WHERE c.deleted_gen IS NULL"
        ).fetchall()
    return set(rows)


@pytest.mark.slow
def test_search_during_ingest_sees_the_old_state(store_copy, sbert):
    with Store.open(store_copy) as store:
        before = dense_search(store, "sbert", sbert, "BM25 term frequency saturation", k=3)
        assert before[0].doc_id == "bm25.md"
        # A commit replaces bm25.md, as an ingest in progress would, before any index update.
        old_source = next(s for s in store.documents() if s.endswith("bm25.md"))
        store.replace_documents([(Document(old_source, "bm25.md", "BM25", "rewritten"), "h", [])])
        during = open_searcher(store, "sbert", {"sbert": sbert})
        assert during.behind == 1
        hits = during.search(["BM25 term frequency saturation"], k=3)[0]
        assert [(h.chunk_id, h.text) for h in hits] == [(h.chunk_id, h.text) for h in before]
        # The ingest finishes: indexes catch up, and the retired rows are purged.
        update_indexes(store, progress=False, embedders={"sbert": sbert})
        after = open_searcher(store, "sbert", {"sbert": sbert})
        assert after.behind == 0
        assert all(h.doc_id != "bm25.md" for h in after.search(["BM25 saturation"], k=5)[0])
        assert not store.chunk_rows([h.chunk_id for h in before if h.doc_id == "bm25.md"])


@pytest.mark.slow
def test_status_finds_and_repair_fixes_a_damaged_index(store_copy, capsys):
    from ragmini.cli import main

    with Store.open(store_copy) as store:
        assert check_store(store).consistent
        params = read_params(store.index_dir, "glove")
        (store.index_dir / params.file).write_bytes(b"garbage")
        report = check_store(store)
        (glove,) = [m for m in report.methods if m.method == "glove"]
        assert not report.consistent and "corrupt" in glove.problems[0]
    with pytest.raises(SystemExit) as exc:
        main(["status", "--store", str(store_copy)])
    assert exc.value.code == 1 and "DISAGREES" in capsys.readouterr().out
    main(["status", "--repair", "--store", str(store_copy)])
    assert "repaired" in capsys.readouterr().out
    with Store.open(store_copy) as store:
        assert check_store(store).consistent


def test_remove_and_reindex_need_no_model(tmp_path, capsys, monkeypatch):
    from ragmini.cli import main
    from retrieval.glove import GloveEmbedder

    docs = tmp_path / "docs"
    _write_docs(docs, 5)
    store = tmp_path / "s"
    main(["ingest", str(docs), "--store", str(store), "--methods", "glove", "--no-progress"])
    capsys.readouterr()

    def no_model(*args):  # any model load from here on is a failure
        raise AssertionError("loaded the GloVe model")

    monkeypatch.setattr(GloveEmbedder, "packaged", no_model)
    (docs / "doc0001.txt").unlink()
    main(["remove", str(docs / "doc0001.txt"), "--store", str(store)])
    assert "removed 1 document(s); 4 left" in capsys.readouterr().out
    main(["reindex", "--store", str(store)])
    assert "glove: " in capsys.readouterr().out
    main(["ingest", str(docs), "--store", str(store), "--methods", "glove", "--no-progress"])
    assert "0 new, 0 changed, 0 removed, 4 unchanged; 0 chunks embedded" in capsys.readouterr().out
    with Store.open(store) as st:
        report = check_store(st)
        assert report.consistent and report.up_to_date and report.documents == 4


def _ingest_cmd(docs: Path, store: Path) -> list[str]:
    return [*RAGMINI, "ingest", str(docs), "--store", str(store), "--methods", "glove",
            "--no-progress"]


@pytest.mark.slow
@pytest.mark.parametrize("delay", [1.2, 2.2, 3.0, 3.8, 4.6])
def test_kill_9_at_any_point_loses_nothing(tmp_path_factory, delay):
    """A full ingest of these 400 files takes about 6 s here; the kill points fall
    in start-up, between commits of 64 documents, and in embedding/indexing."""
    shared = tmp_path_factory.getbasetemp() / "kill9"
    docs, reference = shared / "docs", shared / "reference"
    if not reference.exists():
        _write_docs(docs, 400)
        subprocess.run(_ingest_cmd(docs, reference), check=True, capture_output=True, timeout=300)
    store = tmp_path_factory.mktemp("victim") / "store"
    proc = subprocess.Popen(_ingest_cmd(docs, store), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if (store / "ragmini.db").exists():
        with Store.open(store) as st:
            assert check_store(st).consistent
            live = st.db.execute("SELECT count(*), count(DISTINCT source) FROM documents "
                                 "WHERE deleted_gen IS NULL").fetchone()
            assert live[0] == live[1]  # no document twice
    done = subprocess.run(_ingest_cmd(docs, store), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _fingerprint(store) == _fingerprint(reference)
    with Store.open(store) as st:
        report = check_store(st)
        assert report.consistent and report.up_to_date and report.documents == 400


@pytest.mark.slow
def test_second_ingest_waits_for_the_lock(tmp_path):
    docs = tmp_path / "docs"
    _write_docs(docs, 3)
    store_path = tmp_path / "s"
    with Store.open(store_path, create=True) as store, store.writer_lock():
        proc = subprocess.Popen([*RAGMINI, "ingest", str(docs), "--store", str(store_path),
                                 "--methods", "glove", "--no-progress"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        waiting = ""
        while time.monotonic() < deadline and "waiting for another" not in waiting:
            waiting += os.read(proc.stderr.fileno(), 4096).decode()
        assert "waiting for another ragmini process" in waiting
        assert proc.poll() is None  # still blocked while we hold the lock
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "3 new" in out


@pytest.mark.slow
def test_two_ingests_at_once_both_land(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write_docs(a, 30, salt="alpha")
    _write_docs(b, 30, salt="bravo")
    store = tmp_path / "s"
    procs = [subprocess.Popen([*RAGMINI, "ingest", str(d), "--store", str(store), "--methods",
                               "glove", "--no-progress"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for d in (a, b)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with Store.open(store) as st:
        report = check_store(st)
        assert report.consistent and report.up_to_date and report.documents == 60


def test_hundred_megabyte_file_is_refused_without_reading_it(tmp_path):
    from ingest.load import load_paths

    big = tmp_path / "huge.txt"
    with open(big, "wb") as f:
        f.truncate(100 * 2**20)  # sparse: 100 MiB on paper, nothing on disk
    (tmp_path / "ok.txt").write_text("fine")
    loaded = load_paths([tmp_path])
    assert [d.doc_id for d in loaded.documents] == ["ok.txt"]
    assert loaded.skipped[0].reason == "file is 100.0 MiB, over the 20 MiB limit (raise it with --max-file-mb)"


def test_unreadable_file_even_as_root(tmp_path, monkeypatch):
    from ingest.load import load_paths

    (tmp_path / "locked.txt").write_text("secret")
    (tmp_path / "ok.txt").write_text("fine")
    real = os.open

    def fake_open(path, flags, *args, **kwargs):
        if os.fsdecode(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    loaded = load_paths([tmp_path])
    assert [d.doc_id for d in loaded.documents] == ["ok.txt"]
    assert [s.reason for s in loaded.skipped] == ["permission denied"]
