"""LlamaIndex on ragmini's chunks, in its own venv (bench/peers.py runs it; protocol in
bench/peer_driver.py): `VectorStoreIndex` with its default in-memory
SimpleVectorStore, persisted by its StorageContext, embedding through
llama-index-embeddings-huggingface's HuggingFaceEmbedding (sentence-transformers).

LlamaIndex chunks documents itself (`VectorStoreIndex.from_documents` runs its
SentenceSplitter, 1024 tokens by default). To index the same chunks as every other
peer, each ragmini chunk goes in as a ready-made TextNode (no metadata, so the
embedded text is the chunk text alone): its splitter never runs.
"""

import time

from peer_driver import main


def _embed_model(model):
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=model)


def build(model, chunks, folder):
    t = time.perf_counter()
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    embed_model = _embed_model(model)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    nodes = [TextNode(text=text, id_=str(cid)) for cid, text in chunks]
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    index.storage_context.persist(persist_dir=folder)
    return {"import_load_s": load_s, "embed_index_s": index_s, "persist_s": time.perf_counter() - t}


class Peer:
    def __init__(self, model, folder):
        from llama_index.core import StorageContext, load_index_from_storage

        self.embed_model = _embed_model(model)
        self.index = load_index_from_storage(StorageContext.from_defaults(persist_dir=folder),
                                             embed_model=self.embed_model)
        self.retrievers = {}

    def search(self, text, k):
        if k not in self.retrievers:
            self.retrievers[k] = self.index.as_retriever(similarity_top_k=k)
        return [int(n.node.node_id) for n in self.retrievers[k].retrieve(text)]

    def encode(self, text):
        return self.embed_model.get_query_embedding(text)

    def search_vector(self, vector, k):
        from llama_index.core.vector_stores.types import VectorStoreQuery

        found = self.index.vector_store.query(VectorStoreQuery(query_embedding=vector,
                                                               similarity_top_k=k))
        return [int(i) for i in found.ids]


if __name__ == "__main__":
    main(build, Peer)
