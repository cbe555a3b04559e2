"""Small pieces every ragmini command shares: JSON output, --json and --store."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ragmini.api.defaults import STORE as DEFAULT_STORE


def emit(obj: dict) -> None:
    """Print one JSON object (the --json contract).

    Stored sources are valid UTF-8 already (`ingest.paths`); anything else that
    came from a file name or an argument in undecodable bytes (a store path, a
    query) has each such byte shown as U+FFFD, so the output is always UTF-8.
    """
    from ragmini.api.records import json_text

    click.echo(json_text(obj))


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
