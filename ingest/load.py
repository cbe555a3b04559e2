"""Find files and read them into documents: text, Markdown, HTML, feeds, BEIR jsonl.

Each problem with one file becomes a `Skipped` record with a one-line reason;
a batch never stops for a bad file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.clean import (
    decode_bytes,
    html_fragment_text,
    html_main_text,
    looks_binary,
    normalize_text,
)

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
FEED_SUFFIXES = frozenset({".rss", ".atom", ".xml"})
JSONL_SUFFIXES = frozenset({".jsonl"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | FEED_SUFFIXES | JSONL_SUFFIXES
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """One document ready for chunking.

    source: where it came from, unique in a store (a file path, or
        ``path#item`` for a feed item or a jsonl line).
    doc_id: the stable, human-facing id used in queries and qrels (a path
        relative to the ingested folder, or the BEIR ``_id``).
    """

    source: str
    doc_id: str
    title: str
    text: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class Loaded:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Every source we could read, even those that yielded no document, so that
    # pruning never mistakes an unreadable-today file for a deleted one.
    seen_files: list[str] = field(default_factory=list)


def discover(paths: list[Path], follow_links: bool = False) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """Expand folders (recursively, sorted) into (file, root) pairs of supported types.

    Symbolic links are not followed unless asked: a link can loop or lead
    outside the folder the user pointed at.
    """
    found: list[tuple[Path, Path]] = []
    skipped: list[Skipped] = []
    for given in paths:
        if not os.path.lexists(given):
            skipped.append(Skipped(str(given), "no such file or directory"))
            continue
        if given.is_symlink() and not follow_links:
            skipped.append(Skipped(str(given), "symbolic link not followed (use --follow-links)"))
            continue
        if given.is_file():
            found.append((given, given.parent))
            continue
        if not given.is_dir():
            skipped.append(Skipped(str(given), "not a regular file or directory"))
            continue
        root = given
        for dirpath, dirnames, filenames in os.walk(given, followlinks=follow_links):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    continue
                if path.is_symlink() and not follow_links:
                    skipped.append(Skipped(str(path), "symbolic link not followed (use --follow-links)"))
                    continue
                found.append((path, root))
    return found, skipped


def load_paths(
    paths: list[Path], *, max_bytes: int = DEFAULT_MAX_BYTES, follow_links: bool = False
) -> Loaded:
    """Read every supported file under `paths` into documents.

    Example:
        >>> loaded = load_paths([Path("corpus")])
        >>> loaded.documents[0].doc_id
        'bm25.md'
    """
    files, skipped = discover(paths, follow_links=follow_links)
    result = Loaded(skipped=list(skipped))
    for path, root in files:
        try:
            docs = list(load_file(path, root, max_bytes=max_bytes))
        except LoadError as exc:
            result.skipped.append(Skipped(str(path), str(exc)))
            if exc.readable:
                result.seen_files.append(str(path.resolve()))
            continue
        result.seen_files.append(str(path.resolve()))
        result.documents.extend(docs)
    return result


class LoadError(Exception):
    def __init__(self, reason: str, readable: bool = True):
        super().__init__(reason)
        self.readable = readable


def _read_text(path: Path, max_bytes: int) -> tuple[str, tuple[str, ...]]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"cannot stat: {exc.strerror}", readable=False) from exc
    if size > max_bytes:
        raise LoadError(
            f"file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit "
            "(raise it with --max-file-mb)"
        )
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise LoadError("permission denied", readable=False) from exc
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror}", readable=False) from exc
    if not data.strip():
        raise LoadError("empty file")
    if looks_binary(data):
        raise LoadError("binary file (contains NUL bytes), not text")
    text, fallback = decode_bytes(data)
    notes = (f"not valid UTF-8; decoded as {fallback}",) if fallback else ()
    return text, notes


def load_file(path: Path, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Document]:
    source = str(path.resolve())
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        # BEIR corpora run to gigabytes: stream them a line at a time.
        yield from _load_jsonl(path, source)
        return
    raw, notes = _read_text(path, max_bytes)
    if suffix in FEED_SUFFIXES or (suffix in HTML_SUFFIXES and _is_feed(raw)):
        yield from _load_feed(raw, source, notes)
        return
    if suffix in HTML_SUFFIXES:
        title, text = html_main_text(raw)
        if not text:
            raise LoadError("HTML has no visible text (only markup, scripts or styles)")
    else:
        text = normalize_text(raw)
        title = _text_title(text, path)
    if not text:
        raise LoadError("file holds only whitespace")
    yield Document(source=source, doc_id=rel, title=title or path.stem, text=text, notes=notes)


def _text_title(text: str, path: Path) -> str:
    """A Markdown heading, or a short first line standing alone, else the file name."""
    lines = text.split("\n", 2)
    first = lines[0].strip()
    if first.startswith("#"):
        return first.lstrip("#").strip()
    if len(first) <= 100 and len(lines) > 1 and not lines[1].strip():
        return first
    return path.stem.replace("-", " ").replace("_", " ")


def _is_feed(raw: str) -> bool:
    head = raw[:1024].lstrip().lower()
    return head.startswith("<?xml") and ("<rss" in head or "<feed" in head)


def _load_feed(raw: str, source: str, notes: tuple[str, ...]) -> Iterator[Document]:
    import feedparser

    parsed = feedparser.parse(raw)
    problem = getattr(parsed, "bozo_exception", None) if parsed.get("bozo") else None
    detail = f" ({str(problem).splitlines()[0]})" if problem else ""
    documents = list(_feed_items(parsed, source, notes))
    if not documents:
        raise LoadError(f"malformed or empty feed: no item with text{detail}")
    if problem:
        # feedparser recovers what it can from broken XML: keep it, but say so.
        notes = (*notes, f"malformed feed{detail}; {len(documents)} item(s) recovered")
        documents = [Document(d.source, d.doc_id, d.title, d.text, notes) for d in documents]
    yield from documents


def _feed_items(parsed, source: str, notes: tuple[str, ...]) -> Iterator[Document]:
    for i, entry in enumerate(parsed.entries):
        body = ""
        if entry.get("content"):
            body = "\n".join(c.get("value", "") for c in entry.content)
        body = body or entry.get("summary", "")
        text = html_fragment_text(body) if body else ""
        if not text:
            continue
        key = entry.get("id") or entry.get("link") or f"item-{i}"
        yield Document(
            source=f"{source}#{key}",
            doc_id=key,
            title=normalize_text(entry.get("title", "")) or key,
            text=text,
            notes=notes,
        )


def _load_jsonl(path: Path, source: str) -> Iterator[Document]:
    """BEIR corpus.jsonl: one {"_id" | "id", "title", "text"} object a line."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror}", readable=False) from exc
    with handle:
        yield from _jsonl_rows(handle, source)


def _jsonl_rows(handle, source: str) -> Iterator[Document]:
    for lineno, data in enumerate(handle, 1):
        if not data.strip():
            continue
        if b"\x00" in data:
            raise LoadError(f"line {lineno} is binary, not JSON text")
        line, fallback = decode_bytes(data)
        notes = (f"line {lineno} not valid UTF-8; decoded as {fallback}",) if fallback else ()
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoadError(f"line {lineno} is not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise LoadError(f"line {lineno} is not a JSON object")
        key = row.get("_id", row.get("id"))
        if key is None:
            raise LoadError(f"line {lineno} has no _id or id field")
        text = normalize_text(str(row.get("text", "")))
        if not text:
            continue
        key = str(key)
        yield Document(
            source=f"{source}#{key}",
            doc_id=key,
            title=normalize_text(str(row.get("title", ""))),
            text=text,
            notes=notes,
        )
