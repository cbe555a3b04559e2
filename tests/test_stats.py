"""Significance tests on cases whose answer is known, and fusion by hand."""

from __future__ import annotations

import numpy as np
import pytest

from eval.stats import compare, holm, paired_bootstrap, randomization_test
from retrieval.hybrid import RrfSearcher
from tests.conftest import make_hit


def test_identical_runs_are_never_significant():
    a = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 0.25])
    delta, lo, hi = paired_bootstrap(a, a.copy())
    assert delta == 0.0 and lo <= 0.0 <= hi
    assert randomization_test(a, a.copy()) == 1.0


def test_a_dominating_run_is_significant():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 0.5, size=60)
    b = a + rng.uniform(0.1, 0.3, size=60)  # better on every query
    delta, lo, hi = paired_bootstrap(a, b)
    assert delta > 0 and lo > 0
    assert randomization_test(a, b) == pytest.approx(1 / 10_001)


def test_tests_are_reproducible_by_seed():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(size=40), rng.uniform(size=40)
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    assert randomization_test(a, b, seed=5) == randomization_test(a, b, seed=5)
    assert 0.0 < randomization_test(a, b) <= 1.0


def test_holm_by_hand():
    # sorted p: 0.01*3=0.03, 0.02*2=0.04, 0.04*1=0.04 (monotone), original order back
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_compare_pairs_and_verdicts():
    qids = [f"q{i}" for i in range(30)]
    per_query = {
        "weak": {q: {"recall@10": 0.0} for q in qids},
        "strong": {q: {"recall@10": 1.0} for q in qids},
        "strong-too": {q: {"recall@10": 1.0} for q in qids},
    }
    rows = {(c.a, c.b): c for c in compare(per_query, ("recall@10",), resamples=2000)}
    assert rows[("weak", "strong")].significant and rows[("weak", "strong")].delta == 1.0
    same = rows[("strong", "strong-too")]
    assert not same.significant and same.p_value == 1.0 and same.ci95 == (0.0, 0.0)


class _Fixed:
    """A searcher that returns a fixed ranking (our own interface, not a library)."""

    def __init__(self, method, ranking):
        self.method, self.behind, self.ranking = method, 0, ranking

    def search(self, queries, k, allowed=None):
        return [[make_hit(i, 1.0, cid, f"d{cid}") for i, cid in
                 enumerate(self.ranking[:k], 1)] for _ in queries]


def test_reciprocal_rank_fusion_by_hand():
    fused = RrfSearcher("hybrid", _Fixed("x", [1, 2, 3]), _Fixed("y", [3, 1, 4])).search(["q"], k=4)[0]
    # 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62; 4: 1/63
    assert [h.chunk_id for h in fused] == [1, 3, 2, 4]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].score == pytest.approx(1 / 63 + 1 / 61)
    assert [h.rank for h in fused] == [1, 2, 3, 4]
