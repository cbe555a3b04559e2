"""`ragmini watch PATH...`: keep a store in sync with folders as their files change.

A thin front end over `ragmini.Store.watch` (ragmini/api/watching.py): it prints
each event, as lines for a person or as `--json` lines, and waits until Ctrl-C or
SIGTERM stops the watcher between batches. docs/watch.md has the figures.
"""

from __future__ import annotations

import signal
from pathlib import Path

import click

import ragmini
from ragmini.api import defaults as D
from ragmini.api.records import json_text
from ragmini.clitools import store_option as _store_option


def print_event(event: ragmini.WatchEvent) -> None:
    """A watch event as lines for a person: changes on stdout, problems on stderr."""
    for line, warning in event.lines():
        click.echo(line, err=warning)


def json_line(event: ragmini.WatchEvent) -> None:
    """A watch event as one line of JSON (`--json`)."""
    click.echo(json_text(event.to_dict(), indent=None))


def log_event(event: ragmini.WatchEvent) -> None:
    """A watch event as the server logs it (stderr, beside uvicorn's lines)."""
    for line, _ in event.lines():
        click.echo(f"watch: {line}", err=True)


@click.command("watch")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_store_option
@click.option("--methods", default=None,
              help="Comma-separated methods to index (default: the store's own; for a new "
                   "store, ingest's default).")
@click.option("--ocr", type=click.Choice(D.OCR_MODES), default=D.OCR, show_default=True,
              help="OCR of scanned PDF pages and images (docs/ocr.md).")
@click.option("--ocr-timeout", default=D.OCR_TIMEOUT, show_default=True, metavar="SECONDS",
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
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    with ragmini.open(store) as st:
        watching = st.watch(list(paths), methods=chosen, ocr=ocr, ocr_timeout=ocr_timeout,
                            on_event=json_line if as_json else print_event,
                            progress=not as_json and not no_progress)
        if not as_json:
            click.echo(f"syncing {', '.join(map(str, paths))} into {store} ...", err=True)
        # SIGTERM stops the loop between batches, as Ctrl-C does
        previous = signal.signal(signal.SIGTERM, lambda *_: watching.stop(timeout=0))
        try:
            watching.wait()
        except KeyboardInterrupt:
            pass  # the loop says "stopped" on its way out
        finally:
            watching.stop(timeout=None)
            signal.signal(signal.SIGTERM, previous)
