"""The collection is held once: reading vectors, building, saving and loading an index,
and embedding chunks never keep a second copy of every vector or every text.

Measured with tracemalloc, which sees Python objects and numpy arrays (rows, bytes,
strings, matrices) but not FAISS's own C++ memory: so a FAISS index built from the
store a batch at a time shows only the batch, where a copy made on the Python side
(rows, then joined bytes, then an array; a serialised index) shows in full.
bench/million.py measures the whole process at 100k, 300k and 1M chunks.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import ingest.store
from ingest.chunk import Chunk
from ingest.load import Document
from ingest.store import Store
from retrieval.contract import l2_normalize
from retrieval.index import load_index, read_params

N, DIM = 12_000, 384
BATCH = 1_000


def _peak(fn):
    """(fn's value, peak traced bytes while it ran)."""
    tracemalloc.start()
    try:
        value = fn()
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def store(tmp_path, monkeypatch):
    """N chunks of ~1.2 KB each with an N x 384 "m" vector each; reads of VECTOR_BATCH
    rows, as a 1M-row collection reads 20,000 (2% of it)."""
    monkeypatch.setattr(ingest.store, "VECTOR_BATCH", BATCH)
    words = " ".join(["the quick brown fox jumps over the lazy dog"] * 27)
    rng = np.random.default_rng(0)
    with Store.open(tmp_path / "s", create=True) as s:
        docs = []
        for d in range(N // 100):
            chunks = [Chunk(i, f"{d} {i} {words}", 0, 1, 200) for i in range(100)]
            docs.append((Document(source=f"d{d}", doc_id=f"d{d}", title="t", text="x"), "h",
                         chunks))
        s.replace_documents(docs)
        s.register_method("m", "model", DIM)
        ids = s.chunk_ids()
        s.put_vectors("m", ids, l2_normalize(rng.normal(size=(N, DIM)).astype(np.float32)))
        s.set_chunk_config({"size": 200, "overlap": 30})
        yield s


def test_iter_vectors_batches_in_id_order(store):
    ids, matrix = store.vectors("m")
    batches = list(store.iter_vectors("m", batch_size=5_000))
    assert [len(b[0]) for b in batches] == [5_000, 5_000, 2_000]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), ids)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), matrix)
    assert (np.diff(ids) > 0).all() and matrix.shape == (N, DIM)


def test_vectors_held_once(store):
    (ids, matrix), peak = _peak(lambda: store.vectors("m"))
    # the array itself plus one batch of rows (1.3x here, 1.04x at 1M rows); the old
    # read held every row's bytes object and then all of them joined: over 2x
    assert peak < 1.5 * matrix.nbytes, (peak, matrix.nbytes)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_rebuild_streams_vectors_into_the_index(store, index_type):
    from retrieval.dense import DenseMethod

    method = DenseMethod("m", lambda s: None)
    method.rebuild(store, index_type)  # once untraced: the imports it makes are not the data
    report, peak = _peak(lambda: method.rebuild(store, index_type))
    assert report.n_vectors == N
    # one batch of rows and a hash block on the Python side (0.26x here with 1,000-row
    # batches; the old build held 2x in rows and bytes, and its save 2x more)
    assert peak < 0.35 * N * DIM * 4, peak
    params = read_params(store.index_dir, "m")
    index, peak = _peak(lambda: load_index(store.index_dir, params))
    # a hash block or two (0.11x here); reading the file's bytes first held 1x
    assert index.ntotal == N and peak < 0.25 * N * DIM * 4, peak
    query = store.vectors("m", ids=np.array([store.chunk_ids()[7]]))[1]
    assert index.search(query, 1)[1][0, 0] == store.chunk_ids()[7]


class LengthEmbedder:
    """An Embedder (retrieval.contract) whose vectors cost nothing to make: the
    store's reading of texts is what is measured, not a model's working memory."""

    name, model, dim = "lengths", "lengths-1", 4

    def embed(self, texts: list[str]) -> np.ndarray:
        v = np.array([[len(t), t.count(" "), 1.0, 1.0] for t in texts], dtype=np.float32)
        return l2_normalize(v)


def test_embedding_reads_texts_a_batch_at_a_time(store):
    from retrieval.dense import DenseMethod

    embedder = LengthEmbedder()
    method = DenseMethod("lengths", lambda s: embedder)
    text_bytes = sum(len(c.text) for b in store.iter_chunks() for c in b)
    store.register_method("lengths", embedder.model, embedder.dim)
    store.put_vectors("lengths", store.chunk_ids()[:10], embedder.embed(["x"] * 10))
    method.update(store, progress=False)  # untraced: the imports an update makes
    store.register_method("lengths", "lengths-2", embedder.dim)  # drops every vector
    embedder.model = "lengths-2"
    report, peak = _peak(lambda: method.update(store, progress=False))
    assert report.embedded == N and report.n_vectors == N
    # one 256-chunk batch of rows and texts; every ChunkRow at once would be over 1x
    assert peak < 0.3 * text_bytes, (peak, text_bytes)


@pytest.mark.slow
def test_onnx_encoder_runs_at_most_two_sessions_at_once():
    """16 threads encoding at once (a server under load) share the session two runs at
    a time: ONNX Runtime's arena keeps the buffers of as many runs as ever overlapped."""
    import threading

    from retrieval import onnx_minilm
    from retrieval.methods import sbert_encoder

    encoder = sbert_encoder("onnx-int8")
    session = encoder._session
    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    class Counting:  # the real session, with its concurrent runs counted
        def __getattr__(self, name):
            return getattr(session, name)

        def run(self, *args, **kwargs):
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            try:
                return session.run(*args, **kwargs)
            finally:
                with lock:
                    state["now"] -= 1

    texts = [f"how do I list files sorted by time, variant {i}" for i in range(8)]
    expected = encoder.embed(texts)
    encoder._session = Counting()
    out = [None] * 16
    try:
        threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, encoder.embed(texts)))
                   for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        encoder._session = session
    assert 1 <= state["most"] <= onnx_minilm.CONCURRENT_RUNS == 2
    for got in out:
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_one_query_searches_on_one_thread_and_gives_the_same_hits():
    """A single query runs FAISS on the calling thread alone (an OpenMP team's wake-up
    is most of a query on busy cores), then the thread's setting is put back."""
    import faiss

    from retrieval.index import build_index
    from retrieval.vectorstore import FaissVectors, one_thread_for

    rng = np.random.default_rng(1)
    vectors = l2_normalize(rng.normal(size=(2000, 64)).astype(np.float32))
    before = faiss.omp_get_max_threads()
    with one_thread_for(1):
        assert faiss.omp_get_max_threads() == 1
    with one_thread_for(5):
        assert faiss.omp_get_max_threads() == before
    assert faiss.omp_get_max_threads() == before
    for kind in ("flat", "hnsw"):
        store = FaissVectors(build_index(np.arange(2000), vectors, kind), kind)
        batch = store.search(vectors[:5], 10)[1]
        singles = np.vstack([store.search(vectors[i:i + 1], 10)[1] for i in range(5)])
        np.testing.assert_array_equal(batch, singles)
        assert (singles[:, 0] == np.arange(5)).all()
        assert faiss.omp_get_max_threads() == before
