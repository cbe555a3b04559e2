"""ragmini: local, offline-first semantic search and RAG."""

__version__ = "0.1.0"
