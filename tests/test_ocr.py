"""OCR of scanned pages: a groff-rendered man page rasterised here (as a scanner would
see it) and wrapped back into an image-only PDF, PNG and multi-page TIFF files; read
by the real Tesseract (`make tesseract`), checked for the page's words and the page
each one is cited on."""

from __future__ import annotations

import io
import json
import os

import pytest

from ingest.documents import Extractor, ExtractError, extract
from ingest.load import load_paths
from ingest.ocr import OcrOptions, engine_version, unavailable
from tests.test_documents import _page_of, render_pdf

DPI = 200  # a common scan setting; at 150 dpi Tesseract reads "marker1x1" as "markerlxl"


@pytest.fixture(scope="module")
def text_pdf() -> bytes:
    """Three pages of a man page (markers marker{s}x{p} in every paragraph)."""
    return render_pdf(sections=6, paragraphs=8)


def rasterise(pdf: bytes, dpi: int = DPI) -> list:
    """Each page of `pdf` as a grayscale Pillow image: what a scan of a print holds."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        # copied: to_pil() shares the bitmap's memory, which closing the PDF frees
        return [doc[i].render(scale=dpi / 72, grayscale=True).to_pil().copy()
                for i in range(len(doc))]
    finally:
        doc.close()


def image_pdf(images: list, dpi: int = DPI) -> bytes:
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out.getvalue()


@pytest.fixture(scope="module")
def scanned(text_pdf) -> bytes:
    return image_pdf(rasterise(text_pdf))


def markers(text: str) -> set[str]:
    return {w.strip(".,:;") for w in text.split() if w.startswith("marker")}


def test_the_engine_is_installed():
    # `make test` installs it (the Makefile's tesseract target): a missing one is a
    # setup failure here, never a silent skip
    assert unavailable() is None, unavailable()
    assert engine_version().startswith("tesseract 5")


@pytest.fixture(scope="module")
def read_scan(scanned):
    return extract(".pdf", scanned)


def test_a_scanned_pdf_is_read_with_its_page_numbers(text_pdf, scanned, read_scan):
    with pytest.raises(ExtractError, match="no text layer"):
        extract(".pdf", scanned, OcrOptions(mode="never"))
    found = read_scan
    truth = _page_of(text_pdf)  # the page each marker is printed on
    assert found.kind == "page" and found.metadata == {"pages": 3, "ocr": True}
    assert [label for _, label in found.locations] == ["1", "2", "3"]
    assert any(n.startswith("read by OCR (tesseract 5") and "3 of 3 pages (1-3)" in n
               for n in found.notes), found.notes
    seen = markers(found.text)
    assert len(seen & set(truth)) >= 0.9 * len(truth), sorted(set(truth) - seen)
    assert "retrieval ranks documents" in found.text and "testdoc" in found.text.lower()
    starts = [o for o, _ in found.locations]
    for marker in seen & set(truth):
        at = found.text.index(marker)
        assert max(i for i, o in enumerate(starts) if o <= at) + 1 == truth[marker], marker


def test_a_text_pdf_is_not_read_by_ocr_unless_asked(text_pdf):
    plain = extract(".pdf", text_pdf)
    assert "ocr" not in plain.metadata and not any("OCR" in n for n in plain.notes)
    always = extract(".pdf", render_pdf(sections=1, paragraphs=3), OcrOptions(mode="always"))
    assert always.metadata.get("ocr") and "marker0x2" in always.text


def test_images_png_and_multipage_tiff(text_pdf, tmp_path):
    pages = rasterise(text_pdf)
    truth = _page_of(text_pdf)
    png = io.BytesIO()
    # a copy: Pillow 13 leaves a PNG save's encoder settings on the image, and a
    # later multi-page TIFF save with it fails
    pages[1].copy().save(png, format="PNG", dpi=(DPI, DPI))
    found = extract(".png", png.getvalue())
    assert found.locations == ((0, "1"),) and found.metadata["ocr"]
    on_two = {m for m, p in truth.items() if p == 2}
    assert len(markers(found.text) & on_two) >= 0.9 * len(on_two)

    tiff = io.BytesIO()
    pages[0].save(tiff, format="TIFF", save_all=True, append_images=pages[1:2], dpi=(DPI, DPI),
                  compression="tiff_lzw")
    found = extract(".tiff", tiff.getvalue())
    assert [label for _, label in found.locations] == ["1", "2"]
    starts = [o for o, _ in found.locations]
    for marker in markers(found.text) & set(truth):
        at = found.text.index(marker)
        assert max(i for i, o in enumerate(starts) if o <= at) + 1 == truth[marker], marker

    jpeg = io.BytesIO()
    pages[2].convert("RGB").save(jpeg, format="JPEG", quality=85, dpi=(DPI, DPI))
    (tmp_path / "scan.jpg").write_bytes(jpeg.getvalue())
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    loaded = load_paths([tmp_path])
    assert [d.doc_id for d in loaded.documents] == ["scan.jpg"]
    assert loaded.documents[0].metadata["type"] == "jpg"
    assert loaded.documents[0].location_kind == "page"
    [skipped] = loaded.skipped
    assert skipped.reason.startswith("not a readable image (UnidentifiedImageError")


def test_never_and_a_missing_engine_are_one_line_skip_reasons(scanned, tmp_path, monkeypatch):
    (tmp_path / "scan.pdf").write_bytes(scanned)
    img = io.BytesIO()
    rasterise(render_pdf(sections=1, paragraphs=1))[0].save(img, format="PNG")
    (tmp_path / "page.png").write_bytes(img.getvalue())
    off = load_paths([tmp_path], ocr=OcrOptions(mode="never"))
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in off.skipped}
    assert reasons == {"scan.pdf": "no text layer (a scanned PDF?): OCR is off (--ocr never)",
                       "page.png": "an image: its text needs OCR, which is off (--ocr never)"}
    # no tesseract on PATH: the worker (spawned with this environment) says so
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    unavailable.cache_clear()
    try:
        gone = load_paths([tmp_path])
        assert unavailable() == ("tesseract is not installed (apt-get install tesseract-ocr "
                                 "tesseract-ocr-eng, or `make tesseract`)")
    finally:
        unavailable.cache_clear()
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in gone.skipped}
    hint = "tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng"
    assert reasons["scan.pdf"].startswith("no text layer (a scanned PDF?): OCR unavailable: "
                                          + hint)
    assert reasons["page.png"].startswith("an image: its text needs OCR, unavailable: " + hint)
    assert all("\n" not in r for r in reasons.values())


def test_a_page_over_its_time_limit_is_reported(scanned):
    with pytest.raises(ExtractError, match=r"no text layer .*OCR failed: OCR took longer "
                                           r"than 0\.001 s"):
        extract(".pdf", scanned, OcrOptions(page_timeout=0.001))
    with Extractor(ocr=OcrOptions(page_timeout=0.001)) as extractor:
        with pytest.raises(ExtractError, match="OCR took longer than 0.001 s"):
            extractor.extract(".png", _png_of(scanned))


def _png_of(pdf: bytes) -> bytes:
    out = io.BytesIO()
    rasterise(pdf)[0].save(out, format="PNG")
    return out.getvalue()


def test_scanned_pdf_through_ingest_search_and_citation(tmp_path, capsys):
    from ragmini.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    text_pdf = render_pdf(sections=4, paragraphs=8)  # two pages
    (docs / "scan.pdf").write_bytes(image_pdf(rasterise(text_pdf)))
    truth = _page_of(text_pdf)
    assert set(truth.values()) == {1, 2}
    store = str(tmp_path / "s")
    main(["ingest", str(docs), "--store", store, "--methods", "bm25", "--no-progress", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert body["new"] == 1 and not body["skipped"]
    assert any("read by OCR" in n for n in body["notes"])
    for marker in ("marker0x3", "marker3x5"):
        main(["search", marker, "--store", store, "--method", "bm25", "-k", "1", "--json"])
        hit = json.loads(capsys.readouterr().out)["hits"][0]
        assert hit["doc_id"] == "scan.pdf" and marker in hit["text"]
        assert hit["location"] == f"p. {truth[marker]}" or \
            hit["pages"][0] <= truth[marker] <= hit["pages"][1]
    with pytest.raises(SystemExit):
        main(["ingest", str(docs), "--store", store, "--methods", "bm25", "--no-progress",
              "--ocr", "never"])
    assert capsys.readouterr().err == (f"error: nothing to ingest ({docs / 'scan.pdf'}: no text "
                                       "layer (a scanned PDF?): OCR is off (--ocr never))\n")
    # a skipped file is kept as it was (not pruned): it is still searchable
    main(["search", "marker0x3", "--store", store, "--method", "bm25", "-k", "1", "--json"])
    assert json.loads(capsys.readouterr().out)["hits"][0]["doc_id"] == "scan.pdf"


def test_ocr_option_is_checked():
    from core.errors import RagminiError

    with pytest.raises(RagminiError, match="ocr must be one of auto, always, never"):
        OcrOptions(mode="sometimes")
    assert OcrOptions().pool_size == (os.cpu_count() or 1)
