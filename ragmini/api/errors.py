"""The library's errors, and the one table every front end reads them through.

The API raises `RagminiError` and its subclasses only. The CLI prints the message
on one line; the HTTP, MCP and OpenAI-compatible front ends map the class to a
status and an error code with `http_status` / `error_code`, so a failure reads the
same whichever way the store was reached.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from core.errors import (
    Ambiguous,
    IndexStale,
    ModelUnavailable,
    NotFound,
    QueryError,
    RagminiError,
    StoreError,
)

__all__ = ["RagminiError", "StoreError", "QueryError", "NotFound", "Ambiguous", "IndexStale",
           "ModelUnavailable",
           "error_code", "http_status", "errors", "no_string"]


def http_status(exc: RagminiError) -> tuple[int, str]:
    """(HTTP status, error code) of a library error: a bad request is 400, an unknown
    document or chunk 404, an id several documents share or an index that is missing
    or disagrees 409, a store or model that cannot be opened 503."""
    if isinstance(exc, NotFound):
        return 404, "not_found"
    if isinstance(exc, Ambiguous):
        return 409, "ambiguous"
    if isinstance(exc, QueryError):
        return 400, "bad_request"
    if isinstance(exc, IndexStale):
        return 409, "index_unavailable"
    if isinstance(exc, (StoreError, ModelUnavailable)):
        return 503, "unavailable"
    return 400, "bad_request"


def error_code(exc: RagminiError) -> str:
    """The error code alone, for bodies that carry a failure inside them (compare)."""
    return http_status(exc)[1]


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """The library's own exceptions only: a database failure the store layer did not
    already name becomes a StoreError (as the CLI turns it into one line)."""
    import sqlite3

    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"the store's database failed ({exc}); check it with "
                         "store.status(), or move the store aside and ingest again") from exc


def no_string(value: Any, param: str) -> list:
    """A list from a sequence; a lone string is refused rather than read letter by letter."""
    if isinstance(value, (str, bytes, os.PathLike)):
        raise QueryError(f"{param} takes a list, e.g. [{str(value)!r}]", param=param)
    return list(value)
