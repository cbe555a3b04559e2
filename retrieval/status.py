"""Does every index agree with the store? Each method checks its own."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ingest.pipeline import last_ingest
from ingest.store import Store
from retrieval.contract import MethodStatus
from retrieval.methods import get_method


@dataclass(frozen=True)
class StoreStatus:
    root: str
    schema_version: int
    generation: int
    documents: int
    chunks: int
    chunking: dict | None
    methods: list[MethodStatus]
    # The last ingest's summary (ingest.pipeline.IngestReport.summary): when, counts,
    # and the files it did not read by suffix; None for a store never ingested since.
    last_ingest: dict | None = None

    @property
    def consistent(self) -> bool:
        return all(m.consistent for m in self.methods)

    @property
    def up_to_date(self) -> bool:
        return all(m.behind == 0 and m.unembedded == 0 for m in self.methods)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["consistent"] = self.consistent
        out["up_to_date"] = self.up_to_date
        return out

    def last_ingest_line(self) -> str | None:
        """ "last ingest 2026-01-02T03:04:05+00:00: 3 new, ...; 3,851 other files not
        read: .c 84, ..." for people, or None."""
        from ingest.pipeline import not_read_line

        last = self.last_ingest
        if not last:
            return None
        line = (f"last ingest {last.get('at', '?')}: {last.get('new', 0)} new, "
                f"{last.get('changed', 0)} changed, {last.get('removed', 0)} removed, "
                f"{last.get('unchanged', 0)} unchanged, {last.get('skipped', 0)} skipped")
        other = not_read_line(last.get("not_read") or {})
        return f"{line}; {other}" if other else line


def check_store(store: Store) -> StoreStatus:
    version = int(store.get_meta("schema_version"))
    return StoreStatus(
        root=str(store.root),
        schema_version=version,
        generation=store.generation,
        documents=store.count("documents"),
        chunks=store.count("chunks"),
        chunking=store.chunk_config(),
        methods=[get_method(m).check(store) for m in store.methods()],
        last_ingest=last_ingest(store),
    )


def repair(store: Store, progress: bool = True) -> StoreStatus:
    """Rebuild whatever disagrees (embedding only what is missing); the new status."""
    from retrieval.indexing import update_indexes

    report = check_store(store)
    if report.consistent and report.up_to_date:
        return report
    broken = frozenset(m.method for m in report.methods if not m.consistent)
    with store.writer_lock():
        update_indexes(store, progress=progress, force_rebuild=broken)
    return check_store(store)
