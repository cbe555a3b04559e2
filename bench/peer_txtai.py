"""txtai on ragmini's chunks, in its own venv (bench/peers.py runs it; protocol in
bench/peer_driver.py).

Defaults throughout: `Embeddings(path=MiniLM folder)` is txtai's own default model
(all-MiniLM-L6-v2, through sentence-transformers), its default faiss backend (which
picks its index type by collection size) and content storage off. No chunking of
its own: it indexes the (id, text) rows it is given.
"""

import time

from peer_driver import main


def build(model, chunks, folder):
    t = time.perf_counter()
    from txtai import Embeddings

    embeddings = Embeddings(path=model)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    embeddings.index([(cid, text, None) for cid, text in chunks])
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    embeddings.save(folder)
    return {"import_load_s": load_s, "embed_index_s": index_s, "persist_s": time.perf_counter() - t}


class Peer:
    def __init__(self, model, folder):
        from txtai import Embeddings

        self.embeddings = Embeddings()
        self.embeddings.load(folder)

    def search(self, text, k):
        return [cid for cid, _ in self.embeddings.search(text, k)]

    def encode(self, text):
        return self.embeddings.transform(text)

    def search_vector(self, vector, k):
        # The ANN alone, on internal row numbers (search() maps them to ids after).
        return [row for row, _ in self.embeddings.ann.search(vector.reshape(1, -1), k)[0]]


if __name__ == "__main__":
    main(build, Peer)
