"""Metadata filters: `--where 'KEY OP VALUE'`, repeatable, all of them must hold.

Operators:
    =   equal (case-insensitive); a value with * ? or [ is a glob. For `source`
        the glob matches the path relative to the ingested folder (or a BEIR id)
        and the absolute path, so `source=notes/**` and `source=*.8` both work.
    !=  not equal (a document without the key passes)
    < <= > >=  numbers and dates (2026-01-01, 2026-01-01T12:00:00)
    ~   contains, case-insensitive (`title~faiss`)

Keys: source, type, title, modified, size, and any front matter or BEIR metadata
key stored in the collection. The store turns a `Where` into chunk ids
(`Store.select_chunks`); retrieval restricts its ranking to them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import QueryError
from ingest.metadata import number

OPS = ("!=", ">=", "<=", "=", "<", ">", "~")  # two-character operators first
ORDERED = {"<", "<=", ">", ">="}
_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(!=|>=|<=|=|<|>|~)\s*(.*?)\s*$", re.S)
_GLOB = re.compile(r"[*?\[]")
EXAMPLES = "e.g. type=md, source=notes/**, modified>=2026-01-01"


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


@dataclass(frozen=True)
class Where:
    conditions: tuple[Condition, ...]

    def __str__(self) -> str:
        return " AND ".join(map(str, self.conditions))

    def to_list(self) -> list[str]:
        return [str(c) for c in self.conditions]


class Selection(np.ndarray):
    """Sorted int64 chunk ids that a filter kept, remembering the `Where` that chose
    them. Every method ranks within the ids; a vector store that holds its own copy
    of the metadata (Milvus) reads `where` and filters inside its search instead."""

    where: Where | None = None

    @classmethod
    def of(cls, ids: np.ndarray, where: Where | None) -> Selection:
        out = np.asarray(ids, dtype=np.int64).view(cls)
        out.where = where
        return out

    def __array_finalize__(self, obj) -> None:
        # A slice or copy is a plain id set: its ids no longer match the filter.
        self.where = None


def parse_where(expressions: Sequence[str] | str | None) -> Where | None:
    """A Where from 'key op value' strings (None when there are none); a
    malformed one is a one-line QueryError naming it."""
    if expressions is None:
        return None
    items = [expressions] if isinstance(expressions, str) else list(expressions)
    conditions = []
    for raw in items:
        if not str(raw).strip():
            continue
        match = _EXPR.match(str(raw))
        if not match or not match.group(3):
            raise QueryError(f"cannot read filter '{raw}': write KEY OP VALUE with OP one of "
                             f"{' '.join(OPS)}, {EXAMPLES}", param="where")
        key, op, value = match.group(1).lower(), match.group(2), match.group(3)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if op in ORDERED and key in ("source", "title", "type"):
            raise QueryError(f"filter '{raw}': {key} is text; {op} compares numbers and dates",
                             param="where")
        if op in ORDERED and number(value) is None:
            raise QueryError(f"filter '{raw}': {op} needs a number or a date like 2026-01-01, "
                             f"not '{value}'", param="where")
        conditions.append(Condition(key, op, value))
    return Where(tuple(conditions)) if conditions else None


def where_sql(where: Where, known_keys: Sequence[str]) -> tuple[str, list]:
    """An SQL condition on `documents d` for `where`, and its arguments."""
    unknown = [c.key for c in where.conditions if c.key not in known_keys]
    if unknown:
        raise QueryError(f"unknown filter key '{unknown[0]}'; this collection has: "
                         f"{', '.join(known_keys)}", param="where")
    parts, args = [], []
    for c in where.conditions:
        sql, values = _condition_sql(c)
        parts.append(sql)
        args.extend(values)
    return " AND ".join(parts) or "1", args


def source_globs(value: str) -> tuple[str, str] | None:
    """A `source` filter value as GLOB patterns for (doc_id, absolute source path),
    or None when it is a plain name: a relative pattern matches at any depth of the
    absolute path."""
    if not (is_glob(value) or value.endswith("/")):
        return None
    pattern = glob_pattern(value)
    return pattern, pattern if pattern.startswith("/") else "*/" + pattern


def _condition_sql(c: Condition) -> tuple[str, list]:
    if c.key == "source":
        patterns = source_globs(c.value)
        if patterns is not None:
            sql, args = "(d.doc_id GLOB ? OR d.source GLOB ?)", list(patterns)
        else:
            sql, args = "(d.doc_id = ? OR d.source = ?)", [c.value, c.value]
        return _negate(sql, c.op), args
    if c.key == "title":
        if c.op == "~":
            return "instr(lower(d.title), lower(?)) > 0", [c.value]
        sql, args = _equal_sql("d.title", c.value)
        return _negate(sql, c.op), args
    inner = "SELECT 1 FROM doc_meta m WHERE m.document = d.id AND m.key = ? AND "
    if c.op in ORDERED:
        return f"EXISTS ({inner}m.num {c.op} ?)", [c.key, number(c.value)]
    if c.op == "~":
        return f"EXISTS ({inner}instr(lower(m.value), lower(?)) > 0)", [c.key, c.value]
    sql, args = _equal_sql("m.value", c.value)
    return _negate(f"EXISTS ({inner}{sql})", c.op), [c.key, *args]


def is_glob(value: str) -> bool:
    """Does a filter value hold a glob (* ? or [...])?"""
    return bool(_GLOB.search(value))


def _equal_sql(column: str, value: str) -> tuple[str, list]:
    if is_glob(value):  # GLOB is case-sensitive: compare lower-cased
        return f"lower({column}) GLOB ?", [glob_pattern(value).lower()]
    return f"{column} = ? COLLATE NOCASE", [value]


def glob_pattern(value: str) -> str:
    """SQLite GLOB's * already crosses '/', so ** means the same; 'dir/' means all under it."""
    pattern = re.sub(r"\*{2,}", "*", value)
    return pattern + "*" if pattern.endswith("/") else pattern


def _negate(sql: str, op: str) -> str:
    return f"NOT {sql}" if op == "!=" else sql
