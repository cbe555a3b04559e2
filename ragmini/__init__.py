"""ragmini: local, offline-first semantic search and RAG.

The Python API (ragmini/api.py; docs/python-api.md has worked examples):

    >>> import ragmini
    >>> store = ragmini.open("my-store")
    >>> store.ingest(["corpus/docs"])
    >>> store.search("how does BM25 rank documents?", k=3)
    >>> store.ask("What is product quantization?", generator="extractive")
    >>> ragmini.evaluate(store)

Importing ragmini is cheap: the names below load on first use, and torch only
when a model is needed. Errors are `ragmini.RagminiError` and its subclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Re-exported lazily from ragmini.api: `import ragmini` imports nothing else.
_API = (
    "open", "Store", "evaluate", "evaluate_answers", "evaluate_conversations", "tune",
    "history", "build_dataset",
    "neighbors", "analogy", "similarity", "tokens", "generate",
    "SearchResult", "CompareResult", "Answer", "IngestResult", "Removal", "Reindexed",
    "Methods", "Status", "EvalReport", "EvalSweep", "AnswerEvalReport", "EvalHistory",
    "ConversationReport",
    "DatasetBuild", "DocumentList", "DocumentText", "ChunkContext",
    "Neighbors", "Analogy", "Similarity", "Tokens", "Generation", "CorpusMap",
    "RagminiError", "StoreError", "QueryError", "NotFound", "IndexStale", "ModelUnavailable",
)
__all__ = ["__version__", *_API]

if TYPE_CHECKING:
    from ragmini.api import (  # noqa: F401
        Analogy,
        Answer,
        AnswerEvalReport,
        ChunkContext,
        CompareResult,
        ConversationReport,
        CorpusMap,
        DatasetBuild,
        DocumentList,
        DocumentText,
        EvalHistory,
        EvalReport,
        EvalSweep,
        Generation,
        IndexStale,
        IngestResult,
        Methods,
        ModelUnavailable,
        Neighbors,
        NotFound,
        QueryError,
        RagminiError,
        Reindexed,
        Removal,
        SearchResult,
        Similarity,
        Status,
        Store,
        StoreError,
        Tokens,
        analogy,
        build_dataset,
        evaluate,
        evaluate_answers,
        evaluate_conversations,
        generate,
        history,
        neighbors,
        open,
        similarity,
        tokens,
        tune,
    )


def __getattr__(name: str):
    if name in _API:
        from ragmini import api

        value = getattr(api, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'ragmini' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
