"""Document identity (ingest/identity.py) and reading a document back (ingest/reading.py),
on small real stores indexed with bm25 (no model loads).

The rule under test: an upload's id is `uploads/NAME` and never one another source
holds; a name uploaded again replaces that upload; an id several sources share is
refused unless the source is named; removing an upload removes its file; and a
document's file is served only while it is the regular file that was ingested."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from core.errors import Ambiguous, NotFound
from ingest.identity import safe_name, upload_target
from ingest.reading import document_text, open_document_file
from ingest.store import Store
from retrieval.contract import search_one
from retrieval.ingesting import ingest_and_index, ingest_uploads, remove_document
from retrieval.methods import open_searcher
from tests.conftest import CORPUS

BM25_TEXT = (CORPUS / "bm25.md").read_bytes()


def real(path) -> str:
    """A source as the store records it: the real path."""
    return os.path.realpath(path)


@pytest.fixture
def folder(tmp_path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "bm25.md", docs / "bm25.md")
    shutil.copy(CORPUS / "faiss.md", docs / "faiss.md")
    (docs / "notes").mkdir()
    (docs / "notes" / "tides.txt").write_text("Tides\n\nThe moon pulls the sea twice a day.")
    return docs


@pytest.fixture
def store(tmp_path, folder):
    with Store.open(tmp_path / "store", create=True) as st:
        ingest_and_index(st, [folder], ["bm25"], progress=False)
        yield st


def _upload(store, name: str, data: bytes):
    return ingest_uploads(store, [(name, io.BytesIO(data))]).files[0]


def _top(store, query: str) -> str:
    return search_one(open_searcher(store, "bm25"), query, 1)[0].doc_id


def test_an_upload_named_like_a_folder_document_never_touches_it(store, folder):
    """The issue's sequence: bm25.md from a folder, then a different bm25.md uploaded,
    replaced, deleted. The folder's copy stays searchable; uploads/ ends empty."""
    first = _upload(store, "bm25.md", b"# Zebras\n\nZebras have stripes that confuse flies.")
    assert (first.status, first.doc_id, first.stored_as) == ("ingested", "uploads/bm25.md",
                                                             "bm25.md")
    assert store.sources_of("bm25.md") == [real(folder / "bm25.md")]
    assert _top(store, "zebras stripes flies") == "uploads/bm25.md"

    again = _upload(store, "bm25.md", b"# Zebras\n\nZebra stripes keep horseflies away.")
    assert (again.status, again.doc_id) == ("replaced", "uploads/bm25.md")
    same = _upload(store, "bm25.md", b"# Zebras\n\nZebra stripes keep horseflies away.")
    assert same.status == "unchanged"
    assert store.count("documents") == 4

    removed = remove_document(store, "uploads/bm25.md")
    assert removed == [real(store.root / "uploads" / "bm25.md")]
    assert list((store.root / "uploads").iterdir()) == []
    assert store.sources_of("bm25.md") == [real(folder / "bm25.md")]
    assert _top(store, "how does BM25 rank documents") == "bm25.md"
    assert (folder / "bm25.md").read_bytes() == BM25_TEXT


def test_an_upload_never_takes_an_id_another_source_holds(store, tmp_path):
    other = tmp_path / "other"
    (other / "uploads").mkdir(parents=True)
    (other / "uploads" / "a.md").write_text("# A\n\nA folder's own file under uploads/.")
    ingest_and_index(store, [other], ["bm25"], progress=False)
    assert store.sources_of("uploads/a.md") == [real(other / "uploads" / "a.md")]
    got = _upload(store, "a.md", b"# A\n\nAn uploaded file about apricots.")
    assert (got.doc_id, got.stored_as) == ("uploads/a-2.md", "a-2.md")
    assert store.sources_of("uploads/a.md") == [real(other / "uploads" / "a.md")]
    # Uploaded again, the same name lands on the same upload.
    assert upload_target(store, "a.md").doc_id == "uploads/a-2.md"


def test_an_id_several_sources_share_is_refused_and_names_them(store, tmp_path):
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "bm25.md").write_text("# Another BM25\n\nA second file with the same relative path.")
    ingest_and_index(store, [twin], ["bm25"], progress=False)
    before = store.count("documents")
    with pytest.raises(Ambiguous) as refused:
        remove_document(store, "bm25.md")
    assert real(twin / "bm25.md") in str(refused.value) and real(tmp_path / "docs" / "bm25.md") \
        in str(refused.value)
    assert store.count("documents") == before  # nothing removed
    with pytest.raises(Ambiguous):
        open_document_file(store, "bm25.md")
    assert remove_document(store, "bm25.md", source=real(twin / "bm25.md")) == [
        real(twin / "bm25.md")]
    assert store.count("documents") == before - 1 and (twin / "bm25.md").exists()
    with pytest.raises(NotFound):
        remove_document(store, "faiss.md", source=real(twin / "bm25.md"))


def test_an_upload_ingest_cannot_read_keeps_the_earlier_one(store):
    _upload(store, "note.md", b"# Note\n\nThe first version mentions kestrels.")
    empty = _upload(store, "note.md", b"   \n")
    assert empty.status == "skipped" and empty.doc_id is None
    assert (store.root / "uploads" / "note.md").read_bytes().startswith(b"# Note")
    assert _top(store, "kestrels") == "uploads/note.md"
    assert sorted(p.name for p in (store.root / "uploads").iterdir()) == ["note.md"]
    rejected = ingest_uploads(store, [("x.exe", io.BytesIO(b"MZ")), ("", io.BytesIO(b"a")),
                                      ("../../b.md", io.BytesIO(b"# B\n\nbees")),
                                      ("b.md", io.BytesIO(b"# B\n\nbees again"))]).files
    assert [f.status for f in rejected] == ["rejected", "rejected", "ingested", "rejected"]
    assert "same name" in rejected[3].reason


@pytest.mark.parametrize("name,safe", [("../../etc/pass wd.md", "pass wd.md"),
                                       (".hidden.md", "hidden.md"), ("a\x00b.md", "ab.md"),
                                       ("C:\\x\\y.txt", "y.txt"), ("é;<>.md", "é_.md")])
def test_safe_name(name, safe):
    assert safe_name(name) == safe


def test_the_file_is_the_ingested_one_byte_for_byte(store, folder):
    opened = open_document_file(store, "bm25.md")
    assert b"".join(opened.blocks()) == BM25_TEXT
    assert (opened.media_type, opened.filename, opened.active) == (
        "text/markdown; charset=utf-8", "bm25.md", False)
    nested = open_document_file(store, "notes/tides.txt")
    assert nested.media_type == "text/plain; charset=utf-8"
    nested.close()


def test_no_path_outside_the_recorded_sources(store, folder, tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nnot ingested")
    for doc_id in ("../secret.md", str(secret), "secret.md", "notes/../../secret.md"):
        with pytest.raises(NotFound):
            open_document_file(store, doc_id)
    with pytest.raises(NotFound):
        open_document_file(store, "bm25.md", source=str(secret))
    for dotted in (folder / ".." / "secret.md", folder / ".." / "docs" / "bm25.md"):
        with pytest.raises(NotFound):  # a source is matched as recorded, never resolved
            open_document_file(store, "bm25.md", source=str(dotted))


def test_a_file_swapped_for_a_link_after_ingest_is_not_served(store, folder, tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nthe bytes a link must not reach")
    (folder / "bm25.md").unlink()
    (folder / "bm25.md").symlink_to(secret)
    with pytest.raises(NotFound, match="no longer the regular file"):
        open_document_file(store, "bm25.md")
    # A folder on the way swapped for a link to a look-alike elsewhere.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "notes").mkdir(parents=True)
    (elsewhere / "notes" / "tides.txt").write_text("secret tides")
    shutil.move(folder / "notes", tmp_path / "notes-moved")
    (folder / "notes").symlink_to(elsewhere / "notes")
    with pytest.raises(NotFound, match="no longer the regular file"):
        open_document_file(store, "notes/tides.txt")
    (folder / "faiss.md").unlink()
    with pytest.raises(NotFound, match="is gone"):
        open_document_file(store, "faiss.md")


def test_a_feed_item_opens_its_feed(tmp_path):
    feed = tmp_path / "feed" / "news.rss"
    feed.parent.mkdir()
    shutil.copy(CORPUS / "reading-notes.rss", feed)
    with Store.open(tmp_path / "store", create=True) as store:
        ingest_and_index(store, [feed.parent], ["bm25"], progress=False)
        item = next(iter(store.documents().values()))
        opened = open_document_file(store, item.doc_id, item.source)
        assert b"".join(opened.blocks()) == feed.read_bytes()
        assert opened.media_type == "application/rss+xml" and opened.active


def test_the_text_view_indexes_every_chunk(tmp_path):
    long = tmp_path / "long"
    long.mkdir()
    paragraphs = [f"Paragraph {i} talks about topic {i} in some detail. " * 6 for i in range(30)]
    (long / "long.md").write_text("# Long\n\n" + "\n\n".join(paragraphs))
    with Store.open(tmp_path / "store", create=True) as store:
        ingest_and_index(store, [long], ["bm25"], progress=False)
        view = document_text(store, "long.md")
        assert len(view.chunks) > 3 and view.title == "Long"
        for c in view.chunks:
            assert view.text[c.start:c.end] == c.text
        assert "Paragraph 29" in view.text and view.to_dict()["chunks"][1]["start"] > 0
        with pytest.raises(NotFound):
            document_text(store, "nope.md")
    assert not os.path.exists(tmp_path / "store" / "uploads")
