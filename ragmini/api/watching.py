"""`Store.watch`: keep a store in sync with folders as their files change.

The loop is `ingest.watch.watch` (batching, save-by-rename, files still being
written, missing folders); its update callback here is the store's own crash-safe
incremental `Store.ingest(..., prune=True)` and `Store.remove`, so a watcher killed
at any point and started again leaves the store as a fresh ingest of the folders
would. The loop runs in a thread; the `Watching` it returns is how a front end
follows it: `ragmini watch` prints each event and waits, `ragmini serve --watch`
answers GET /api/watch from `Watching.events` (a long poll the page follows).
docs/watch.md has the figures.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragmini.api import defaults as D
from ragmini.api.errors import QueryError, StoreError, errors, no_string
from ragmini.api.records import IngestResult, PathLike

LOCK_NAME = "watch.lock"
KEEP = 200  # events a Watching keeps for GET /api/watch; older ones are only logged
MAX_WAIT_S = 10.0  # the longest `Watching.events` waits for a new one


@dataclass(frozen=True)
class Synced:
    """What one batch did to the store: the `result` of a `watch --json` update line.

    removed: sources removed for deleted files and folders; ingest: the
    IngestResult of the changed files (None when only removals)."""

    removed: tuple[str, ...]
    ingest: IngestResult | None
    documents: int | None

    def to_dict(self) -> dict:
        out: dict = {"removed": list(self.removed), "documents": self.documents}
        if self.ingest is not None:
            body = self.ingest.to_dict()
            out.update({k: body[k] for k in ("new", "changed", "unchanged", "chunks_added",
                                             "chunks_embedded", "chunks", "skipped", "notes")})
            out["pruned"] = body["removed"]  # stored documents whose file yields none now
            out["methods"] = body["methods"]  # seconds each index took to catch up
        return out


@dataclass(frozen=True)
class WatchEvent:
    """One thing the watcher did (`watch --json`: `to_dict()`, one line each).

    kind: "ready" (first sync done; watching `changed`), "update" (a batch:
    `changed` files re-read, `removed` ones gone, `synced` what the store did,
    `seconds` it took, `lag` seconds from the batch's first file event to its end),
    "waiting" (files held back: still open for writing), "missing" / "back" (a
    watched folder vanished or returned), "rescan" (the kernel dropped events:
    folders synced again), "error" (an update failed: `message`; tried again),
    "stopped"."""

    kind: str
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    message: str = ""
    seconds: float = 0.0
    lag: float = 0.0
    synced: Synced | None = None

    @classmethod
    def of(cls, event) -> WatchEvent:
        """From the loop's `ingest.watch.WatchEvent`."""
        return cls(event.kind, tuple(event.changed), tuple(event.removed), event.message,
                   event.seconds, event.lag, event.result)

    def to_dict(self) -> dict:
        from ingest.watch import WatchEvent as LoopEvent

        # the loop's own body, with the API's record of what the store did
        out = LoopEvent(self.kind, self.changed, self.removed, self.message, self.seconds,
                        self.lag).to_dict()
        if self.synced is not None:
            out["result"] = self.synced.to_dict()
        return out

    def lines(self) -> list[tuple[str, bool]]:
        """(line, is a warning) for a person: a line per file changed, then one of
        progress (what `ragmini watch` prints; warnings go to stderr)."""
        from ingest.paths import display, display_source

        kind = self.kind
        if kind == "ready":
            return [(f"watching {', '.join(map(display, self.changed))} (Ctrl-C stops)", False)]
        if kind == "waiting":
            return [(f"waiting for {display(p)}: still open for writing", False)
                    for p in self.changed]
        if kind in ("missing", "back", "rescan"):
            return [(f"{kind}: {self.message}", kind == "missing")]
        if kind == "error":
            return [(f"error: {self.message} (tried again shortly)", True)]
        if kind != "update":
            return [(kind, False)]
        body = self.synced.to_dict() if self.synced is not None else {}
        skipped = {s["path"]: s["reason"] for s in body.get("skipped", [])}
        lines = [(f"removed {display_source(s)}", False) for s in body.get("removed", [])]
        for path in self.changed:
            if path in skipped:
                lines.append((f"skipped {display(path)}: {skipped.pop(path)}", True))
            elif os.path.isfile(path):
                lines.append((f"updated {display(path)}", False))
        lines += [(f"skipped {display_source(p)}: {r}", True) for p, r in skipped.items()]
        lines += [(f"note: {n}", True) for n in body.get("notes", [])]
        counts = ", ".join(f"{body[k]} {k}" for k in ("new", "changed", "pruned") if body.get(k))
        removed = len(body.get("removed", []))
        summary = "; ".join(part for part in (
            counts, f"{removed} removed" if removed else "",
            f"{_count(body['chunks_embedded'], 'chunk')} embedded"
            if body.get("chunks_embedded") else "")
            if part) or "no change"
        total = _count(body["documents"], "document") if body.get("documents") is not None else ""
        if body.get("chunks") is not None:
            total += f", {_count(body['chunks'], 'chunk')}"
        lines.append((f"{summary} -> {total} ({self.seconds:.2f} s; {self.lag:.2f} s after "
                      "the first change)", False))
        return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class WatchFeed:
    """The events after a given number (GET /api/watch)."""

    watching: bool  # a watcher runs (false: none was started, or it has stopped)
    paths: tuple[str, ...]  # the folders and files it keeps in sync
    seq: int  # the number of the latest event: the next call's `after`
    events: tuple[dict, ...]  # WatchEvent.to_dict() with `seq` and `time`, oldest first

    def to_dict(self) -> dict:
        return {"watching": self.watching, "paths": list(self.paths), "seq": self.seq,
                "events": list(self.events)}


NOT_WATCHING = WatchFeed(False, (), 0, ())


class Watching:
    """A watcher running in its own thread (from `Store.watch`): its recent events
    (`events`), `wait()` for it to end, `stop()` it. It holds the store's watcher
    lock until its loop has ended."""

    def __init__(self, paths: Sequence[Path], stop: threading.Event):
        self.paths = tuple(str(p) for p in paths)
        self._stop = stop
        self._events: deque[dict] = deque(maxlen=KEEP)
        self._seq = 0
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def events(self, after: int = 0, wait: float = 0.0) -> WatchFeed:
        """The events numbered above `after`, waiting up to `wait` seconds (at most
        MAX_WAIT_S) for one when there is none yet."""
        if after < 0 or not 0 <= wait <= MAX_WAIT_S:
            raise QueryError(f"after must be 0 or more and wait 0 to {MAX_WAIT_S:g} seconds",
                             param="wait")
        with self._changed:
            if self._seq <= after and wait > 0:
                self._changed.wait_for(lambda: self._seq > after or not self.running,
                                       timeout=wait)
            return WatchFeed(self.running, self.paths, self._seq,
                             tuple(e for e in self._events if e["seq"] > after))

    def stop(self, timeout: float | None = 60.0) -> None:
        """Ask the loop to end (between batches: a batch under way finishes) and wait
        up to `timeout` seconds for it."""
        self._stop.set()
        if self._thread is not None and timeout != 0:
            self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the loop ends (`stop()`, or a failure, which is raised here)."""
        while self.running:
            self._thread.join(0.5)  # in steps: Ctrl-C reaches the waiting thread
        if self._error is not None:
            raise self._error

    def _publish(self, event: WatchEvent) -> None:
        with self._changed:
            self._seq += 1
            self._events.append({"seq": self._seq, "time": round(time.time(), 3),
                                 **event.to_dict()})
            self._changed.notify_all()


class Watchable:
    """`Store.watch` (a part of `Store` of its own, for the module's size)."""

    path: Path

    def watch(self, paths: Sequence[PathLike], *, methods: Sequence[str] | None = None,
              ocr: str = D.OCR, ocr_timeout: float = D.OCR_TIMEOUT,
              on_event: Callable[[WatchEvent], None] | None = None,
              progress: bool | None = None) -> Watching:
        """Sync the store with `paths` (folders and files), then keep it in sync as
        their files are created, edited, renamed, moved or deleted, in a thread
        (`ragmini watch`, `serve --watch`). The first sync is an incremental
        `ingest(..., prune=True)`, which creates the store if needed.

        Args:
            paths: folders (watched recursively) and files; each must exist.
            methods: methods to index (default: the store's own; for a new store,
                ingest's). The store's chunking is kept.
            ocr, ocr_timeout: as for `ingest`.
            on_event: called (in the watcher's thread) with each WatchEvent.
            progress: progress bars while a batch is read and embedded.

        Returns a Watching, once the store's watcher lock is held: a second watcher
        of the same store raises StoreError here, naming the first one's process.

        Example:
            >>> watching = store.watch(["notes"])
            >>> watching.events(wait=5).events[0]["event"]
            'update'
            >>> watching.stop()
        """
        from ingest.ocr import OcrOptions
        from retrieval.methods import parse_methods

        with errors():
            roots = [Path(os.path.realpath(p)) for p in no_string(paths, "paths")]
            if not roots:
                raise QueryError("name at least one folder or file to watch", param="paths")
            for given, root in zip(paths, roots):
                if not root.exists():
                    raise QueryError(f"cannot watch {given}: no such file or folder",
                                     param="paths")
            chosen = parse_methods(no_string(methods, "methods")) if methods else None
            OcrOptions(mode=ocr, page_timeout=ocr_timeout)  # a bad one fails here
        lock = contextlib.ExitStack()
        lock.enter_context(watch_lock(self.path))
        watching = Watching(roots, threading.Event())
        progress = self._progress(progress)  # type: ignore[attr-defined]  (Connection's)

        def say(event) -> None:
            record = WatchEvent.of(event)
            watching._publish(record)
            if on_event is not None:
                on_event(record)

        def run() -> None:
            from ingest.watch import watch

            try:
                with lock, type(self)(self.path) as store:  # this thread's own connections
                    update = _updater(store, chosen, ocr, ocr_timeout, progress)
                    watch(roots, update, on_event=say, stop=watching._stop, ignore=[self.path])
            except BaseException as exc:  # kept for wait(); reported where the page looks
                watching._error = exc
                with contextlib.suppress(Exception):
                    say(_Failed(str(exc)))
            finally:
                with watching._changed:
                    watching._changed.notify_all()  # a waiting events() sees it stopped

        watching._thread = threading.Thread(target=run, name="ragmini-watch", daemon=True)
        watching._thread.start()
        return watching


@dataclass(frozen=True)
class _Failed:
    """The loop's end by an error, in the loop's event shape."""

    message: str
    kind: str = "error"
    changed: tuple = ()
    removed: tuple = ()
    seconds: float = 0.0
    lag: float = 0.0
    result: None = None


@contextlib.contextmanager
def watch_lock(store: Path) -> Iterator[None]:
    """Hold the store's watcher lock (STORE/watch.lock, flock) for the block; a second
    watcher of the same store fails at once, naming the first one's process id.

    A lock of its own, beside the store's writer lock: a watcher takes the writer
    lock for each batch (through `Store.ingest`), and must not hold it between
    batches, where `ragmini ingest`, `remove` and the server's uploads take turns."""
    store.mkdir(parents=True, exist_ok=True)
    with open(store / LOCK_NAME, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            raise StoreError(f"another `ragmini watch` (process {pid}) is keeping {store} in "
                             "sync; stop it first, or watch into another --store") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _updater(store, methods: list[str] | None, ocr: str, ocr_timeout: float, progress: bool
             ) -> Callable[[list[Path], list[Path]], Synced]:
    """The loop's update(changed, removed) for a Store: removals first (no model
    loads), then one incremental ingest of the changed files with prune (a file
    emptied or unreadable now loses its old documents). Methods and chunking are the
    store's own when it has them."""
    chosen, chunking = _store_settings(store, methods)
    warm = [True]

    def update(changed: list[Path], removed: list[Path]) -> Synced:
        gone: tuple[str, ...] = ()
        documents = None
        if removed:
            removal = store.remove(removed, missing_ok=True)
            gone, documents = removal.removed, removal.documents
        result = None
        if changed:
            result = store.ingest(changed, methods=chosen, prune=True, ocr=ocr,
                                  ocr_timeout=ocr_timeout, require_documents=False,
                                  progress=progress, **chunking)
            documents = result.documents
        if warm and store.exists:
            warm.clear()
            _warm(store)
        return Synced(tuple(gone), result, documents)

    return update


def _store_settings(store, methods: list[str] | None) -> tuple[list[str] | None, dict]:
    """(methods, chunking) for ingest: as given, else the store's, else the defaults."""
    if not store.exists:
        return methods, {}
    body = store.status().to_dict()
    chunking = body.get("chunking") or {}
    kept = {"chunk_size": chunking["size"], "overlap": chunking["overlap"]} if chunking else {}
    names = methods or [m["method"] for m in body["methods"]]
    return (names or None), kept


def _warm(store) -> None:
    """Load the chunking tokenizer and the store's embedders, as `serve --preload`
    does: when the first sync finds nothing to do, the first edit would otherwise
    wait for them (15 s for transformers' import on a busy machine). Run in the
    update's own thread: transformers' lazy imports fail when two threads race."""
    with contextlib.suppress(Exception):  # only a head start: the update loads them anyway
        from ingest.chunk import load_tokenizer
        from retrieval.methods import get_embedder

        load_tokenizer()
        db = store._db()
        for method in db.methods():
            with contextlib.suppress(Exception):  # bm25 and the like have no model
                get_embedder(method, db)
