"""BEIR-layout datasets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Any BEIR folder (SciFact, NFCorpus, FiQA ... or our man-page set) runs as-is.
Its corpus is ingested into a store of its own, keyed by the corpus file's
content hash and the chunking, so a second run does no embedding work.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from eval.queries import QuerySet
from core.errors import RagminiError


def load_beir(directory: Path, split: str = "test") -> QuerySet:
    """The queries of `split` that have judgements, with graded qrels."""
    directory = Path(directory)
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for needed in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not needed.is_file():
            splits = sorted(p.stem for p in (directory / "qrels").glob("*.tsv")) \
                if (directory / "qrels").is_dir() else []
            hint = f" (splits here: {', '.join(splits)})" if splits else ""
            raise RagminiError(f"{needed} is missing: a BEIR folder holds corpus.jsonl, "
                               f"queries.jsonl and qrels/<split>.tsv{hint}")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["query-id", "corpus-id"]:
            raise RagminiError(f"{qrels_path}: expected a header 'query-id corpus-id score'")
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            try:
                qid, doc, grade = row[0], row[1], int(row[2])
            except (IndexError, ValueError):
                raise RagminiError(f"{qrels_path}:{lineno}: expected query-id, corpus-id, "
                                   "integer score") from None
            if grade > 0:
                qrels.setdefault(qid, {})[doc] = grade
    queries: dict[str, str] = {}
    with open(directory / "queries.jsonl", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                qid, text = str(row["_id"]), row["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise RagminiError(f"{directory / 'queries.jsonl'}:{lineno}: expected "
                                   '{"_id", "text"}') from None
            if qid in qrels:
                queries[qid] = text
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise RagminiError(f"{len(missing)} judged queries have no text in queries.jsonl "
                           f"(first: {missing[0]})")
    if not queries:
        raise RagminiError(f"{qrels_path} judges no query")
    return QuerySet(queries, qrels)


def corpus_digest(directory: Path) -> str:
    sha = hashlib.sha256()
    with open(Path(directory) / "corpus.jsonl", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def dataset_store_dir(directory: Path, size: int, overlap: int) -> Path:
    """Where the dataset's store lives: the cache, keyed by content and chunking."""
    from core.models import cache_dir

    name = Path(directory).resolve().name
    return cache_dir() / "datasets" / f"{name}-{corpus_digest(directory)}-c{size}o{overlap}"
