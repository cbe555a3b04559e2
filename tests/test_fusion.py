"""Fusions: convex combination of normalised scores, weighted and plain RRF, tuning."""

from __future__ import annotations

import json

import pytest

from core.errors import QueryError
from ingest.store import Store
from retrieval.hybrid import FusionParams, FusionSearcher, fuse
from tests.conftest import QUERIES, make_hit


def _hits(pairs):
    """[(chunk_id, score), ...] best first -> hits."""
    return [make_hit(i, s, cid, f"d{cid}") for i, (cid, s) in enumerate(pairs, 1)]


A = _hits([(1, 10.0), (2, 6.0), (3, 2.0)])  # a BM25-like part
B = _hits([(3, 0.9), (4, 0.8), (1, 0.5)])  # a cosine-like part


def test_convex_minmax_by_hand():
    fused = fuse([A, B], FusionParams("convex", (0.5, 0.5), "minmax"), k=4)
    # A normalised: 1 -> 1, 2 -> 0.5, 3 -> 0; B: 3 -> 1, 4 -> 0.75, 1 -> 0.
    # 1: .5*1 + .5*0 = .5; 2: .5*.5 + .5*0 (absent from B: B's lowest) = .25;
    # 3: 0 + .5 = .5; 4: .5*0 (absent from A) + .5*.75 = .375
    assert [(h.chunk_id, round(h.score, 4)) for h in fused] == [
        (1, 0.5), (3, 0.5), (4, 0.375), (2, 0.25)]
    assert [h.rank for h in fused] == [1, 2, 3, 4]


def test_theoretical_minimum_keeps_a_weak_top_score_weak():
    """With tmm a cosine part is scaled from -1, so a list of uniformly poor
    matches does not get stretched to span 0..1 as min-max would."""
    weak = _hits([(7, 0.20), (8, 0.19)])
    mm = fuse([A, weak], FusionParams("convex", (0.5, 0.5), "minmax"), k=5)
    tmm = fuse([A, weak], FusionParams("convex", (0.5, 0.5), "tmm"), k=5,
               floors=(0.0, -1.0))
    assert {h.chunk_id: round(h.score, 4) for h in mm}[8] == 0.0
    assert {h.chunk_id: round(h.score, 4) for h in tmm}[8] == pytest.approx(0.5 * 1.19 / 1.2,
                                                                          abs=1e-4)


def test_all_weight_on_one_part_is_that_part():
    for weights, part in (((1.0, 0.0), A), ((0.0, 1.0), B)):
        for kind in ("convex", "rrf"):
            fused = fuse([A, B], FusionParams(kind, weights), k=3)
            assert [h.chunk_id for h in fused] == [h.chunk_id for h in part]


def test_weighted_rrf_by_hand():
    fused = fuse([A, B], FusionParams("rrf", (0.25, 0.75)), k=4)
    expected = {1: 0.25 / 61 + 0.75 / 63, 2: 0.25 / 62, 3: 0.25 / 63 + 0.75 / 61, 4: 0.75 / 62}
    assert [h.chunk_id for h in fused] == sorted(expected, key=lambda c: -expected[c])
    assert all(h.score == pytest.approx(expected[h.chunk_id]) for h in fused)


@pytest.mark.parametrize("bad", [
    dict(kind="sum", weights=(1, 1)),
    dict(kind="convex", weights=(1, 1), norm="l2"),
    dict(kind="rrf", weights=(-1, 1)),
    dict(kind="rrf", weights=(0, 0)),
])
def test_bad_params_are_refused(bad):
    from core.errors import RagminiError

    with pytest.raises(RagminiError):
        FusionParams(**bad)


class _Part:
    def __init__(self, method, hits=None, error=None):
        self.method, self.behind, self.hits, self.error = method, 0, hits, error

    def search(self, queries, k, allowed=None):
        if self.error:
            raise QueryError(self.error, param="query")
        return [self.hits[:k] for _ in queries]


def test_a_part_that_cannot_read_the_query_leaves_the_other():
    fused = FusionSearcher("hybrid", _Part("bm25", error="no word of it"), _Part("sbert", B),
                           FusionParams("convex", (0.3, 0.7))).search(["q"], 3)[0]
    assert [h.chunk_id for h in fused] == [3, 4, 1]
    with pytest.raises(QueryError, match="no word"):
        FusionSearcher("hybrid", _Part("bm25", error="no word of it"),
                       _Part("sbert", error="no vector"), FusionParams("rrf", (1, 1))
                       ).search(["q"], 3)


def test_tuning_records_a_setting_at_least_as_good_as_either_part(store_copy):
    from eval.queries import load_queries
    from eval.tuning import objective, tune_fusion
    from retrieval.indexing import update_indexes
    from retrieval.methods import FUSION_META, fusion_params, open_searcher

    with Store.open(store_copy) as store:
        update_indexes(store, ["bm25"], progress=False)
        result = tune_fusion(store, load_queries(QUERIES), "hybrid", dataset="bundled")
        best_row = max(result.rows, key=lambda r: r.objective)
        assert best_row.objective >= max(objective(m) for m in result.parts_metrics.values())
        assert result.best.weights == best_row.params.weights
        recorded = json.loads(store.get_meta(FUSION_META.format("hybrid")))
        assert tuple(recorded["weights"]) == result.best.weights
        assert fusion_params(store, "hybrid") == result.best
        assert open_searcher(store, "hybrid").params == result.best
        assert len(result.rows) == 33  # 11 weights x 3 normalisations


def test_plain_rrf_cannot_be_tuned(store_copy):
    from core.errors import RagminiError
    from eval.queries import load_queries
    from eval.tuning import tune_fusion

    with Store.open(store_copy) as store, pytest.raises(RagminiError, match="plain RRF"):
        tune_fusion(store, load_queries(QUERIES), "hybrid-rrf")


def test_default_hybrid_on_the_bundled_queries(served_store):
    """The default fusion's quality on real data: a measured floor, and never below
    its better part (both numbers measured on the 84 bundled queries)."""
    from eval.harness import evaluate_methods
    from eval.queries import load_queries

    with Store.open(served_store) as store:
        result = evaluate_methods(store, load_queries(QUERIES), ["bm25", "sbert", "hybrid"],
                                  ks=(1, 5, 10), full=True, resamples=500)
    m = {name: r.metrics for name, r in result.methods.items()}
    # measured 0.961 / 0.973; the parts alone 0.914 / 0.935 (bm25) and 0.910 / 0.930 (sbert)
    assert m["hybrid"]["mrr@10"] >= 0.95
    for metric in ("recall@10", "mrr@10", "ndcg@10"):
        assert m["hybrid"][metric] >= max(m["bm25"][metric], m["sbert"][metric])


def test_a_fusion_of_parts_at_two_generations_answers_for_the_older(store_copy, tmp_path):
    """Found by the load test: while an ingest has committed one index and not yet
    the other, the fusion must not mix the two states."""
    from ingest.pipeline import ingest_paths
    from retrieval.indexing import update_index, update_indexes
    from retrieval.methods import open_searcher

    new = tmp_path / "new"
    new.mkdir()
    (new / "zeppelin.md").write_text("# Zeppelins\n\nA zeppelin is a rigid airship that "
                                     "retrieves documents about BM25 and vectors.\n")
    with Store.open(store_copy) as store:
        update_indexes(store, ["bm25"], progress=False)
        old = store.generation
        ingest_paths(store, [new], progress=False)
        update_index(store, "sbert", progress=False)  # bm25 still at the old generation
        searcher = open_searcher(store, "hybrid")
        assert searcher.behind == store.generation - old
        hits = searcher.search(["zeppelin rigid airship"], 20)[0]
        assert hits and "zeppelin.md" not in {h.doc_id for h in hits}
        assert set(h.chunk_id for h in hits) <= set(store.chunk_ids(old).tolist())
        update_indexes(store, ["bm25"], progress=False)
        fresh = open_searcher(store, "hybrid").search(["zeppelin rigid airship"], 3)[0]
        assert fresh[0].doc_id == "zeppelin.md"
