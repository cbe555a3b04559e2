"""Documents as people keep them: PDF, DOCX, EPUB and ODT, read by well-kept libraries.

- PDF: pypdfium2 (PDFium, the engine of Chrome's viewer), chosen over pypdf and
  pdfplumber by `bench/extract.py` on groff-rendered man pages whose true text is
  known (docs/performance.md "Document extraction"). Each page's text is kept with
  its page number, running headers and footers (a line, digits masked, that opens
  or closes at least half the pages, both of two) and bare page numbers are
  dropped, and words hyphenated across a line break are joined.
- DOCX: python-docx, paragraphs and tables in document order; EPUB: ebooklib, the
  spine's chapters through lxml; ODT: odfpy. Their headings become sections.
- Scanned pages and images (PNG, JPEG, TIFF; a multi-page TIFF's frames are its
  pages): read by OCR (ingest/ocr.py, Tesseract), page numbers kept. A PDF page is
  read by OCR when its text layer is (almost) empty and it shows an image, or
  every page with `--ocr always`.

Extraction runs in a worker process (`Extractor`) with a time limit per file, so
a pathological file, or a crash inside a C library, skips that file and never
stalls or kills the batch.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import re
import signal
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.clean import normalize_text
from ingest.ocr import IMAGE_SUFFIXES, OcrOptions

DOCUMENT_SUFFIXES = frozenset({".pdf", ".docx", ".epub", ".odt"}) | IMAGE_SUFFIXES
EXTRACT_TIMEOUT_S = 60.0  # per file; `ragmini ingest --extract-timeout`
STARTUP_TIMEOUT_S = 60.0  # the worker's imports, on a loaded machine

PAGE, SECTION = "page", "section"


class ExtractError(Exception):
    """A file that cannot be read: the message is the one-line reason shown."""


@dataclass(frozen=True)
class Extracted:
    """A document's text, and where its pages or sections start in it.

    locations: (character offset, label) sorted by offset; the label is the page
    number (PDF) or the heading (DOCX, EPUB, ODT)."""

    title: str
    text: str
    kind: str  # PAGE or SECTION
    locations: tuple[tuple[int, str], ...] = ()
    notes: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)


# on_progress(pages read by OCR so far, pages to read): from 0, as pages finish
Progress = Callable[[int, int], None]


def extract(suffix: str, data: bytes, ocr: OcrOptions | None = None,
            on_progress: Progress | None = None) -> Extracted:
    """The text of one PDF, DOCX, EPUB or ODT file's bytes, or of an image by OCR;
    ExtractError if unreadable. `ocr` defaults to OcrOptions() (mode auto)."""
    ocr = ocr or OcrOptions()
    if suffix in IMAGE_SUFFIXES:
        found = extract_image(data, ocr, on_progress)
    elif suffix == ".pdf":
        found = extract_pdf(data, ocr, on_progress)
    else:
        found = {".docx": extract_docx, ".epub": extract_epub, ".odt": extract_odt}[suffix](data)
    if not found.text.strip():
        raise ExtractError(f"no text in this {suffix[1:].upper()} file")
    return found


# -- PDF ---------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"^(page\s+)?[-–—(]?\s*\d{1,4}\s*[-–—)]?(\s+of\s+\d{1,4})?$", re.I)
# A word broken at a line end: "retrie-\nval" -> "retrieval" (lower case after the
# break: "Jean-\nPaul" and "x-\nY" stay as they are).
_HYPHEN_BREAK = re.compile(r"(\w)[-\u00ad\u2010]\n([a-z])")


def extract_pdf(data: bytes, ocr: OcrOptions | None = None,
                on_progress: Progress | None = None) -> Extracted:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ExtractError("encrypted PDF (it needs a password; ragmini does not ask "
                               "for one)") from exc
        raise ExtractError(f"malformed or truncated PDF (pdfium: {exc})") from exc
    try:
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            pages.append(_lone_page_body(textpage) if len(pdf) == 1
                         else textpage.get_text_range())
            textpage.close()
            page.close()
        meta = pdf.get_metadata_dict(skip_empty=True)
        pages, notes, why_not, n_read = _ocr_pdf(pdf, pages, ocr or OcrOptions(), on_progress)
    finally:
        pdf.close()
    if not pages:
        raise ExtractError("PDF has no pages")
    empty = [i + 1 for i, p in enumerate(pages) if not p.strip()]
    if len(empty) == len(pages):
        raise ExtractError(f"no text layer (a scanned PDF?): {why_not}")
    if empty:
        notes += (f"{len(empty)} of {len(pages)} pages have no text layer ({why_not}): "
                  f"{_ranges(empty)}",)
    if b"%%EOF" not in data[-2048:]:
        notes += ("the PDF looks truncated (no %%EOF at its end); the pages PDFium could "
                  "read were kept",)
    # PDFium marks a word hyphenated at a line end with U+FFFE and drops the break.
    pages = [p.replace("\ufffe\r\n", "").replace("\ufffe", "") for p in pages]
    cleaned = strip_running_lines([normalize_text(p).split("\n") for p in pages])
    parts, locations, offset = [], [], 0
    for number, lines in enumerate(cleaned, start=1):
        text = _HYPHEN_BREAK.sub(r"\1\2", "\n".join(lines)).strip()
        if not text:
            continue
        if parts:
            offset += 2  # the "\n\n" that joins pages
        locations.append((offset, str(number)))
        parts.append(text)
        offset += len(text)
    title = (meta.get("Title") or "").strip()
    return Extracted(title, "\n\n".join(parts), PAGE, tuple(locations), notes,
                     {"pages": len(pages), **({"ocr": True} if n_read else {})})


def _ocr_pdf(pdf, pages: list[str], ocr: OcrOptions, on_progress: Progress | None
             ) -> tuple[list[str], tuple[str, ...], str, int]:
    """`pages` with those that need it read by OCR; the notes to show; why a page
    still without text has none (for the skip reason or note); pages read by OCR."""
    from ingest.ocr import (
        MIN_TEXT_CHARS,
        engine_version,
        ocr_pages,
        render_page,
        text_chars,
        unavailable,
    )

    blank = "blank: no image to read by OCR"
    if not ocr.enabled:
        return pages, (), "OCR is off (--ocr never)", 0
    if ocr.mode == "always":
        wanted = list(range(len(pages)))
    else:
        wanted = [i for i, text in enumerate(pages)
                  if text_chars(text) < MIN_TEXT_CHARS and _shows_image(pdf, i)]
    if not wanted:
        return pages, (), blank, 0
    reason = unavailable(ocr.lang)
    if reason:  # auto: the note on pages without text says it; always: say it here
        notes = (f"--ocr always: pages not read by OCR: {reason}",) if ocr.mode == "always" else ()
        return pages, notes, f"OCR unavailable: {reason}", 0
    if on_progress is not None:
        on_progress(0, len(wanted))

    def rendered():
        for i in wanted:
            page = pdf[i]
            try:
                dpi = _scan_dpi(page, ocr.dpi)
                yield i + 1, render_page(page, dpi), dpi
            finally:
                page.close()

    results = ocr_pages(rendered(), ocr, on_page=on_progress and (
        lambda done: on_progress(done, len(wanted))))
    pages, read, failed = list(pages), [], []
    for result in results:
        if result.error:
            failed.append(result)
        # auto: OCR replaces a page's text layer only where it found more text
        elif ocr.mode == "always" or text_chars(result.text) > text_chars(pages[result.number - 1]):
            pages[result.number - 1] = result.text
            read.append(result.number)
    notes: tuple[str, ...] = ()
    if read:
        notes += (f"read by OCR ({engine_version()}): "
                  f"{len(read)} of {len(pages)} pages ({_ranges(read)})",)
    if failed:
        notes += (f"OCR failed on {len(failed)} page(s) ({_ranges([r.number for r in failed])}): "
                  f"{failed[0].error}",)
    unread = any(not pages[r.number - 1].strip() for r in results if not r.error)
    why_not = (f"OCR failed: {failed[0].error}" if failed
               else "OCR found no text on them" if unread else blank)
    return pages, notes, why_not, len(read)


def _shows_image(pdf, index: int) -> bool:
    import pypdfium2.raw as pdfium_c

    page = pdf[index]
    try:
        return next(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)), None) is not None
    finally:
        page.close()


def _scan_dpi(page, most: int) -> int:
    """The resolution to render a page at for OCR: that of its largest image (a scan
    is read at the resolution it was made at, not resampled), kept between 150 dpi
    (Tesseract misreads small text below it) and `most` (the time a page takes grows
    with its pixels); `most` for a page without images."""
    import pypdfium2.raw as pdfium_c

    best, dpi = 0, 0.0
    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)):
        meta = image.get_metadata()
        if meta.width * meta.height > best:
            best, dpi = meta.width * meta.height, meta.horizontal_dpi
    return int(min(max(dpi, 150), most)) if best and dpi > 0 else most


# -- images --------------------------------------------------------------------

def extract_image(data: bytes, ocr: OcrOptions | None = None,
                  on_progress: Progress | None = None) -> Extracted:
    """The text of a PNG, JPEG or TIFF image by OCR; a multi-page TIFF's frames are
    pages 1, 2, ... and every image's text is located on its page, as for a PDF."""
    from ingest.ocr import OcrFailed, engine_version, image_pages, ocr_pages, unavailable

    ocr = ocr or OcrOptions()
    if not ocr.enabled:
        raise ExtractError("an image: its text needs OCR, which is off (--ocr never)")
    reason = unavailable(ocr.lang)
    if reason:
        raise ExtractError(f"an image: its text needs OCR, unavailable: {reason}")
    try:
        frames = image_pages(data)  # decoded up front: a broken file fails here
    except OcrFailed as exc:
        raise ExtractError(str(exc)) from exc
    if on_progress is not None:
        on_progress(0, len(frames))
    results = ocr_pages(frames, ocr, on_page=on_progress and (
        lambda done: on_progress(done, len(frames))))
    failed = [r for r in results if r.error]
    if len(failed) == len(results):
        raise ExtractError(f"OCR failed: {failed[0].error}")
    parts, locations, offset = [], [], 0
    for result in results:
        text = _HYPHEN_BREAK.sub(r"\1\2", normalize_text(result.text)).strip()
        if not text:
            continue
        if parts:
            offset += 2
        locations.append((offset, str(result.number)))
        parts.append(text)
        offset += len(text)
    if not parts:
        raise ExtractError("OCR found no text in this image")
    notes = (f"read by OCR ({engine_version()}): {len(results)} page(s)",)
    if failed:
        notes += (f"OCR failed on {len(failed)} page(s) ({_ranges([r.number for r in failed])}): "
                  f"{failed[0].error}",)
    return Extracted("", "\n\n".join(parts), PAGE, tuple(locations), notes,
                     {"pages": len(results), "ocr": True})


def _lone_page_body(textpage) -> str:
    """A one-page PDF's text without its running header and footer, found by layout:
    with no other page to repeat them, they are the first and last lines when both
    stand apart from the text block (each gap over twice the median line gap and
    over every gap inside the block). A page with only one of the two keeps all."""
    tops = sorted({round(textpage.get_rect(i)[3]) for i in range(textpage.count_rects())},
                  reverse=True)
    lines = [t for i, t in enumerate(tops) if i == 0 or tops[i - 1] - t > 3]  # merge jitter
    if len(lines) < 5:
        return textpage.get_text_range()
    gaps = [a - b for a, b in zip(lines, lines[1:])]
    inner, median = max(gaps[1:-1]), sorted(gaps)[len(gaps) // 2]
    if not (gaps[0] > max(2 * median, inner) and gaps[-1] > max(2 * median, inner)):
        return textpage.get_text_range()
    top = (lines[0] + lines[1]) / 2
    bottom = (lines[-1] + lines[-2]) / 2
    return textpage.get_text_bounded(bottom=bottom, top=top)


def strip_running_lines(pages: list[list[str]], edge: int = 2) -> list[list[str]]:
    """Pages without their running headers and footers and bare page numbers.

    A running line is one of the first or last `edge` lines of a page whose
    digit-masked form opens or closes at least half the pages (both of two):
    "LS(1) User Commands LS(1)", "GNU coreutils 9.1 2022-09 12". A page-number
    line ("12", "- 12 -", "Page 3 of 9") at a page's edge goes too.
    """
    def edges(lines: list[str]) -> list[tuple[int, str]]:
        idx = [i for i, line in enumerate(lines) if line.strip()]
        chosen = idx[:edge] + idx[-edge:]
        return [(i, _DIGITS.sub("#", lines[i].strip())) for i in dict.fromkeys(chosen)]

    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({masked for _, masked in edges(lines)})
    # On two pages a running line must open or close both; one page shows nothing.
    running = ({m for m, n in counts.items() if n >= max(2, (len(pages) + 1) // 2)}
               if len(pages) >= 2 else set())
    out = []
    for lines in pages:
        drop = {i for i, masked in edges(lines)
                if masked in running or _PAGE_NUMBER.match(lines[i].strip())}
        out.append([line for i, line in enumerate(lines) if i not in drop])
    return out


def _ranges(numbers: list[int]) -> str:
    """Sorted page numbers as runs: [1, 2, 3, 7] -> "1-3, 7"."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


# -- DOCX, EPUB, ODT: text with headings --------------------------------------

class _Sections:
    """Blocks of text in order; headings start sections."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.locations: list[tuple[int, str]] = []
        self.offset = 0
        self.first_heading = ""

    def add(self, text: str, heading: bool = False) -> None:
        text = normalize_text(text)
        if not text:
            return
        if self.parts:
            self.offset += 2
        if heading:
            label = " ".join(text.split())[:200]
            self.locations.append((self.offset, label))
            self.first_heading = self.first_heading or label
        self.parts.append(text)
        self.offset += len(text)

    def result(self, title: str, notes: tuple[str, ...] = ()) -> Extracted:
        return Extracted(title.strip() or self.first_heading, "\n\n".join(self.parts), SECTION,
                         tuple(self.locations), notes)


def _zip_or_fail(data: bytes, kind: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # OLE: how Office encrypts
            raise ExtractError(f"encrypted or legacy {kind} (an OLE file, not a zip "
                               "package); save it as a plain document first") from exc
        raise ExtractError(f"not a valid {kind} file (not a zip package: truncated or "
                           "renamed?)") from exc


def extract_docx(data: bytes) -> Extracted:
    import docx
    from docx.table import Table

    _zip_or_fail(data, "DOCX")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors
        raise ExtractError(f"not a valid DOCX file ({type(exc).__name__}: "
                           f"{str(exc)[:120]})") from exc
    out = _Sections()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = list(dict.fromkeys(c.text.strip() for c in row.cells))
                out.add(" | ".join(c for c in cells if c))
            continue
        style = (block.style.name if block.style is not None else "") or ""
        out.add(block.text, heading=style.startswith(("Heading", "Title")))
    return out.result(document.core_properties.title or "")


_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "dt", "dd",
           "td", "th", "caption", "figcaption")


def extract_epub(data: bytes) -> Extracted:
    import ebooklib
    import lxml.html
    from ebooklib import epub

    package = _zip_or_fail(data, "EPUB")
    if "META-INF/encryption.xml" in package.namelist():
        raise ExtractError("DRM-protected or encrypted EPUB (META-INF/encryption.xml)")
    try:
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    except Exception as exc:  # ebooklib raises EpubException, KeyError, lxml errors
        raise ExtractError(f"not a valid EPUB file ({type(exc).__name__}: "
                           f"{str(exc)[:120]})") from exc
    out = _Sections()
    for idref, _ in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or isinstance(item, epub.EpubNav) \
                or item.get_type() == ebooklib.ITEM_NAVIGATION \
                or "nav" in (getattr(item, "properties", None) or []):
            continue  # the table of contents repeats the headings, not the text
        try:
            root = lxml.html.fromstring(item.get_content())
        except Exception:  # an empty or broken chapter: the others still count
            continue
        for el in root.iter(*_BLOCKS):
            # a block inside another (li > p) is read with its parent
            if any(a.tag in _BLOCKS for a in el.iterancestors()):
                continue
            out.add(el.text_content(), heading=el.tag in ("h1", "h2", "h3", "h4"))
    titles = book.get_metadata("DC", "title")
    return out.result(titles[0][0] if titles else "")


def extract_odt(data: bytes) -> Extracted:
    from odf import teletype
    from odf.namespaces import DCNS, TEXTNS
    from odf.opendocument import load

    _zip_or_fail(data, "ODT")
    try:
        # odfpy prints a part it cannot parse (pandoc's styles.xml) to stdout, whole
        with contextlib.redirect_stdout(io.StringIO()):
            document = load(io.BytesIO(data))
    except Exception as exc:  # odfpy raises KeyError, xml errors
        raise ExtractError(f"not a valid ODT file ({type(exc).__name__}: "
                           f"{str(exc)[:120]})") from exc
    out = _Sections()

    def walk(node) -> None:
        for child in node.childNodes:
            qname = getattr(child, "qname", None)
            if qname == (TEXTNS, "h"):
                out.add(teletype.extractText(child), heading=True)
            elif qname == (TEXTNS, "p"):
                out.add(teletype.extractText(child))
            elif getattr(child, "childNodes", None):
                walk(child)

    walk(document.body)  # office:body > office:text (pandoc's files leave .text empty)
    titles = [teletype.extractText(t) for t in document.meta.childNodes
              if getattr(t, "qname", None) == (DCNS, "title")]
    return out.result(titles[0] if titles else "")


# -- the time-bounded worker --------------------------------------------------

def _serve(conn) -> None:
    """Worker loop: (suffix, bytes, OcrOptions) in; ("progress", done, total) while
    pages are read by OCR, then ("ok", Extracted) or ("error", reason) out.
    Says "ready" first, once its libraries are imported, so that start-up time is
    not charged to the first file's time limit."""
    import docx  # noqa: F401
    import ebooklib  # noqa: F401
    import odf.opendocument  # noqa: F401
    import pypdfium2  # noqa: F401

    # Its own process group: a worker killed for its time limit takes the Tesseract
    # processes it started with it (Extractor._kill), and a Ctrl-C in the terminal
    # reaches only the parent, which stops the worker in order.
    os.setpgid(0, 0)
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return

        def progress(done: int, total: int) -> None:
            conn.send(("progress", done, total))

        try:
            conn.send(("ok", extract(*job, on_progress=progress)))
        except ExtractError as exc:
            conn.send(("error", str(exc)))
        except (BrokenPipeError, EOFError):  # the parent is gone
            return
        except Exception as exc:  # a library's own bug: this file only
            first = (str(exc).splitlines() or [""])[0][:200]
            conn.send(("error", f"could not be parsed ({type(exc).__name__}: {first})"))


class Extractor:
    """Extraction in one reused worker process, at most `timeout` seconds per file,
    plus `ocr.page_timeout` for each page read by OCR (the clock restarts as each
    page finishes, so a 300-page scan is not cut off at `timeout`).

    A file over the limit, or one that crashes the worker, raises ExtractError;
    the worker is killed and the next file gets a fresh one. Use as a context
    manager: the worker never outlives it. `progress` shows a bar of the pages
    read by OCR.
    """

    def __init__(self, timeout: float = EXTRACT_TIMEOUT_S, ocr: OcrOptions | None = None,
                 progress: bool = False):
        self.timeout = timeout
        self.ocr = ocr or OcrOptions()
        self.progress = progress
        self._process = None
        self._conn = None

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def extract(self, suffix: str, data: bytes) -> Extracted:
        if self._process is None:
            # spawn: a fork of a process holding torch or server threads is unsafe
            ctx = multiprocessing.get_context("spawn")
            self._conn, child = ctx.Pipe()
            self._process = ctx.Process(target=_serve, args=(child,), daemon=True,
                                        name="ragmini-extract")
            self._process.start()
            child.close()
            if not self._conn.poll(STARTUP_TIMEOUT_S) or self._conn.recv() != "ready":
                self._kill()
                raise ExtractError("the document extractor did not start; skipped")
        bar = None
        try:
            self._conn.send((suffix, data, self.ocr))
            wait = self.timeout
            while True:
                if not self._conn.poll(wait):
                    self._kill()
                    if wait > self.timeout:
                        raise ExtractError(f"OCR of a page took longer than "
                                           f"{self.ocr.page_timeout:g} s; skipped")
                    raise ExtractError(f"extraction took longer than {self.timeout:g} s "
                                       "(a pathological file?); skipped")
                message = self._conn.recv()
                if message[0] != "progress":
                    break
                _, done, total = message
                wait = self.timeout + self.ocr.page_timeout
                if self.progress and bar is None:
                    from tqdm import tqdm

                    bar = tqdm(total=total, desc="OCR", unit="page", leave=False)
                if bar is not None:
                    bar.update(done - bar.n)
            status, value = message
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            self._kill()
            raise ExtractError("the extractor crashed on this file; skipped") from exc
        finally:
            if bar is not None:
                bar.close()
        if status == "error":
            raise ExtractError(value)
        return value

    def _kill(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)  # with its Tesseracts
            self._process.kill()
            self._process.join(5)
            self._conn.close()
        self._process = self._conn = None

    def close(self) -> None:
        if self._process is None:
            return
        try:
            self._conn.send(None)
            self._process.join(2)
        except (BrokenPipeError, OSError):
            pass
        if self._process.is_alive():
            self._kill()
            return
        self._conn.close()
        self._process = self._conn = None
