"""Watch mode, measured: how soon a change is searchable, a burst's lag, idle CPU, and
the two file-event libraries side by side.

    python -m bench.watch [--edits 20] [--burst 1000] [--idle 30] [--stores corpus,manpages]

- Event libraries (in-process, raw events, no store): watchdog (inotify) and
  watchfiles (Rust notify) at their defaults: idle CPU over `--idle` seconds,
  latency from a file's close to its event (p50/p95 of 20 writes), a 1,000-file
  burst (events seen, time from the last write to the last event), and whether
  close-after-write and paired renames are reported. watchfiles is measured only
  when installed (`pip install watchfiles==1.3.0`; ragmini does not depend on it).
- `ragmini watch --json` end to end, in a process of its own, on two stores:
  "corpus": the bundled corpus copied to a folder and watched into a new store with
  ingest's default methods (glove, glove-sif, sbert, bm25, tfidf); "manpages": a
  copy of /work/data/stores/manpages (about 28k chunks, sbert and bm25) watching a
  folder of notes. Single edits (new files and edits of them, alternately, each with
  a unique word): lag from the file's close to the watcher's update line, and to a
  bm25 search (from this process, polled every 50 ms) finding the word: p50/p95.
  Then a burst of `--burst` new files: seconds from the last file's close until
  every file was handed over, and until the last file's word is found. Then the
  watcher's CPU (its process and children) over `--idle` seconds of quiet.

Writes bench/watch_results.json. Targets: single-edit p95 lag to search <= 5 s,
idle CPU < 1%.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import REPO, Target, percentile, write_results

MANPAGES_STORE = Path("/work/data/stores/manpages")
POLL_S = 0.05


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- the event libraries --------------------------------------------------------

def _run_watchdog(root: Path, events: queue.Queue, stop: threading.Event) -> None:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event):
            events.put((time.monotonic(), event.event_type, event.src_path))

    observer = Observer()
    observer.schedule(Handler(), str(root), recursive=True)
    observer.start()
    stop.wait()
    observer.stop()
    observer.join()


def _run_watchfiles(root: Path, events: queue.Queue, stop: threading.Event) -> None:
    import watchfiles

    for changes in watchfiles.watch(root, stop_event=stop):  # defaults: debounce 1.6 s, step 50 ms
        now = time.monotonic()
        for change, path in changes:
            events.put((now, change.name, path))


def event_library(name: str, idle_s: float) -> dict:
    runner = {"watchdog": _run_watchdog, "watchfiles": _run_watchfiles}[name]
    root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=runner, args=(root, events, stop), daemon=True)
    thread.start()
    time.sleep(1.0)

    def drain() -> list:
        out = []
        while not events.empty():
            out.append(events.get())
        return out

    try:
        cpu, wall = _cpu(), time.monotonic()
        time.sleep(idle_s)
        idle = (_cpu() - cpu) / (time.monotonic() - wall) * 100
        lags = []
        for i in range(20):
            drain()
            path = root / f"edit{i}.txt"
            with open(path, "w") as handle:
                handle.write("an edit")
            closed = time.monotonic()
            when, _, _ = events.get(timeout=10)
            lags.append(max(0.0, when - closed))
            time.sleep(0.3)
        time.sleep(2.0)
        drain()
        burst = root / "burst"
        burst.mkdir()
        for i in range(1000):
            (burst / f"b{i}.txt").write_text("x" * 100)
        written = time.monotonic()
        seen, last = set(), written
        deadline = written + 15
        while time.monotonic() < deadline and len(seen) < 1000:
            try:
                when, _, path = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if "/burst/b" in str(path):
                seen.add(str(path))
                last = when
        time.sleep(2.0)
        drain()
        (root / "a.md").write_text("x")
        os.replace(root / "a.md", root / "b.md")
        time.sleep(2.5)
        kinds = sorted({kind for _, kind, _ in drain()})
    finally:
        stop.set()
        thread.join(10)
        shutil.rmtree(root, ignore_errors=True)
    return {"idle_cpu_percent": round(idle, 3),
            "event_lag_ms": {"p50": round(percentile(lags, 50) * 1000, 1),
                             "p95": round(percentile(lags, 95) * 1000, 1)},
            "burst_1000": {"events_seen": len(seen),
                           "last_event_after_last_write_ms": round((last - written) * 1000, 1)},
            "event_kinds_for_write_then_rename": kinds,
            "close_after_write": "closed" in kinds, "renames_paired": "moved" in kinds}


# -- ragmini watch end to end -------------------------------------------------------

class Watcher:
    """`ragmini watch --json` in its own process; update lines timed as they arrive."""

    def __init__(self, folder: Path, store: Path, *extra: str):
        cmd = [sys.executable, "-m", "ragmini.cli", "watch", str(folder), "--store", str(store),
               "--json", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, start_new_session=True, cwd=REPO)
        self.lines: queue.Queue = queue.Queue()
        self.handed: dict[str, float] = {}  # path -> when its last update line arrived
        self.events: list[tuple[float, dict]] = []  # every line, with when it arrived
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            event, now = json.loads(line), time.monotonic()
            self.events.append((now, event))
            if event["event"] == "update":
                for path in event.get("changed", []):
                    self.handed[path] = now
            self.lines.put((now, event))

    def line_for(self, path: str, since: float, limit: float = 60) -> tuple[float, dict]:
        """The first update line after `since` that names `path` (waits for it)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for when, event in list(self.events):
                if when >= since and event["event"] == "update" and path in event.get(
                        "changed", ()):
                    return when, event
            time.sleep(0.02)
        raise RuntimeError(f"no update line for {path}")

    def wait_for(self, kind: str, limit: float = 900) -> dict:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                _, event = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError("the watcher ended") from None
                continue
            if event["event"] == kind:
                return event
        raise RuntimeError(f"no {kind} line in {limit} s")

    def cpu_seconds(self) -> float:
        import psutil

        proc = psutil.Process(self.proc.pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _searchable(store, word: str, since: float, limit: float = 300) -> float:
    """Seconds from `since` until a bm25 search finds `word` (polled)."""
    from core.errors import QueryError

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if len(store.search(word, method="bm25", k=1)):
                return time.monotonic() - since
        except QueryError:  # no chunk holds the word yet
            pass
        time.sleep(POLL_S)
    raise RuntimeError(f"{word} not searchable after {limit} s")


def _paragraph(i: int) -> str:
    words = (CORPUS_TEXT[i % len(CORPUS_TEXT)]).split()[:150]
    return " ".join(words)


CORPUS_TEXT: list[str] = []


def end_to_end(label: str, folder: Path, store_path: Path, args) -> dict:
    import ragmini

    log(f"[{label}] starting the watcher")
    started = time.monotonic()
    watcher = Watcher(folder, store_path)
    try:
        watcher.wait_for("ready")
        first_sync = time.monotonic() - started
        log(f"[{label}] ready after {first_sync:.1f} s")
        time.sleep(3.0)  # the background warm-up (tokenizer, embedders)
        store = ragmini.open(store_path)
        to_line, to_search, update_s, method_s = [], [], [], {}
        notes = folder / "bench-notes"
        notes.mkdir(exist_ok=True)
        for i in range(args.edits):
            word = f"zqx{i}edit{os.getpid()}"
            path = notes / f"note{i // 2}.md"
            mode = "a" if i % 2 else "w"  # a new file, then an edit of it
            with open(path, mode) as handle:
                handle.write(f"\n\n{_paragraph(i)} {word}\n")
            closed = time.monotonic()
            to_search.append(_searchable(store, word, closed))
            line_at, line = watcher.line_for(str(path.resolve()), closed)
            to_line.append(line_at - closed)
            update_s.append(line["seconds"])
            for method, figures in line["result"].get("methods", {}).items():
                method_s.setdefault(method, []).append(figures["seconds"])
            time.sleep(0.5)
        log(f"[{label}] single edits: search p50 {percentile(to_search, 50):.2f} s, "
            f"p95 {percentile(to_search, 95):.2f} s")
        burst = folder / "bench-burst"
        burst.mkdir(exist_ok=True)
        names = []
        first_write = time.monotonic()
        seen_before = len(watcher.events)
        for i in range(args.burst):
            path = burst / f"b{i}.md"
            path.write_text(f"{_paragraph(i)} burstword{i}x\n")
            names.append(str(path.resolve()))
        last_close = time.monotonic()
        word = f"burstword{args.burst - 1}x"
        search_lag = _searchable(store, word, last_close, limit=1800)
        deadline = time.monotonic() + 1800
        while not all(n in watcher.handed for n in names) and time.monotonic() < deadline:
            time.sleep(0.2)
        handed_lag = max(watcher.handed[n] for n in names) - last_close
        log(f"[{label}] burst of {args.burst}: all handed over {handed_lag:.1f} s after the "
            f"last close; last file searchable after {search_lag:.1f} s")
        time.sleep(5.0)
        cpu, wall = watcher.cpu_seconds(), time.monotonic()
        time.sleep(args.idle)
        idle = (watcher.cpu_seconds() - cpu) / (time.monotonic() - wall) * 100
        log(f"[{label}] idle CPU {idle:.3f}%")
        status = store.status()
        store.close()
        burst_lines = [(round(when - last_close, 2), e) for when, e in
                       watcher.events[seen_before:] if e["event"] != "update"
                       or any("bench-burst" in p for p in e.get("changed", ()))]
    finally:
        watcher.stop()
    return {"first_sync_s": round(first_sync, 2),
            "documents": status.documents, "chunks": status.chunks,
            "methods": [m.method for m in status.methods],
            "single_edit_lag_to_update_line_s": _summary(to_line),
            "single_edit_lag_to_search_s": _summary(to_search),
            "single_edit_update_seconds": _summary(update_s),
            "single_edit_index_seconds_median": {m: round(percentile(v, 50), 3)
                                                 for m, v in method_s.items()},
            "burst": {"files": args.burst, "write_s": round(last_close - first_write, 2),
                      "all_handed_over_after_last_close_s": round(handed_lag, 2),
                      "last_file_searchable_after_last_close_s": round(search_lag, 2),
                      "lines": [{"after_last_close_s": at, "event": e["event"],
                                 "changed": len(e.get("changed", ())),
                                 "removed": len(e.get("removed", ())),
                                 "seconds": e.get("seconds"), "message": e.get("message"),
                                 "index_seconds": {m: f["seconds"] for m, f in e.get(
                                     "result", {}).get("methods", {}).items()}}
                                for at, e in burst_lines]},
            "idle_cpu_percent": round(idle, 3)}


def _summary(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
            "max": round(max(values), 3), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--stores", default="corpus,manpages")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    CORPUS_TEXT.extend(p.read_text() for p in sorted((REPO / "corpus" / "docs").glob("*.md")))
    results: dict = {"settings": {"edits": args.edits, "burst": args.burst, "idle_s": args.idle,
                                  "cpus": os.cpu_count(),
                                  "load_average_at_start": os.getloadavg()}}
    libraries = {}
    for name in ("watchdog", "watchfiles"):
        try:
            __import__(name)
        except ImportError:
            libraries[name] = "not installed"
            continue
        log("event library", name)
        libraries[name] = event_library(name, args.idle)
        log(name, libraries[name])
    results["event_libraries"] = libraries
    runs = {}
    for label in args.stores.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-watch-{label}-") as tmp:
            tmp = Path(tmp)
            folder, store = tmp / "folder", tmp / "store"
            if label == "corpus":
                shutil.copytree(REPO / "corpus" / "docs", folder)
            elif label == "manpages":
                if not (MANPAGES_STORE / "ragmini.db").exists():
                    runs[label] = f"no store at {MANPAGES_STORE}"
                    continue
                shutil.copytree(MANPAGES_STORE, store)
                folder.mkdir()
            else:
                raise SystemExit(f"unknown store {label}: corpus or manpages")
            runs[label] = end_to_end(label, folder, store, args)
    results["ragmini_watch"] = runs
    results["settings"]["load_average_at_end"] = os.getloadavg()
    measured = [r for r in runs.values() if isinstance(r, dict)]
    worst_p95 = max((r["single_edit_lag_to_search_s"]["p95"] for r in measured), default=None)
    worst_idle = max((r["idle_cpu_percent"] for r in measured), default=None)
    targets = [Target("single-edit lag to search, p95 (worst store)", worst_p95, 5.0, "<=", " s"),
               Target("watcher idle CPU (worst store)", worst_idle, 1.0, "<=", "%")]
    path = write_results("watch", results, targets, out=args.out)
    print(json.dumps(results, indent=1))
    log("wrote", path)


if __name__ == "__main__":
    main()
