"""The labelled query sets an eval of a store may use, by id: the bundled
corpus/queries.jsonl, and each split of every BEIR folder whose corpus.jsonl the
store has ingested (its qrels judge the store's own doc ids).

Ids, not paths, come from a client: only a set listed here can be chosen, so an
HTTP request never names a file to read.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import QueryError
from eval.queries import QuerySet, load_queries
from ingest.paths import decode_source
from ingest.store import Store

DEFAULT_QUERY_SET = "bundled"
BEIR_CORPUS = "corpus.jsonl"
_BEIR_PREFIX = "beir:"


@dataclass(frozen=True)
class QuerySetChoice:
    id: str  # "bundled", or "beir:<folder>:<split>"
    label: str  # for people: "bundled corpus/queries.jsonl", "manpages (dev)"
    kind: str  # bundled | beir
    path: str  # the query file, or the BEIR folder
    dataset: str  # how eval history names it, as `ragmini eval` does
    split: str | None = None

    def load(self) -> QuerySet:
        if self.kind == "beir":
            from eval.beir import load_beir

            return load_beir(Path(self.path), self.split or "test")
        return load_queries(Path(self.path))

    def to_dict(self) -> dict:
        return asdict(self)


def bundled() -> QuerySetChoice:
    from eval.queries import DEFAULT_QUERIES, default_queries

    return QuerySetChoice(DEFAULT_QUERY_SET, f"bundled {DEFAULT_QUERIES}", "bundled",
                          str(default_queries()), DEFAULT_QUERIES)


def beir_folders(store: Store) -> list[Path]:
    """The folders of the BEIR corpora the store holds documents of (sources
    `<folder>/corpus.jsonl#<id>`) that still have queries.jsonl and qrels/."""
    marker = f"/{BEIR_CORPUS}#"
    rows = store.db.execute(
        "SELECT DISTINCT substr(source, 1, instr(source, ?) - 1) FROM documents "
        "WHERE deleted_gen IS NULL AND instr(source, ?) > 0", [marker, marker])
    folders = []
    for (folder,) in rows:
        path = Path(decode_source(folder))
        if (path / "queries.jsonl").is_file() and (path / "qrels").is_dir():
            folders.append(path)
    return sorted(folders)


def known_query_sets(store: Store) -> list[QuerySetChoice]:
    """The bundled set, then each BEIR folder's splits (dev before test)."""
    choices = [bundled()]
    for folder in beir_folders(store):
        splits = sorted((p.stem for p in (folder / "qrels").glob("*.tsv")),
                        key=lambda s: (s != "dev", s))
        choices += [QuerySetChoice(f"{_BEIR_PREFIX}{os.fspath(folder)}:{split}",
                                   f"{folder.name} ({split})", "beir", os.fspath(folder),
                                   folder.name, split)
                    for split in splits]
    return choices


def find_query_set(store: Store, set_id: str | None) -> QuerySetChoice:
    """The known query set `set_id` (None: the bundled one); QueryError naming the
    known ones otherwise."""
    choices = known_query_sets(store)
    wanted = set_id or DEFAULT_QUERY_SET
    for choice in choices:
        if choice.id == wanted:
            return choice
    raise QueryError(f"unknown query set {wanted!r}; this store knows "
                     f"{', '.join(c.id for c in choices)}", param="query_set")
