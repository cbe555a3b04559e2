"""ragmini under the same driver as its peers (bench/peer_driver.py), run with the
project's python from the repository root: the public API (`ragmini.open`) all the
way. Build is `Store.ingest` of the man-page corpus.jsonl with the sbert method
alone (the dense MiniLM retrieval the peers do), so unlike theirs its time includes
reading and chunking the corpus; queries are `Store.search(text, method="sbert")`.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peer_driver import main  # noqa: E402  (bench/ is the script's folder)


def build(model, chunks, folder, corpus=None):
    t = time.perf_counter()
    import ragmini

    store = ragmini.open(folder)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    done = store.ingest([corpus], methods=["sbert"])
    total_s = time.perf_counter() - t
    store.close()
    (sbert,) = done.methods
    # the method's report covers loading the encoder, embedding and the index build
    return {"import_load_s": load_s, "read_chunk_store_s": total_s - sbert.seconds,
            "embed_index_s": sbert.seconds, "persist_s": 0.0, "chunks": done.chunks}


class Peer:
    def __init__(self, model, folder):
        import ragmini

        self.store = ragmini.open(folder)
        self._searcher = None

    def search(self, text, k):
        return [h.chunk_id for h in self.store.search(text, method="sbert", k=k)]

    def _dense(self):
        """The store's sbert searcher, opened once: its encoder and vector index alone."""
        if self._searcher is None:
            from ingest.store import Store
            from retrieval.methods import open_searcher

            self._searcher = open_searcher(Store.open(self.store.path), "sbert")
        return self._searcher

    def encode(self, text):
        return self._dense().embedder.embed([text])

    def search_vector(self, vector, k):
        return [int(i) for i in self._dense().vectors.search(vector, k)[1][0]]


if __name__ == "__main__":
    main(build, Peer)
