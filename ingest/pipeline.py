"""Documents in, chunk rows out: load -> clean -> chunk -> store, incrementally."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ingest.chunk import Chunk, ChunkConfig, Chunker, load_tokenizer, locate
from ingest.documents import EXTRACT_TIMEOUT_S
from ingest.load import DEFAULT_MAX_BYTES, Document, Skipped, load_paths
from ingest.paths import decode_source, stored_path
from ingest.paths import files_of as _files_of  # (tests import it from here)
from ingest.store import Store
from core.errors import RagminiError

COMMIT_EVERY = 64  # documents per transaction: a killed ingest keeps whole batches


@dataclass
class IngestReport:
    """What one ingest did. `skipped` and `notes` carry one line per file."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_added: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["skipped"] = [asdict(s) for s in self.skipped]
        return out


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
    id_root: Path | None = None,
) -> IngestReport:
    """Bring the store's documents and chunks up to date with `paths`.

    Unchanged documents (same source, same content hash) are left alone; a
    changed one has its chunks replaced; with prune=True, documents whose file
    under a given folder is gone are removed. Embedding is retrieval's job
    (`retrieval.update_indexes`), run after this. `split` chunks the documents
    (default `split_documents`, here; `retrieval.ray_engine` runs it on Ray).
    `id_root`: files given alone under it get ids relative to it (`load.discover`).
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
                        extract_timeout=extract_timeout, id_root=id_root)
    report.skipped.extend(loaded.skipped)
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

    if todo or removed:
        batch: list[tuple[Document, str, list]] = []
        for (doc, digest), chunks in zip(todo, (split or split_documents)(
                [doc for doc, _ in todo], config, progress)):
            report.chunks_added += len(chunks)
            batch.append((doc, digest, chunks))
            if len(batch) >= COMMIT_EVERY:
                store.replace_documents(batch)
                batch = []
        store.replace_documents(batch, remove_sources=removed)
    if stored_config is None:
        store.set_chunk_config(wanted)
    return report


# documents, chunking config, progress -> each document's chunks, in order
Splitter = Callable[[list[Document], ChunkConfig, bool], Iterator[list[Chunk]]]


def split_documents(documents: list[Document], config: ChunkConfig, progress: bool = True
                    ) -> Iterator[list[Chunk]]:
    """Each document's chunks, located on its pages or sections, in order."""
    from tqdm import tqdm

    chunker = Chunker(load_tokenizer(), config)
    for doc in tqdm(documents, desc="chunking", unit="doc", disable=not progress or None,
                    leave=False):
        yield locate(chunker.split(doc.text), doc.locations, doc.location_kind)


def _under(file: str, targets: list[str], exact: bool = False) -> bool:
    """Is `file` inside one of the folders `targets` (or, with exact, one of them)?"""
    return any((exact and file == t) or file.startswith(t.rstrip("/") + "/") for t in targets)


def _prunable(stored, paths: list[Path], seen_files: set[str], seen_sources: set[str]) -> list[str]:
    """Stored sources under a given folder whose file no longer yields them."""
    roots = [stored_path(p) for p in paths if p.is_dir()]
    gone = []
    for source in stored:
        if source in seen_sources or not _under(source, roots):
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
