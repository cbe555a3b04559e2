"""Documents in, chunk rows out: load -> clean -> chunk -> store, incrementally."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ingest.chunk import Chunk, ChunkConfig, Chunker, load_fast_tokenizer, locate
from ingest.documents import EXTRACT_TIMEOUT_S
from ingest.load import DEFAULT_MAX_BYTES, Document, Skipped, load_paths
from ingest.ocr import OcrOptions
from ingest.paths import decode_source, stored_path
from ingest.paths import files_of as _files_of  # (tests import it from here)
from ingest.store import Store
from core.errors import RagminiError

COMMIT_EVERY = 64  # documents per transaction: a killed ingest keeps whole batches
LAST_INGEST_KEY = "last_ingest"  # store meta: the summary `ragmini status` shows
STAGES = ("discover", "read", "extract", "chunk", "store", "index")


@dataclass
class IngestReport:
    """What one ingest did. `skipped` and `notes` carry one line per file.

    not_read: files found but of no type ingest reads, by suffix (".c", "(none)",
        ".json.gz"), most frequent first; `--include GLOB` reads such files.
    timings: seconds per stage (STAGES; "read" and "extract" summed over the
        `workers` reading processes, "load_wall" their wall time, "total").
    formats: per format read ("html", "md", "text", ...): files, bytes, seconds
        of extraction (the cost per MB of each format).
    """

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_added: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_read: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    formats: dict[str, dict] = field(default_factory=dict)
    workers: int = 1

    @property
    def not_read_total(self) -> int:
        return sum(self.not_read.values())

    def to_dict(self) -> dict:
        out = asdict(self)
        out["skipped"] = [asdict(s) for s in self.skipped]
        out["not_read_total"] = self.not_read_total
        out["timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        out["formats"] = format_costs(self.formats)
        return out

    def not_read_line(self, top: int = 12) -> str | None:
        """ "3,851 other files not read: .c 84, .pl 84, (none) 103, ..." or None."""
        return not_read_line(self.not_read, top)

    def profile_table(self) -> str:
        """The per-stage time table and the extraction cost per format (`--profile`)."""
        return profile_table(self)

    def summary(self) -> dict:
        """What `ragmini status` shows of the last ingest (kept in the store's meta)."""
        return {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "new": self.new, "changed": self.changed, "unchanged": self.unchanged,
                "removed": self.removed, "skipped": len(self.skipped),
                "not_read_total": self.not_read_total, "not_read": dict(self.not_read)}


def not_read_line(not_read: dict[str, int], top: int = 12) -> str | None:
    """The files not read, by suffix, most frequent first, as one line of text."""
    if not not_read:
        return None
    ranked = sorted(not_read.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{suffix} {n:,}" for suffix, n in ranked[:top])
    more = f", and {len(ranked) - top} more suffixes" if len(ranked) > top else ""
    total = sum(not_read.values())
    return (f"{total:,} other file{'s' if total != 1 else ''} not read: {shown}{more} "
            "(--include GLOB reads them as text)")


def format_costs(formats: dict[str, dict]) -> dict[str, dict]:
    """Per format: files, MB, seconds of extraction and seconds per MB."""
    out = {}
    for kind, c in sorted(formats.items(), key=lambda kv: -kv[1].get("seconds", 0)):
        mb = c.get("bytes", 0) / 2**20
        out[kind] = {"files": int(c.get("files", 0)), "mb": round(mb, 3),
                     "seconds": round(c.get("seconds", 0.0), 3),
                     "seconds_per_mb": round(c.get("seconds", 0.0) / mb, 3) if mb else None}
    return out


def profile_table(report: IngestReport) -> str:
    t = report.timings
    workers = (f" (summed over {report.workers} reading processes; their wall time "
               f"{t.get('load_wall', 0):.1f}s)" if report.workers > 1 else "")
    notes = {"read": "open, read, decompress" + workers, "extract": "decode, parse, clean",
             "discover": "walk folders, lstat", "chunk": f"{report.chunks_added:,} chunks",
             "store": "SQLite writes", "index": "every method's index"}
    rows = [f"{'stage':<9} {'seconds':>8}  what"]
    rows += [f"{stage:<9} {t[stage]:>8.2f}  {notes[stage]}" for stage in STAGES if stage in t]
    if "total" in t:
        rows.append(f"{'total':<9} {t['total']:>8.2f}  wall")
    costs = format_costs(report.formats)
    if costs:
        rows += ["", f"{'format':<9} {'files':>6} {'MB':>8} {'seconds':>8} {'s/MB':>6}"]
        rows += [f"{kind:<9} {c['files']:>6} {c['mb']:>8.2f} {c['seconds']:>8.2f} "
                 f"{c['seconds_per_mb'] if c['seconds_per_mb'] is not None else 0:>6.2f}"
                 for kind, c in costs.items()]
    return "\n".join(rows)


def content_hash(doc: Document) -> str:
    return hashlib.sha256(f"{doc.title}\x00{doc.text}".encode()).hexdigest()


def ingest_paths(
    store: Store,
    paths: list[Path],
    *,
    config: ChunkConfig = ChunkConfig(),
    max_bytes: int = DEFAULT_MAX_BYTES,
    follow_links: bool = False,
    prune: bool = False,
    progress: bool = True,
    extract_timeout: float = EXTRACT_TIMEOUT_S,
    split: Splitter | None = None,
    ocr: OcrOptions | None = None,
    id_root: Path | None = None,
    include: Sequence[str] = (),
    workers: int | None = None,
) -> IngestReport:
    """Bring the store's documents and chunks up to date with `paths`.

    Unchanged documents (same source, same content hash) are left alone; a
    changed one has its chunks replaced; with prune=True, documents whose file
    under a given folder is gone are removed. Embedding is retrieval's job
    (`retrieval.update_indexes`), run after this. `split` chunks the documents
    (default `split_documents`, here; `retrieval.ray_engine` runs it on Ray).
    `id_root`: files given alone under it get ids relative to it (`load.survey`).
    `include` globs name other files to read as plain text; `workers` reading
    processes (None: chosen by the work, `ingest.load.load_paths`). The report
    times each stage, and its summary is kept in the store for `status`.
    """
    stored_config = store.chunk_config()
    wanted = asdict(config)
    if stored_config is not None and stored_config != wanted:
        raise RagminiError(
            f"this store was chunked with size={stored_config['size']} "
            f"overlap={stored_config['overlap']}; ingest with those settings, or into "
            "a new --store folder to try others"
        )

    report = IngestReport()
    loaded = load_paths(paths, max_bytes=max_bytes, follow_links=follow_links, progress=progress,
                        extract_timeout=extract_timeout, ocr=ocr, id_root=id_root, include=include,
                        workers=workers)
    report.skipped.extend(loaded.skipped)
    report.not_read = dict(loaded.not_read.most_common())
    report.timings.update(loaded.timings)
    report.formats = {k: dict(v) for k, v in loaded.formats.items()}
    report.workers = loaded.workers
    stored = store.documents()

    todo: list[tuple[Document, str]] = []
    unchanged: list[Document] = []  # their metadata may still have changed
    seen_sources: set[str] = set()
    for doc in loaded.documents:
        if doc.source in seen_sources:
            report.skipped.append(Skipped(doc.source, "duplicate id within the batch; kept the first"))
            continue
        seen_sources.add(doc.source)
        report.notes.extend(f"{doc.source}: {n}" for n in doc.notes)
        digest = content_hash(doc)
        old = stored.get(doc.source)
        if old is not None and old.content_hash == digest:
            report.unchanged += 1
            unchanged.append(doc)
            continue
        todo.append((doc, digest))
        if old is None:
            report.new += 1
        else:
            report.changed += 1

    if unchanged:
        store.refresh_metadata(unchanged)
    removed = _prunable(stored, paths, set(loaded.seen_files), seen_sources) if prune else []
    report.removed = len(removed)

    chunking = storing = 0.0
    if todo or removed:
        batch: list[tuple[Document, str, list]] = []
        chunked = iter((split or split_documents)([doc for doc, _ in todo], config, progress))
        for doc, digest in todo:
            started = time.perf_counter()
            chunks = next(chunked)
            chunking += time.perf_counter() - started
            report.chunks_added += len(chunks)
            batch.append((doc, digest, chunks))
            if len(batch) >= COMMIT_EVERY:
                started = time.perf_counter()
                store.replace_documents(batch)
                storing += time.perf_counter() - started
                batch = []
        started = time.perf_counter()
        store.replace_documents(batch, remove_sources=removed)
        storing += time.perf_counter() - started
    if stored_config is None:
        store.set_chunk_config(wanted)
    store.set_meta(LAST_INGEST_KEY, json.dumps(report.summary()))
    report.timings.update(chunk=chunking, store=storing)
    return report


def last_ingest(store: Store) -> dict | None:
    """The summary the store keeps of its last ingest (IngestReport.summary), or None."""
    raw = store.get_meta(LAST_INGEST_KEY)
    try:
        return json.loads(raw) if raw else None
    except ValueError:  # a hand-edited or truncated value: no summary, not an error
        return None


# documents, chunking config, progress -> each document's chunks, in order
Splitter = Callable[[list[Document], ChunkConfig, bool], Iterator[list[Chunk]]]


def split_documents(documents: list[Document], config: ChunkConfig, progress: bool = True
                    ) -> Iterator[list[Chunk]]:
    """Each document's chunks, located on its pages or sections, in order."""
    from tqdm import tqdm

    chunker = Chunker(load_fast_tokenizer(), config)
    texts = (doc.text for doc in documents)
    for doc, chunks in zip(tqdm(documents, desc="chunking", unit="doc",
                                disable=not progress or None, leave=False),
                           chunker.split_iter(texts)):
        yield locate(chunks, doc.locations, doc.location_kind)


def _under(file: str, targets: list[str], exact: bool = False) -> bool:
    """Is `file` inside one of the folders `targets` (or, with exact, one of them)?"""
    return any((exact and file == t) or file.startswith(t.rstrip("/") + "/") for t in targets)


def _prunable(stored, paths: list[Path], seen_files: set[str], seen_sources: set[str]) -> list[str]:
    """Stored sources under a given folder, or of a given file, whose file no longer
    yields them (a file emptied or deleted since)."""
    roots = [stored_path(p) for p in paths if p.is_dir()]
    files = {stored_path(p) for p in paths if not p.is_dir()}
    gone = []
    for source in stored:
        if source in seen_sources or not (_under(source, roots)
                                          or any(f in files for f in _files_of(source))):
            continue
        files = _files_of(source)
        # A file we could read but that yields no document today (emptied, say)
        # is pruned too; a file we could not read at all is kept.
        if any(f in seen_files for f in files) or not any(
                os.path.lexists(decode_source(f)) for f in files):
            gone.append(source)
    return gone


def remove_paths(store: Store, paths: list[Path]) -> list[str]:
    """Retire every live document whose file is one of `paths` or lies under one.

    The files need not exist any more. A path is matched as stored sources spell
    it (`ingest.paths.encode_source`); one that holds U+FFFD is also matched as
    written, so a source copied from --json output works too. Returns the
    sources removed.
    """
    targets = [stored_path(p) for p in paths]
    targets += [os.path.realpath(p) for p in paths if "\ufffd" in str(p)]
    doomed = [s for s in store.documents() if _of_targets(s, targets)]
    if doomed:
        store.replace_documents([], remove_sources=doomed)
    return doomed


def _of_targets(source: str, targets: list[str]) -> bool:
    """Does `source` come from one of the files `targets`, or from under one?
    "t#x" is taken for an item of the file t unless a file "t#x" itself exists."""
    if _under(source, targets, exact=True):
        return True
    return any(source.startswith(t + "#") for t in targets) and not os.path.lexists(
        decode_source(source))
