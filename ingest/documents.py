"""Documents as people keep them: PDF, DOCX, EPUB and ODT, read by well-kept libraries.

- PDF: pypdfium2 (PDFium, the engine of Chrome's viewer), chosen over pypdf and
  pdfplumber by `bench/extract.py` on groff-rendered man pages whose true text is
  known (docs/performance.md "Document extraction"). Each page's text is kept with
  its page number, running headers and footers (a line, digits masked, that opens
  or closes at least half the pages, both of two) and bare page numbers are
  dropped, and words hyphenated across a line break are joined.
- DOCX: python-docx, paragraphs and tables in document order; EPUB: ebooklib, the
  spine's chapters through lxml; ODT: odfpy. Their headings become sections.

Extraction runs in a worker process (`Extractor`) with a time limit per file, so
a pathological file, or a crash inside a C library, skips that file and never
stalls or kills the batch.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field

from ingest.clean import normalize_text

DOCUMENT_SUFFIXES = frozenset({".pdf", ".docx", ".epub", ".odt"})
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


def extract(suffix: str, data: bytes) -> Extracted:
    """The text of one PDF, DOCX, EPUB or ODT file's bytes; ExtractError if unreadable."""
    reader = {".pdf": extract_pdf, ".docx": extract_docx, ".epub": extract_epub,
              ".odt": extract_odt}[suffix]
    found = reader(data)
    if not found.text.strip():
        raise ExtractError(f"no text in this {suffix[1:].upper()} file")
    return found


# -- PDF ---------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"^(page\s+)?[-–—(]?\s*\d{1,4}\s*[-–—)]?(\s+of\s+\d{1,4})?$", re.I)
# A word broken at a line end: "retrie-\nval" -> "retrieval" (lower case after the
# break: "Jean-\nPaul" and "x-\nY" stay as they are).
_HYPHEN_BREAK = re.compile(r"(\w)[-\u00ad\u2010]\n([a-z])")


def extract_pdf(data: bytes) -> Extracted:
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
    finally:
        pdf.close()
    if not pages:
        raise ExtractError("PDF has no pages")
    empty = [i + 1 for i, p in enumerate(pages) if not p.strip()]
    if len(empty) == len(pages):
        raise ExtractError("no text layer (a scanned PDF? OCR is not supported)")
    notes: tuple[str, ...] = ()
    if empty:
        notes = (f"{len(empty)} of {len(pages)} pages have no text layer (OCR is not "
                 f"supported): {_ranges(empty)}",)
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
                     {"pages": len(pages)})


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
    """Worker loop: (suffix, bytes) in, ("ok", Extracted) or ("error", reason) out.
    Says "ready" first, once its libraries are imported, so that start-up time is
    not charged to the first file's time limit."""
    import docx  # noqa: F401
    import ebooklib  # noqa: F401
    import odf.opendocument  # noqa: F401
    import pypdfium2  # noqa: F401

    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            conn.send(("ok", extract(*job)))
        except ExtractError as exc:
            conn.send(("error", str(exc)))
        except Exception as exc:  # a library's own bug: this file only
            first = (str(exc).splitlines() or [""])[0][:200]
            conn.send(("error", f"could not be parsed ({type(exc).__name__}: {first})"))


class Extractor:
    """Extraction in one reused worker process, at most `timeout` seconds per file.

    A file over the limit, or one that crashes the worker, raises ExtractError;
    the worker is killed and the next file gets a fresh one. Use as a context
    manager: the worker never outlives it.
    """

    def __init__(self, timeout: float = EXTRACT_TIMEOUT_S):
        self.timeout = timeout
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
        try:
            self._conn.send((suffix, data))
            if not self._conn.poll(self.timeout):
                self._kill()
                raise ExtractError(f"extraction took longer than {self.timeout:g} s "
                                   "(a pathological file?); skipped")
            status, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            self._kill()
            raise ExtractError("the extractor crashed on this file; skipped") from exc
        if status == "error":
            raise ExtractError(value)
        return value

    def _kill(self) -> None:
        if self._process is not None:
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
            self._process.kill()
            self._process.join(5)
        self._conn.close()
        self._process = self._conn = None
