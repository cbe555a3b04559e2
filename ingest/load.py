"""Find files and read them into documents: text, Markdown, HTML, feeds, BEIR jsonl,
and PDF, DOCX, EPUB, ODT (ingest/documents.py).

Each problem with one file becomes a `Skipped` record with a one-line reason;
a batch never stops for a bad file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingest.documents import DOCUMENT_SUFFIXES, EXTRACT_TIMEOUT_S, Extractor, ExtractError
from ingest.metadata import file_metadata, split_front_matter
from ingest.clean import (
    decode_bytes,
    html_fragment_text,
    html_main_text,
    looks_binary,
    normalize_text,
)
from ingest.paths import display, encode_source, scrub, stored_path

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
FEED_SUFFIXES = frozenset({".rss", ".atom", ".xml"})
JSONL_SUFFIXES = frozenset({".jsonl"})
SUPPORTED_SUFFIXES = (TEXT_SUFFIXES | HTML_SUFFIXES | FEED_SUFFIXES | JSONL_SUFFIXES
                      | DOCUMENT_SUFFIXES)
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
    # type, modified, size, and front matter / BEIR metadata keys (ingest/metadata.py)
    metadata: dict = field(default_factory=dict, compare=False)
    # Where pages (PDF) or sections (DOCX, EPUB, ODT) start: (char offset, label),
    # sorted; chunks record the span they fall in (ingest/pipeline.py).
    locations: tuple[tuple[int, str], ...] = field(default=(), compare=False)
    location_kind: str = ""  # "page", "section" or "" (none)


@dataclass(frozen=True)
class Skipped:
    path: str  # stored form of the path (ingest.paths.encode_source): valid UTF-8
    reason: str


@dataclass
class Loaded:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Every source we could read, even those that yielded no document, so that
    # pruning never mistakes an unreadable-today file for a deleted one.
    seen_files: list[str] = field(default_factory=list)


def discover(paths: list[Path], follow_links: bool = False, progress: bool = False,
             id_root: Path | None = None) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """Expand folders (recursively, sorted) into (file, root) pairs of supported types.
    A doc id is the file's path relative to its root: the folder given, or for a
    file given alone its own folder, or `id_root` when the file lies under it (an
    upload is `uploads/NAME` relative to its store, ingest.identity).

    What each entry is comes from lstat, before anything is opened: only
    regular files (and, with follow_links, links to them) are returned; a
    FIFO, socket, device, broken link or link loop is skipped with its reason.
    Symbolic links are not followed unless asked: a link can loop or lead
    outside the folder the user pointed at; when followed, a folder reached a
    second time (a loop) is not entered again.
    """
    from tqdm import tqdm

    found: list[tuple[Path, Path]] = []
    skipped: list[Skipped] = []
    with tqdm(desc="discovering", unit=" files", disable=not progress or None,
              leave=False) as bar:
        for given in paths:
            given = Path(given)
            kind = _kind(given, follow_links)
            if kind == "file":
                under = id_root is not None and given.is_relative_to(id_root)
                found.append((given, id_root if under else given.parent))
                bar.update()
            elif kind == "dir":
                _walk(given, follow_links, found, skipped, bar)
            else:
                skipped.append(_skipped(given, kind))
    return found, skipped


def _skipped(path: str | os.PathLike, reason: str) -> Skipped:
    return Skipped(encode_source(path), reason)


_NOT_REGULAR = (
    (stat.S_ISFIFO, "named pipe (FIFO), not a regular file"),
    (stat.S_ISSOCK, "socket, not a regular file"),
    (stat.S_ISCHR, "character device, not a regular file"),
    (stat.S_ISBLK, "block device, not a regular file"),
)


def _not_regular(mode: int) -> str:
    return next((why for test, why in _NOT_REGULAR if test(mode)),
                "not a regular file or directory")


def _kind(path: Path, follow_links: bool) -> str:
    """The kind of `path` from (l)stat alone, never opening it: "file", "dir", or
    the reason it is skipped."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "no such file or directory"
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        if not follow_links:
            return "symbolic link not followed (use --follow-links)"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "broken symbolic link (its target does not exist)"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symbolic link loop"
            return f"cannot stat link target: {exc.strerror}"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return _not_regular(st.st_mode)


def _walk(root: Path, follow_links: bool, found: list, skipped: list, bar) -> None:
    def unlistable(exc: OSError) -> None:
        skipped.append(_skipped(exc.filename or root, f"cannot list folder: {exc.strerror}"))

    try:
        visited = {_dir_key(os.stat(root))}
    except OSError as exc:
        unlistable(exc)
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_links,
                                                onerror=unlistable):
        keep = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not follow_links:
                skipped.append(_skipped(path, "symbolic link not followed (use --follow-links)"))
                continue
            try:
                key = _dir_key(os.stat(path))
            except OSError as exc:
                skipped.append(_skipped(path, f"cannot stat: {exc.strerror}"))
                continue
            if key in visited:
                skipped.append(_skipped(path, "symbolic link loop (folder already visited)"))
                continue
            visited.add(key)
            keep.append(name)
        dirnames[:] = keep
        bar.update(len(filenames))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            path = Path(dirpath) / name
            kind = _kind(path, follow_links)
            if kind == "file":
                found.append((path, root))
            elif kind != "dir":  # a folder here was made since it was listed
                skipped.append(_skipped(path, kind))


def _dir_key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def load_paths(
    paths: list[Path], *, max_bytes: int = DEFAULT_MAX_BYTES, follow_links: bool = False,
    progress: bool = False, extract_timeout: float = EXTRACT_TIMEOUT_S,
    id_root: Path | None = None,
) -> Loaded:
    """Read every supported file under `paths` into documents (`id_root`: see
    `discover`).

    Example:
        >>> loaded = load_paths([Path("corpus")])
        >>> loaded.documents[0].doc_id
        'bm25.md'
    """
    from tqdm import tqdm

    files, skipped = discover(paths, follow_links=follow_links, progress=progress,
                              id_root=id_root)
    result = Loaded(skipped=list(skipped))
    with Extractor(extract_timeout) as extractor:
        for path, root in tqdm(files, desc="reading", unit="file",
                               disable=not progress or None, leave=False):
            _load_one(path, root, result, max_bytes, follow_links, extractor)
    return result


def _load_one(path: Path, root: Path, result: Loaded, max_bytes: int, follow_links: bool,
              extractor: Extractor) -> None:
    """Read one file into `result`: its documents, or a Skipped with the reason."""
    for attempt in (1, 2):
        try:
            docs = list(load_file(path, root, max_bytes=max_bytes, follow_links=follow_links,
                                  extractor=extractor))
        except FileChanged:
            if attempt == 1:
                continue  # once more: a writer may have just finished
            result.skipped.append(_skipped(path, "changed while being read (tried twice); "
                                                 "nothing of it stored"))
        except LoadError as exc:
            result.skipped.append(_skipped(path, str(exc)))
            if exc.readable:
                result.seen_files.append(stored_path(path))
        except Exception as exc:  # a parser's own bug must not stop the batch either
            first = (str(exc).splitlines() or [""])[0][:200]
            result.skipped.append(_skipped(path, f"could not be parsed "
                                                 f"({type(exc).__name__}: {first})"))
        else:
            result.seen_files.append(stored_path(path))
            result.documents.extend(docs)
        break


class LoadError(Exception):
    def __init__(self, reason: str, readable: bool = True):
        super().__init__(reason)
        self.readable = readable


class FileChanged(LoadError):
    """Size or modification time moved between the stat before and after reading."""

    def __init__(self) -> None:
        super().__init__("changed while being read", readable=False)


def _open_regular(path: Path, follow_links: bool) -> tuple[int, os.stat_result]:
    """An fd and fstat of `path`, opened without blocking, only if it is a regular
    file now (discovery checked it, but it may have been replaced since)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except PermissionError as exc:
        raise LoadError("permission denied", readable=False) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise LoadError("symbolic link not followed (use --follow-links)",
                            readable=False) from exc
        raise LoadError(f"cannot read: {exc.strerror}", readable=False) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise LoadError(_not_regular(st.st_mode), readable=False)
    return fd, st


def _changed(before: os.stat_result, after: os.stat_result) -> bool:
    return before.st_size != after.st_size or before.st_mtime_ns != after.st_mtime_ns


def _read_all(fd: int, limit: int) -> bytes:
    """Up to limit + 1 bytes of `fd` (one more than allowed tells it grew)."""
    parts, total = [], 0
    while total <= limit:
        part = os.read(fd, min(1 << 20, limit + 1 - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)


def _too_big(size: int, max_bytes: int) -> LoadError:
    return LoadError(f"file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB "
                     "limit (raise it with --max-file-mb)")


def _read_bytes(path: Path, max_bytes: int, follow_links: bool = False) -> bytes:
    """The whole file, read without blocking; LoadError if over `max_bytes`, empty,
    unreadable, or changed while read."""
    fd, before = _open_regular(path, follow_links)
    try:
        if before.st_size > max_bytes:
            raise _too_big(before.st_size, max_bytes)
        try:
            data = _read_all(fd, max_bytes)
        except OSError as exc:
            raise LoadError(f"cannot read: {exc.strerror}", readable=False) from exc
        if _changed(before, os.fstat(fd)):
            raise FileChanged()
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise _too_big(len(data), max_bytes)
    if not data.strip():
        raise LoadError("empty file")
    return data


def _read_text(path: Path, max_bytes: int, follow_links: bool = False
               ) -> tuple[str, tuple[str, ...]]:
    data = _read_bytes(path, max_bytes, follow_links)
    if looks_binary(data):
        raise LoadError("binary file (contains NUL bytes), not text")
    text, fallback = decode_bytes(data)
    notes = (f"not valid UTF-8; decoded as {fallback}",) if fallback else ()
    return text, notes


def load_file(path: Path, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
              follow_links: bool = False, extractor: Extractor | None = None
              ) -> Iterator[Document]:
    """The documents of one file. Raises LoadError (FileChanged when it changed
    while being read); nothing is yielded for a file that fails part way, as
    long as the caller collects the whole iterator first."""
    source = stored_path(path)
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    rel = encode_source(rel)
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        # BEIR corpora run to gigabytes: stream them a line at a time.
        yield from _load_jsonl(path, source, follow_links)
        return
    if suffix in DOCUMENT_SUFFIXES:
        yield _load_document(path, rel, source, suffix, max_bytes, follow_links, extractor)
        return
    raw, notes = _read_text(path, max_bytes, follow_links)
    if suffix in FEED_SUFFIXES or (suffix in HTML_SUFFIXES and _is_feed(raw)):
        yield from _load_feed(raw, source, notes)
        return
    if suffix in HTML_SUFFIXES:
        title, text = html_main_text(raw)
        if not text:
            raise LoadError("HTML has no visible text (only markup, scripts or styles)")
    front: dict = {}
    if suffix not in HTML_SUFFIXES:
        text = normalize_text(raw)
        if suffix in MARKDOWN_SUFFIXES:
            front, text, problem = split_front_matter(text)
            notes = (*notes, problem) if problem else notes
        title = str(front.get("title") or "").strip() or _text_title(text, path)
    if not text:
        raise LoadError("file holds only whitespace")
    yield Document(source=source, doc_id=rel, title=scrub(title) or display(path.stem),
                   text=scrub(text), notes=notes,
                   metadata={**front, **file_metadata(path, _type_of(suffix))})


def _load_document(path: Path, rel: str, source: str, suffix: str, max_bytes: int,
                   follow_links: bool, extractor: Extractor | None) -> Document:
    """A PDF, DOCX, EPUB or ODT file, extracted in the time-bounded worker."""
    data = _read_bytes(path, max_bytes, follow_links)
    try:
        if extractor is None:
            with Extractor() as once:
                found = once.extract(suffix, data)
        else:
            found = extractor.extract(suffix, data)
    except ExtractError as exc:
        raise LoadError(str(exc)) from exc
    return Document(source=source, doc_id=rel, title=scrub(found.title) or display(path.stem),
                    text=scrub(found.text), notes=found.notes,
                    metadata={**found.metadata, **file_metadata(path, _type_of(suffix))},
                    locations=found.locations, location_kind=found.kind)


def _type_of(suffix: str) -> str:
    """The `type` a filter sees: the suffix, with spelling variants folded."""
    kind = suffix.lower().lstrip(".")
    return {"markdown": "md", "htm": "html", "xhtml": "html"}.get(kind, kind)


def _text_title(text: str, path: Path) -> str:
    """A Markdown heading, or a short first line standing alone, else the file name."""
    lines = text.split("\n", 2)
    first = lines[0].strip()
    if first.startswith("#"):
        return first.lstrip("#").strip()
    if len(first) <= 100 and len(lines) > 1 and not lines[1].strip():
        return first
    return display(path.stem).replace("-", " ").replace("_", " ")


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
        documents = [replace(d, notes=notes) for d in documents]
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
        key = scrub(entry.get("id") or entry.get("link") or f"item-{i}")
        yield Document(
            source=f"{source}#{key}",
            doc_id=key,
            title=scrub(normalize_text(entry.get("title", ""))) or key,
            text=scrub(text),
            notes=notes,
            metadata=_entry_metadata(entry),
        )


def _entry_metadata(entry) -> dict:
    """A feed item's author, tags and publication date, where the feed gives them."""
    import calendar
    import datetime as dt

    out: dict = {"type": "feed"}
    if entry.get("author"):
        out["author"] = str(entry.author)
    tags = [t.get("term") for t in entry.get("tags") or [] if t.get("term")]
    if tags:
        out["tags"] = tags
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if stamp:
        out["date"] = dt.datetime.fromtimestamp(calendar.timegm(stamp), dt.timezone.utc)
    return out


def _load_jsonl(path: Path, source: str, follow_links: bool = False) -> Iterator[Document]:
    """BEIR corpus.jsonl: one {"_id" | "id", "title", "text"} object a line."""
    fd, before = _open_regular(path, follow_links)
    with os.fdopen(fd, "rb") as handle:
        n = 0
        for n, doc in enumerate(_jsonl_rows(handle, source), 1):
            yield doc
        if _changed(before, os.fstat(fd)):
            raise FileChanged()
    if not n:
        raise LoadError("empty file" if not before.st_size else "no line has text")


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
        key = scrub(str(key))  # a JSON "\\ud800" escape gives a lone surrogate
        yield Document(
            source=f"{source}#{key}",
            doc_id=key,
            title=scrub(normalize_text(str(row.get("title", "")))),
            text=scrub(text),
            notes=notes,
            metadata={**(row["metadata"] if isinstance(row.get("metadata"), dict) else {}),
                      "type": "jsonl"},
        )
