"""Ingest: load, clean, chunk and store documents as chunk rows in SQLite."""

from ingest.chunk import Chunk, ChunkConfig, Chunker, load_fast_tokenizer, load_tokenizer
from ingest.load import Document, Skipped, load_paths
from ingest.pipeline import IngestReport, ingest_paths, remove_paths
from ingest.store import ChunkRow, Store

__all__ = [
    "Chunk",
    "ChunkConfig",
    "ChunkRow",
    "Chunker",
    "Document",
    "IngestReport",
    "Skipped",
    "Store",
    "ingest_paths",
    "load_paths",
    "load_fast_tokenizer",
    "load_tokenizer",
    "remove_paths",
]
