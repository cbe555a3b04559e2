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
