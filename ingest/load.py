"""Find files and read them into documents: text, Markdown, HTML, feeds, BEIR jsonl,
PDF, DOCX, EPUB, ODT (ingest/documents.py), any of them gzip/bzip2/xz-compressed
(ingest/compressed.py), and files matching `include` globs as plain text.

Each problem with one file becomes a `Skipped` record with a one-line reason;
a batch never stops for a bad file. Files of other types are counted by suffix
(`Loaded.not_read`), never silently dropped.
"""

from __future__ import annotations

import errno
import fnmatch
import io
import json
import os
import stat
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingest import compressed
from ingest.documents import DOCUMENT_SUFFIXES, EXTRACT_TIMEOUT_S, Extractor, ExtractError
from ingest.ocr import OcrOptions
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
DEFAULT_MAX_BYTES = 20 * 1024 * 1024  # per file, and per file once decompressed
NO_SUFFIX = "(none)"  # how a file name without a suffix is counted in `not_read`


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
    # Files found but not of a type ingest reads, by lower-cased suffix
    # (".c", ".json.gz", "(none)"); hidden files and folders are not counted.
    not_read: Counter = field(default_factory=Counter)
    # Seconds per stage: "discover" (wall), "read" (open, read, decompress) and
    # "extract" (decode, parse, clean), the last two summed over the workers.
    timings: Counter = field(default_factory=Counter)
    # Per format ("html", "txt", "pdf", ...): files, bytes read and seconds extracting.
    formats: dict[str, Counter] = field(default_factory=dict)
    workers: int = 1  # processes that read and extracted

    def _add(self, other: Loaded) -> None:
        self.documents.extend(other.documents)
        self.skipped.extend(other.skipped)
        self.seen_files.extend(other.seen_files)
        self.timings.update(other.timings)
        for kind, counts in other.formats.items():
            self.formats.setdefault(kind, Counter()).update(counts)


@dataclass(frozen=True)
class Discovered:
    """What discovery found: files to read with their root, files it cannot read
    (with the reason), and how many files of other types it passed over."""

    files: list[tuple[Path, Path]]
    skipped: list[Skipped]
    not_read: Counter


def discover(paths: list[Path], follow_links: bool = False, progress: bool = False,
             id_root: Path | None = None) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """(file, root) pairs of supported types under `paths`, and the entries skipped
    (`survey` without the count of other files)."""
    found = survey(paths, follow_links=follow_links, progress=progress, id_root=id_root)
    return found.files, found.skipped


def survey(paths: list[Path], follow_links: bool = False, progress: bool = False,
           include: Sequence[str] = (), id_root: Path | None = None) -> Discovered:
    """Expand folders (recursively, sorted) into (file, root) pairs of supported
    types, compressed files of those types or of plain text, and files matching
    an `include` glob; count the other files by suffix.
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
    not_read: Counter = Counter()
    patterns = include_patterns(include)
    with tqdm(desc="discovering", unit=" files", disable=not progress or None,
              leave=False) as bar:
        for given in paths:
            given = Path(given)
            kind = _kind(given, follow_links)
            if kind == "file":
                # named by the user: always read
                under = id_root is not None and given.is_relative_to(id_root)
                found.append((given, id_root if under else given.parent))
                bar.update()
            elif kind == "dir":
                _walk(given, follow_links, found, skipped, bar, patterns, not_read)
            else:
                skipped.append(_skipped(given, kind))
    return Discovered(found, skipped, not_read)


def include_patterns(include: Sequence[str]) -> tuple[str, ...]:
    """`--include` globs as fnmatch patterns: "*" and "**" both cross "/", and
    "dir/" means everything under dir (as the `source=` filter reads them)."""
    from ingest.filters import glob_pattern

    return tuple(glob_pattern(glob.strip()) for glob in include if glob.strip())


def not_read_key(name: str, rel: str, patterns: Sequence[str] = ()) -> str | None:
    """None when a file `name` (at `rel`, relative to the folder given) is read;
    else the suffix it is counted under among the files not read."""
    suffix = Path(name).suffix.lower()
    if suffix in SUPPORTED_SUFFIXES or any(
            fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns):
        return None
    if suffix in compressed.COMPRESSED_SUFFIXES:
        inner = compressed.inner_suffix(name)
        if inner in SUPPORTED_SUFFIXES or compressed.plain_text_name(name):
            return None
        suffix = inner + suffix
    # a name's undecodable bytes, as stored sources spell them: valid UTF-8 for JSON
    return encode_source(suffix) if suffix else NO_SUFFIX


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


def _walk(root: Path, follow_links: bool, found: list, skipped: list, bar,
          patterns: Sequence[str] = (), not_read: Counter | None = None) -> None:
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
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            other = not_read_key(name, path.relative_to(root).as_posix(), patterns)
            if other is not None:
                if not_read is not None:
                    not_read[other] += 1
                continue
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
    ocr: OcrOptions | None = None,
    id_root: Path | None = None, include: Sequence[str] = (), workers: int | None = None,
) -> Loaded:
    """Read every supported file under `paths` into documents (`id_root`: see
    `discover`).

    include: globs ("*.c", "src/**", "Makefile") of files read as plain text.
    workers: processes reading and extracting text formats (HTML, feeds, text,
        compressed files) in parallel; None picks by the work found (one for a
        small folder, where starting processes would cost more than it saves).
        PDF, DOCX, EPUB and ODT files go through the time-bounded extractor.

    Example:
        >>> loaded = load_paths([Path("corpus")])
        >>> loaded.documents[0].doc_id
        'bm25.md'
    """
    from tqdm import tqdm

    started = time.perf_counter()
    found = survey(paths, follow_links=follow_links, progress=progress, include=include,
                   id_root=id_root)
    result = Loaded(skipped=list(found.skipped), not_read=found.not_read)
    result.timings["discover"] = time.perf_counter() - started
    started = time.perf_counter()
    runs = _segments(found.files)
    result.workers = n = _worker_count(runs, workers)
    with Extractor(extract_timeout, ocr, progress) as extractor, \
            tqdm(total=len(found.files), desc="reading", unit="file",
                 disable=not progress or None, leave=False) as bar:
        for batch, loaded in _loaded_batches(runs, n, max_bytes, follow_links):
            if loaded is None:  # read here, in order
                for path, root in batch:
                    _load_one(path, root, result, max_bytes, follow_links, extractor)
                    bar.update()
            else:
                result._add(loaded)
                bar.update(len(batch))
    result.timings["load_wall"] = time.perf_counter() - started
    return result


# Extraction seconds per MB, roughly (bench/ingest.py measures them): HTML through
# trafilatura costs some 20 times what plain text does. Only used to decide how
# many reading processes to start and how to batch files for them.
_SECONDS_PER_MB = {"html": 1.5, "feed": 0.5, "text": 0.08}
_INFLATION = 4  # text compresses about 4:1
PARALLEL_MIN_SECONDS = 4.0  # estimated work under which one process is quicker
BATCH_SECONDS = 3.0  # estimated work per batch sent to a reading process...
BATCH_FILES = 32  # ...and files: one big page must not leave the others idle


@dataclass
class _Run:
    """Consecutive files read the same way: in a reading process (pooled) or here
    (PDF, DOCX, EPUB, ODT, whose extractor is time-bounded in a process of its
    own; jsonl, streamed and often huge)."""

    files: list[tuple[Path, Path]]
    pooled: bool
    cost: float  # estimated seconds of extraction


def _cost(path: Path) -> tuple[bool, float]:
    """(may go to a reading process, estimated seconds to extract)."""
    name = path.name
    packed = compressed.is_compressed(name)
    suffix = compressed.inner_suffix(name) if packed else Path(name).suffix.lower()
    kind = "html" if suffix in HTML_SUFFIXES else "feed" if suffix in FEED_SUFFIXES else "text"
    try:
        mb = os.lstat(path).st_size / 2**20 * (_INFLATION if packed else 1)
    except OSError:
        mb = 0.0
    return suffix not in DOCUMENT_SUFFIXES | JSONL_SUFFIXES, mb * _SECONDS_PER_MB[kind]


def _segments(files: list[tuple[Path, Path]]) -> list[_Run]:
    """`files` in order, as runs to read here or batches for a reading process."""
    out: list[_Run] = []
    for path, root in files:
        pooled, cost = _cost(path)
        last = out[-1] if out else None
        if last is not None and last.pooled == pooled and (not pooled or (
                len(last.files) < BATCH_FILES and last.cost + cost <= BATCH_SECONDS)):
            last.files.append((path, root))
            last.cost += cost
        else:
            out.append(_Run([(path, root)], pooled, cost))
    return out


def _worker_count(runs: list[_Run], workers: int | None) -> int:
    """`workers`, or as many as there are idle cores (by the 1-minute load average,
    which counts this process too) while the estimated work is worth it: on cores
    that other jobs keep busy, more processes only add overhead (bench/ingest.py
    measured 0.84-1.03x with 2 processes on 2 cores at a load of 10 to 30)."""
    if workers is not None:
        return max(1, int(workers))
    work = sum(run.cost for run in runs if run.pooled)
    if work < PARALLEL_MIN_SECONDS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        idle = (cores or 1) - os.getloadavg()[0] + 1
    except OSError:  # no load average on this system: assume the cores are free
        idle = cores or 1
    return max(1, min(cores or 1, 8, int(work // 2) + 1, int(idle)))


def _loaded_batches(runs: list[_Run], workers: int, max_bytes: int, follow_links: bool
                    ) -> Iterator[tuple[list, Loaded | None]]:
    """Each run's files in order, with what a reading process loaded of them, or
    None for files to read here. With one worker, everything is read here.

    A reading process that dies (a crash inside a C parser) breaks the pool: the
    runs not yet returned are then read here, as they would be with one worker."""
    if workers <= 1:
        yield from ((run.files, None) for run in runs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # spawn: a fork of a process holding torch or server threads is unsafe
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_load_batch, run.files, max_bytes, follow_links)
                   if run.pooled else None for run in runs]
        broken = False
        for run, future in zip(runs, futures):
            if future is None or broken:
                yield run.files, None
                continue
            try:
                yield run.files, future.result()
            except BrokenProcessPool:
                broken = True
                yield run.files, None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _load_batch(files: list[tuple[Path, Path]], max_bytes: int, follow_links: bool) -> Loaded:
    """A reading process's work: these files (no PDF, DOCX, EPUB or ODT among them)."""
    result = Loaded()
    for path, root in files:
        _load_one(path, root, result, max_bytes, follow_links, None)
    return result


def _load_one(path: Path, root: Path, result: Loaded, max_bytes: int, follow_links: bool,
              extractor: Extractor | None) -> None:
    """Read one file into `result`: its documents, or a Skipped with the reason;
    the time it took goes to `result.timings` and `result.formats`."""
    for attempt in (1, 2):
        started = time.perf_counter()
        raw: RawFile | None = None
        try:
            raw = read_file(path, max_bytes=max_bytes, follow_links=follow_links)
            read = time.perf_counter() - started
            docs = list(documents_of(raw, path, root, follow_links=follow_links,
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
        finally:
            elapsed = time.perf_counter() - started
            read = elapsed if raw is None else min(read, elapsed)
            result.timings["read"] += read
            result.timings["extract"] += elapsed - read
            if raw is not None:
                counts = result.formats.setdefault(_type_of(raw.suffix), Counter())
                counts.update(files=1, bytes=_size(raw, path), seconds=elapsed - read)
        break


def _size(raw: RawFile, path: Path) -> int:
    """Bytes read (decompressed) of a file; a streamed jsonl's size on disk."""
    if raw.data is not None:
        return len(raw.data)
    try:
        return os.path.getsize(path)
    except OSError:  # gone since: its time still counts
        return 0


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


def _text_of(data: bytes) -> tuple[str, tuple[str, ...]]:
    if looks_binary(data):
        raise LoadError("binary file (contains NUL bytes), not text")
    text, fallback = decode_bytes(data)
    notes = (f"not valid UTF-8; decoded as {fallback}",) if fallback else ()
    return text, notes


@dataclass(frozen=True)
class RawFile:
    """A file's bytes, decompressed, and the suffix that names their format (the
    inner one of "notes.md.gz"; "" for "README.gz")."""

    data: bytes | None  # None: a BEIR jsonl file, which documents_of streams
    suffix: str
    compression: str | None = None  # "gzip", "bzip2", "xz"


def read_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, follow_links: bool = False
              ) -> RawFile:
    """The bytes of one file, decompressed when it is a .gz, .bz2 or .xz file (at
    most `max_bytes` either way). Raises LoadError with the reason."""
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return RawFile(None, suffix)
    data = _read_bytes(path, max_bytes, follow_links)
    if suffix not in compressed.COMPRESSED_SUFFIXES:
        return RawFile(data, suffix)
    try:
        data = compressed.decompress(data, suffix, max_bytes)
    except compressed.CompressedError as exc:
        raise LoadError(str(exc)) from exc
    if not data.strip():
        raise LoadError("empty file (once decompressed)")
    return RawFile(data, compressed.inner_suffix(path), compressed.format_name(suffix))


def load_file(path: Path, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
              follow_links: bool = False, extractor: Extractor | None = None
              ) -> Iterator[Document]:
    """The documents of one file. Raises LoadError (FileChanged when it changed
    while being read); nothing is yielded for a file that fails part way, as
    long as the caller collects the whole iterator first."""
    raw = read_file(path, max_bytes=max_bytes, follow_links=follow_links)
    yield from documents_of(raw, path, root, follow_links=follow_links, extractor=extractor)


def documents_of(raw: RawFile, path: Path, root: Path, *, follow_links: bool = False,
                 extractor: Extractor | None = None) -> Iterator[Document]:
    """The documents in a file's bytes, read as its (inner) suffix says: any
    suffix not listed in SUPPORTED_SUFFIXES is plain text."""
    source = stored_path(path)
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    rel = encode_source(rel)
    suffix = raw.suffix
    # For titles: "NEWS" of NEWS.gz, "notes" of notes.md.xz, "README.Debian" of
    # README.Debian.gz (a suffix that names no format is part of the name).
    named = path.with_name(compressed.inner_name(path.name))
    if suffix not in SUPPORTED_SUFFIXES:
        named = named.with_name(named.name + ".text")
    if raw.data is None:
        # BEIR corpora run to gigabytes: stream them a line at a time.
        yield from _load_jsonl(path, source, follow_links)
        return
    if suffix in JSONL_SUFFIXES:  # a compressed corpus.jsonl, decompressed whole
        docs = list(_jsonl_rows(io.BytesIO(raw.data), source))
        if not docs:
            raise LoadError("no line has text")
        yield from docs
        return
    metadata = _file_metadata(path, suffix, raw.compression)
    if suffix in DOCUMENT_SUFFIXES:
        yield _load_document(path, rel, source, suffix, len(raw.data), follow_links, extractor,
                             data=raw.data, title_path=named, metadata=metadata)
        return
    text, notes = _text_of(raw.data)
    if suffix in FEED_SUFFIXES or (suffix in HTML_SUFFIXES and _is_feed(text)):
        yield from _load_feed(text, source, notes)
        return
    front: dict = {}
    if suffix in HTML_SUFFIXES:
        title, text = html_main_text(text)
        if not text:
            raise LoadError("HTML has no visible text (only markup, scripts or styles)")
    else:
        text = normalize_text(text)
        if suffix in MARKDOWN_SUFFIXES:
            front, text, problem = split_front_matter(text)
            notes = (*notes, problem) if problem else notes
        title = str(front.get("title") or "").strip() or _text_title(text, named)
    if not text:
        raise LoadError("file holds only whitespace")
    yield Document(source=source, doc_id=rel, title=scrub(title) or display(named.stem),
                   text=scrub(text), notes=notes, metadata={**front, **metadata})


def _file_metadata(path: Path, suffix: str, compression: str | None) -> dict:
    """type (of the inner file for a compressed one), modified, size, compression."""
    out = file_metadata(path, _type_of(suffix))
    return {**out, "compression": compression} if compression else out


def _type_of(suffix: str) -> str:
    """The `type` a filter sees: the suffix, with spelling variants folded; "text"
    for a file read as plain text (a suffix ingest has no reader for, or none)."""
    if suffix not in SUPPORTED_SUFFIXES:
        return "text"
    kind = suffix.lstrip(".")
    return {"markdown": "md", "htm": "html", "xhtml": "html", "jpeg": "jpg",
            "tif": "tiff"}.get(kind, kind)


def _load_document(path: Path, rel: str, source: str, suffix: str, max_bytes: int,
                   follow_links: bool, extractor: Extractor | None, *,
                   data: bytes | None = None, title_path: Path | None = None,
                   metadata: dict | None = None) -> Document:
    """A PDF, DOCX, EPUB or ODT file (its bytes `data`, or read from `path`),
    extracted in the time-bounded worker."""
    if data is None:
        data = _read_bytes(path, max_bytes, follow_links)
    try:
        if extractor is None:
            with Extractor() as once:
                found = once.extract(suffix, data)
        else:
            found = extractor.extract(suffix, data)
    except ExtractError as exc:
        raise LoadError(str(exc)) from exc
    title_path = title_path or path
    return Document(source=source, doc_id=rel,
                    title=scrub(found.title) or display(title_path.stem),
                    text=scrub(found.text), notes=found.notes,
                    metadata={**found.metadata,
                              **(metadata or file_metadata(path, _type_of(suffix)))},
                    locations=found.locations, location_kind=found.kind)


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
