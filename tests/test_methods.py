"""glove-sif and bm25 on real data, with their index life cycle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ingest.pipeline import ingest_paths
from ingest.store import Store
from core.errors import QueryError
from retrieval.indexing import update_indexes
from retrieval.contract import search_one
from retrieval.methods import open_searcher
from retrieval.sif import META_KEY, zipf_weights
from retrieval.status import check_store


def test_zipf_weights_favour_rare_words():
    w = zipf_weights(400_000)
    assert w.shape == (400_000,) and np.all(np.diff(w) >= 0)  # later rank, rarer, heavier
    p_the = 1 / np.sum(1 / np.arange(1, 400_001))
    assert w[0] == pytest.approx(1e-3 / (1e-3 + p_the), rel=1e-4)  # "the" weighs ~0.013
    assert w[0] < 0.02 and w[-1] > 0.999


@pytest.fixture
def small_docs(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = {
        "volcano.txt": "Basalt lava erupts from shield volcanoes and cools into rock.",
        "glacier.txt": "Glaciers carve deep fjords and leave moraines behind.",
        "tide.txt": "The moon pulls the oceans, so tides rise twice a day.",
        "desert.txt": "Wind moves the sand dunes across the Sahara desert.",
    }
    for name, text in texts.items():
        (docs / name).write_text(text)
    return docs


@pytest.mark.slow
def test_glove_sif_component_is_fitted_once_and_removed(tmp_path, small_docs):
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_paths(store, [small_docs], progress=False)
        update_indexes(store, ["glove-sif"], progress=False)
        component = np.array(json.loads(store.get_meta(META_KEY)), dtype=np.float32)
        assert component.shape == (50,) and np.linalg.norm(component) == pytest.approx(1, abs=1e-4)
        searcher = open_searcher(store, "glove-sif")
        vecs = searcher.embedder.embed(["lava from volcanoes", "sand dunes"])
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
        assert np.abs(vecs @ component).max() < 1e-5  # common component removed
        assert search_one(searcher, "lava volcanoes", k=1)[0].doc_id == "volcano.txt"
        # A later ingest keeps the frozen component (and so every stored vector).
        (small_docs / "reef.txt").write_text("Coral reefs shelter fish.")
        ingest_paths(store, [small_docs], progress=False)
        update_indexes(store, [], progress=False)
        assert store.get_meta(META_KEY) == json.dumps(component.tolist())
        assert check_store(store).consistent


def test_bm25_exact_words_life_cycle_and_errors(tmp_path, small_docs):
    with Store.open(tmp_path / "s", create=True) as store:
        ingest_paths(store, [small_docs], progress=False)
        update_indexes(store, ["bm25"], progress=False)
        searcher = open_searcher(store, "bm25")
        hits = search_one(searcher, "fjords and moraines", k=10)
        assert hits[0].doc_id == "glacier.txt"
        assert len(hits) == 1  # chunks without a matching word are not returned
        with pytest.raises(QueryError, match="occurs in the corpus"):
            search_one(searcher, "xylophone quasar", k=3)
        # Stemming: "erupting" finds "erupts".
        assert search_one(searcher, "erupting", k=1)[0].doc_id == "volcano.txt"
        (small_docs / "tide.txt").write_text("Tidal bores surge up the river estuary.")
        ingest_paths(store, [small_docs], progress=False)
        behind = open_searcher(store, "bm25")
        assert behind.behind == 1 and search_one(behind, "moon", k=1)[0].doc_id == "tide.txt"
        update_indexes(store, [], progress=False)  # bm25 is in the store: rebuilt
        fresh = open_searcher(store, "bm25")
        assert fresh.behind == 0 and search_one(fresh, "estuary", k=1)[0].doc_id == "tide.txt"
        report = check_store(store)
        (bm25,) = [m for m in report.methods if m.method == "bm25"]
        assert report.consistent and bm25.vectors == 4
