"""Ingest a folder, end to end: load, clean, chunk and store its documents
(ingest.pipeline), then bring every method's index up to date (retrieval.indexing).

The one "ingest then index" step every caller uses: the public API's
`Store.ingest` and `Store.remove` (and so the CLI and the server), eval's dataset
stores and the benchmarks. It sits in retrieval/ because it needs both stages;
the stages themselves never call it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from core.errors import RagminiError
from ingest.chunk import ChunkConfig
from ingest.pipeline import IngestReport, ingest_paths
from ingest.store import Store
from retrieval.contract import MethodReport
from retrieval.indexing import chosen_backend, update_indexes
from retrieval.methods import (
    encoder_note,
    index_parts,
    portable_loaders,
    sbert_encoder,
    store_encoder,
)


@dataclass(frozen=True)
class IngestResult:
    report: IngestReport
    methods: list[MethodReport]
    documents: int
    chunks: int

    @property
    def embedded(self) -> int:
        return sum(r.embedded for r in self.methods)


def ingest_and_index(store: Store, paths: list[Path], methods: Iterable[str], *,
                     config: ChunkConfig = ChunkConfig(), progress: bool = True,
                     index_type: str | None = None, require_documents: bool = True,
                     embedders: dict | None = None, encoder: str | None = None,
                     vector_store: str | None = None, engine: str = "local",
                     ray_address: str | None = None, **load_options) -> IngestResult:
    """The one "ingest then index" step every caller uses (CLI, eval datasets,
    bench, server): under the store's writer lock, load, chunk and store
    `paths`, then bring every method's index up to date.

    `load_options` go to `ingest.pipeline.ingest_paths` (max_bytes,
    follow_links, prune). `encoder` (torch, onnx, onnx-int8) is how sbert vectors
    are made; a store's other sbert vectors are re-embedded with it. Without it a
    store keeps the encoder its vectors came from.

    `vector_store` (faiss, milvus, a Milvus server URI; `retrieval.vectorstore.
    parse_backend`) moves every dense method's index there; without it a store
    keeps the one it has.

    `engine` "ray" chunks and embeds on Ray Data (`retrieval.ray_engine`), at
    `ray_address` or on a local Ray started for the call.

    With `require_documents`, a run that found nothing it could read raises,
    naming the first reasons.
    """
    methods = list(methods)
    embedders = dict(embedders or {})
    custom = set(embedders)  # a caller's own embedders run here, never on Ray
    if encoder is not None:
        if "sbert" not in index_parts(methods) and store.method_info("sbert") is None:
            raise RagminiError(f"--encoder {encoder} is how sbert vectors are made; add "
                               "sbert to --methods")
        embedders["sbert"] = sbert_encoder(encoder)
    backend = chosen_backend(store, vector_store, index_type)
    if engine not in ("local", "ray"):
        raise RagminiError(f"unknown engine '{engine}': local or ray", param="engine")
    with store.writer_lock(), _engine(engine, ray_address, progress) as workers:
        if backend is not None:
            store.set_meta("vector_store", backend)
        split = None
        if workers:
            from retrieval.ray_engine import ray_splitter

            split = ray_splitter(workers)
        report = ingest_paths(store, list(paths), config=config, progress=progress,
                              split=split, **load_options)
        if require_documents and report.new + report.changed + report.unchanged == 0 \
                and report.skipped:
            reasons = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:3])
            raise RagminiError(f"nothing to ingest ({reasons})")
        if workers:
            from retrieval.ray_engine import embed_on_ray

            wanted = [m for m in index_parts([*methods, *store.methods()]) if m not in custom]
            on_ray = embed_on_ray(store, portable_loaders(wanted, encoder or store_encoder(store)),
                                  workers, progress)
            if "sbert" not in custom:
                embedders.pop("sbert", None)  # its vectors are made: nothing to re-embed
        indexed = update_indexes(store, methods, progress=progress, embedders=embedders,
                                 index_type=index_type)
        if workers:
            indexed = [replace(r, embedded=r.embedded + on_ray.get(r.method, 0))
                       for r in indexed]
        note = encoder_note(store) if encoder is None else None
        if note:
            report.notes.append(note)
        return IngestResult(report, indexed, store.count("documents"), store.count("chunks"))


@contextlib.contextmanager
def _engine(engine: str, address: str | None, progress: bool) -> Iterator[int]:
    """Ray's worker count for the block (0: the local engine)."""
    if engine != "ray":
        yield 0
        return
    from retrieval.ray_engine import ray_session

    with ray_session(address, progress) as workers:
        yield workers


def remove_and_index(store: Store, paths: list[Path] = (), sources: list[str] = ()
                     ) -> list[str]:
    """Remove the documents of `paths` (files or folders, which need not exist), or the
    given `sources`, and rebuild the indexes from stored vectors; the removed sources.
    No model loads."""
    from ingest.pipeline import remove_paths

    with store.writer_lock():
        if sources:
            live = set(store.documents())
            removed = [s for s in sources if s in live]
            if removed:
                store.replace_documents([], remove_sources=removed)
        else:
            removed = remove_paths(store, list(paths))
        if not removed:
            what = ", ".join(map(str, sources or paths))
            raise RagminiError(f"no stored document comes from {what}")
        update_indexes(store, progress=False)
    return removed


def remove_document(store: Store, doc_id: str, source: str | None = None) -> list[str]:
    """Remove the one document `doc_id` names (or, when several share the id, the one
    from `source`; ingest.identity.resolve_source refuses otherwise), rebuild the
    indexes, and delete its file when it was an upload. The removed sources."""
    from ingest.identity import discard_upload_files, resolve_source

    removed = remove_and_index(store, sources=[resolve_source(store, doc_id, source)])
    discard_upload_files(store, removed)
    return removed


@dataclass(frozen=True)
class UploadResult:
    """What became of one uploaded file. status: ingested (a new document), replaced
    (an earlier upload of the same name, now this file), unchanged (the same bytes
    again), skipped (ingest could not read it; nothing kept) or rejected (not a type
    ingest reads, or no usable name)."""

    file: str | None  # the name the client sent
    status: str
    doc_id: str | None = None  # what DELETE /api/documents/{doc_id} takes
    stored_as: str | None = None  # its file under the store's uploads/ folder
    reason: str | None = None

    def to_dict(self) -> dict:
        out = {"file": self.file, "status": self.status, "doc_id": self.doc_id,
               "stored_as": self.stored_as}
        return out | ({"reason": self.reason} if self.reason else {})


@dataclass(frozen=True)
class UploadsResult:
    files: tuple[UploadResult, ...]
    documents: int
    chunks: int

    def to_dict(self) -> dict:
        return {"files": [f.to_dict() for f in self.files], "documents": self.documents,
                "chunks": self.chunks}


def ingest_uploads(store: Store, uploads: Sequence[tuple[str | None, BinaryIO]],
                   methods: Iterable[str] = (), progress: bool = False,
                   max_bytes: int | None = None) -> UploadsResult:
    """Save uploaded (name, bytes) pairs in the store's uploads/ folder, ingest and
    index them (into `methods`, default the store's own), and say per file what
    became of it. Ids follow ingest.identity: `uploads/NAME`, never one another
    source holds; a name uploaded again replaces that upload. A file ingest cannot
    read is not kept (an earlier upload of its name stays as it was). `max_bytes`:
    the largest file ingest reads (the front end's own upload limit)."""
    from ingest.identity import save_upload, settle_upload, upload_target
    from ingest.load import SUPPORTED_SUFFIXES
    from ingest.paths import decode_source, stored_path
    from retrieval.methods import DEFAULT_INGEST

    results: dict[int, UploadResult] = {}
    targets: dict[int, object] = {}
    for i, (filename, stream) in enumerate(uploads):
        target = upload_target(store, filename or "")
        if target is None or target.path.suffix.lower() not in SUPPORTED_SUFFIXES:
            results[i] = UploadResult(filename, "rejected", reason="not a type ingest reads ("
                                      + ", ".join(sorted(SUPPORTED_SUFFIXES)) + ")")
        elif any(t.path == target.path for t in targets.values()):
            results[i] = UploadResult(filename, "rejected", reason="another file of this "
                                      "upload has the same name")
        else:
            save_upload(target, stream)
            targets[i] = target
    if targets:
        before = {s: d.content_hash for s, d in store.documents().items()}
        done = ingest_and_index(store, [t.path for t in targets.values()],
                                list(methods) or store.methods() or list(DEFAULT_INGEST),
                                progress=progress, require_documents=False,
                                id_root=store.root,
                                **({"max_bytes": max_bytes} if max_bytes else {}))
        skipped = {stored_path(decode_source(s.path)): s.reason for s in done.report.skipped}
        after = {s: d.content_hash for s, d in store.documents().items()}
        for i, target in targets.items():
            source = stored_path(target.path)
            reason = skipped.get(source)
            settle_upload(target, stored=reason is None)
            if reason is not None:
                results[i] = UploadResult(target.filename, "skipped", reason=reason)
                continue
            status = ("ingested" if source not in before else
                      "unchanged" if before[source] == after.get(source) else "replaced")
            results[i] = UploadResult(target.filename, status, target.doc_id, target.path.name)
    return UploadsResult(tuple(results[i] for i in range(len(uploads))),
                         store.count("documents"), store.count("chunks"))
