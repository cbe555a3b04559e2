"""The HTTP API against a real `ragmini serve` process on a loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import REPO
from ragmini.server.process import running_server

pytestmark = pytest.mark.slow
# Generous: the first request of a fresh server loads MiniLM on a busy 2-core machine.
HTTP = httpx.Client(timeout=120)


@pytest.fixture(scope="module")
def server(served_store):
    with running_server(served_store, "--max-upload-mb", "0.05") as base:
        yield base


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert "Traceback" not in response.text
    return body["error"]


def test_health_and_status(server):
    assert HTTP.get(f"{server}/healthz").json() == {"status": "ok"}
    status = HTTP.get(f"{server}/api/status").json()
    assert status["documents"] == 41 and status["consistent"] is True
    assert {m["method"] for m in status["methods"]} == {"glove", "glove-sif", "sbert", "bm25",
                                                        "tfidf"}


def test_search_body_is_the_cli_json(server, served_store):
    api = HTTP.get(f"{server}/api/search", params={"q": "how does BM25 rank documents?",
                                                    "method": "sbert", "k": 3}).json()
    cli = subprocess.run([sys.executable, "-m", "ragmini.cli", "search",
                          "how does BM25 rank documents?", "-k", "3", "--store",
                          str(served_store), "--json"], capture_output=True, text=True, cwd=REPO)
    assert api["hits"] == json.loads(cli.stdout)["hits"]
    assert api["hits"][0]["doc_id"] == "bm25.md"


@pytest.mark.parametrize("params,status,fragment", [
    ({"q": ""}, 422, "at least 1 character"),
    ({"q": "   "}, 400, "query is empty"),
    ({"q": "x", "k": 0}, 422, "greater than or equal to 1"),
    ({"q": "x", "k": 101}, 422, "less than or equal to 100"),
    ({"q": "x", "method": "bogus"}, 400, "unknown method 'bogus'"),
    ({"q": "x" * 2001}, 422, "at most 2000 characters"),
])
def test_search_errors(server, params, status, fragment):
    assert fragment in _error(HTTP.get(f"{server}/api/search", params=params), status)["message"]


def test_a_search_that_finds_nothing_says_why(server):
    """As in Python: no hits and the reason, not an error (the CLI makes it one)."""
    body = HTTP.get(f"{server}/api/search", params={"q": "qwzxvq", "method": "glove"}).json()
    assert body["hits"] == [] and "vocabulary" in body["reason"]


def test_other_client_errors(server):
    assert _error(HTTP.post(f"{server}/api/compare", content=b"{not json",
                             headers={"Content-Type": "application/json"}), 422)
    assert "question" in _error(HTTP.post(f"{server}/api/ask", json={}), 422)["message"]
    _error(HTTP.delete(f"{server}/api/documents/no-such-doc"), 404)
    _error(HTTP.get(f"{server}/api/eval/nope"), 404)
    _error(HTTP.get(f"{server}/no/such/page"), 404)
    big = json.dumps({"q": "x" * (2**20 + 10)})
    assert _error(HTTP.post(f"{server}/api/compare", content=big,
                             headers={"Content-Type": "application/json"}), 413)["code"] == "too_large"


def test_compare_lines_methods_up(server):
    # The default is the public API's: the dense default, bm25 and the default hybrid.
    default = HTTP.post(f"{server}/api/compare", json={"q": "averaging word vectors"}).json()
    assert list(default["methods"]) == ["sbert", "bm25", "hybrid"] and default["k"] == 10
    every = ["glove", "glove-sif", "sbert", "bm25", "tfidf", "hybrid", "hybrid-rrf"]
    body = HTTP.post(f"{server}/api/compare", json={"q": "averaging word vectors", "k": 5,
                                                    "methods": every}).json()
    assert set(body["methods"]) == set(every)
    assert all(len(r["hits"]) == 5 for r in body["methods"].values())
    for item in body["overlap"]:
        assert len(item["methods"]) >= 2
        for method, rank in item["ranks"].items():
            assert body["methods"][method]["hits"][rank - 1]["chunk_id"] == item["chunk_id"]


def test_ask_json_and_stream(server):
    question = {"question": "What is product quantization?", "generator": "extractive"}
    body = HTTP.post(f"{server}/api/ask", json=question, timeout=60).json()
    assert body["abstained"] is False and body["citations"] and body["support_rate"] == 1.0
    assert {"n", "doc_id", "source", "chunk_id", "title", "text"} <= set(body["sources"][0])
    events = []
    with HTTP.stream("POST", f"{server}/api/ask", json=question, timeout=60,
                      headers={"Accept": "text/event-stream"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for block in response.read().decode().split("\n\n"):
            if block.strip():
                name = block.split("\n")[0].removeprefix("event: ")
                events.append((name, json.loads(block.split("data: ", 1)[1])))
    assert events[0][0] == "token" and events[-1][0] == "done"
    assert "".join(d["text"] for e, d in events if e == "token") == events[-1][1]["answer"]
    assert events[-1][1]["answer"] == body["answer"]


def test_ask_abstains_over_http(server):
    body = HTTP.post(f"{server}/api/ask", json={"question": "Who won the 2022 World Cup?",
                                                 "generator": "extractive"}, timeout=60).json()
    assert body["abstained"] is True and body["abstain_score"] < body["abstain_threshold"]


def test_upload_search_delete(server, served_store):
    note = b"# Zebra finches\n\nZebra finches learn their song from a tutor male in the weeks after fledging."
    files = [("files", ("../../../tmp/evil/finches.md", note, "text/markdown")),
             ("files", ("payload.exe", b"MZ\x00\x01", "application/octet-stream"))]
    body = HTTP.post(f"{server}/api/documents", files=files, timeout=120).json()
    by_status = {f["status"]: f for f in body["files"]}
    assert by_status["ingested"]["stored_as"] == "finches.md"
    assert by_status["ingested"]["doc_id"] == "uploads/finches.md"  # ingest.identity's rule
    assert "not a type ingest reads" in by_status["rejected"]["reason"]
    assert (served_store / "uploads" / "finches.md").read_bytes() == note
    assert not list(served_store.parent.glob("**/evil"))
    hits = HTTP.get(f"{server}/api/search", params={"q": "zebra finch song tutor", "k": 1}).json()
    assert hits["hits"][0]["doc_id"] == "uploads/finches.md"
    listing = HTTP.get(f"{server}/api/documents", params={"limit": 500}).json()
    assert listing["total"] == 42
    assert "uploads/finches.md" in {d["doc_id"] for d in listing["documents"]}
    gone = HTTP.delete(f"{server}/api/documents/uploads/finches.md", timeout=60).json()
    assert gone["documents"] == 41
    assert not (served_store / "uploads" / "finches.md").exists()  # its file goes too
    hits = HTTP.get(f"{server}/api/search", params={"q": "zebra finch song tutor", "k": 3}).json()
    assert "uploads/finches.md" not in {h["doc_id"] for h in hits["hits"]}


def test_oversize_upload_is_refused_and_loses_nothing(server):
    before = HTTP.get(f"{server}/api/documents").json()["total"]
    big = b"word " * 20_000  # 100 KB, over the 0.05 MB limit this server runs with
    error = _error(HTTP.post(f"{server}/api/documents", files=[("files", ("big.txt", big))]), 413)
    assert "limit" in error["message"]
    assert HTTP.get(f"{server}/api/documents").json()["total"] == before


def test_eval_job(server):
    job = HTTP.post(f"{server}/api/eval", json={"methods": ["bm25", "sbert"], "resamples": 200}
                     ).json()
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = HTTP.get(f"{server}/api/eval/{job['id']}").json()
    assert job["state"] == "done", job
    assert set(job["result"]["methods"]) == {"bm25", "sbert"}
    assert job["result"]["methods"]["sbert"]["recall@10"] > 0.9
    plot = HTTP.get(f"{server}{job['plot']}")
    assert plot.status_code == 200 and plot.content[:8] == b"\x89PNG\r\n\x1a\n"
    runs = HTTP.get(f"{server}/api/eval/history").json()["runs"]
    assert runs and set(runs[0]["methods"]) == {"bm25", "sbert"}


def test_cli_ingest_is_seen_without_restart(server, served_store, tmp_path):
    from ragmini.cli import main

    doc = tmp_path / "otters.md"
    doc.write_text("# Sea otters\n\nSea otters hold hands while sleeping so they do not drift apart.")
    try:
        main(["ingest", str(doc), "--store", str(served_store), "--no-progress"])
    except SystemExit as exc:
        assert not exc.code
    hits = HTTP.get(f"{server}/api/search", params={"q": "otters sleeping holding hands",
                                                     "k": 1}).json()
    assert hits["hits"][0]["doc_id"] == "otters.md"
    try:
        main(["remove", str(doc), "--store", str(served_store)])
    except SystemExit as exc:
        assert not exc.code


def test_docs_work_offline(server):
    html = HTTP.get(f"{server}/docs").text
    assert "/swagger/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert HTTP.get(f"{server}/swagger/swagger-ui-bundle.js").status_code == 200
    schema = HTTP.get(f"{server}/openapi.json").json()
    assert "/api/search" in schema["paths"] and "/api/ask" in schema["paths"]
    page = HTTP.get(f"{server}/").text
    assert "http://" not in page and "https://" not in page


def test_token_guards_the_api(served_store):
    with running_server(served_store, "--token", "s3cret") as base:
        assert HTTP.get(f"{base}/healthz").status_code == 200
        assert _error(HTTP.get(f"{base}/api/status"), 401)["code"] == "unauthorized"
        assert _error(HTTP.get(f"{base}/api/status",
                                headers={"Authorization": "Bearer wrong"}), 401)
        ok = HTTP.get(f"{base}/api/status", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_public_host_without_token_refuses_to_start(served_store):
    proc = subprocess.run([sys.executable, "-m", "ragmini.cli", "serve", "--store",
                           str(served_store), "--host", "0.0.0.0"], capture_output=True,
                          text=True, cwd=REPO, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "RAGMINI_TOKEN"})
    assert proc.returncode == 1
    assert "without a token" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_load_bench_runs_clean(served_store, tmp_path):
    """bench/load.py for a few seconds with 2 users (search and compare; no ingest): no
    errors, and every answer is one generation's."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(served_store, store)
    out = tmp_path / "load.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "load.py"), "--duration", "3",
                           "--users", "2", "--no-ingest", "--no-ask", "--store",
                           str(store), "--out", str(out)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["errors"] == 0 and result["requests"] > 0
    assert result["server_log_errors"] == 0
    generations = result["generations"]
    assert generations["consistent"] and generations["answers_checked"] > 0
    assert set(result["endpoints"]) >= {"search glove", "search bm25", "compare"}
    assert "| endpoint | requests | req/s | errors | p50 ms | p95 ms | p99 ms |" in proc.stdout
