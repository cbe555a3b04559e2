"""Labelled query sets: our jsonl format, in BEIR's plain-data shapes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.errors import RagminiError


@dataclass(frozen=True)
class QuerySet:
    """queries {qid: text} and qrels {qid: {doc_id: grade}}, as BEIR passes them."""

    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_queries(path: Path) -> QuerySet:
    """Read a jsonl file of {"id", "text", "relevant"} objects.

    `relevant` is a list of doc ids (grade 1 each) or a {doc_id: grade} object.
    Queries without a relevant document are kept out of qrels, so metrics drop
    them explicitly rather than scoring them zero.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagminiError(f"cannot read query file {path}: {exc.strerror}") from exc
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            qid = str(row.get("id", row.get("_id")))
            text = row.get("text", row.get("query"))
            relevant = row.get("relevant", {})
        except (json.JSONDecodeError, AttributeError) as exc:
            raise RagminiError(f"{path}:{lineno}: not a JSON object with id and text") from exc
        if not text or qid == "None":
            raise RagminiError(f"{path}:{lineno}: a query needs an id and a text")
        if qid in queries:
            raise RagminiError(f"{path}:{lineno}: duplicate query id {qid}")
        queries[qid] = text
        if isinstance(relevant, list):
            relevant = {str(d): 1 for d in relevant}
        graded = {str(d): int(g) for d, g in relevant.items() if int(g) > 0}
        if graded:
            qrels[qid] = graded
    if not queries:
        raise RagminiError(f"{path} holds no queries")
    return QuerySet(queries, qrels)


DEFAULT_QUERIES = "corpus/queries.jsonl"


def default_queries() -> Path:
    """corpus/queries.jsonl here, else the one bundled beside the package."""
    return bundled_file(DEFAULT_QUERIES)


def bundled_file(relative: str) -> Path:
    """A file of the repository's corpus/ folder: here (the working folder), else the
    one beside the package; RagminiError if neither exists."""
    here = Path(relative)
    if here.is_file():
        return here
    bundled = Path(__file__).resolve().parents[1] / relative
    if bundled.is_file():
        return bundled
    raise RagminiError(f"no {relative} here; pass the file", param="queries")
