"""The SQLite store: schema, generations, vectors, ingest increments."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from ingest.chunk import Chunk
from ingest.load import Document
from ingest.pipeline import ingest_paths
from ingest.store import Store
from core.errors import RagminiError, StoreError


def _doc(source, text="some text"):
    return Document(source=source, doc_id=source, title="t", text=text)


def _chunks(n):
    return [Chunk(i, f"chunk {i}", i * 10, i * 10 + 7, 3) for i in range(n)]


def test_missing_store_and_foreign_files(tmp_path):
    with pytest.raises(StoreError, match="no ragmini store"):
        Store.open(tmp_path / "none")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        Store.open(tmp_path / "file", create=True)
    other = tmp_path / "other"
    other.mkdir()
    sqlite3.connect(other / "ragmini.db").execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(StoreError, match="not a ragmini store"):
        Store.open(other)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "ragmini.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable ragmini store"):
        Store.open(garbage)


def test_other_schema_version_is_refused(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        store.db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        store.db.conn.commit()
    with pytest.raises(StoreError, match="schema version 99"):
        Store.open(tmp_path)


def test_replace_remove_and_generation(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        assert store.generation == 0
        store.replace_documents([(_doc("a"), "h1", _chunks(3)), (_doc("b"), "h2", _chunks(2))])
        assert store.generation == 1
        assert (store.count("documents"), store.count("chunks")) == (2, 5)
        first_ids = sorted(store.chunk_rows(range(1, 100)))
        store.replace_documents([(_doc("a", "new"), "h3", _chunks(1))], remove_sources=["b"])
        assert store.generation == 2
        assert (store.count("documents"), store.count("chunks")) == (1, 1)
        assert store.documents()["a"].content_hash == "h3"
        # Retired rows stay readable (an older index may point at them) until purged.
        assert sorted(store.chunk_rows(range(1, 100))) == [*first_ids, 6]
        assert store.purge(2) == 5
        # Chunk ids are never reused (they are FAISS ids).
        (new_id,) = store.chunk_rows(range(1, 100))
        assert new_id > max(first_ids)


def test_vectors_roundtrip_and_empty_rows(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        store.replace_documents([(_doc("a"), "h", _chunks(3))])
        store.register_method("m", "model-1", 4)
        ids = [r.chunk_id for r in store.chunks_without_vectors("m")]
        vecs = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0.6, 0.8, 0]], dtype=np.float32)
        store.put_vectors("m", ids, vecs)
        got_ids, got = store.vectors("m")
        assert got_ids.tolist() == [ids[0], ids[2]]
        np.testing.assert_array_equal(got, vecs[[0, 2]])
        assert store.vector_counts("m") == (2, 1)
        assert store.chunks_without_vectors("m") == []
        # A different model invalidates the stored vectors.
        assert store.register_method("m", "model-2", 4) is True
        assert len(store.chunks_without_vectors("m")) == 3


def test_ingest_is_incremental(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("alpha " * 50)
    (docs / "b.txt").write_text("bravo " * 50)
    with Store.open(tmp_path / "s", create=True) as store:
        r1 = ingest_paths(store, [docs], progress=False)
        assert (r1.new, r1.changed, r1.unchanged) == (2, 0, 0)
        gen = store.generation
        r2 = ingest_paths(store, [docs], progress=False)
        assert (r2.new, r2.changed, r2.unchanged, r2.chunks_added) == (0, 0, 2, 0)
        assert store.generation == gen  # nothing written
        (docs / "a.txt").write_text("changed " * 50)
        (docs / "c.txt").write_text("charlie " * 50)
        (docs / "b.txt").unlink()
        r3 = ingest_paths(store, [docs], progress=False, prune=True)
        assert (r3.new, r3.changed, r3.unchanged, r3.removed) == (1, 1, 0, 1)
        assert sorted(d.doc_id for d in store.documents().values()) == ["a.txt", "c.txt"]


def test_chunking_settings_are_fixed_per_store(tmp_path):
    from ingest.chunk import ChunkConfig

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("alpha")
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_paths(store, [docs], progress=False)
        with pytest.raises(RagminiError, match="size=200 overlap=30"):
            ingest_paths(store, [docs], config=ChunkConfig(size=100, overlap=10), progress=False)


def test_second_writer_fails_fast_when_asked(tmp_path):
    with Store.open(tmp_path, create=True) as a, Store.open(tmp_path) as b:
        with a.writer_lock():
            with pytest.raises(StoreError, match="another ragmini process"):
                with b.writer_lock(wait=False):
                    pass
        with b.writer_lock(wait=False):  # released: now it succeeds
            pass
