"""A LangChain retriever over a ragmini store: `store.as_langchain_retriever(...)`.

Imported only when asked for, so `import ragmini` never pays for langchain-core
(installed with langchain-text-splitters, which chunking uses).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

# Chunk fields a Document carries as metadata; anything else a chunk gains later (a
# page span, say) is passed on too, under its own name, when it has a value.
_SKIP = {"text"}


def hit_document(hit: Any, method: str) -> Document:
    """A LangChain Document for one ragmini search hit: the chunk text as
    `page_content`, and in `metadata` source, doc_id, title, chunk_id, score,
    rank, method, and the chunk's position (`position`, `start`/`end` characters,
    `n_tokens`, and a page span when chunks carry one)."""
    chunk = {k: v for k, v in asdict(hit.chunk).items() if k not in _SKIP and v is not None}
    return Document(page_content=hit.text, id=str(hit.chunk_id),
                    metadata={**chunk, "score": hit.score, "rank": hit.rank, "method": method})


class RagminiRetriever(BaseRetriever):
    """Retrieves a ragmini store's top-`k` chunks by `method` as LangChain Documents.

    Build it with `ragmini.open(path).as_langchain_retriever(method=..., k=...)`;
    it is a Runnable, so `retriever | format_docs | prompt | llm` chains work, and
    `batch` runs queries on several threads (each with its own store connection).
    """

    store: Any  # ragmini.api.Store
    method: str = "sbert"
    k: int = 5
    where: tuple[str, ...] | None = None

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        result = self.store.search(query, method=self.method, k=self.k, where=self.where)
        return [hit_document(h, self.method) for h in result.hits]
