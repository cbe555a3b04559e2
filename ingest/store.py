"""The SQLite store: documents, chunks, and every method's chunk vectors.

Layout of a store folder::

    ragmini.db          documents, chunks, vectors, meta (this module)
    index/<method>.*    FAISS index + params, written by retrieval

`generation` counts committed changes to the chunk set. Each index records the
generation it was built from, so a reader can tell a current index from a
stale one without comparing the data itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.errors import StoreError

SCHEMA_VERSION = 4  # 2: versioned rows (created_gen, deleted_gen); 3: doc_meta; 4: chunk pages
MIGRATIONS = {2: 3, 3: 4}  # versions opened by adding what the next one has
# Columns a step adds to existing tables (new tables and indexes come from _SCHEMA).
ADDED_COLUMNS = {3: (("chunks", "page_start", "INTEGER"), ("chunks", "page_end", "INTEGER"),
                     ("chunks", "section", "TEXT"))}
DB_NAME = "ragmini.db"
# Vectors read at a time by iter_vectors (and so by an index build): 20,000 MiniLM
# rows are 31 MB, next to the 1.5 GB a million of them take.
VECTOR_BATCH = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Rows are never updated, only marked deleted (deleted_gen) and purged once
-- no index can refer to them: an index built at generation G keeps working
-- while the store moves on, so readers see a whole old or whole new state.
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    n_chars INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    created_gen INTEGER NOT NULL,
    deleted_gen INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_live_source ON documents(source)
    WHERE deleted_gen IS NULL;
CREATE INDEX IF NOT EXISTS documents_doc_id ON documents(doc_id);
-- AUTOINCREMENT: chunk ids are FAISS ids and must never be reused, or a stale
-- index could point at a different chunk with the same number.
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document INTEGER NOT NULL REFERENCES documents(id),
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    created_gen INTEGER NOT NULL,
    deleted_gen INTEGER,
    -- PDF pages the chunk spans (1-based), or the heading it falls under (DOCX, EPUB, ODT)
    page_start INTEGER,
    page_end INTEGER,
    section TEXT
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document);
-- vector NULL: the method embedded this chunk and found nothing to embed
-- (GloVe: no known word). It is counted, not indexed as a zero vector.
CREATE TABLE IF NOT EXISTS vectors (
    chunk_id INTEGER NOT NULL REFERENCES chunks(id),
    method TEXT NOT NULL,
    vector BLOB,
    PRIMARY KEY (chunk_id, method)
) WITHOUT ROWID;
-- Document metadata for filters: one row per value (a list gives several rows),
-- num holds numbers and dates (epoch seconds) so ranges compare numerically.
CREATE TABLE IF NOT EXISTS doc_meta (
    document INTEGER NOT NULL REFERENCES documents(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    num REAL
);
CREATE INDEX IF NOT EXISTS doc_meta_key_value ON doc_meta(key, value COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS doc_meta_key_num ON doc_meta(key, num);
CREATE INDEX IF NOT EXISTS doc_meta_document ON doc_meta(document);
CREATE TABLE IF NOT EXISTS methods (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ChunkRow:
    chunk_id: int
    doc_id: str
    source: str
    title: str
    position: int
    text: str
    start: int
    end: int
    n_tokens: int
    page_start: int | None = None
    page_end: int | None = None
    section: str | None = None

    @property
    def location(self) -> str:
        """Where in its document the chunk is, for a citation: "p. 7", "p. 7-8", the
        section heading, or "" when the format has neither."""
        if self.page_start is not None:
            span = (f"{self.page_start}" if self.page_end in (None, self.page_start)
                    else f"{self.page_start}-{self.page_end}")
            return f"p. {span}"
        return self.section or ""

    def location_fields(self) -> dict:
        """The `pages`, `section` and `location` keys of every hit and source body."""
        pages = None if self.page_start is None else [self.page_start, self.page_end]
        return {"pages": pages, "section": self.section, "location": self.location}


class OfChunk:
    """The chunk's fields read through, for records that carry a `chunk: ChunkRow`
    (a search hit, a numbered source) instead of copying its fields."""

    chunk: ChunkRow

    @property
    def chunk_id(self) -> int:
        return self.chunk.chunk_id

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def source(self) -> str:
        return self.chunk.source

    @property
    def title(self) -> str:
        return self.chunk.title

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def cite(self) -> str:
        """How a citation names the chunk: its document id, and the page span or
        section when the format has one ("report.pdf p. 7-8")."""
        where = self.chunk.location
        return f"{self.chunk.doc_id} {where}" if where else self.chunk.doc_id


@dataclass(frozen=True)
class StoredDocument:
    id: int
    source: str
    doc_id: str
    content_hash: str


# The columns of a ChunkRow, in order, from chunks c joined to documents d.
_CHUNK_ROW = ("SELECT c.id, d.doc_id, d.source, d.title, c.position, c.text, c.start_char, "
              "c.end_char, c.n_tokens, c.page_start, c.page_end, c.section "
              "FROM chunks c JOIN documents d ON d.id = c.document ")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """An open store folder. Use `Store.open`; close it (or use `with`) when done."""

    def __init__(self, root: Path, conn: sqlite3.Connection):
        import sqlite_utils

        self.root = root
        self.db = sqlite_utils.Database(conn)

    # -- opening -----------------------------------------------------------

    @classmethod
    def open(cls, root: str | os.PathLike, *, create: bool = False) -> Store:
        """Open the store at `root`; with create=True make it if it does not exist.

        Raises StoreError for a missing store (when not creating), a file where
        a folder should be, a damaged database, or another schema version.
        """
        root = Path(root)
        db_path = root / DB_NAME
        if not db_path.exists():
            if not create:
                raise StoreError(
                    f"no ragmini store at {root}; run `ragmini ingest PATH` first "
                    "(or pass --store DIR)"
                )
            if root.exists() and not root.is_dir():
                raise StoreError(f"{root} exists and is not a folder; choose another --store")
            root.mkdir(parents=True, exist_ok=True)
        try:
            # Two processes creating (or upgrading) one store at once raced to "database
            # is locked": the switch to WAL and the first schema transaction do not all
            # wait on SQLite's busy timeout. Opening is serialised by a file lock held
            # for those few milliseconds (never across an ingest: that is write.lock).
            with _open_lock(root):
                conn = sqlite3.connect(str(db_path), timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                store = cls(root, conn)
                store._init_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{db_path} is not a readable ragmini store ({exc}); "
                "move it aside and ingest again"
            ) from exc
        return store

    def _init_schema(self) -> None:
        tables = set(self.db.table_names())
        if "meta" in tables:
            version = self._meta("schema_version")
            if version is not None and version.isdigit() and int(version) in MIGRATIONS:
                self._migrate(int(version))
                return
            if version != str(SCHEMA_VERSION):
                raise StoreError(
                    f"store {self.root} has schema version {version}, this ragmini reads "
                    f"version {SCHEMA_VERSION}; ingest into a new --store folder"
                )
            return
        if tables:
            raise StoreError(f"{self.root / DB_NAME} is an SQLite file but not a ragmini store")
        with self.db.atomic():
            # executescript would commit mid-transaction, so run statements one by one.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self._set_meta("schema_version", str(SCHEMA_VERSION))
            self._set_meta("generation", "0")

    def _migrate(self, version: int) -> None:
        """Bring an older store up to date in one transaction. Each step only adds
        (CREATE ... IF NOT EXISTS), so what an older ragmini wrote stays as it was;
        documents gain their metadata on their next ingest."""
        with self.db.atomic():
            while version in MIGRATIONS:
                for table, column, kind in ADDED_COLUMNS.get(version, ()):
                    have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                version = MIGRATIONS[version]
            self._set_meta("schema_version", str(version))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    # -- meta --------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    def get_meta(self, key: str) -> str | None:
        """A stored setting (retrieval keeps fitted parameters here)."""
        return self._meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self.db.atomic():
            self._set_meta(key, value)

    @property
    def generation(self) -> int:
        return int(self._meta("generation") or 0)

    def chunk_config(self) -> dict | None:
        raw = self._meta("chunking")
        return json.loads(raw) if raw else None

    def set_chunk_config(self, config: dict) -> None:
        with self.db.atomic():
            self._set_meta("chunking", json.dumps(config, sort_keys=True))

    # -- documents and chunks ----------------------------------------------

    def documents(self) -> dict[str, StoredDocument]:
        """Every live document, keyed by source."""
        rows = self.db.execute(
            "SELECT id, source, doc_id, content_hash FROM documents WHERE deleted_gen IS NULL"
        )
        return {r[1]: StoredDocument(*r) for r in rows}

    def document_page(self, offset: int = 0, limit: int = 50) -> tuple[int, list[dict]]:
        """(live documents in all, one page of them, newest first) with their chunk counts."""
        total = self.count("documents")
        rows = self.db.execute(
            "SELECT d.doc_id, d.source, d.title, d.n_chars, d.ingested_at, count(c.id) "
            "FROM documents d LEFT JOIN chunks c ON c.document = d.id AND c.deleted_gen IS NULL "
            "WHERE d.deleted_gen IS NULL GROUP BY d.id ORDER BY d.id DESC LIMIT ? OFFSET ?",
            [limit, offset]).fetchall()
        keys = ("doc_id", "source", "title", "n_chars", "ingested_at", "chunks")
        return total, [dict(zip(keys, r)) for r in rows]

    def sources_of(self, doc_id: str) -> list[str]:
        """The live sources whose document has this id (one, unless ids repeat)."""
        rows = self.db.execute("SELECT source FROM documents WHERE doc_id = ? AND "
                               "deleted_gen IS NULL ORDER BY source", [doc_id])
        return [r[0] for r in rows]

    def document_chunks(self, source: str) -> list[ChunkRow]:
        """The live chunks of the live document from `source`, in document order."""
        rows = self.db.execute(_CHUNK_ROW + "WHERE d.source = ? AND d.deleted_gen IS NULL "
                               "AND c.deleted_gen IS NULL ORDER BY c.position", [source])
        return [ChunkRow(*r) for r in rows]

    def replace_documents(
        self,
        new: Sequence[tuple[object, str, Sequence[object]]],
        remove_sources: Sequence[str] = (),
    ) -> int:
        """In one transaction: retire `remove_sources` and any older version of each
        new document, insert `new` as (Document, content_hash, [Chunk]), and
        advance the generation, which it returns."""
        with self.db.atomic():
            gen = self.generation + 1
            sources = list(remove_sources) + [doc.source for doc, _, _ in new]
            self._retire_sources(sources, gen)
            for doc, content_hash, chunks in new:
                cur = self.db.execute(
                    "INSERT INTO documents(source, doc_id, title, content_hash, n_chars, "
                    "ingested_at, created_gen) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [doc.source, doc.doc_id, doc.title, content_hash, len(doc.text), _now(), gen],
                )
                document = cur.lastrowid
                self._put_meta(document, getattr(doc, "metadata", None) or {})
                self.db.conn.executemany(
                    "INSERT INTO chunks(document, position, text, start_char, end_char, "
                    "n_tokens, created_gen, page_start, page_end, section) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(document, c.position, c.text, c.start, c.end, c.n_tokens, gen,
                      c.page_start, c.page_end, c.section) for c in chunks],
                )
            self._set_meta("generation", str(gen))
        return gen

    def _put_meta(self, document: int, metadata: dict) -> None:
        from ingest.metadata import meta_rows

        self.db.conn.executemany(
            "INSERT INTO doc_meta(document, key, value, num) VALUES (?, ?, ?, ?)",
            [(document, *row) for row in meta_rows(metadata)])

    def refresh_metadata(self, documents: Sequence[object]) -> int:
        """Rewrite the metadata rows of live documents whose text is unchanged but
        whose metadata is not (a touched file, an edited front matter, a store
        from before metadata). Metadata is not versioned: a filter reads today's.
        Returns how many documents changed."""
        from ingest.metadata import meta_rows

        changed = 0
        with self.db.atomic():
            for doc in documents:
                row = self.db.execute("SELECT id FROM documents WHERE source = ? AND "
                                      "deleted_gen IS NULL", [doc.source]).fetchone()
                if row is None:
                    continue
                new = sorted(meta_rows(getattr(doc, "metadata", None) or {}))
                old = sorted(tuple(r) for r in self.db.execute(
                    "SELECT key, value, num FROM doc_meta WHERE document = ?", [row[0]]))
                if new != old:
                    self.db.execute("DELETE FROM doc_meta WHERE document = ?", [row[0]])
                    self._put_meta(row[0], getattr(doc, "metadata", None) or {})
                    changed += 1
            if changed:  # a vector store holding its own copy of metadata re-reads it
                self._set_meta("meta_version", str(self.meta_version + 1))
        return changed

    @property
    def meta_version(self) -> int:
        """Counts the `refresh_metadata` calls that changed something."""
        return int(self._meta("meta_version") or 0)

    def metadata_keys(self) -> list[str]:
        """Keys a filter may name: the built-in ones and every stored one."""
        from ingest.metadata import BUILTIN

        # Key by key along the (key, value) index: a read per distinct key, where
        # SELECT DISTINCT would read every metadata row of the collection.
        stored = [r[0] for r in self.db.execute(
            "WITH RECURSIVE k(key) AS (SELECT min(key) FROM doc_meta UNION ALL "
            "SELECT (SELECT min(key) FROM doc_meta WHERE key > k.key) FROM k "
            "WHERE k.key IS NOT NULL) SELECT key FROM k WHERE key IS NOT NULL")]
        return list(dict.fromkeys([*BUILTIN, *stored]))

    def select_chunks(self, where) -> np.ndarray:
        """Sorted ids of every chunk (retired ones too: an index behind the store
        still holds them) whose document matches `where` (ingest.filters.Where)."""
        from ingest.filters import Selection, where_sql

        clause, args = where_sql(where, self.metadata_keys())
        # Documents first (CROSS JOIN fixes the loop order): the condition is tested
        # once per document, and only the kept documents' chunks are read, through
        # chunks_document. Ordered by chunk id, SQLite would walk every chunk instead.
        rows = self.db.execute(
            "SELECT c.id FROM documents d CROSS JOIN chunks c ON c.document = d.id "
            f"WHERE {clause}", args).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return Selection.of(np.sort(ids), where)

    def chunk_documents(self, chunk_ids: Sequence[int]) -> dict[int, tuple]:
        """{chunk id: (document row id, doc_id, source, title, {key: [(value, number)]})}
        of the chunks' documents, for a vector store that filters by its own copy of
        the metadata."""
        out: dict[int, tuple] = {}
        metas: dict[int, dict] = {}
        for batch in _batched([int(i) for i in chunk_ids], 900):
            marks = ",".join("?" * len(batch))
            rows = self.db.execute(
                "SELECT c.id, d.id, d.doc_id, d.source, d.title FROM chunks c JOIN documents d "
                f"ON d.id = c.document WHERE c.id IN ({marks})", batch).fetchall()
            wanted = sorted({r[1] for r in rows} - metas.keys())
            for document in wanted:
                metas[document] = {}
            for doc_batch in _batched(wanted, 900):
                doc_marks = ",".join("?" * len(doc_batch))
                for document, key, value, num in self.db.execute(
                        "SELECT document, key, value, num FROM doc_meta WHERE document IN "
                        f"({doc_marks}) ORDER BY rowid", doc_batch):
                    metas[document].setdefault(key, []).append((value, num))
            for cid, document, doc_id, source, title in rows:
                out[cid] = (document, doc_id, source, title, metas[document])
        return out

    def select_doc_ids(self, where) -> set[str]:
        """doc_ids of the live documents matching `where`."""
        from ingest.filters import where_sql

        clause, args = where_sql(where, self.metadata_keys())
        return {r[0] for r in self.db.execute(
            f"SELECT d.doc_id FROM documents d WHERE d.deleted_gen IS NULL AND {clause}", args)}

    def document_metadata(self, sources: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        """{source: {key: [values]}} of live documents (for display)."""
        out: dict[str, dict[str, list[str]]] = {}
        for batch in _batched(list(sources), 500):
            marks = ",".join("?" * len(batch))
            for source, key, value in self.db.execute(
                    "SELECT d.source, m.key, m.value FROM doc_meta m JOIN documents d ON "
                    f"d.id = m.document WHERE d.source IN ({marks}) AND d.deleted_gen IS NULL "
                    "ORDER BY m.rowid", batch):
                out.setdefault(source, {}).setdefault(key, []).append(value)
        return out

    def _retire_sources(self, sources: Sequence[str], gen: int) -> None:
        for batch in _batched(sources, 500):
            marks = ",".join("?" * len(batch))
            live = f"SELECT id FROM documents WHERE source IN ({marks}) AND deleted_gen IS NULL"
            self.db.execute(
                f"UPDATE chunks SET deleted_gen = ? WHERE document IN ({live})", [gen, *batch]
            )
            self.db.execute(
                f"UPDATE documents SET deleted_gen = ? WHERE id IN ({live})", [gen, *batch]
            )

    def purge(self, up_to_generation: int) -> int:
        """Delete rows retired at or before `up_to_generation` (no index older than
        that may exist). Returns the number of chunks deleted."""
        with self.db.atomic():
            dead = "SELECT id FROM chunks WHERE deleted_gen <= ?"
            self.db.execute(f"DELETE FROM vectors WHERE chunk_id IN ({dead})", [up_to_generation])
            n = self.db.execute(
                "DELETE FROM chunks WHERE deleted_gen <= ?", [up_to_generation]
            ).rowcount
            self.db.execute("DELETE FROM doc_meta WHERE document IN (SELECT id FROM documents "
                            "WHERE deleted_gen <= ?)", [up_to_generation])
            self.db.execute("DELETE FROM documents WHERE deleted_gen <= ?", [up_to_generation])
        return n

    def count(self, table: str) -> int:
        """Live documents or chunks."""
        if table not in {"documents", "chunks"}:
            raise ValueError(table)
        return self.db.execute(
            f"SELECT count(*) FROM {table} WHERE deleted_gen IS NULL"
        ).fetchone()[0]

    def chunk_rows(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRow]:
        """Chunks with their document's fields, keyed by chunk id, retired ones
        included (an index behind the store still points at them)."""
        out: dict[int, ChunkRow] = {}
        for batch in _batched([int(i) for i in chunk_ids], 500):
            marks = ",".join("?" * len(batch))
            rows = self.db.execute(_CHUNK_ROW + f"WHERE c.id IN ({marks})", batch)
            out.update((r[0], ChunkRow(*r)) for r in rows)
        return out

    def iter_chunks(self, batch_size: int = 1000) -> Iterator[list[ChunkRow]]:
        """Every live chunk in id order, in batches."""
        last = -1
        while True:
            rows = self.db.execute(
                _CHUNK_ROW + "WHERE c.id > ? AND c.deleted_gen IS NULL ORDER BY c.id LIMIT ?",
                [last, batch_size],
            ).fetchall()
            if not rows:
                return
            yield [ChunkRow(*r) for r in rows]
            last = rows[-1][0]

    def chunk_context(self, chunk_id: int, neighbours: int = 1) -> tuple[ChunkRow, list[ChunkRow]] | None:
        """A chunk and the chunks around it in its document (`neighbours` each side,
        reading order, the chunk itself included); None if no such chunk exists."""
        found = self.chunk_rows([chunk_id]).get(int(chunk_id))
        if found is None:
            return None
        row = self.db.execute("SELECT document, position, deleted_gen FROM chunks WHERE id = ?",
                              [int(chunk_id)]).fetchone()
        document, position, deleted = row
        live = "AND c.deleted_gen IS NULL " if deleted is None else ""
        rows = self.db.execute(_CHUNK_ROW + f"WHERE c.document = ? {live}AND c.position BETWEEN "
                               "? AND ? ORDER BY c.position",
                               [document, position - neighbours, position + neighbours])
        return found, [ChunkRow(*r) for r in rows]

    def document_list(self, where=None, offset: int = 0, limit: int = 50
                      ) -> tuple[int, list[dict]]:
        """(matching live documents in all, one page of them, newest first, with their
        chunk counts and `type`): `document_page` with a metadata filter."""
        from ingest.filters import where_sql

        clause, args = ("1", []) if where is None else where_sql(where, self.metadata_keys())
        total = self.db.execute(f"SELECT count(*) FROM documents d WHERE d.deleted_gen IS NULL "
                                f"AND {clause}", args).fetchone()[0]
        rows = self.db.execute(
            "SELECT d.doc_id, d.source, d.title, d.n_chars, d.ingested_at, count(c.id), "
            "(SELECT m.value FROM doc_meta m WHERE m.document = d.id AND m.key = 'type') "
            "FROM documents d LEFT JOIN chunks c ON c.document = d.id AND c.deleted_gen IS NULL "
            f"WHERE d.deleted_gen IS NULL AND {clause} GROUP BY d.id ORDER BY d.id DESC "
            "LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        keys = ("doc_id", "source", "title", "n_chars", "ingested_at", "chunks", "type")
        return total, [dict(zip(keys, r)) for r in rows]

    # -- vectors -----------------------------------------------------------

    def method_info(self, method: str) -> dict | None:
        row = self.db.execute(
            "SELECT model, dim FROM methods WHERE name = ?", [method]
        ).fetchone()
        return {"model": row[0], "dim": row[1]} if row else None

    def methods(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM methods ORDER BY name")]

    def register_method(self, method: str, model: str, dim: int) -> bool:
        """Record the model behind `method`; if it differs from the stored one,
        drop that method's vectors (they came from another model). Returns
        True when vectors were dropped."""
        info = self.method_info(method)
        if info == {"model": model, "dim": dim}:
            return False
        with self.db.atomic():
            self.db.execute("DELETE FROM vectors WHERE method = ?", [method])
            self.db.execute(
                "INSERT INTO methods(name, model, dim, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET model = excluded.model, dim = excluded.dim, "
                "updated_at = excluded.updated_at",
                [method, model, dim, _now()],
            )
        return info is not None

    def chunks_without_vectors(self, method: str) -> list[ChunkRow]:
        rows = self.db.execute(
            _CHUNK_ROW + "LEFT JOIN vectors v ON v.chunk_id = c.id AND v.method = ? "
            "WHERE v.chunk_id IS NULL AND c.deleted_gen IS NULL ORDER BY c.id",
            [method],
        ).fetchall()
        return [ChunkRow(*r) for r in rows]

    def ids_without_vectors(self, method: str) -> np.ndarray:
        """Sorted ids of the live chunks `method` has not embedded yet: what an embed
        pass needs to hold for the whole collection (8 bytes a chunk), the texts
        being read a batch at a time (`chunk_rows`)."""
        rows = self.db.execute(
            "SELECT c.id FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id AND "
            "v.method = ? WHERE v.chunk_id IS NULL AND c.deleted_gen IS NULL ORDER BY c.id",
            [method])
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def put_vectors(self, method: str, chunk_ids: Sequence[int], vectors: np.ndarray) -> None:
        """Store one float32 row per chunk; an all-zero row is stored as NULL
        (nothing to embed)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [
            (int(cid), method, vec.tobytes() if vec.any() else None)
            for cid, vec in zip(chunk_ids, vectors, strict=True)
        ]
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO vectors(chunk_id, method, vector) VALUES (?, ?, ?)", rows
            )

    @staticmethod
    def _live_at(generation: int | None) -> tuple[str, list[int]]:
        if generation is None:
            return "c.deleted_gen IS NULL", []
        return ("c.created_gen <= ? AND (c.deleted_gen IS NULL OR c.deleted_gen > ?)",
                [generation, generation])

    def _vector_sql(self, columns: str, method: str, generation: int | None
                    ) -> tuple[str, list]:
        live, args = self._live_at(generation)
        return (f"SELECT {columns} FROM vectors v JOIN chunks c ON c.id = v.chunk_id "
                f"WHERE v.method = ? AND v.vector IS NOT NULL AND {live}", [method, *args])

    def _vector_rows(self, columns: str, method: str, generation: int | None,
                     ids: np.ndarray | None = None) -> list:
        sql, args = self._vector_sql(columns, method, generation)
        if ids is None:
            return self.db.execute(sql + " ORDER BY v.chunk_id", args).fetchall()
        rows = []
        for batch in _batched([int(i) for i in ids], 900):
            marks = ",".join("?" * len(batch))
            rows.extend(self.db.execute(sql + f" AND v.chunk_id IN ({marks})",
                                        [*args, *batch]).fetchall())
        return sorted(rows)

    def iter_vectors(self, method: str, generation: int | None = None,
                     batch_size: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`vectors(method, generation)` in batches of at most `batch_size` rows
        (default VECTOR_BATCH), in chunk id order: (ids int64 (b,), vectors float32
        (b, dim)). A reader that builds something from them (an index) holds one
        batch, not the collection."""
        sql, args = self._vector_sql("v.chunk_id, v.vector", method, generation)
        cursor = self.db.execute(sql + " ORDER BY v.chunk_id", args)
        while rows := cursor.fetchmany(batch_size or VECTOR_BATCH):
            yield _vector_batch(rows)

    def vectors(self, method: str, generation: int | None = None,
                ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids int64 (n,), vectors float32 (n, dim)) of every non-empty vector
        of chunks live now, or live at `generation`; with `ids`, only those chunks.

        The whole collection is read into one array allocated up front and filled a
        batch at a time: the vectors are held once (not as rows, then joined bytes,
        then an array), inside one read transaction so the count and the rows agree."""
        info = self.method_info(method)
        dim = info["dim"] if info else 0
        if ids is not None:
            rows = self._vector_rows("v.chunk_id, v.vector", method, generation, ids)
            if not rows:
                return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
            return _vector_batch(rows)
        with self._read_snapshot():
            n = self.vector_counts(method, generation)[0]
            out_ids = np.empty(n, dtype=np.int64)
            matrix = np.empty((n, dim), dtype=np.float32)
            at = 0
            for batch_ids, batch in self.iter_vectors(method, generation):
                out_ids[at:at + len(batch_ids)] = batch_ids
                matrix[at:at + len(batch_ids)] = batch
                at += len(batch_ids)
        if at != n:  # not possible inside one snapshot; never return a half-filled array
            raise StoreError(f"read {at} {method} vectors where {n} were counted")
        return out_ids, matrix

    @contextlib.contextmanager
    def _read_snapshot(self) -> Iterator[None]:
        """Several reads that see one committed state (a deferred transaction: WAL
        readers never block the writer). Inside a transaction already, that one."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def vector_ids(self, method: str, generation: int | None = None) -> np.ndarray:
        """Sorted chunk ids with a non-empty `method` vector, live now or at `generation`."""
        rows = self._vector_rows("v.chunk_id", method, generation)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def max_chunk_id(self) -> int:
        """The largest chunk id ever given (ids are never reused), 0 before any."""
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        return int(row[0]) if row else 0

    def chunk_ids(self, generation: int | None = None) -> np.ndarray:
        """Sorted ids of the chunks live now, or live at `generation`."""
        live, args = self._live_at(generation)
        rows = self.db.execute(f"SELECT c.id FROM chunks c WHERE {live} ORDER BY c.id",
                               args).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vector_counts(self, method: str, generation: int | None = None) -> tuple[int, int]:
        """(chunks with a vector, chunks embedded with nothing to embed), live now
        or at `generation`."""
        live, args = self._live_at(generation)
        row = self.db.execute(
            "SELECT count(v.vector), count(*) - count(v.vector) FROM vectors v "
            f"JOIN chunks c ON c.id = v.chunk_id WHERE v.method = ? AND {live}",
            [method, *args],
        ).fetchone()
        return row[0], row[1]

    # -- locking -----------------------------------------------------------

    @contextlib.contextmanager
    def writer_lock(self, wait: bool = True) -> Iterator[None]:
        """Hold the store's single-writer lock; a second writer waits (saying so)
        or, with wait=False, fails at once."""
        path = self.root / "write.lock"
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise StoreError(
                        f"another ragmini process is writing to {self.root}; try again when it ends"
                    ) from None
                print(
                    f"waiting for another ragmini process writing to {self.root} ...",
                    file=sys.stderr,
                )
                started = time.monotonic()
                fcntl.flock(handle, fcntl.LOCK_EX)
                print(f"lock acquired after {time.monotonic() - started:.1f}s", file=sys.stderr)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _open_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on root/open.lock while a store is opened; none on a folder
    we cannot write (a read-only store needs no creation or migration)."""
    try:
        handle = open(root / "open.lock", "a+")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _vector_batch(rows: list) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 matrix) of (chunk_id, vector blob) rows, all of one dimension."""
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
    return ids, matrix.reshape(len(rows), -1)


def _batched(items: Sequence, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield list(items[i : i + n])
