"""Small pieces every ragmini command shares: JSON output and the --json flag."""

from __future__ import annotations

import json

import click


def emit(obj: dict) -> None:
    """Print one JSON object (the --json contract)."""
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(f)
