"""FAISS indexes with params: atomic saves, corruption and staleness detected."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ingest.store import Store
from core.errors import IndexStale
from retrieval.contract import l2_normalize
from retrieval.index import build_index, load_index, read_params, save_index
from retrieval.methods import open_searcher


def _vectors(n=20, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return l2_normalize(rng.normal(size=(n, dim)).astype(np.float32))


def test_save_load_roundtrip_exact_search(tmp_path):
    vecs = _vectors()
    ids = np.arange(100, 120, dtype=np.int64)
    params = save_index(build_index(ids, vecs), tmp_path, method="m", model="x", store_generation=3,
                        chunking={"size": 200})
    assert read_params(tmp_path, "m") == params
    index = load_index(tmp_path, params)
    scores, found = index.search(vecs[[5]], 3)
    assert found[0, 0] == 105 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    brute = vecs @ vecs[5]
    assert found[0].tolist() == (ids[np.argsort(-brute)[:3]]).tolist()


def test_resave_replaces_file_and_params_atomically(tmp_path):
    p1 = save_index(build_index(np.arange(5), _vectors(5)), tmp_path, method="m", model="x",
                    store_generation=1, chunking={})
    p2 = save_index(build_index(np.arange(7), _vectors(7)), tmp_path, method="m", model="x",
                    store_generation=2, chunking={})
    assert p1.file != p2.file
    assert load_index(tmp_path, read_params(tmp_path, "m")).ntotal == 7
    # the file replaced is kept through one more commit: a search that read the old
    # params just before may still be opening it (`ragmini watch` commits while
    # searches run); the one before is deleted
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted([p1.file, p2.file, "m.json"])
    assert load_index(tmp_path, p1).ntotal == 5
    p3 = save_index(build_index(np.arange(9), _vectors(9)), tmp_path, method="m", model="x",
                    store_generation=3, chunking={})
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted([p2.file, p3.file, "m.json"])


@pytest.mark.parametrize("damage,message", [
    (lambda f: f.write_bytes(f.read_bytes()[:40]), "corrupt"),
    (lambda f: f.write_bytes(b"\x00" * 64), "corrupt"),
    (lambda f: f.unlink(), "missing"),
])
def test_damaged_index_file(tmp_path, damage, message):
    params = save_index(build_index(np.arange(5), _vectors(5)), tmp_path, method="m", model="x",
                        store_generation=1, chunking={})
    damage(tmp_path / params.file)
    with pytest.raises(IndexStale, match=message):
        load_index(tmp_path, params)


def test_damaged_params_file(tmp_path):
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(IndexStale, match="damaged"):
        read_params(tmp_path, "m")
    (tmp_path / "m.json").write_text(json.dumps({"method": "m"}))
    with pytest.raises(IndexStale, match="damaged"):
        read_params(tmp_path, "m")


@pytest.mark.slow
def test_retriever_refuses_index_that_disagrees_with_store(store_copy, glove):
    with Store.open(store_copy) as store:
        open_searcher(store, "glove", {"glove": glove})  # matching: fine
        # Vectors gone (as after a model change) while the index still has them.
        store.register_method("glove", "another-model", 50)
        with pytest.raises(IndexStale, match="status --repair"):
            open_searcher(store, "glove", {"glove": glove})


@pytest.mark.slow
def test_retriever_refuses_other_embedder(corpus_store, sbert):
    class Impostor:
        name, model, dim = "sbert", "some-other-model", 384

        def embed(self, texts):
            return sbert.embed(texts)

    with pytest.raises(IndexStale, match="some-other-model"):
        open_searcher(corpus_store, "sbert", {"sbert": Impostor()})


def test_missing_index_names_the_fix(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        with pytest.raises(IndexStale, match="ragmini ingest PATH --methods sbert"):
            open_searcher(store, "sbert", {"sbert": object()})
