"""Keep every method's index in step with the store, through the Method contract.

Nothing here names a method: each one is asked, through the registry, to
update, rebuild or check itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from core.errors import RagminiError
from ingest.chunk import ChunkConfig
from ingest.pipeline import IngestReport, ingest_paths
from ingest.store import Store
from retrieval.contract import Embedder, MethodReport
from retrieval.methods import encoder_note, get_method, index_parts, sbert_encoder
# (aliased: `vector_store` is also the name of the callers' parameter)
from retrieval.vectorstore import check_index_type, parse_backend
from retrieval.vectorstore import vector_store as current_vector_store


def update_index(store: Store, method: str, embedder: Embedder | None = None,
                 progress: bool = True, force_rebuild: bool = False,
                 index_type: str | None = None) -> MethodReport:
    """Bring one method's data and index up to date with the store's chunks."""
    return get_method(method).update(store, embedder=embedder, progress=progress,
                                     force_rebuild=force_rebuild, index_type=index_type)


def update_indexes(store: Store, methods: Iterable[str] = (), progress: bool = True,
                   embedders: dict | None = None, force_rebuild: frozenset[str] = frozenset(),
                   index_type: str | None = None) -> list[MethodReport]:
    """Update `methods` and every method the store already has, then purge rows
    that no index can refer to any more.

    Updating all of them matters: a changed document makes every method's index
    stale, not only the ones named on this run.
    """
    embedders = embedders or {}
    names = index_parts([*methods, *store.methods()])
    reports = [update_index(store, m, embedders.get(m), progress=progress,
                            force_rebuild=m in force_rebuild, index_type=index_type)
               for m in names]
    _purge(store)
    return reports


def _purge(store: Store) -> None:
    generations = [get_method(m).index_generation(store) for m in store.methods()]
    oldest = min((g for g in generations if g is not None), default=None)
    if oldest is not None:
        store.purge(oldest)


def rebuild_index(store: Store, method: str, index_type: str | None = None) -> MethodReport:
    """Rebuild `method`'s index from what the store holds (no model is loaded);
    `index_type` also becomes a dense method's choice for later rebuilds."""
    return get_method(method).rebuild(store, index_type)


def reindex(store: Store, methods: Iterable[str] = (), index_type: str | None = None,
            vector_store: str | None = None) -> list[MethodReport]:
    """Rebuild the indexes of `methods` (default: every method in the store), in
    `vector_store` when given (it becomes the store's choice)."""
    chosen = index_parts(methods) if methods else store.methods()
    if not chosen:
        raise RagminiError("the store has no vectors yet; run `ragmini ingest PATH` first")
    backend = _chosen_backend(store, vector_store, index_type)
    if backend is not None:
        store.set_meta("vector_store", backend)
        if methods:  # every dense method moves, or the store would use two backends
            chosen = store.methods()
    return [rebuild_index(store, m, index_type) for m in chosen]


def _chosen_backend(store: Store, spec: str | None, index_type: str | None) -> str | None:
    """The vector store `spec` names (None: the store keeps its own), refused with
    `index_type` before anything is written if it cannot build that type."""
    backend = parse_backend(spec) if spec is not None else None
    check_index_type(backend or current_vector_store(store), index_type)
    return backend


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
    follow_links, prune, include, workers). The report's `timings` gain
    "index" (embedding and index updates) and "total". `encoder` (torch, onnx, onnx-int8) is how sbert vectors
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
    backend = _chosen_backend(store, vector_store, index_type)
    if engine not in ("local", "ray"):
        raise RagminiError(f"unknown engine '{engine}': local or ray", param="engine")
    started = time.perf_counter()
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
        indexing = time.perf_counter()
        if workers:
            from retrieval.ray_engine import embed_on_ray

            wanted = [m for m in index_parts([*methods, *store.methods()]) if m not in custom]
            on_ray = embed_on_ray(store, wanted, workers, encoder, progress)
            if "sbert" not in custom:
                embedders.pop("sbert", None)  # its vectors are made: nothing to re-embed
        indexed = update_indexes(store, methods, progress=progress, embedders=embedders,
                                 index_type=index_type)
        report.timings["index"] = time.perf_counter() - indexing
        if workers:
            indexed = [replace(r, embedded=r.embedded + on_ray.get(r.method, 0))
                       for r in indexed]
        note = encoder_note(store) if encoder is None else None
        if note:
            report.notes.append(note)
        result = IngestResult(report, indexed, store.count("documents"), store.count("chunks"))
        report.timings["total"] = time.perf_counter() - started
        return result


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
