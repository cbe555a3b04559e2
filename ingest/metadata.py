"""Document metadata: what a file says about itself, as rows a filter can query.

Every document carries its file's type, modified time and size, plus the keys
of a Markdown front matter block (``---`` YAML ``---``) or of a BEIR corpus
line's ``metadata`` object. Source and title live on the document row itself.
Each value becomes one (key, text, number) row: a list (``tags: [a, b]``) gives
one row per item; numbers, and dates read as seconds since the epoch, fill the
number column so ``<`` and ``>=`` compare them as numbers, not strings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

from ingest.paths import scrub

BUILTIN = ("source", "type", "title", "modified", "size")  # every document has these
MAX_VALUES = 64  # per key: a front matter list longer than this is cut
MAX_VALUE_CHARS = 500

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def file_metadata(path: Path, kind: str) -> dict[str, object]:
    """type, modified (ISO, UTC) and size (bytes) of a file."""
    st = path.stat()
    modified = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc)
    return {"type": kind, "modified": modified.isoformat(timespec="seconds"),
            "size": st.st_size}


def split_front_matter(text: str) -> tuple[dict[str, object], str, str | None]:
    """(front matter keys, the text after the block, a note if the block was not
    usable). Text without a block comes back unchanged."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text, None
    import yaml

    body = text[match.end():]
    try:
        data = yaml.safe_load(match.group(1) or "") or {}
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # PyYAML raises ValueError for dates like 2024-13-45, RecursionError for deep nesting.
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        return {}, body, f"front matter is not valid YAML ({first}); its keys were not kept"
    if not isinstance(data, dict):
        return {}, body, "front matter is not a mapping of keys to values; not kept"
    return {str(k): v for k, v in data.items()}, body, None


def meta_rows(metadata: dict[str, object]) -> Iterator[tuple[str, str, float | None]]:
    """(key, text, number) rows for the metadata table; keys a filter could not
    name (spaces, punctuation) and nested mappings are left out."""
    for key, value in metadata.items():
        key = key.strip().lower()
        if not _KEY.match(key) or key in ("source", "title"):
            continue
        values = value if isinstance(value, (list, tuple, set)) else [value]
        for item in list(values)[:MAX_VALUES]:
            if item is None or isinstance(item, (dict, list)):
                continue
            yield key, scrub(_text(item))[:MAX_VALUE_CHARS], number(item)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def number(value: object) -> float | None:
    """A value as a number for ordering: numbers as they are, dates and date-times
    (ISO text too) as seconds since the epoch, UTC unless they say otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an integer past 1e308
            return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return moment.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp()
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return number(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None
