"""Chroma on ragmini's chunks, in its own venv (bench/peers.py runs it; protocol in
bench/peer_driver.py): a `chromadb.PersistentClient` collection with its default
HNSW index (l2 space), embedding through Chroma's SentenceTransformerEmbeddingFunction
on the packaged MiniLM folder (Chroma's built-in default is the same model as an
ONNX file it downloads, which this machine cannot). Queries return Chroma's default
fields (documents, metadatas, distances).

No chunking of its own: `collection.add` stores the documents it is given, in
batches of the client's maximum batch size.
"""

import time

from peer_driver import main

NAME = "manpages"


def _client(folder):
    import chromadb

    return chromadb.PersistentClient(path=folder,
                                     settings=chromadb.Settings(anonymized_telemetry=False))


def _function(model):
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    return SentenceTransformerEmbeddingFunction(model_name=model)


def build(model, chunks, folder):
    t = time.perf_counter()
    client = _client(folder)
    function = _function(model)
    function(["warm"])  # the model loads on first use: count it as loading
    collection = client.create_collection(NAME, embedding_function=function)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    step = client.get_max_batch_size()
    for i in range(0, len(chunks), step):
        part = chunks[i:i + step]
        collection.add(ids=[str(cid) for cid, _ in part], documents=[text for _, text in part])
    index_s = time.perf_counter() - t
    return {"import_load_s": load_s, "embed_index_s": index_s, "persist_s": 0.0}


class Peer:
    def __init__(self, model, folder):
        self.function = _function(model)
        self.collection = _client(folder).get_collection(NAME,
                                                         embedding_function=self.function)

    def search(self, text, k):
        return [int(i) for i in self.collection.query(query_texts=[text], n_results=k)["ids"][0]]

    def encode(self, text):
        return self.function([text])[0]

    def search_vector(self, vector, k):
        found = self.collection.query(query_embeddings=[vector], n_results=k)
        return [int(i) for i in found["ids"][0]]


if __name__ == "__main__":
    main(build, Peer)
