"""The connection layer under `ragmini.Store`: a store folder's SQLite connections,
one per thread, and closing them (Milvus Lite released too)."""

from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from pathlib import Path

from ragmini.api.errors import StoreError, errors
from ragmini.api.records import PathLike


class Connection:
    """A store folder's database connections: one per thread, opened on first use and
    kept (each read sees the latest commit: WAL, autocommit reads); `close()` ends
    them. `Store` builds every call on it."""

    def __init__(self, path: PathLike, *, progress: bool = False):
        self.path = Path(path)
        self.progress = progress
        self._local = threading.local()
        self._connections: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        self._uploads = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"ragmini.Store({str(self.path)!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store: this thread's connection now (others' when their threads
        end); any later call raises StoreError."""
        import sqlite3

        self._closed = True
        with self._lock:
            connections = list(self._connections)
        for db in connections:
            with contextlib.suppress(sqlite3.ProgrammingError):  # opened by another thread
                db.close()
        self._local = threading.local()
        searchers = sys.modules.get("retrieval.searchers")  # loaded by the first search
        if searchers is not None:
            searchers.forget(self.path)  # what its open searchers hold is freed
        milvus = sys.modules.get("retrieval.milvus")  # loaded only if the store uses it
        if milvus is not None:
            milvus.release(self.path)  # Milvus Lite: let other processes open it

    @property
    def exists(self) -> bool:
        """Whether the folder holds a store yet (`ingest` creates one)."""
        from ingest.store import DB_NAME

        return (self.path / DB_NAME).is_file()

    def _db(self, create: bool = False):
        """This thread's connection, opened on first use and kept (each read sees the
        latest commit: WAL, autocommit reads)."""
        if self._closed:
            raise StoreError(f"the store {self.path} was closed; open it again with "
                             f"ragmini.open({str(self.path)!r})")
        db = getattr(self._local, "db", None)
        if db is None:
            from ingest.store import Store as Database

            if not create and not self.exists:
                raise StoreError(f"no ragmini store at {self.path}; ingest documents into it "
                                 f"first (`ragmini ingest PATH --store {self.path}`, or "
                                 f"ragmini.open({str(self.path)!r}).ingest(['docs/']))")
            with errors():
                db = Database.open(self.path, create=create)
            self._local.db = db
            with self._lock:
                self._connections.add(db)
        return db

    def _progress(self, progress: bool | None) -> bool:
        return self.progress if progress is None else progress
