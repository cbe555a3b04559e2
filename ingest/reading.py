"""What a reader opens: a stored document's original file, and its text as stored.

`open_document_file` is the one way from a document id to bytes on disk. The id is
only ever looked up in the store, never joined to a path; the file served is the
one its recorded source names (for a feed item or a jsonl line, the file that
holds it), and only when that path is still what was recorded: a real path with
no symbolic link in it, a regular file of a type ingest reads, opened without
following links and checked again once open. A link or a `..` planted after
ingest, or a path outside the recorded sources, is never served.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import NotFound, QueryError
from ingest.identity import resolve_source
from ingest.load import SUPPORTED_SUFFIXES
from ingest.paths import decode_source, display, files_of
from ingest.store import ChunkRow, Store

# By suffix, for every type ingest reads: fixed here rather than read from the
# machine's mime.types, so every machine answers the same.
MEDIA_TYPES = {
    ".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown",
    ".rst": "text/x-rst", ".html": "text/html", ".htm": "text/html",
    ".xhtml": "application/xhtml+xml", ".rss": "application/rss+xml",
    ".atom": "application/atom+xml", ".xml": "application/xml",
    ".jsonl": "application/jsonl", ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".epub": "application/epub+zip", ".odt": "application/vnd.oasis.opendocument.text",
}
# Types a browser would run scripts in (HTML, XML with XHTML inside): served sandboxed.
ACTIVE = frozenset({"text/html", "application/xhtml+xml", "application/rss+xml",
                    "application/atom+xml", "application/xml"})
CHARSET_PROBE = 1 << 20  # bytes read to tell whether a text file is UTF-8
_PROC_FD = "/proc/self/fd"


@dataclass(frozen=True)
class DocumentFile:
    """A document's original file, open for reading. Iterate `blocks()` to read it
    (it closes the file at the end), or call `close()`."""

    doc_id: str
    source: str
    path: str  # the file's real path (a feed or jsonl file for one of its items)
    filename: str  # its name, for people (Content-Disposition)
    media_type: str  # with "; charset=utf-8" for a text file that is UTF-8
    size: int
    active: bool  # HTML or XML: a browser would run what it holds
    file: BinaryIO

    def blocks(self, size: int = 1 << 16) -> Iterator[bytes]:
        """The file's bytes (no more than `self.size`, should it grow meanwhile)."""
        left = self.size
        with self.file:
            while left > 0:
                data = self.file.read(min(size, left))
                if not data:
                    return
                left -= len(data)
                yield data

    def close(self) -> None:
        self.file.close()


def open_document_file(store: Store, doc_id: str, source: str | None = None) -> DocumentFile:
    """Open the original file of the stored document `doc_id` (its `source` too, when
    several share the id: see ingest.identity).

    Raises NotFound for an unknown id, a file that is gone, or one that is no longer
    what was ingested (a symbolic link now, or not a regular file); Ambiguous when
    the id names several documents and no source was given.

    Example:
        >>> opened = open_document_file(store, "tar.1.pdf")
        >>> opened.media_type, opened.path
        ('application/pdf', '/home/me/man/tar.1.pdf')
    """
    chosen = resolve_source(store, doc_id, source)
    for candidate in files_of(chosen):
        path = decode_source(candidate)
        if not os.path.isabs(path) or Path(path).suffix.lower() not in SUPPORTED_SUFFIXES:
            continue
        if not os.path.lexists(path):
            continue
        return _open_checked(doc_id, chosen, path)
    raise NotFound(f"the file of document {doc_id!r} ({chosen}) is gone", param="doc_id")


def _open_checked(doc_id: str, source: str, path: str) -> DocumentFile:
    refused = NotFound(f"the file of document {doc_id!r} is not served: {source} is no "
                       "longer the regular file that was ingested (a link or another "
                       "kind of file now)", param="doc_id")
    if os.path.realpath(path) != path:  # a link somewhere in the path since ingest
        raise refused
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"the file of document {doc_id!r} ({source}) is gone",
                       param="doc_id") from None
    except OSError:  # ELOOP: the last part became a link; or unreadable
        raise refused from None
    try:
        st = os.fstat(fd)
        # Checked again on the open descriptor: a folder swapped for a link between
        # the realpath check and the open would show here.
        if not stat.S_ISREG(st.st_mode) or (
                os.path.isdir(_PROC_FD) and os.readlink(f"{_PROC_FD}/{fd}") != path):
            raise refused
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    media_type = MEDIA_TYPES[Path(path).suffix.lower()]
    if media_type.startswith("text/") and _is_utf8(handle):
        media_type += "; charset=utf-8"
    return DocumentFile(doc_id, source, path, display(os.path.basename(path)), media_type,
                        st.st_size, media_type.split(";")[0] in ACTIVE, handle)


def _is_utf8(handle: BinaryIO) -> bool:
    head = handle.read(CHARSET_PROBE)
    handle.seek(0)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class DocumentText:
    """A stored document's text as its chunks hold it, with where each chunk lies:
    `text[chunk.start - offset:chunk.end - offset]` is the chunk's text (`offset` is 0
    for the whole document; for a page range, where its first chunk starts)."""

    doc_id: str
    source: str
    title: str
    text: str
    chunks: tuple[ChunkRow, ...]
    offset: int = 0
    pages: tuple[int, int] | None = None  # the PDF pages the document spans
    asked_pages: tuple[int, int] | None = None  # the range this text was cut to

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "source": self.source, "title": self.title,
                "pages": list(self.pages) if self.pages else None,
                "asked_pages": list(self.asked_pages) if self.asked_pages else None,
                "offset": self.offset, "text": self.text,
                "chunks": [{"chunk_id": c.chunk_id, "position": c.position, "start": c.start,
                            "end": c.end, **c.location_fields()} for c in self.chunks]}


def document_text(store: Store, doc_id: str, source: str | None = None,
                  pages: tuple[int, int] | None = None) -> DocumentText:
    """The text of the stored document `doc_id` (as `open_document_file` picks it),
    rebuilt from its chunks: what was searched, whatever the file's format. The
    whitespace the chunker dropped between two chunks comes back as spaces or a
    paragraph break of the same length, so chunk offsets index the text. With
    `pages` (first, last), only the chunks on those PDF pages."""
    chosen = resolve_source(store, doc_id, source)
    chunks = sorted(store.document_chunks(chosen), key=lambda c: (c.start, c.position))
    spans = [(c.page_start, c.page_end or c.page_start) for c in chunks
             if c.page_start is not None]
    whole = (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None
    if pages is not None:
        if whole is None:
            raise QueryError(f"{doc_id!r} has no pages (only PDFs and scanned images do)",
                             param="pages")
        chunks = [c for c in chunks if c.page_start is not None and
                  c.page_start <= pages[1] and (c.page_end or c.page_start) >= pages[0]]
    offset = chunks[0].start if (pages is not None and chunks) else 0
    parts: list[str] = []
    cursor = offset
    for c in chunks:
        if c.start > cursor:
            parts.append(_gap(c.start - cursor))
            cursor = c.start
        if c.end > cursor:
            parts.append(c.text[cursor - c.start:])
            cursor = c.end
    title = chunks[0].title if chunks else ""
    return DocumentText(doc_id, chosen, title, "".join(parts), tuple(chunks), offset, whole,
                        pages)


def _gap(n: int) -> str:
    return " " if n == 1 else " " * (n - 2) + "\n\n"
