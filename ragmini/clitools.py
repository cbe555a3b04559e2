"""Small pieces every ragmini command shares: JSON output, --json and --store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

DEFAULT_STORE = ".ragmini"


def emit(obj: dict) -> None:
    """Print one JSON object (the --json contract).

    Stored sources are valid UTF-8 already (`ingest.paths`); anything else that
    came from a file name or an argument in undecodable bytes (a store path, a
    query) has each such byte shown as U+FFFD, so the output is always UTF-8.
    """
    from ingest.paths import scrub

    click.echo(scrub(json.dumps(obj, ensure_ascii=False, indent=2)))


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(f)


def store_option(f):
    return click.option(
        "--store",
        type=click.Path(path_type=Path),
        default=lambda: os.environ.get("RAGMINI_STORE", DEFAULT_STORE),
        show_default="$RAGMINI_STORE or .ragmini",
        help="Store folder (SQLite + FAISS indexes).",
    )(f)


def open_store(path: Path, create: bool = False):
    from ingest.store import Store

    return Store.open(path, create=create)
