"""Compressed documents: .gz, .bz2 and .xz files read as their inner name says (or as
plain text), cited by their real path; bombs, corrupt and truncated files skipped
with a reason, nothing else lost."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from ingest.compressed import CompressedError, decompress, inner_name, plain_text_name
from ingest.load import load_paths

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
MD = b"---\ntitle: Release notes\ntags: [a, b]\n---\n# Ignored heading\n\nZebra crossings.\n"


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_each_format_reads_as_its_inner_name_says(tmp_path, suffix):
    (tmp_path / f"notes.md{suffix}").write_bytes(COMPRESS[suffix](MD))
    (tmp_path / f"page.html{suffix}").write_bytes(COMPRESS[suffix](
        b"<html><head><title>Page T</title></head><body><nav>Home</nav>"
        b"<p>The quokka sentence.</p></body></html>"))
    docs = {d.doc_id: d for d in load_paths([tmp_path]).documents}
    md, page = docs[f"notes.md{suffix}"], docs[f"page.html{suffix}"]
    assert md.source == str((tmp_path / f"notes.md{suffix}").resolve())  # the real path
    assert (md.title, md.text) == ("Release notes", "# Ignored heading\n\nZebra crossings.")
    assert md.metadata["type"] == "md" and md.metadata["tags"] == ["a", "b"]
    assert md.metadata["compression"] == {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}[suffix]
    assert md.metadata["size"] == (tmp_path / f"notes.md{suffix}").stat().st_size
    assert page.title == "Page T" and page.text == "The quokka sentence."
    assert "Home" not in page.text


def test_suffixless_inner_names_are_plain_text(tmp_path):
    (tmp_path / "README.gz").write_bytes(gzip.compress(b"Read me\n\nThe body of the readme."))
    (tmp_path / "changelog.Debian.gz").write_bytes(gzip.compress(
        b"pkg (1.0-1) unstable; urgency=low\n\n  * First upload.\n"))
    (tmp_path / "NEWS.Debian.gz").write_bytes(gzip.compress(
        b"a first line that runs on and on, so no title line stands out in it\nat all."))
    (tmp_path / "data.json.gz").write_bytes(gzip.compress(b'{"a": 1}'))  # JSON: not prose
    (tmp_path / "src.tar.gz").write_bytes(gzip.compress(b"x" * 600))  # an archive
    loaded = load_paths([tmp_path])
    docs = {d.doc_id: d for d in loaded.documents}
    assert set(docs) == {"README.gz", "changelog.Debian.gz", "NEWS.Debian.gz"}
    assert docs["NEWS.Debian.gz"].title == "NEWS.Debian"  # ".Debian" names no format
    assert docs["README.gz"].title == "Read me"
    assert docs["changelog.Debian.gz"].title == "pkg (1.0-1) unstable; urgency=low"
    assert docs["README.gz"].metadata["type"] == "text"
    assert dict(loaded.not_read) == {".json.gz": 1, ".tar.gz": 1}
    assert not loaded.skipped


def test_compressed_pdf_keeps_its_pages(tmp_path):
    from tests.test_documents import _page_of, render_pdf

    pdf = render_pdf(sections=4, paragraphs=8)
    (tmp_path / "paper.pdf.xz").write_bytes(lzma.compress(pdf))
    (doc,) = load_paths([tmp_path]).documents
    assert doc.doc_id == "paper.pdf.xz" and doc.title == "paper"
    assert doc.location_kind == "page" and doc.metadata["type"] == "pdf"
    pages = _page_of(pdf)
    assert len({label for _, label in doc.locations}) == max(pages.values()) > 1
    for marker, page in pages.items():  # each marker lies in the span of its page
        at = doc.text.index(marker)
        label = [lab for offset, lab in doc.locations if offset <= at][-1]
        assert int(label) == page, marker


# (file name, bytes, reason fragment): each skipped with one line, the good file kept
BAD = [
    ("bomb.txt.gz", gzip.compress(b"a" * (3 * 2**20)), "decompresses to more than 2 MiB"),
    ("bomb.md.xz", lzma.compress(b"b" * (3 * 2**20)), "a decompression bomb"),
    ("corrupt.gz", b"\x1f\x8b\x08\x00" + b"not deflate data at all" * 4, "corrupt gzip file"),
    ("notgzip.gz", b"plain text that only looks compressed", "corrupt gzip file"),
    ("truncated.txt.gz", gzip.compress(" ".join(map(str, range(5000))).encode())[:4000],
     "truncated gzip file"),
    ("broken.bz2", b"BZh9" + b"\x00" * 40, "corrupt bzip2 file"),
    ("broken.xz", b"\xfd7zXZ\x00" + b"junk" * 10, "corrupt xz file"),
    ("binary.gz", gzip.compress(b"\x7fELF\x00\x00\x01binary"), "binary file"),
    ("empty.txt.gz", gzip.compress(b"   \n"), "empty file"),
]


@pytest.mark.parametrize("name,data,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_compressed_file_is_skipped_with_its_reason(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    (tmp_path / "good.txt.gz").write_bytes(gzip.compress(b"Good words stay."))
    loaded = load_paths([tmp_path], max_bytes=2 * 2**20)
    assert [d.text for d in loaded.documents] == ["Good words stay."]
    (skipped,) = loaded.skipped
    assert skipped.path.endswith(name) and reason in skipped.reason, skipped.reason


def test_a_bomb_is_never_inflated_past_the_limit():
    bomb = gzip.compress(b"\0" * (64 * 2**20))  # 64 MiB of zeros in about 64 KiB
    with pytest.raises(CompressedError, match="more than 1 MiB"):
        decompress(bomb, ".gz", limit=2**20)
    assert decompress(gzip.compress(b"hello") * 2, ".gz", limit=100) == b"hellohello"


def test_names():
    assert inner_name("a/NEWS.gz") == "NEWS" and inner_name(Path("x.md.XZ")) == "x.md"
    assert inner_name("plain.txt") == "plain.txt"
    assert plain_text_name("changelog.Debian.gz") and plain_text_name("README.bz2")
    assert plain_text_name("notes.txt.gz") and plain_text_name("main.c.gz")
    assert not plain_text_name("data.json.gz") and not plain_text_name("a.tar.xz")
    assert not plain_text_name("fig.ps.gz")


def test_cli_cites_the_compressed_file(tmp_path, capsys):
    from ragmini.cli import main

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "NEWS.gz").write_bytes(
        gzip.compress(b"News\n\nThe axolotl release fixes the frobnicator."))
    store = tmp_path / "store"
    main(["ingest", str(tmp_path / "docs"), "--store", str(store), "--methods", "bm25",
          "--no-progress"])
    capsys.readouterr()
    main(["search", "axolotl frobnicator", "--store", str(store), "--method", "bm25",
          "--json"])
    import json

    hit = json.loads(capsys.readouterr().out)["hits"][0]
    assert hit["doc_id"] == "NEWS.gz"
    assert hit["source"] == str((tmp_path / "docs" / "NEWS.gz").resolve())
