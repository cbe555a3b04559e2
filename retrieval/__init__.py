"""Retrieval: methods behind one contract (embedders + FAISS, bm25, fusions), their
indexes, and search. `methods` is the registry; `contract` the shapes."""

from retrieval.contract import (
    Embedder,
    Hit,
    Method,
    MethodReport,
    MethodStatus,
    Searcher,
    l2_normalize,
    passage_text,
    search_one,
)
from retrieval.indexing import rebuild_index, reindex, update_index, update_indexes
from retrieval.ingesting import IngestResult, ingest_and_index, remove_and_index
from retrieval.methods import get_embedder, get_method, names, open_searcher, parse_methods
from retrieval.searchers import find, open_cached
from retrieval.status import StoreStatus, check_store, repair

__all__ = [
    "Embedder",
    "Hit",
    "IngestResult",
    "Method",
    "MethodReport",
    "MethodStatus",
    "Searcher",
    "StoreStatus",
    "check_store",
    "find",
    "get_embedder",
    "get_method",
    "ingest_and_index",
    "names",
    "l2_normalize",
    "open_cached",
    "open_searcher",
    "parse_methods",
    "passage_text",
    "rebuild_index",
    "remove_and_index",
    "reindex",
    "repair",
    "search_one",
    "update_index",
    "update_indexes",
]
