"""`ragmini watch PATH...`: keep a store in sync with folders as their files change.

The loop is `ingest.watch.watch` (batching, save-by-rename, files still being
written, missing folders); its update callback here is the Python API's own
crash-safe incremental `Store.ingest(..., prune=True)` and `Store.remove`, so a
watcher killed at any point and started again leaves the store as a fresh ingest
of the folders would. `ragmini serve --watch PATH` runs the same loop in a thread
beside the server (`serve_watch`). docs/watch.md has the figures.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from core.errors import StoreError
from ragmini.clitools import store_option as _store_option

LOCK_NAME = "watch.lock"


@dataclass(frozen=True)
class Synced:
    """What one batch did to the store: the `result` of a `watch --json` update line.

    removed: sources removed for deleted files and folders; ingest: the
    `ragmini.IngestResult` of the changed files (None when only removals)."""

    removed: tuple[str, ...]
    ingest: object | None  # ragmini.IngestResult
    documents: int

    def to_dict(self) -> dict:
        out: dict = {"removed": list(self.removed), "documents": self.documents}
        if self.ingest is not None:
            body = self.ingest.to_dict()
            out.update({k: body[k] for k in ("new", "changed", "unchanged", "chunks_added",
                                             "chunks_embedded", "chunks", "skipped", "notes")})
            out["pruned"] = body["removed"]  # stored documents whose file yields none now
            out["methods"] = body["methods"]  # seconds each index took to catch up
        return out


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


def store_updater(store, *, methods: Sequence[str] | None = None, ocr: str = "auto",
                  ocr_timeout: float = 120.0, progress: bool = False
                  ) -> Callable[[list[Path], list[Path]], Synced]:
    """The watch loop's update(changed, removed) for a `ragmini.Store`: removals first
    (no model loads), then one incremental ingest of the changed files with prune
    (a file emptied or unreadable now loses its old documents). Methods and
    chunking are the store's own when it has them."""
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
            _warm(store.path)
        return Synced(tuple(gone), result, documents)

    return update


def _store_settings(store, methods: Sequence[str] | None) -> tuple[list[str] | None, dict]:
    """(methods, chunking) for ingest: as given, else the store's, else the defaults."""
    if not store.exists:
        return (list(methods) if methods else None), {}
    body = store.status().to_dict()
    chunking = body.get("chunking") or {}
    kept = {"chunk_size": chunking["size"], "overlap": chunking["overlap"]} if chunking else {}
    names = list(methods) if methods else [m["method"] for m in body["methods"]]
    return (names or None), kept


def watch_store(store: Path, paths: Sequence[Path], *, on_event=None,
                stop: threading.Event | None = None, methods: Sequence[str] | None = None,
                ocr: str = "auto", ocr_timeout: float = 120.0, locked: bool = False,
                progress: bool = False) -> None:
    """Sync `store` with `paths`, then keep it in sync until `stop` is set: the
    blocking loop behind `ragmini watch` (`locked`: the caller holds watch_lock;
    `progress`: bars on stderr while a batch is read, chunked and embedded)."""
    import ragmini
    from ingest.watch import watch

    with contextlib.ExitStack() as stack:
        if not locked:
            stack.enter_context(watch_lock(store))
        st = stack.enter_context(ragmini.open(store))
        update = store_updater(st, methods=methods, ocr=ocr, ocr_timeout=ocr_timeout,
                               progress=progress)
        watch(paths, update, on_event=on_event, stop=stop, ignore=[store])


def _warm(store: Path) -> None:
    """Load the chunking tokenizer and the store's embedders, as `serve --preload`
    does: when the first sync finds nothing to do, the first edit would otherwise
    wait for them (15 s for transformers' import on a busy machine). Run in the
    update's own thread: transformers' lazy imports fail when two threads race."""
    with contextlib.suppress(Exception):  # only a head start: the update loads them anyway
        from core.errors import QueryError
        from ingest.chunk import load_tokenizer
        from ingest.store import Store
        from retrieval.methods import get_embedder

        load_tokenizer()
        with Store.open(store) as db:
            for method in db.methods():
                with contextlib.suppress(QueryError):  # bm25 and the like have no model
                    get_embedder(method, db)


def serve_watch(app, store: Path, paths: Sequence[Path]) -> Callable[[], None]:
    """`ragmini serve --watch`: the loop in a thread beside the server, its events
    published to `app.state.watch_feed` (GET /api/watch) and printed to stderr.
    Returns stop(), which ends the loop and waits for its batch to finish. A second
    watcher of the store fails here, before the server starts."""
    feed = app.state.watch_feed
    feed.paths = [str(Path(os.path.realpath(p))) for p in paths]
    stack = contextlib.ExitStack()
    stack.enter_context(watch_lock(store))
    stop = threading.Event()

    def on_event(event) -> None:
        feed.publish(event.to_dict())
        for line, err in human_lines(event):
            click.echo(line, err=True)

    def run() -> None:
        try:
            watch_store(store, paths, on_event=on_event, stop=stop, locked=True)
        except Exception as exc:  # reported where the page and the log show it
            feed.publish({"event": "error", "message": str(exc)})
            click.echo(f"watch: error: {exc}", err=True)
        finally:
            feed.watching = False

    feed.watching = True
    thread = threading.Thread(target=run, name="ragmini-watch", daemon=True)
    thread.start()

    def stop_watch() -> None:
        stop.set()
        thread.join(60)
        stack.close()

    return stop_watch


# -- output ----------------------------------------------------------------------

def human_lines(event) -> list[tuple[str, bool]]:
    """(line, to stderr) for one WatchEvent: a line per file changed, then one of
    progress."""
    from ingest.paths import display, display_source

    kind = event.kind
    if kind == "ready":
        return [(f"watching {', '.join(map(display, event.changed))} (Ctrl-C stops)", False)]
    if kind == "waiting":
        return [(f"waiting for {display(p)}: still open for writing", False)
                for p in event.changed]
    if kind in ("missing", "back", "rescan"):
        return [(f"{kind}: {event.message}", kind == "missing")]
    if kind == "error":
        return [(f"error: {event.message} (tried again shortly)", True)]
    if kind == "stopped":
        return [("stopped", False)]
    synced = event.result
    body = synced.to_dict() if synced is not None else {}
    skipped = {s["path"]: s["reason"] for s in body.get("skipped", [])}
    lines = [(f"removed {display_source(s)}", False) for s in body.get("removed", [])]
    for path in event.changed:
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
        f"{body['chunks_embedded']} chunks embedded" if body.get("chunks_embedded") else "")
        if part) or "no change"
    total = f"{body['documents']} documents" if body.get("documents") is not None else ""
    if body.get("chunks") is not None:
        total += f", {body['chunks']} chunks"
    lines.append((f"{summary} -> {total} ({event.seconds:.2f} s; {event.lag:.2f} s after the "
                   "first change)", False))
    return lines


def _json_line(obj: dict) -> None:
    from ingest.paths import scrub

    click.echo(scrub(json.dumps(obj, ensure_ascii=False)))


@click.command("watch")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_store_option
@click.option("--methods", default=None,
              help="Comma-separated methods to index (default: the store's own; for a new "
                   "store, ingest's default).")
@click.option("--ocr", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True, help="OCR of scanned PDF pages and images (docs/ocr.md).")
@click.option("--ocr-timeout", default=120.0, show_default=True, metavar="SECONDS",
              help="Give up on a page whose OCR takes longer.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object a line, per event.")
def watch_command(paths, store, methods, ocr, ocr_timeout, no_progress, as_json):
    """Keep the store in sync with folders (and files) as they change.

    First an incremental ingest of PATHS (with --prune), then each change: files
    created, edited, renamed, moved or deleted, folders made or removed. A change
    is searchable a second or two after its file is closed (docs/watch.md). One
    watcher per store; `ragmini ingest` and `search` work beside it.

    \b
    Examples:
      ragmini watch notes/ papers/
      ragmini watch notes/ --store /tmp/notes-store --json
    """
    from retrieval.methods import parse_methods

    chosen = parse_methods(methods) if methods else None
    stop = threading.Event()
    # SIGTERM stops the loop between batches, as Ctrl-C does
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def on_event(event) -> None:
        if as_json:
            _json_line(event.to_dict())
            return
        for line, err in human_lines(event):
            click.echo(line, err=err)

    try:
        with watch_lock(store):
            if not as_json:
                click.echo(f"syncing {', '.join(map(str, paths))} into {store} ...", err=True)
            watch_store(store, paths, on_event=on_event, stop=stop, methods=chosen, ocr=ocr,
                        ocr_timeout=ocr_timeout, locked=True,
                        progress=not as_json and not no_progress)
    except KeyboardInterrupt:
        pass  # the loop said "stopped" on its way out
    finally:
        signal.signal(signal.SIGTERM, previous)
