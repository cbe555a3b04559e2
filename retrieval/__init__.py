"""Retrieval: embedders (one protocol, one module per method), FAISS indexes, search."""

from retrieval.embedder import METHODS, Embedder, get_embedder, l2_normalize, passage_text
from retrieval.index import IndexParams, build_index, load_index, read_params, save_index
from retrieval.indexing import (
    MethodReport,
    index_is_current,
    rebuild_index,
    update_index,
    update_indexes,
)
from retrieval.status import MethodStatus, StoreStatus, check_store
from retrieval.search import Hit, Retriever

__all__ = [
    "METHODS",
    "Embedder",
    "Hit",
    "IndexParams",
    "MethodReport",
    "Retriever",
    "build_index",
    "get_embedder",
    "index_is_current",
    "l2_normalize",
    "load_index",
    "passage_text",
    "MethodStatus",
    "StoreStatus",
    "check_store",
    "read_params",
    "rebuild_index",
    "save_index",
    "update_index",
    "update_indexes",
]
