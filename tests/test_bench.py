"""The benchmark runs end to end (smoke test: its figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_bench_quick_runs(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| figure | glove | sbert |" in proc.stdout
    assert "| target | value | goal | met |" in proc.stdout
    assert not out.exists()  # --quick never overwrites the committed figures


def test_target_operators():
    from bench.common import Target

    assert Target("a", 0.4, 0.5, "<").met and not Target("a", 0.5, 0.5, "<").met
    assert Target("b", 1.2, 1.0, ">").met and not Target("b", 1.0, 1.0, ">").met
    assert Target("c", 1.0, 1.0, "<=").met and Target("c", 1.0, 1.0, ">=").met
    assert Target("d", None, 1.0).met is None
    with pytest.raises(ValueError, match="operator"):
        Target("e", 1.0, 1.0, "==").met


def test_peer_runs_rank_a_page_at_its_best_chunk_and_pair_with_ragmini():
    from bench.peers import doc_runs, quality

    doc_of = {1: "a", 2: "a", 3: "b", 4: "c"}
    assert doc_runs([[2, 1, 4, 3, 99]], ["q"], doc_of) == {"q": {"a": 1.0, "c": 0.5,
                                                                 "b": 1 / 3}}
    qrels = {f"q{i}": {"a": 1} for i in range(20)}
    first = {q: {"a": 1.0, "b": 0.5} for q in qrels}
    missing = {q: {"b": 1.0} for q in qrels}
    means, rows = quality({"ragmini": first, "same": first, "worse": missing}, qrels)
    assert means["ragmini"]["recall@10"] == 1.0 and means["worse"]["recall@10"] == 0.0
    by_peer = {(r["metric"], r["b"]): r for r in rows}
    same, worse = by_peer[("recall@10", "same")], by_peer[("recall@10", "worse")]
    assert same["delta"] == 0 and not same["significant"]
    # the peer finds nothing: ragmini is significantly better, never "worse"
    assert worse["delta"] == -1.0 and worse["significant"]
    assert not worse["ragmini_significantly_worse"]


def test_million_copies_are_near_neighbours_not_duplicates():
    import numpy as np

    from bench.million import perturbed

    rng = np.random.default_rng(0)
    v = rng.standard_normal((200, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert perturbed(v, 0, 0.5) is v
    copy = perturbed(v, 3, 0.5)
    np.testing.assert_allclose(np.linalg.norm(copy, axis=1), 1.0, atol=1e-5)
    cosine = (copy * v).sum(axis=1)
    assert 0.85 < cosine.mean() < 0.92  # 1 / sqrt(1 + 0.5^2) = 0.894
    assert not np.allclose(perturbed(v, 3, 0.5), perturbed(v, 4, 0.5))
