"""Metrics on a toy case worked out by hand, and the harness on the real corpus."""

from __future__ import annotations

import copy
import json

import pytest

from eval.harness import doc_run, evaluate_methods
from eval.metrics import evaluate, evaluate_per_query
from eval.queries import load_queries
from core.errors import RagminiError
from tests.conftest import make_hit

# Hand-checked:
#   q1 relevant {a, b}; ranking a, x, b  -> R@1 = 1/2, R@3 = 1, RR = 1
#   q2 relevant {c};    ranking y, z, c  -> R@1 = 0,   R@3 = 1, RR = 1/3
#   q3 relevant {d};    empty ranking    -> all 0
#   q4 has no judgements: left out of every mean.
QRELS = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}, "q3": {"d": 1}}
RUN = {"q1": {"a": 3.0, "x": 2.0, "b": 1.0}, "q2": {"y": 0.9, "z": 0.8, "c": 0.7}, "q3": {},
       "q4": {"a": 1.0}}


def test_metrics_match_hand_computation():
    m = evaluate(QRELS, RUN, ks=(1, 3))
    assert m["recall@1"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert m["recall@3"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    per = evaluate_per_query(QRELS, RUN, ks=(1, 3))
    assert per["q2"] == {"recall@1": 0.0, "recall@3": 1.0, "mrr@10": pytest.approx(1 / 3)}
    assert set(per) == {"q1", "q2", "q3"}


def test_metrics_do_not_mutate_inputs():
    qrels, run = copy.deepcopy(QRELS), copy.deepcopy(RUN)
    evaluate(qrels, run)
    assert qrels == QRELS and run == RUN


def test_doc_run_ranks_a_document_at_its_best_chunk():
    hits = [make_hit(i, 1 - i / 10, i, d) for i, d in enumerate(["b", "a", "b", "c", "a"], 1)]
    run = doc_run(hits)
    assert list(run) == ["b", "a", "c"]
    assert run == {"b": 1.0, "a": 0.5, "c": pytest.approx(1 / 3)}


def test_load_queries_formats_and_errors(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(
        json.dumps({"id": "1", "text": "a", "relevant": ["d1", "d2"]}) + "\n"
        + json.dumps({"_id": "2", "query": "b", "relevant": {"d3": 2, "d4": 0}}) + "\n"
        + json.dumps({"id": "3", "text": "unjudged"}) + "\n"
    )
    qs = load_queries(f)
    assert qs.queries == {"1": "a", "2": "b", "3": "unjudged"}
    assert qs.qrels == {"1": {"d1": 1, "d2": 1}, "2": {"d3": 2}}
    f.write_text(json.dumps({"id": "1", "text": "a"}) + "\n" + json.dumps({"id": "1", "text": "b"}))
    with pytest.raises(RagminiError, match="duplicate query id 1"):
        load_queries(f)
    with pytest.raises(RagminiError, match="cannot read"):
        load_queries(tmp_path / "missing.jsonl")


@pytest.mark.slow
def test_bundled_corpus_eval_sbert_beats_glove(corpus_store):
    from tests.conftest import QUERIES

    query_set = load_queries(QUERIES)
    assert len(query_set.queries) >= 60
    result = evaluate_methods(corpus_store, query_set, ["glove", "sbert"])
    glove, sbert = result.methods["glove"].metrics, result.methods["sbert"].metrics
    # Measured when the corpus was written: glove R@5 0.482 / MRR 0.357,
    # sbert R@5 0.976 / MRR 0.910. Floors leave room for harmless drift.
    assert sbert["recall@5"] >= 0.9 and sbert["mrr@10"] >= 0.8
    assert 0.35 <= glove["recall@5"] <= 0.7
    for metric in ("recall@1", "recall@3", "recall@5", "mrr@10"):
        assert sbert[metric] > glove[metric] + 0.2, metric
    assert result.n_queries == len(query_set.queries)


def test_a_query_a_method_cannot_handle_scores_zero_and_is_counted():
    from eval.harness import run_method
    from core.errors import QueryError

    class OnlyKnowsCats:
        def search(self, queries, k, allowed=None):
            if "cat" not in queries[0]:
                raise QueryError("no known word")
            return [[make_hit(1, 1.0, 1, "cats.md")]]

    run, latency, unanswerable = run_method(OnlyKnowsCats(), {"a": "cat", "b": "qwzxv"}, 10, 10)
    assert run == {"a": {"cats.md": 1.0}, "b": {}} and unanswerable == 1
    assert set(latency) == {"p50", "p95"}
    assert evaluate({"a": {"cats.md": 1}, "b": {"x.md": 1}}, run)["recall@1"] == 0.5
