"""The benchmark suite: every script runs as `python -m bench.NAME` on the shared helper and
has its make target, and the main benchmark runs end to end (smoke test: its figures are
not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

BENCH = REPO / "bench"
# Modules that are not benchmarks: the shared helper, scale.py (sections run.py and
# encoders.py call), ingest_driver.py (ingest.py runs it in fresh processes, on the old
# code and the new), the peer drivers (each runs inside its library's own venv, started
# by peers.py, so none can import bench.common).
HELPERS = {"__init__", "common", "scale", "ingest_driver", "peer_driver", "peer_txtai",
           "peer_langchain", "peer_chroma", "peer_llamaindex", "peer_ragmini"}
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in HELPERS)
# Make targets whose names predate the suite's bench-NAME rule.
TARGETS = {"run": "bench", "docs": "bench-docs"}
# Still on its own path set-up: its owner converts it (then drop it from here).
OWN_SETUP: set[str] = set()


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_has_its_make_target_and_a_line_in_the_readme(name):
    target = TARGETS.get(name, f"bench-{name.replace('_', '-')}")
    makefile = (REPO / "Makefile").read_text()
    assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
    assert f"python -m bench.{name}" in makefile.replace("$(BENCH_PY) bench.", "python -m bench.")
    assert f"`bench/{name}.py`" in (BENCH / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(set(SCRIPTS) - OWN_SETUP))
def test_every_script_uses_the_shared_helper_not_a_path_setup_of_its_own(name):
    source = (BENCH / f"{name}.py").read_text()
    assert "from bench.common import" in source
    assert "sys.path.insert" not in source and "os.environ.setdefault" not in source


def test_scripts_run_as_modules_and_as_files():
    for argv in ([sys.executable, "-m", "bench.filters", "--help"],
                 [sys.executable, str(BENCH / "filters.py"), "--help"]):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)
        assert proc.returncode == 0 and proc.stdout.startswith("usage:"), proc.stderr[-2000:]


@pytest.mark.slow
def test_bench_quick_runs(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| figure | glove | sbert |" in proc.stdout
    assert "| target | value | goal | met |" in proc.stdout
    assert not out.exists()  # --quick never overwrites the committed figures


@pytest.mark.slow
def test_bench_search_runs(served_store, tmp_path):
    """bench/search.py over the bundled store, three queries of a made-up BEIR folder,
    with the server and one CLI process: every path and the targets come out."""
    import json

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("")
    texts = ["how does bm25 rank documents", "averaging word vectors", "product quantization"]
    (beir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\tbm25.md\t1\n" for i in range(3)))
    out = tmp_path / "search.json"
    proc = subprocess.run([sys.executable, "-m", "bench.search", "--store", str(served_store),
                           "--dataset", str(beir), "--methods", "glove,bm25", "--cli", "1",
                           "--where", "type=md", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = json.loads(out.read_text())
    for method in ("glove", "bm25"):
        row = body["paths_ms"][method]
        assert {"encode", "scan", "bound", "held", "store_search", "http",
                "open_per_call"} <= set(row) and row["held"]["n"] == 3
        assert body["cli_ms"][method]["n"] == 1 and body["memory_mb"][method]["searcher_mb"] >= 0
    assert body["filters_ms"]["type=md"]["kept_chunks"] > 0
    assert len(body["targets"]) == 4 and "| target | value | goal | met |" in proc.stdout


def test_target_operators():
    from bench.common import Target

    assert Target("a", 0.4, 0.5, "<").met and not Target("a", 0.5, 0.5, "<").met
    assert Target("b", 1.2, 1.0, ">").met and not Target("b", 1.0, 1.0, ">").met
    assert Target("c", 1.0, 1.0, "<=").met and Target("c", 1.0, 1.0, ">=").met
    assert Target("d", None, 1.0).met is None
    assert Target("e", 2.0, None, ">=").met  # a retired target: a measurement
    assert not Target("f", 1.2, 1.0, ">", also="not significant", also_met=False).met
    with pytest.raises(ValueError, match="op must be one of"):
        Target("g", 1.0, 1.0, "==")


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
