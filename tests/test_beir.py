"""Any BEIR-layout folder: metrics by hand on a tiny fixture, reports, caching, history."""

from __future__ import annotations

import json
import math

import pytest

from eval.beir import load_beir
from core.errors import RagminiError
from tests.test_cli import run_cli
from tests.test_explore import png_size

DOCS = {
    "d1": ("Volcanoes", "Basalt lava flows from shield volcanoes in Hawaii."),
    "d2": ("Glaciers", "Glaciers carve fjords; moraines mark where the ice stopped."),
    "d3": ("Tides", "Tides rise twice daily because the moon pulls the oceans."),
    "d4": ("Deserts", "Dunes migrate as wind moves sand across the Sahara desert."),
    "d5": ("Coral", "Coral reefs bleach when warm water stresses the algae. Coral coral."),
    "d6": ("Reefs", "Reefs shelter fish; a reef is built by coral over centuries."),
}
# q1..q3 name words of exactly one document. q4 has two relevant documents with
# grades: d6 (grade 2) and d5 (grade 1); BM25 ranks d5 first (it says "coral"
# three times, d6 once), so nDCG@10 < 1 by a computable amount.
QUERIES = {"q1": "basalt lava", "q2": "fjords moraines", "q3": "moon tides",
           "q4": "coral", "q5": "unjudged query about sand"}
QRELS = {"test": [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 1), ("q4", "d6", 2),
                  ("q4", "d5", 1)],
         "dev": [("q1", "d1", 1)]}


@pytest.fixture
def beir_dir(tmp_path):
    root = tmp_path / "tinybeir"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in DOCS.items()))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    for split, rows in QRELS.items():
        (root / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))
    return root


def test_load_beir_keeps_grades_and_judged_queries(beir_dir):
    qs = load_beir(beir_dir, "test")
    assert set(qs.queries) == {"q1", "q2", "q3", "q4"}  # q5 has no judgement
    assert qs.qrels["q4"] == {"d6": 2, "d5": 1}
    assert set(load_beir(beir_dir, "dev").queries) == {"q1"}
    with pytest.raises(RagminiError, match="splits here: dev, test"):
        load_beir(beir_dir, "train")


def test_bm25_metrics_match_hand_computation(capsys, beir_dir):
    code, out, err = run_cli(capsys, "eval", "--dataset", str(beir_dir), "--methods", "bm25",
                             "-k", "1,3", "--json", "--no-progress")
    assert code == 0, err
    m = json.loads(out)["methods"]["bm25"]
    # q1-q3 found at rank 1; q4's first document (d5) is relevant too.
    assert m["recall@1"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert m["recall@3"] == pytest.approx(1.0)
    assert m["mrr@10"] == pytest.approx(1.0)
    assert m["precision@1"] == pytest.approx(1.0)
    dcg = 1 / math.log2(2) + 2 / math.log2(3)  # d5 (grade 1) then d6 (grade 2)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((3 + dcg / ideal) / 4, abs=1e-4)
    assert m["map"] == pytest.approx(1.0)


@pytest.mark.slow
def test_report_cache_history_and_sweep(capsys, beir_dir, tmp_path):
    def recorded_runs():
        code, out, _ = run_cli(capsys, "eval", "history", "--dataset", str(beir_dir), "--json")
        return json.loads(out)["runs"] if code == 0 else []

    before = len(recorded_runs())  # the store is shared by content: other tests' runs count
    report = tmp_path / "report"
    args = ["eval", "--dataset", str(beir_dir), "--methods", "bm25,sbert,hybrid",
            "--no-progress", "--resamples", "2000"]
    code, out, err = run_cli(capsys, *args, "--report", str(report))
    assert code == 0, err
    for name in ("report.md", "metrics.json", "run.bm25.trec", "run.sbert.trec",
                 "run.hybrid.trec", "recall_at_k.png"):
        assert (report / name).is_file(), name
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics) >= {"dataset", "split", "n_queries", "methods", "comparisons",
                            "latency_ms"}
    assert metrics["dataset"] == "tinybeir" and metrics["split"] == "test"
    assert metrics["n_queries"] == 4
    first = metrics["comparisons"][0]
    assert set(first) >= {"a", "b", "metric", "delta", "ci95", "p_value"}
    assert set(metrics["latency_ms"]["sbert"]) == {"p50", "p95"}
    line = (report / "run.bm25.trec").read_text().splitlines()[0].split()
    assert line[1] == "Q0" and line[3] == "1" and line[5] == "ragmini-bm25"
    assert "Which differences are real" in (report / "report.md").read_text()
    assert png_size(report / "recall_at_k.png")[0] >= 600
    # Second run: the cached store is reused, nothing is ingested or embedded.
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and "documents ingested" not in err
    runs = recorded_runs()
    assert len(runs) == before + 2 and runs[0]["methods"] == ["bm25", "sbert", "hybrid"]
    # A chunking sweep reports each setting.
    code, out, err = run_cli(capsys, "eval", "--dataset", str(beir_dir), "--methods", "bm25",
                             "--chunk-size", "16,32", "--overlap", "4", "--json", "--no-progress")
    assert code == 0, err
    settings = json.loads(out)["settings"]
    assert [s["chunking"]["size"] for s in settings] == [16, 32]
