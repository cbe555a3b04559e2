"""Ingest a folder, end to end: load, clean, chunk and store its documents
(ingest.pipeline), then bring every method's index up to date (retrieval.indexing).

The one "ingest then index" step every caller uses: the public API's
`Store.ingest` and `Store.remove` (and so the CLI and the server), eval's dataset
stores and the benchmarks. It sits in retrieval/ because it needs both stages;
the stages themselves never call it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

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
