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
# encoders.py call), peer_txtai.py (runs inside txtai's own venv, started by encoders.py),
# ingest_driver.py (ingest.py runs it in fresh processes, on the old code and the new).
HELPERS = {"__init__", "common", "scale", "peer_txtai", "ingest_driver"}
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
