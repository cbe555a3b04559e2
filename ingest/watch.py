"""Living folders: watch files and folders, and hand what changed to an update callback.

    watch([Path("notes")], update)   # update(changed_paths, removed_paths), until stopped

The loop knows nothing of stores: `update` is the caller's (ragmini/api/watching.py
passes one that runs the store's incremental ingest and remove), so this module
imports no retrieval code. What it guarantees the callback:

- **One sync first.** `update(roots, [])` before any event: whatever changed while
  nobody watched (or while a watcher lay killed) is caught up, as by a plain
  `ingest --prune` of the roots.
- **Batched.** File events (watchdog, inotify on Linux) are gathered until no new
  one has come for `quiet` seconds, or for at most `max_delay` seconds in a steady
  stream, then handed over as one call. A burst of thousands of files is a few
  calls, not thousands.
- **The final state, not the history.** At each flush every touched path is looked
  at again: one that exists is "changed" (a folder: ingest walks it), one that does
  not is "removed". Created, modified, deleted, renamed and moved files, an editor's
  save-by-rename (write a temp file, rename it over the original) and folders
  created, moved or deleted all reduce to that.
- **Never half-written.** A file still open for writing by any process is held back
  until it is closed. On Linux this is asked of the kernel (a read lease cannot be
  taken on a file open for writing: fcntl(2) F_SETLEASE); where it cannot be asked
  (another user's file, a network file system) the loop waits for inotify's
  close-after-write event. The loader's own check (size and mtime equal before and
  after the read, else read again) covers a writer that starts during the read.
- **Missing roots are reported**, not fatal: a watched folder that disappears is
  handed over as removed, and the loop waits for it to come back (then syncs it).
- **Idle means asleep.** The observer thread blocks in the kernel; this loop wakes
  once a second to check roots and its stop event.

watchdog was chosen over watchfiles by `bench/watch.py` (docs/watch.md): it reports
close-after-write and pairs renames, and it idles at no measurable CPU where
watchfiles' Rust poll loop used 0.06% at its default 50 ms step.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import RagminiError

QUIET_S = 0.3  # a batch is handed over once no event has come for this long ...
MAX_DELAY_S = 2.0  # ... or once its first event is this old, in a steady stream
TICK_S = 1.0  # idle wake-up: roots and the stop event are checked this often
RETRY_S = 10.0  # a batch whose update failed is tried again after this long
RETRIES = 3
HOLD_S = 0.5  # a file open for writing is looked at again this often
# Without a lease probe, a file seen written but never seen closed is handed over
# after this much quiet (a writer that keeps a file open and idle this long).
UNCLOSED_S = 30.0
_F_SETLEASE = 1024  # fcntl.F_SETLEASE (Linux), absent from Python's fcntl before 3.13


@dataclass(frozen=True)
class WatchEvent:
    """What the watcher did, for the front end to print (`watch --json`: `to_dict()`).

    kind: "ready" (first sync done; watching), "update" (a batch handed over:
    `changed`, `removed`, `result` the callback's return, `seconds` it took, `lag`
    seconds from the batch's first file event to its end), "waiting" (files held
    back: still open for writing), "missing" / "back" (a root vanished or
    returned), "rescan" (the kernel dropped events: roots synced again), "error"
    (an update failed: `message`; retried), "stopped".
    """

    kind: str
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    message: str = ""
    seconds: float = 0.0
    lag: float = 0.0
    result: Any = field(default=None, compare=False)

    def to_dict(self) -> dict:
        out: dict = {"event": self.kind}
        if self.changed:
            out["changed"] = list(self.changed)
        if self.removed:
            out["removed"] = list(self.removed)
        if self.message:
            out["message"] = self.message
        if self.kind == "update":
            out["seconds"] = round(self.seconds, 3)
            out["lag"] = round(self.lag, 3)
        if self.result is not None:
            out["result"] = self.result.to_dict() if hasattr(self.result, "to_dict") \
                else self.result
        return out


Update = Callable[[list[Path], list[Path]], Any]


def open_for_writing(path: str | os.PathLike) -> bool | None:
    """True if some process has `path` open for writing, False if none has, None when
    the kernel will not say (not Linux, not our file, a file system without leases).

    A read lease is refused (EAGAIN) exactly while the file is open for writing; it
    is taken and dropped at once, so no writer is ever delayed by it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
        except OSError as exc:
            return True if exc.errno == errno.EAGAIN else None
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


@dataclass
class _Touched:
    first: float  # monotonic time of its first event in this batch
    last: float
    written: bool = False  # a write seen and no close-after-write since
    held_until: float = 0.0  # open for writing when last looked: look again then
    announced: bool = False  # "waiting" already said


class _Root:
    """A watched folder or file: where it is, what it was (device, inode), its watch."""

    def __init__(self, path: Path):
        self.path = path
        self.is_dir = path.is_dir()
        self.identity = _identity(path)
        self.watch = None  # watchdog's ObservedWatch while watched

    @property
    def missing(self) -> bool:
        """Gone, or (a folder) replaced: its watch follows the old inode. A file root
        is watched through its folder, and saving it by rename is its normal life."""
        now = _identity(self.path)
        return now is None or (now != self.identity if self.is_dir else now[2])

    def covers(self, path: str) -> bool:
        root = str(self.path)
        return path == root or (self.is_dir and path.startswith(root.rstrip("/") + "/"))


def _identity(path: Path) -> tuple[int, int, bool] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, stat.S_ISDIR(st.st_mode)


class _Overflow(logging.Handler):
    """watchdog says the kernel's event queue overflowed only in its log: listen there."""

    def __init__(self, flag: threading.Event):
        super().__init__(logging.WARNING)
        self.flag = flag

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.flag.set()


def watch(paths: Sequence[str | os.PathLike], update: Update, *,
          on_event: Callable[[WatchEvent], None] | None = None,
          stop: threading.Event | None = None, suffixes: Iterable[str] | None = None,
          ignore: Sequence[str | os.PathLike] = (), quiet: float = QUIET_S,
          max_delay: float = MAX_DELAY_S, initial: bool = True) -> None:
    """Keep calling `update(changed, removed)` as files under `paths` change, until
    `stop` is set (or KeyboardInterrupt).

    Args:
        paths: folders (watched recursively) and files; each must exist at start.
        update: called with sorted lists of absolute paths: `changed` holds files
            and folders to (re)read, `removed` files and folders that are gone.
            Its return value rides on the "update" event; an exception it raises is
            reported as an "error" event and the batch is tried again later.
        on_event: receives each WatchEvent (progress lines for the front end).
        suffixes: file types that count (default: every type ingest reads); hidden
            files and folders (".name") never count, as ingest skips them.
        ignore: folders whose events are dropped (the store, if it lies inside).
        quiet, max_delay: batching, in seconds (see the module docstring).
        initial: run the first sync, update(roots, []), before watching.

    Raises RagminiError if a path does not exist at start.
    """
    import warnings

    from watchdog.observers import Observer

    # watchdog warns when a folder moved back re-registers a watch it knew; harmless
    warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)

    if suffixes is None:
        from ingest.load import SUPPORTED_SUFFIXES as suffixes
    wanted = frozenset(s.lower() for s in suffixes)
    roots = []
    for p in paths:
        real = Path(os.path.realpath(p))
        if not real.exists():
            raise RagminiError(f"cannot watch {p}: no such file or folder", param="paths")
        roots.append(_Root(real))
    if not roots:
        raise RagminiError("name at least one folder or file to watch", param="paths")
    ignored = [os.path.realpath(p) for p in ignore]
    stop = stop or threading.Event()
    say = on_event or (lambda event: None)
    events: queue.Queue = queue.Queue()
    overflowed = threading.Event()
    overflow_log = _Overflow(overflowed)
    logging.getLogger("watchdog.observers.inotify_c").addHandler(overflow_log)

    observer = Observer()
    handler = _Handler(events)
    state = _State(roots, wanted, ignored)
    try:
        for root in roots:
            try:
                _schedule(observer, handler, root)
            except OSError as exc:
                hint = (" (the inotify watch limit: raise fs.inotify.max_user_watches)"
                        if exc.errno == errno.ENOSPC else "")
                raise RagminiError(f"cannot watch {root.path}: {exc.strerror}{hint}",
                                   param="paths") from exc
        observer.start()
        if initial and not _run(update, [r.path for r in roots], [], say, time.monotonic()):
            state.retry([r.path for r in roots], time.monotonic())
        say(WatchEvent("ready", changed=tuple(str(r.path) for r in roots)))
        while not stop.is_set():
            timeout = state.next_deadline(quiet, max_delay)
            try:
                item = events.get(timeout=TICK_S if timeout is None else min(timeout, TICK_S))
                state.note(item)
                while True:  # drain what is queued without waking up per event
                    state.note(events.get_nowait())
            except queue.Empty:
                pass
            if overflowed.is_set():
                overflowed.clear()
                say(WatchEvent("rescan", message="the kernel dropped file events (too many "
                               "at once); syncing every watched folder again"))
                state.touch_all(time.monotonic())
            _check_roots(observer, handler, state, update, say)
            batch = state.due(quiet, max_delay, time.monotonic(), say)
            if batch is not None:
                changed, removed, first = batch
                if not _run(update, changed, removed, say, first):
                    state.retry(changed + removed, time.monotonic())
    finally:
        logging.getLogger("watchdog.observers.inotify_c").removeHandler(overflow_log)
        observer.stop()
        with contextlib.suppress(RuntimeError):  # never started
            observer.join(5)
        say(WatchEvent("stopped"))


def _schedule(observer, handler, root: _Root) -> None:
    from watchdog.events import (
        DirCreatedEvent,
        DirDeletedEvent,
        DirMovedEvent,
        FileClosedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
    )

    # Not opened / closed-without-writing: ingest's own reads would wake the loop.
    kinds = [DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileClosedEvent,
             FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent]
    # A file root is watched through its folder: saved by rename, it is a new inode.
    target = root.path if root.is_dir else root.path.parent
    root.watch = observer.schedule(handler, str(target), recursive=root.is_dir,
                                   event_filter=kinds)


def _run(update: Update, changed: list[Path], removed: list[Path], say, first: float) -> bool:
    """One call of `update`, reported; False if it raised (the batch is retried)."""
    started = time.monotonic()
    try:
        result = update(changed, removed)
    except Exception as exc:  # the store's problem or a bug: reported, the loop goes on
        say(WatchEvent("error", tuple(map(str, changed)), tuple(map(str, removed)),
                       message=f"{type(exc).__name__}: {exc}" if not isinstance(
                           exc, RagminiError) else str(exc)))
        return False
    now = time.monotonic()
    say(WatchEvent("update", tuple(map(str, changed)), tuple(map(str, removed)),
                   seconds=now - started, lag=now - first, result=result))
    return True


def _check_roots(observer, handler, state: _State, update: Update, say) -> None:
    """A root that vanished (or was replaced) is handed over as removed and unwatched;
    one that came back is watched and synced again."""
    for root in state.roots:
        if root.watch is not None and root.missing:
            with contextlib.suppress(KeyError, OSError):
                observer.unschedule(root.watch)
            root.watch = None
            state.forget(root)
            say(WatchEvent("missing", removed=(str(root.path),),
                           message=f"{root.path} is gone; its documents are removed, and "
                                   "it is watched for until it comes back"))
            if not _run(update, [], [root.path], say, time.monotonic()):
                state.retry([root.path], time.monotonic())
        elif root.watch is None and _identity(root.path) is not None:
            root.identity = _identity(root.path)
            root.is_dir = root.identity[2]
            try:
                _schedule(observer, handler, root)
            except OSError as exc:  # it went again, or cannot be read: next tick
                root.watch = None
                say(WatchEvent("error", message=f"cannot watch {root.path}: {exc.strerror}"))
                continue
            say(WatchEvent("back", changed=(str(root.path),),
                           message=f"{root.path} is back; syncing it"))
            if not _run(update, [root.path], [], say, time.monotonic()):
                state.retry([root.path], time.monotonic())


class _Handler:
    """watchdog's handler: each event into the queue, with the time it came."""

    def __init__(self, events: queue.Queue):
        self.events = events

    def dispatch(self, event) -> None:
        self.events.put((time.monotonic(), event))


class _State:
    """The batch being gathered: touched paths, and which are still being written.

    Files are handed over one by one (never their new folder: ingest would walk it
    and read files still being written); a folder is handed over when it is gone
    (removed: everything under it goes at once), or when it was removed and made
    again within one batch (changed: read afresh, its old files pruned).
    """

    def __init__(self, roots: list[_Root], suffixes: frozenset[str], ignored: list[str]):
        self.roots = roots
        self.suffixes = suffixes
        self.ignored = ignored
        self.touched: dict[str, _Touched] = {}
        self.retry_at: dict[str, float] = {}
        self.attempts: dict[str, int] = {}

    # -- events in ------------------------------------------------------------

    def note(self, item) -> None:
        when, event = item
        kind, is_dir = event.event_type, event.is_directory
        if is_dir:
            # A new folder's files come as events of their own (watchdog reports
            # what a folder created or moved in already holds); a folder gone is one.
            if kind in ("deleted", "moved"):
                self._touch(event.src_path, when, True)
            return
        if kind == "moved":
            self._touch(event.src_path, when, False)
            self._touch(event.dest_path, when, False)
            return
        self._touch(event.src_path, when, False, written=kind in ("created", "modified"),
                    closed=kind == "closed")

    def _touch(self, path: str | bytes, when: float, is_dir: bool, written: bool = False,
               closed: bool = False) -> None:
        path = os.fsdecode(path)
        if not path or not self._counts(path, is_dir):
            return
        entry = self.touched.get(path)
        if entry is None:
            entry = self.touched[path] = _Touched(when, when)
        entry.last = max(entry.last, when)
        entry.held_until = 0.0  # news of it: judged afresh after the quiet time
        if written:
            entry.written = True
        if closed:
            entry.written = False

    def _counts(self, path: str, is_dir: bool) -> bool:
        root = next((r for r in self.roots if r.watch is not None and r.covers(path)), None)
        if root is None or any(path == i or path.startswith(i + "/") for i in self.ignored):
            return False
        rel = path[len(str(root.path)):].lstrip("/")
        if any(part.startswith(".") for part in rel.split("/") if part):
            return False
        return is_dir or os.path.splitext(path)[1].lower() in self.suffixes

    def touch_all(self, when: float) -> None:
        """Every root as touched: the next batch syncs them whole."""
        for root in self.roots:
            if root.watch is not None:
                self.touched[str(root.path)] = _Touched(when, when)

    def forget(self, root: _Root) -> None:
        for path in [p for p in self.touched if root.covers(p)]:
            del self.touched[path]

    def retry(self, paths: list[Path], now: float) -> None:
        for path in map(str, paths):
            self.attempts[path] = self.attempts.get(path, 0) + 1
            if self.attempts[path] <= RETRIES:
                self.retry_at[path] = now + RETRY_S * self.attempts[path]
            else:
                self.attempts.pop(path)

    # -- batches out ----------------------------------------------------------

    def _active(self) -> list[_Touched]:
        return [t for t in self.touched.values() if not t.held_until]

    def next_deadline(self, quiet: float, max_delay: float) -> float | None:
        """Seconds until a batch may be due (None: nothing pending, sleep)."""
        times = list(self.retry_at.values())
        times += [t.held_until for t in self.touched.values() if t.held_until]
        active = self._active()
        if active:
            times.append(min(max(t.last for t in active) + quiet,
                             min(t.first for t in active) + max_delay))
        return max(0.0, min(times) - time.monotonic()) if times else None

    def due(self, quiet: float, max_delay: float, now: float, say
            ) -> tuple[list[Path], list[Path], float] | None:
        """(changed, removed, first event time) if a batch is due now, else None.

        Due when no event has come for `quiet` seconds, or the oldest waiting event
        is `max_delay` old; files held back as open for writing are looked at
        again every HOLD_S until they are closed."""
        for path, at in list(self.retry_at.items()):
            if at <= now:
                del self.retry_at[path]
                self.touched.setdefault(path, _Touched(now, now))
        active = self._active()
        ready = bool(active) and (now - max(t.last for t in active) >= quiet
                                  or now - min(t.first for t in active) >= max_delay)
        candidates = [p for p, t in self.touched.items()
                      if (ready and not t.held_until) or (t.held_until and t.held_until <= now)]
        if not candidates:
            return None
        first = min(self.touched[p].first for p in candidates)
        changed, removed, held = [], [], []
        for path in sorted(candidates):
            try:
                st = os.lstat(path)
            except OSError:
                removed.append(path)
                continue
            if not stat.S_ISDIR(st.st_mode) and self._being_written(path, self.touched[path],
                                                                     now):
                held.append(path)
            else:
                changed.append(path)
        # a path inside a folder of the same batch is covered by the folder's own call
        folders = [p for p in changed if os.path.isdir(p)] + removed
        changed = [p for p in changed if not _inside_any(p, folders)]
        removed = [p for p in removed if not _inside_any(p, folders)]
        for path in candidates:
            if path not in held:
                self.touched.pop(path)
        waiting = []
        for path in held:
            entry = self.touched[path]
            entry.held_until = now + HOLD_S
            if not entry.announced:
                entry.announced = True
                waiting.append(path)
        if waiting:
            say(WatchEvent("waiting", changed=tuple(waiting),
                           message="still open for writing; read once closed"))
        if not changed and not removed:
            return None
        return [Path(p) for p in changed], [Path(p) for p in removed], first

    def _being_written(self, path: str, entry: _Touched, now: float) -> bool:
        busy = open_for_writing(path)
        if busy is not None:
            return busy
        return entry.written and now - entry.last < UNCLOSED_S


def _inside_any(path: str, folders: list[str]) -> bool:
    return any(path != f and path.startswith(f.rstrip("/") + "/") for f in folders)
