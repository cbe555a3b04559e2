"""Searchers kept open across calls, per store folder and method, until a commit.

Opening a searcher reads the index's params, checks them against the store, and
takes the index and the embedder from the process's caches; then each search is
an embed, an index scan and one read of the k hit rows. A server, a notebook or
a LangChain retriever asking the same store again would open it again on every
call. `open_cached(db, method)` keeps it open instead:

- **Reopened only when the store changes.** An entry remembers the state it was
  opened at: the store generation, each index's committed params file (every
  commit writes it anew, naming a fresh index file or folder), the model recorded
  for each index, and a fusion's tuned params. Reading that state costs the same
  at any collection size: primary-key reads of the `meta` and `methods` tables
  and one small file read per index. When it differs, the searcher is opened
  again and replaces the old one.
- **Safe across threads.** A SQLite connection belongs to the thread that made
  it, so a cached searcher holds no connection: it reads the store through
  `_CallerStore`, the connection the calling thread passed to its latest
  `open_cached`. Index searches (FAISS, bm25s, scipy) only read shared arrays;
  bm25's stemmer, which must not be shared, is one per thread.
- **Bounded.** At most `SIZE` searchers (least recently used go first); one
  store generation at a time per method. What each holds is measured in
  docs/search-cost.md; the index arrays and models themselves are shared with
  `retrieval.index.LOADED` and `retrieval.methods.MODELS`.

`find` is the search a front end makes of one query: the hits, or no hits and
the reason why (a query with no word the method knows is not an error there).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from core.errors import NoMatch, StoreError
from ingest.store import Store
from retrieval.contract import Embedder, Hit, Searcher, search_one
from retrieval.hybrid import FusionSearcher
from retrieval.methods import (
    FUSION_META,
    check_method,
    fusion_params,
    get_method,
    index_parts,
    open_searcher,
    parse_fusion,
)

SIZE = 16  # open searchers kept by the process: every method of two stores, with fusions


class _CallerStore:
    """The store a cached searcher reads through: the connection the calling thread
    last passed to `open_cached` for this folder (connections stay with their
    thread; the searcher is shared by all)."""

    def __init__(self, root: str):
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_local", threading.local())

    def bind(self, db: Store) -> None:
        self._local.db = db

    def __getattr__(self, name: str) -> Any:
        db = getattr(self._local, "db", None)
        if db is None:  # a searcher used from a thread that never asked for it
            raise StoreError(f"a searcher of {self._root} was used from a thread that did "
                             "not open it; call open_cached(store, method) in that thread")
        return getattr(db, name)


def _root(db: Store) -> str:
    return os.path.abspath(db.root)


def _params_file(db: Store, method: str) -> bytes | None:
    """The committed params of `method`'s index, as bytes (None: no index yet)."""
    try:
        fd = os.open(db.index_dir / f"{method}.json", os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:  # os-level: a third of what Path.read_bytes costs, on every search
        return os.read(fd, 1 << 20)
    finally:
        os.close(fd)


def searcher_state(db: Store, method: str) -> tuple:
    """What a searcher of `method` was opened from, read in constant time: equal
    states open equal searchers. Every write that changes what a search sees
    changes one of these: a commit of chunks (the generation), of an index (its
    params file), a new model (the methods row; its vectors are dropped), tuned
    fusion weights (a meta row)."""
    fusion = parse_fusion(method)
    parts = fusion[1] if fusion else (check_method(method),)
    tuned = db.get_meta(FUSION_META.format(fusion[0])) if fusion else None
    return (db.generation, tuned,
            *((_params_file(db, p), db.method_info(p)) for p in parts))


class SearcherCache:
    """Open searchers by (store folder, method), each with the state it was opened
    at; at most `size` of them."""

    def __init__(self, size: int = SIZE):
        self.size = size
        self._entries: OrderedDict[tuple[str, str], tuple[tuple, Searcher]] = OrderedDict()
        self._callers: dict[str, _CallerStore] = {}
        self._opening: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, db: Store, method: str) -> Searcher:
        root = _root(db)
        key = (root, method)
        # Read before opening: a commit in between makes the next call open again,
        # never keeps a searcher older than the state it is filed under.
        state = searcher_state(db, method)
        with self._lock:
            caller = self._callers.get(root)
            if caller is None:
                caller = self._callers[root] = _CallerStore(root)
            caller.bind(db)
            entry = self._entries.get(key)
            if entry is not None and entry[0] == state:
                self._entries.move_to_end(key)
                return entry[1]
            opening = self._opening.setdefault(key, threading.Lock())
        with opening:  # several threads asking at once open it once
            try:
                with self._lock:
                    entry = self._entries.get(key)
                    if entry is not None and entry[0] == state:
                        return entry[1]
                searcher = self._open(db, caller, method)
                with self._lock:
                    self._entries[key] = (state, searcher)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.size:
                        self._entries.popitem(last=False)
                    self._drop_unused_callers()
                return searcher
            finally:
                with self._lock:
                    self._opening.pop(key, None)

    def _open(self, db: Store, caller: _CallerStore, method: str) -> Searcher:
        fusion = parse_fusion(method)
        if fusion is None:
            return get_method(method).open(caller)
        name, (a, b) = fusion
        # The parts are the cached searchers of their own methods (shared, not copied).
        return FusionSearcher(name, self.get(db, a), self.get(db, b), fusion_params(db, name))

    def forget(self, root: str | os.PathLike | None = None) -> None:
        """Drop the searchers of one store folder (all, with None): they reopen on
        the next call. `Store.close` and `milvus.release` call it."""
        wanted = None if root is None else os.path.abspath(root)
        with self._lock:
            for key in [k for k in self._entries if wanted is None or k[0] == wanted]:
                del self._entries[key]
            self._drop_unused_callers()

    def _drop_unused_callers(self) -> None:
        used = {root for root, _ in self._entries}
        for root in [r for r in self._callers if r not in used]:
            del self._callers[root]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


SEARCHERS = SearcherCache()


def open_cached(db: Store, method: str, embedders: dict[str, Embedder] | None = None
                ) -> Searcher:
    """A searcher for `method` over the store `db` (any method name, fusions too),
    kept open by the process until a commit changes what it would see. Call it for
    each search (it costs a few primary-key reads); use the searcher in the same
    thread. `embedders` by method name: one of another model than the store records
    for that method (a test's impostor, say) makes a searcher opened afresh with
    them and not kept; one of the same model is the one the kept searcher uses."""
    if embedders and any(
            p in embedders and getattr(embedders[p], "model", None)
            != (db.method_info(p) or {}).get("model") for p in index_parts([method])):
        return open_searcher(db, method, embedders)
    return SEARCHERS.get(db, method)


def forget(root: str | os.PathLike | None = None) -> None:
    """Drop the kept searchers of the store at `root` (every store: None)."""
    SEARCHERS.forget(root)


def find(searcher: Searcher, query: str, k: int = 5, allowed: np.ndarray | None = None
         ) -> tuple[list[Hit], str | None]:
    """The top-`k` hits for one query, and when there are none, why: the query has
    no word the method can match (NoMatch), the filter keeps no chunk that matches,
    or the index holds nothing to rank. Errors a user must fix (an empty query, a
    stale index) still raise."""
    try:
        hits = search_one(searcher, query, k, allowed)
    except NoMatch as exc:
        return [], str(exc)
    if hits:
        return hits, None
    if allowed is not None:
        where = getattr(allowed, "where", None)
        return [], (f"no chunk of a document matching {where} matches the query"
                    if where is not None else "no chunk the filter keeps matches the query")
    return [], f"no chunk matches the query by {searcher.method} (is the index empty?)"
