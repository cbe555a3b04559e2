"""PDF, DOCX, EPUB and ODT: real files made here (groff renders the PDF; python-docx,
ebooklib and odfpy write the others), page spans, sections, and bad files."""

from __future__ import annotations

import io
import json
import multiprocessing
import subprocess

import pytest

from ingest.documents import Extractor, ExtractError, extract, strip_running_lines
from ingest.load import load_paths
from ingest.pipeline import ingest_paths
from ingest.store import Store


def render_pdf(sections: int = 8, paragraphs: int = 8) -> bytes:
    """A man page rendered by groff to a multi-page PDF: running header and footer on
    every page, a unique marker word in every paragraph."""
    src = ['.TH TESTDOC 1 2026-01-01 "ragmini 0.1" "Test Manual"', ".nh",
           ".SH NAME", r"testdoc \- a page made up for the tests"]
    words = ("retrieval ranks documents for a query", "an index maps terms to postings",
             "embeddings place similar texts close", "a reranker reads pairs of texts",
             "chunks overlap so answers are not cut", "filters keep some documents out",
             "evaluation counts relevant hits")
    for s in range(sections):
        src.append(f".SH PART{s}")
        for p in range(paragraphs):
            said = [words[(s * paragraphs + p + i) % len(words)] for i in range(4)]
            src += [".PP", f"Paragraph {s}.{p} names marker{s}x{p}: " + "; ".join(said) + "."]
    done = subprocess.run(["groff", "-man", "-Tpdf"], input="\n".join(src).encode(),
                          capture_output=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def manual_pdf() -> bytes:
    return render_pdf()


def _page_of(pdf: bytes) -> dict[str, int]:
    """Ground truth: the page (1-based) each marker is printed on, read by PDFium."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    where = {}
    for i in range(len(doc)):
        text = doc[i].get_textpage().get_text_range()
        for word in text.replace(":", " ").split():
            if word.startswith("marker"):
                where.setdefault(word, i + 1)
    doc.close()
    return where


def test_pdf_text_pages_and_running_lines(manual_pdf):
    found = extract(".pdf", manual_pdf)
    pages = _page_of(manual_pdf)
    assert found.kind == "page" and found.metadata["pages"] >= 3
    assert [label for _, label in found.locations] == \
        [str(n) for n in range(1, found.metadata["pages"] + 1)]
    assert "TESTDOC(1)" not in found.text and "2026-01-01" not in found.text  # header/footer
    assert all(f"marker{s}x{p}" in found.text for s in range(8) for p in range(8))
    # every marker sits in the page span its offset falls in
    starts = [o for o, _ in found.locations]
    for marker, page in pages.items():
        at = found.text.index(marker)
        assert max(i for i, o in enumerate(starts) if o <= at) + 1 == page


def test_a_one_page_pdf_loses_its_header_and_footer_by_layout():
    found = extract(".pdf", render_pdf(sections=1, paragraphs=2))
    assert found.metadata["pages"] == 1
    assert "TESTDOC(1)" not in found.text and "2026-01-01" not in found.text
    assert "marker0x0" in found.text and "marker0x1" in found.text and "PART0" in found.text


def test_pdf_chunks_carry_page_spans_into_search_and_citations(tmp_path, manual_pdf, capsys):
    from ragmini.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manual.pdf").write_bytes(manual_pdf)
    truth = _page_of(manual_pdf)
    with Store.open(tmp_path / "s", create=True) as store:
        report = ingest_paths(store, [docs], progress=False)
        assert report.new == 1 and not report.skipped
        chunks = [c for batch in store.iter_chunks() for c in batch]
    assert len(chunks) > 3 and all(c.page_start is not None for c in chunks)
    assert any(c.page_end > c.page_start for c in chunks)  # some chunk crosses a page
    for marker, page in truth.items():
        holding = [c for c in chunks if marker in c.text]
        assert holding and all(c.page_start <= page <= c.page_end for c in holding), marker
    main(["ingest", str(docs), "--store", str(tmp_path / "s"), "--methods", "bm25",
          "--no-progress"])
    capsys.readouterr()
    main(["search", "marker3x4", "--store", str(tmp_path / "s"), "--method", "bm25", "-k", "1",
          "--json"])
    hit = json.loads(capsys.readouterr().out)["hits"][0]
    page = truth["marker3x4"]
    assert hit["pages"][0] <= page <= hit["pages"][1]
    assert hit["location"].startswith("p. ") and hit["doc_id"] == "manual.pdf"
    main(["search", "marker3x4", "--store", str(tmp_path / "s"), "--method", "bm25", "-k", "1"])
    assert f"manual.pdf {hit['location']}" in capsys.readouterr().out


def test_running_lines_and_hyphens_on_their_own():
    bodies = [["the body of one", "hyphen-"], ["another body", "ated"], ["a third", "page"],
              ["last of all", "done"]]
    pages = [["HEAD(1) Manual HEAD(1)", *body, f"Footer 2026 {i}"]
             for i, body in enumerate(bodies, start=1)]
    pages[2].append("- 3 -")  # a bare page number under the footer
    assert strip_running_lines(pages) == bodies
    from ingest.documents import _HYPHEN_BREAK

    assert _HYPHEN_BREAK.sub(r"\1\2", "retrie-\nval and Jean-\nPaul") == \
        "retrieval and Jean-\nPaul"
    # on two pages a running line must be on both; one page is left as it is
    assert strip_running_lines([["A 1", "x", "y"], ["A 2", "z", "w"]]) == [["x", "y"], ["z", "w"]]
    assert strip_running_lines([["A", "x"], ["B", "y"]]) == [["A", "x"], ["B", "y"]]
    assert strip_running_lines([["A", "x"]]) == [["A", "x"]]


def _docx_bytes() -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.title = "Release notes"
    for name, word in (("Installation", "alpha"), ("Usage", "beta"), ("Limits", "gamma")):
        d.add_heading(name, 1)
        for i in range(4):
            d.add_paragraph(f"The {name.lower()} part, paragraph {i}, mentions {word}{i}. "
                            + "Words to fill the section out well past one chunk. " * 6)
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "flag", "meaning"
    table.cell(1, 0).text, table.cell(1, 1).text = "--fast", "skip the checks"
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def _epub_bytes() -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("ragmini-test")
    book.set_title("A Small Book")
    book.set_language("en")
    chapters = []
    for i, name in enumerate(("Beginnings", "Middles")):
        c = epub.EpubHtml(title=name, file_name=f"c{i}.xhtml", lang="en")
        body = "".join(f"<p>{name} paragraph {j} holds token{i}y{j}. "
                       + "Filler words for length. " * 10 + "</p>" for j in range(4))
        c.content = f"<html><body><h1>{name}</h1>{body}<ul><li><p>a listed point</p></li>" \
                    f"</ul></body></html>"
        book.add_item(c)
        chapters.append(c)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    out = io.BytesIO()
    epub.write_epub(out, book)
    return out.getvalue()


def _odt_bytes() -> bytes:
    from odf import dc
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.meta.addElement(dc.Title(text="Meeting minutes"))
    for name in ("Agenda", "Decisions"):
        doc.text.addElement(H(outlinelevel=1, text=name))
        for i in range(3):
            doc.text.addElement(P(text=f"{name} item {i}: " + "we discussed the plan. " * 12))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


@pytest.mark.parametrize("suffix, make, title, sections", [
    (".docx", _docx_bytes, "Release notes", ["Installation", "Usage", "Limits"]),
    (".epub", _epub_bytes, "A Small Book", ["Beginnings", "Middles"]),
    (".odt", _odt_bytes, "Meeting minutes", ["Agenda", "Decisions"]),
])
def test_sectioned_formats(tmp_path, suffix, make, title, sections):
    found = extract(suffix, make())
    assert found.title == title and found.kind == "section"
    assert [label for _, label in found.locations] == sections
    if suffix == ".docx":
        assert "--fast | skip the checks" in found.text and "beta3" in found.text
    if suffix == ".epub":
        assert "token1y3" in found.text and found.text.count("a listed point") == 2
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / f"file{suffix}").write_bytes(make())
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_paths(store, [docs], progress=False)
        chunks = [c for batch in store.iter_chunks() for c in batch]
    assert {c.section for c in chunks} <= set(sections) and len(chunks) >= 2
    for c in chunks:  # a chunk's section is the last heading at or before its start
        assert found.text[c.start:c.end] == c.text
        assert c.section == [label for at, label in found.locations if at <= c.start][-1]
    assert len({c.section for c in chunks}) >= 2


def _encrypted_pdf(pdf: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _blank_pdf(pages: int = 2) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _drm_epub() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(_epub_bytes_io(), "r") as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("META-INF/encryption.xml", "<encryption/>")
    return out.getvalue()


def _epub_bytes_io() -> io.BytesIO:
    return io.BytesIO(_epub_bytes())


def test_bad_documents_are_skipped_with_reasons(tmp_path, manual_pdf):
    docs = tmp_path / "docs"
    docs.mkdir()
    bad = {
        "encrypted.pdf": (_encrypted_pdf(manual_pdf), "encrypted PDF"),
        "scanned.pdf": (_blank_pdf(), "no text layer"),
        "garbage.pdf": (b"%PDF-1.7\n" + bytes(range(256)) * 20, "malformed or truncated PDF"),
        "notzip.docx": (b"PK\x03\x04 truncated", "not a valid DOCX"),
        "locked.docx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "encrypted or legacy"),
        "broken.epub": (b"this is not a zip", "not a valid EPUB"),
        "drm.epub": (_drm_epub(), "DRM-protected or encrypted EPUB"),
        "empty.odt": (b"", "empty file"),
    }
    for name, (data, _) in bad.items():
        (docs / name).write_bytes(data)
    (docs / "good.pdf").write_bytes(manual_pdf)
    loaded = load_paths([docs])
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in loaded.skipped}
    for name, (_, expected) in bad.items():
        assert expected in reasons[name], (name, reasons.get(name))
    assert [d.doc_id for d in loaded.documents] == ["good.pdf"]
    assert not multiprocessing.active_children()  # the worker went with the batch


def test_a_truncated_pdf_is_read_in_part_with_a_note(manual_pdf):
    found = None
    try:
        found = extract(".pdf", manual_pdf[: len(manual_pdf) * 2 // 3])
    except ExtractError as exc:
        assert "malformed or truncated" in str(exc)
    if found is not None:
        assert any("truncated" in n for n in found.notes)


def _slow_pdf(operations: int = 400_000) -> bytes:
    """A valid one-page PDF whose content stream shows text `operations` times:
    PDFium takes seconds over it."""
    stream = b"BT /F1 1 Tf " + b"1 0 0 1 10 10 Tm (x) Tj " * operations + b"ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def test_extraction_is_time_bounded_and_the_worker_recovers(manual_pdf):
    with Extractor(timeout=0.05) as slow_limit:
        with pytest.raises(ExtractError, match="took longer than 0.05 s"):
            slow_limit.extract(".pdf", _slow_pdf())
        slow_limit.timeout = 60
        assert "marker0x0" in slow_limit.extract(".pdf", manual_pdf).text  # a fresh worker
    assert not multiprocessing.active_children()
