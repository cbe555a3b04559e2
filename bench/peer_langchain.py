"""LangChain on ragmini's chunks, in its own venv (bench/peers.py runs it; protocol in
bench/peer_driver.py): langchain-community's FAISS vector store with
langchain-huggingface's HuggingFaceEmbeddings (sentence-transformers), defaults
throughout (IndexFlatL2; MiniLM's own Normalize module makes that cosine order).

No chunking of its own: `FAISS.from_texts` takes the texts as they are (a text
splitter is a separate, optional step, not used here).
"""

import time

from peer_driver import main


def _embeddings(model):
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=model)


def build(model, chunks, folder):
    t = time.perf_counter()
    from langchain_community.vectorstores import FAISS

    embeddings = _embeddings(model)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    store = FAISS.from_texts([text for _, text in chunks], embeddings,
                             metadatas=[{"chunk_id": cid} for cid, _ in chunks])
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    store.save_local(folder)
    return {"import_load_s": load_s, "embed_index_s": index_s, "persist_s": time.perf_counter() - t}


class Peer:
    def __init__(self, model, folder):
        from langchain_community.vectorstores import FAISS

        self.embeddings = _embeddings(model)
        # its own pickle, written by build above
        self.store = FAISS.load_local(folder, self.embeddings,
                                      allow_dangerous_deserialization=True)

    def search(self, text, k):
        return [d.metadata["chunk_id"] for d in self.store.similarity_search(text, k=k)]

    def encode(self, text):
        return self.embeddings.embed_query(text)

    def search_vector(self, vector, k):
        return [d.metadata["chunk_id"]
                for d in self.store.similarity_search_by_vector(vector, k=k)]


if __name__ == "__main__":
    main(build, Peer)
