"""Milvus as a dense method's vector store: Milvus Lite in the store folder, or a
Milvus server (standalone or cluster) by URI, through the same `MilvusClient` API.

One collection per method. A record is a chunk: ``id`` (the chunk id, primary
key), ``vector``, ``added_gen``, ``removed_gen`` (LIVE while the chunk lives),
and its document's filterable fields: ``doc_id``, ``source``, ``title``
(lower-cased), ``meta`` (JSON ``{key: [lower-cased values]}``) and ``nmin`` /
``nmax`` (JSON ``{key: least / greatest number}``), so a `--where` filter runs
inside Milvus as a boolean expression (`where_expr`).

Generations, as the FAISS files keep them. The committed ``index/<method>.json``
names the collection and the store generation G it answers for; every search
asks for ``added_gen <= G and removed_gen > G``, so it sees exactly state G while
an ingest writes the next. Updating to G' (`sync`): undo what a killed update
left (records added after G are deleted, retirement marks after G cleared), upsert
the chunks new since G with added_gen = G', mark the retired ones removed_gen =
G', commit the params (one rename), then delete records retired at or before G.
`build` (reindex, a new model or index type) fills a fresh collection, commits,
and drops the old one.

Milvus Lite admits one process at a time (it locks its folder): a second
process waits up to LOCK_WAIT_S, then is told so. A Milvus server has no such
limit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.cache import Memo
from core.errors import IndexStale, QueryError, StoreError
from ingest.filters import ORDERED, Condition, Where, glob_pattern, is_glob, source_globs
from ingest.store import Store
from retrieval.index import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    IndexParams,
    write_params,
)
from retrieval.vectorstore import vector_store

LIVE = 1 << 62  # removed_gen of a live chunk
LITE_FOLDER = "milvus.db"  # Milvus Lite's data folder inside the store (it wants ".db")
TOKEN_ENV = "RAGMINI_MILVUS_TOKEN"
CONNECT_TIMEOUT_S = 10.0
LOCK_WAIT_S = 10.0  # RAGMINI_MILVUS_WAIT overrides
WRITE_BATCH = 2000  # records an upsert call
READ_BATCH = 10_000  # chunks whose vectors and fields are read from SQLite at a time
ID_PAGE = 16_384  # rows a query may return (Milvus's cap)
MAX_TEXT = 65_535  # VARCHAR limit
INDEXES = {"flat": ("FLAT", {}),
           "hnsw": ("HNSW", {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})}
SEARCH_SETTINGS = {"flat": {}, "hnsw": {"ef": HNSW_EF_SEARCH}}
MAX_EF = 4096

# Open clients by URI or Lite folder: a Lite folder can be opened once per process.
CLIENTS = Memo(size=8)


def lite_path(store: Store) -> Path:
    return store.root / LITE_FOLDER


def client_for(store: Store, backend: str):
    """A MilvusClient for `backend` ("milvus": this store's Lite folder; else a URI)."""
    if backend == "milvus":
        path = lite_path(store)
        return CLIENTS.get(str(path), lambda: _open_lite(path))
    return CLIENTS.get(backend, lambda: _open_server(backend))


def release(store: Store | Path) -> None:
    """Close this process's hold on a store's Milvus Lite folder (a Store or its
    folder), so another process may open it; a process otherwise holds it until
    it exits."""
    root = store.root if isinstance(store, Store) else Path(store)
    path = root / LITE_FOLDER
    searchers = sys.modules.get("retrieval.searchers")
    if searchers is not None:
        searchers.forget(root)  # they hold the client closed here
    client = CLIENTS.pop(str(path))
    if client is not None:
        from milvus_lite.server_manager import server_manager_instance

        client.close()
        server_manager_instance.release_server(str(path))


def _lock_wait() -> float:
    return float(os.environ.get("RAGMINI_MILVUS_WAIT", LOCK_WAIT_S))


def _pymilvus():
    import logging

    try:
        import pymilvus
    except ImportError:
        raise StoreError("the Milvus backend needs pymilvus and milvus-lite: "
                         "`.venv/bin/pip install -e '.[scale]'` (make setup does it)"
                         ) from None
    # pymilvus logs each failed call with a traceback; ragmini reports it in one line.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    return pymilvus


@contextlib.contextmanager
def milvus_errors(what: str) -> Iterator[None]:
    """A Milvus failure as one line saying what failed and what to do."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        raise IndexStale(f"Milvus could not {what} ({getattr(exc, 'message', exc)}); "
                         "`ragmini status --repair` or `ragmini reindex` rebuilds it from "
                         "the store") from None


def _open_lite(path: Path):
    pymilvus = _pymilvus()
    path.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + _lock_wait()
    while _locked_elsewhere(path / "LOCK"):
        if time.monotonic() > deadline:
            raise StoreError(
                f"the Milvus Lite folder {path} is open in another process (Milvus Lite "
                "allows one at a time: a running `ragmini serve` or ingest?); wait for it "
                "to finish, or use a Milvus server: --vector-store milvus://HOST:PORT")
        time.sleep(0.2)
    try:
        return pymilvus.MilvusClient(str(path))
    except Exception as exc:  # pymilvus wraps every start failure alike
        raise StoreError(f"cannot open Milvus Lite at {path} ({exc}); `ragmini reindex "
                         "--vector-store milvus` rebuilds it from the store") from exc


def _locked_elsewhere(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _open_server(uri: str):
    pymilvus = _pymilvus()
    try:
        client = pymilvus.MilvusClient(uri=uri, token=os.environ.get(TOKEN_ENV, ""),
                                       timeout=CONNECT_TIMEOUT_S)
        client.list_collections()
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise StoreError(f"cannot reach the Milvus server at {uri} ({first}); start it, or "
                         f"set {TOKEN_ENV} if it needs a token") from None
    return client


def collection_name(store: Store, method: str, generation: int) -> str:
    """Unique per store, method and build: several stores may share one server."""
    store_id = store.get_meta("store_id")
    if store_id is None:
        store_id = secrets.token_hex(4)
        store.set_meta("store_id", store_id)
    slug = method.replace("-", "_")
    return f"ragmini_{store_id}_{slug}_g{generation}_{secrets.token_hex(3)}"


def generation_expr(generation: int) -> str:
    return f"added_gen <= {generation} and removed_gen > {generation}"


class MilvusVectors:
    """A method's collection as a VectorStore, seen at one store generation:
    writes carry that generation, searches see the chunks live at it."""

    def __init__(self, client, collection: str, generation: int, index_type: str,
                 backend: str, size: int = 0):
        self.client = client
        self.size = size  # vectors at this generation (widens a filtered HNSW walk)
        self.collection = collection
        self.generation = generation
        self.index_type = index_type
        self.backend = backend

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: list[dict] | None = None
            ) -> None:
        fields = fields or [{} for _ in ids]
        for i in range(0, len(ids), WRITE_BATCH):
            rows = [{"id": int(cid), "vector": vec, "added_gen": self.generation,
                     "removed_gen": LIVE, **_empty_fields(), **f}
                    for cid, vec, f in zip(ids[i:i + WRITE_BATCH], vectors[i:i + WRITE_BATCH],
                                           fields[i:i + WRITE_BATCH])]
            self.client.upsert(self.collection, rows)

    def mark(self, ids: np.ndarray, removed_gen: int) -> None:
        """Set removed_gen of `ids` (a retirement, or LIVE to clear one)."""
        for i in range(0, len(ids), WRITE_BATCH):
            self.client.upsert(self.collection, [{"id": int(c), "removed_gen": removed_gen}
                                                 for c in ids[i:i + WRITE_BATCH]],
                               partial_update=True)

    def set_fields(self, ids: np.ndarray, fields: list[dict]) -> None:
        for i in range(0, len(ids), WRITE_BATCH):
            self.client.upsert(self.collection, [{"id": int(c), **f} for c, f in
                                                 zip(ids[i:i + WRITE_BATCH],
                                                     fields[i:i + WRITE_BATCH])],
                               partial_update=True)

    def delete(self, ids: np.ndarray) -> None:
        for i in range(0, len(ids), WRITE_BATCH):
            self.client.delete(self.collection, ids=[int(c) for c in ids[i:i + WRITE_BATCH]])

    def ids(self, expr: str, max_id: int) -> np.ndarray:
        """Sorted ids (up to `max_id`) of the records matching `expr`. A query returns
        at most ID_PAGE rows, in no promised order, so ids are read by id ranges, a
        range halved whenever it comes back full."""
        out, low, span = [], 0, ID_PAGE
        while low <= max_id:
            high = min(max_id, low + span - 1)
            rows = self.client.query(self.collection, output_fields=["id"], limit=ID_PAGE,
                                     filter=f"id >= {low} and id <= {high} and ({expr})")
            if len(rows) >= ID_PAGE and high > low:
                span = max(1, span // 2)
                continue
            out.append(np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows)))
            low = high + 1
            if len(rows) < ID_PAGE // 4:
                span *= 2
        return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)

    def count(self) -> int:
        rows = self.client.query(self.collection, filter=generation_expr(self.generation),
                                 output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def params(self) -> dict:
        return {"backend": self.backend, "collection": self.collection,
                "index_type": self.index_type, "search_params": SEARCH_SETTINGS[self.index_type]}

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        n = len(queries)
        expr = generation_expr(self.generation)
        settings = dict(SEARCH_SETTINGS[self.index_type])
        if allowed is not None:
            if len(allowed) == 0:
                return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
            where = getattr(allowed, "where", None)
            translated = where_expr(where) if where is not None else None
            if translated is None:  # ids chosen by SQLite: a filter Milvus cannot say
                translated = f"id in [{','.join(str(int(i)) for i in allowed)}]"
            expr = f"{expr} and ({translated})"
            if "ef" in settings and self.size:
                # A graph walk that skips filtered-out nodes finds fewer of the kept
                # ones: widen it as the kept share shrinks (bench/backends.py).
                share = min(1.0, len(allowed) / self.size)
                settings["ef"] = int(min(MAX_EF, max(settings["ef"], settings["ef"] / share)))
        with milvus_errors(f"search {self.collection}"):
            results = self.client.search(
                self.collection, data=np.ascontiguousarray(queries, dtype=np.float32),
                limit=k, filter=expr, output_fields=[],
                search_params={"params": settings})
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        ids = np.full((n, k), -1, dtype=np.int64)
        for q, hits in enumerate(results):
            for j, hit in enumerate(hits[:k]):
                ids[q, j], scores[q, j] = hit["id"], hit["distance"]
        return scores, ids


def _load(client, collection: str) -> None:
    """Load a collection into memory for search (a reopened one starts released)."""
    from pymilvus.client.types import LoadState

    if client.get_load_state(collection).get("state") != LoadState.Loaded:
        client.load_collection(collection)


def _empty_fields() -> dict:
    return {"doc_id": "", "source": "", "title": "", "meta": {}, "nmin": {}, "nmax": {}}


def record_fields(store: Store, ids: np.ndarray) -> list[dict]:
    """Each chunk's filterable fields, from its document's row and metadata."""
    documents = store.chunk_documents(ids)
    bodies: dict[int, dict] = {}  # a document's chunks share one record body
    for document, doc_id, source, title, meta in documents.values():
        if document in bodies:
            continue
        values: dict[str, list[str]] = {}
        nmin: dict[str, float] = {}
        nmax: dict[str, float] = {}
        for key, items in meta.items():
            values[key] = [v.lower() for v, _ in items]
            nums = [x for _, x in items if x is not None]
            if nums:
                nmin[key], nmax[key] = min(nums), max(nums)
        bodies[document] = {"doc_id": doc_id[:MAX_TEXT], "source": source[:MAX_TEXT],
                            "title": title.lower()[:MAX_TEXT], "meta": values,
                            "nmin": nmin, "nmax": nmax}
    return [bodies[documents[int(cid)][0]] for cid in ids]


def create_collection(client, name: str, dim: int, index_type: str) -> None:
    from pymilvus import DataType

    if index_type not in INDEXES:
        raise QueryError(f"on Milvus, --index is flat or hnsw (not {index_type})",
                         param="index_type")
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("added_gen", DataType.INT64)
    schema.add_field("removed_gen", DataType.INT64)
    for text in ("doc_id", "source", "title"):
        schema.add_field(text, DataType.VARCHAR, max_length=MAX_TEXT)
    for doc in ("meta", "nmin", "nmax"):
        schema.add_field(doc, DataType.JSON)
    kind, build = INDEXES[index_type]
    index = client.prepare_index_params()
    index.add_index("vector", index_type=kind, metric_type="IP", params=build)
    # Strong: a search sees every write acknowledged before it (the generation rules
    # rely on that, on a server too).
    client.create_collection(name, schema=schema, index_params=index,
                             consistency_level="Strong")


def commit(store: Store, params: IndexParams) -> None:
    write_params(store.index_dir, params.method, params)


def _params(store: Store, method: str, info: dict, backend: str, collection: str,
            index_type: str, n_vectors: int) -> IndexParams:
    from pymilvus import __version__

    return IndexParams(
        method=method, model=info["model"], dim=int(info["dim"]), n_vectors=n_vectors,
        store_generation=store.generation, chunking=store.chunk_config() or {}, file="",
        sha256="", index_type=index_type, search_params=SEARCH_SETTINGS[index_type],
        faiss_version=f"pymilvus {__version__}",
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), backend=backend,
        collection=collection, meta_version=store.meta_version)


def build(store: Store, method: str, info: dict, index_type: str, backend: str,
          old: IndexParams | None, progress: bool = False) -> IndexParams:
    """A fresh collection of the store's vectors, committed; the old one dropped."""

    client = client_for(store, backend)
    with milvus_errors(f"build the {method} collection"):
        return _build(client, store, method, info, index_type, backend, old, progress)


def _build(client, store: Store, method: str, info: dict, index_type: str, backend: str,
           old: IndexParams | None, progress: bool) -> IndexParams:
    from tqdm import tqdm

    name = collection_name(store, method, store.generation)
    create_collection(client, name, int(info["dim"]), index_type)
    vectors = MilvusVectors(client, name, store.generation, index_type, backend)
    n = 0
    # A batch at a time from the store: the collection's vectors are never all held here.
    with tqdm(total=store.vector_counts(method)[0], desc=f"milvus ({method})", unit="vector",
              disable=not progress or None, leave=False) as bar:
        for part, matrix in store.iter_vectors(method, batch_size=READ_BATCH):
            vectors.add(part, matrix, record_fields(store, part))
            n += len(part)
            bar.update(len(part))
    # Sealed and indexed before anyone searches it: Milvus Lite scans unflushed rows
    # one by one (1.4 s a query at 28,000 vectors, 45 ms after a flush).
    client.flush(name)
    params = _params(store, method, info, backend, name, index_type, n)
    commit(store, params)
    _drop_others(client, store, method, keep=name, old=old)
    return params


def _drop_others(client, store: Store, method: str, keep: str, old: IndexParams | None) -> None:
    prefix = f"ragmini_{store.get_meta('store_id')}_{method.replace('-', '_')}_g"
    for name in client.list_collections():
        if name.startswith(prefix) and name != keep:
            client.drop_collection(name)
    if old is not None and old.backend != vector_store(store) and old.collection:
        drop(store, old)  # the collection of another server the store used before


def sync(store: Store, method: str, info: dict, params: IndexParams, progress: bool = False
         ) -> IndexParams:
    """Bring the committed collection from its generation to the store's (see the
    module docstring); the new params."""
    client = client_for(store, params.backend)
    with milvus_errors(f"update {params.collection}"):
        if not client.has_collection(params.collection):
            raise IndexStale(f"the Milvus collection {params.collection} is gone")
        _load(client, params.collection)
        return _sync(client, store, method, info, params)


def _sync(client, store: Store, method: str, info: dict, params: IndexParams) -> IndexParams:
    old_gen, new_gen = params.store_generation, store.generation
    target = MilvusVectors(client, params.collection, new_gen, params.index_type,
                           params.backend)
    # What a killed update left: records it added, and the retirements it marked.
    client.delete(params.collection, filter=f"added_gen > {old_gen}")
    marked = target.ids(f"removed_gen > {old_gen} and removed_gen < {LIVE}",
                        store.max_chunk_id())
    before = store.vector_ids(method, old_gen)
    after = store.vector_ids(method)
    added = np.setdiff1d(after, before)
    retired = np.setdiff1d(before, after)
    restored = np.intersect1d(marked, after)
    if len(restored):
        target.mark(restored, LIVE)
    for i in range(0, len(added), READ_BATCH):
        ids, matrix = store.vectors(method, ids=added[i:i + READ_BATCH])
        target.add(ids, matrix, record_fields(store, ids))
    if len(retired):
        target.mark(retired, new_gen)
    if params.meta_version != store.meta_version:
        # Metadata is not versioned (ingest.store.refresh_metadata): copy today's.
        kept = np.setdiff1d(after, added)
        for i in range(0, len(kept), READ_BATCH):
            part = kept[i:i + READ_BATCH]
            target.set_fields(part, record_fields(store, part))
    client.flush(params.collection)
    new = _params(store, method, info, params.backend, params.collection, params.index_type,
                  len(after))
    commit(store, new)
    client.delete(params.collection, filter=f"removed_gen <= {old_gen}")
    client.flush(params.collection)
    return new


def check(store: Store, method: str, params: IndexParams) -> list[str]:
    """Problems between the committed collection and the store's vectors at its
    generation: the exact id set, compared."""
    try:
        client = client_for(store, params.backend)
        if not client.has_collection(params.collection):
            return [f"the Milvus collection {params.collection} is missing"]
        vectors = MilvusVectors(client, params.collection, params.store_generation,
                                params.index_type, params.backend)
        with milvus_errors(f"read {params.collection}"):
            _load(client, params.collection)
            held = vectors.ids(generation_expr(params.store_generation),
                               store.max_chunk_id())
    except (StoreError, IndexStale) as exc:
        return [str(exc)]
    expected = store.vector_ids(method, params.store_generation)
    if np.array_equal(held, expected):
        return []
    return [f"the Milvus collection holds {len(held)} ids, the store has {len(expected)} "
            f"vectors for generation {params.store_generation} "
            f"({len(np.setdiff1d(held, expected))} unknown, "
            f"{len(np.setdiff1d(expected, held))} missing)"]


def open_vectors(store: Store, params: IndexParams) -> MilvusVectors:
    client = client_for(store, params.backend)
    with milvus_errors(f"open {params.collection}"):
        if not client.has_collection(params.collection):
            raise IndexStale(f"the Milvus collection {params.collection} is missing; run "
                             "`ragmini reindex` to rebuild it from the store")
        _load(client, params.collection)
    return MilvusVectors(client, params.collection, params.store_generation,
                         params.index_type, params.backend, params.n_vectors)


# --- filters: a Where as a Milvus boolean expression ---------------------------

def where_expr(where: Where) -> str | None:
    """The filter as a Milvus expression over the record fields, or None when a
    condition has no exact translation (a [...] class in a glob, a glob or ~ on a
    metadata value): then the caller passes the ids SQLite selected instead."""
    parts = [_condition_expr(c) for c in where.conditions]
    if any(p is None for p in parts):
        return None
    return " and ".join(f"({p})" for p in parts)


def _condition_expr(c: Condition) -> str | None:
    if c.key == "source":
        patterns = source_globs(c.value)
        if patterns is None:
            expr = f"doc_id == {_string(c.value)} or source == {_string(c.value)}"
        else:
            left, right = map(_like, patterns)
            if left is None or right is None:
                return None
            expr = f"doc_id like {left} or source like {right}"
        return f"not ({expr})" if c.op == "!=" else expr
    if c.key == "title":
        value = c.value.lower()
        if c.op == "~":
            return f"title like {_string('%' + _escape_like(value) + '%')}"
        if is_glob(value):
            pattern = _like(glob_pattern(value))
            if pattern is None:
                return None
            expr = f"title like {pattern}"
        else:
            expr = f"title == {_string(value)}"
        return f"not ({expr})" if c.op == "!=" else expr
    key = _string(c.key)
    if c.op in ORDERED:
        from ingest.metadata import number

        field = "nmin" if c.op in ("<", "<=") else "nmax"
        return f"{field}[{key}] {c.op} {number(c.value)!r}"
    if c.op == "~" or is_glob(c.value):
        return None
    expr = f"json_contains(meta[{key}], {_string(c.value.lower())})"
    return f"not {expr}" if c.op == "!=" else expr


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(glob: str) -> str | None:
    """An SQLite GLOB pattern (* ?) as a Milvus LIKE string; None for a [...] class."""
    if "[" in glob:
        return None
    out = "".join("%" if ch == "*" else "_" if ch == "?" else _escape_like(ch) for ch in glob)
    return _string(out)


def drop(store: Store, params: IndexParams) -> None:
    """Drop a collection the store no longer uses (best effort: a server that is
    gone keeps it)."""
    try:
        client = client_for(store, params.backend)
        if client.has_collection(params.collection):
            client.drop_collection(params.collection)
    except StoreError:
        pass
