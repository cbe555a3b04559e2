"""The guards in front of the whole app (ragmini/server/guard.py), the document routes
they protect, and the small endpoints the page reads (/api/methods, query sets).

Most tests run the real app in-process (FastAPI's TestClient, no port); the ones the
issue names as API tests also run against a real `ragmini serve` on a loopback port.
The store is small and indexed with bm25 only, so no model loads."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from ingest.store import Store
from ragmini.server.app import Settings, create_app
from ragmini.server.process import running_server
from retrieval.ingesting import ingest_and_index
from tests.conftest import CORPUS
from tests.test_documents import render_pdf

BASE = "http://127.0.0.1:8000"
EVIL = {"Origin": "http://evil.example"}
CROSS = {"Sec-Fetch-Site": "cross-site"}


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_pdf(sections=4, paragraphs=6)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, pdf) -> Path:
    docs = tmp_path_factory.mktemp("guarded") / "docs"
    docs.mkdir()
    for name in ("bm25.md", "faiss.md", "hybrid-search.html"):
        shutil.copy(CORPUS / name, docs / name)
    (docs / "manual.pdf").write_bytes(pdf)
    beir = docs.parent / "minibeir"
    (beir / "qrels").mkdir(parents=True)
    rows = [{"_id": "d1", "title": "Otters", "text": "Sea otters hold hands while they sleep."},
            {"_id": "d2", "title": "Bees", "text": "Honey bees dance to show where flowers are."}]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (beir / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "otters sleeping"}\n{"_id": "q2", "text": "bee dance"}\n')
    for split, (qid, doc) in {"dev": ("q1", "d1"), "test": ("q2", "d2")}.items():
        (beir / "qrels" / f"{split}.tsv").write_text(
            f"query-id\tcorpus-id\tscore\n{qid}\t{doc}\t1\n")
    return docs


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, folder) -> Path:
    path = tmp_path_factory.mktemp("guard-store") / "store"
    with Store.open(path, create=True) as store:
        ingest_and_index(store, [folder, folder.parent / "minibeir" / "corpus.jsonl"], ["bm25"],
                         progress=False)
    return path


@pytest.fixture
def store_copy(store_path, tmp_path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(store_path, target)
    return target


def client(store: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(store=store, **settings)), base_url=BASE)


def _refused(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body["error"]["message"]


def _documents(c: TestClient) -> int:
    return c.get("/api/documents").json()["total"]


WRITES = [
    ("POST", "/api/documents",
     {"files": [("files", ("evil.md", b"# Evil\n\nplanted", "text/markdown"))]}),
    ("DELETE", "/api/documents/bm25.md", {}),
    ("POST", "/api/eval", {"json": {"methods": ["bm25"], "resamples": 100}}),
    ("POST", "/api/compare", {"json": {"q": "bm25", "methods": ["bm25"]}}),
    ("PUT", "/api/documents/bm25.md", {}),
    ("PATCH", "/api/documents/bm25.md", {}),
]


@pytest.mark.parametrize("headers", [EVIL, CROSS, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "null"}, {**EVIL, "Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "http://127.0.0.1:9999"}],
                         ids=["origin", "cross-site", "same-site", "null", "both", "other-port"])
@pytest.mark.parametrize("method,path,kwargs", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_cross_site_writes_are_refused(store_copy, method, path, kwargs, headers):
    """With or without a token, before the route runs: nothing is written."""
    c = client(store_copy)
    message = _refused(c.request(method, path, headers=headers, **kwargs), 403, "cross_site")
    assert "another site" in message
    assert _documents(c) == 6 and not (store_copy / "uploads").exists()
    with_token = client(store_copy, token="s3cret")
    auth = {**headers, "Authorization": "Bearer s3cret"}
    _refused(with_token.request(method, path, headers=auth, **kwargs), 403, "cross_site")


@pytest.mark.parametrize("headers", [{}, {"Sec-Fetch-Site": "same-origin"},
                                     {"Sec-Fetch-Site": "none"}, {"Origin": BASE},
                                     {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}],
                         ids=["no-browser", "same-origin", "typed", "own-origin", "both"])
def test_the_page_and_plain_clients_may_write(store_copy, headers):
    c = client(store_copy)
    assert c.post("/api/compare", json={"q": "bm25", "methods": ["bm25"]},
                  headers=headers).status_code == 200


def test_the_cors_origin_may_write(store_copy):
    c = client(store_copy, cors_origin="http://app.example:3000")
    ok = c.post("/api/compare", json={"q": "bm25", "methods": ["bm25"]},
                headers={"Origin": "http://app.example:3000", "Sec-Fetch-Site": "cross-site"})
    assert ok.status_code == 200
    _refused(c.post("/api/compare", json={"q": "x"}, headers=EVIL), 403, "cross_site")


@pytest.mark.parametrize("host,status", [
    ("attacker.example", 421), ("attacker.example:8000", 421), ("127.0.0.1.evil.example", 421),
    ("localhost.evil.example", 421), ("192.168.1.9", 421),
    ("127.0.0.1:8000", 200), ("localhost:8000", 200), ("LOCALHOST.", 200), ("[::1]:8000", 200),
    ("127.0.0.2", 200), ("app.localhost:8000", 200), ("10.0.0.5:8000", 200),
    ("ragmini.lan", 200), ("Ragmini.LAN:8000", 200),
])
def test_host_allow_list(store_path, host, status):
    """Loopback names, the bound address (10.0.0.5 here) and --allow-host names; any
    other Host is refused before routing, on reads and writes alike."""
    c = client(store_path, host="10.0.0.5", allow_hosts=("ragmini.lan",))
    for response in (c.get("/api/status", headers={"Host": host}),
                     c.get("/", headers={"Host": host})):
        assert response.status_code == status, (host, response.text)
    if status == 421:
        message = _refused(c.post("/api/compare", json={"q": "x"}, headers={"Host": host}),
                           421, "host_not_allowed")
        assert "--allow-host" in message


def test_the_guard_covers_the_whole_app_and_later_mounts(store_path):
    """Whatever is mounted on this app later (as /mcp and /v1 are) stands behind the
    same guard, with no path list to extend."""
    async def echo(request):
        return JSONResponse({"ok": True})

    def with_mount(**settings) -> TestClient:
        app = create_app(Settings(store=store_path, **settings))
        app.mount("/later", Starlette(routes=[Route("/chat/completions", echo, methods=["POST"])]))
        return TestClient(app, base_url=BASE)

    open_server = with_mount()
    assert open_server.post("/later/chat/completions", json={}).status_code == 200
    _refused(open_server.post("/later/chat/completions", json={}, headers=EVIL), 403, "cross_site")
    _refused(open_server.post("/later/chat/completions", json={},
                              headers={"Host": "attacker.example"}), 421, "host_not_allowed")
    locked = with_mount(token="s3cret")
    _refused(locked.post("/later/chat/completions", json={}), 401, "unauthorized")
    assert locked.post("/later/chat/completions", json={},
                       headers={"Authorization": "Bearer s3cret"}).status_code == 200
    for path in ("/api/status", "/api/methods", "/mcp", "/no/such/page",
                 "/api/documents/bm25.md/file"):
        _refused(locked.get(path), 401, "unauthorized")
    for path in ("/", "/static/app.js", "/docs", "/openapi.json", "/healthz",
                 "/swagger/swagger-ui.css"):
        assert locked.get(path).status_code == 200, path


def test_every_response_is_unframeable_and_the_page_loads_only_its_own(store_path):
    c = client(store_path)
    page = c.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for response in (page, c.get("/api/status"), c.get("/api/documents/nope/file"),
                     c.get("/docs"), c.get("/", headers={"Host": "attacker.example"}),
                     c.post("/api/compare", json={}, headers=EVIL)):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_document_files_and_text(store_path, folder, pdf):
    c = client(store_path)
    got = c.get("/api/documents/manual.pdf/file")
    assert got.status_code == 200 and got.content == pdf
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith('inline; filename="manual.pdf"')
    html = c.get("/api/documents/hybrid-search.html/file")
    assert html.content == (folder / "hybrid-search.html").read_bytes()
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.headers["content-security-policy"].startswith("sandbox; default-src 'none'")
    _refused(c.get("/api/documents/no-such.pdf/file"), 404, "not_found")
    _refused(c.get("/api/documents/..%2F..%2Fetc%2Fpasswd/file"), 404, "not_found")
    _refused(c.get("/api/documents/bm25.md/file", params={"source": "/etc/passwd"}), 404,
             "not_found")
    text = c.get("/api/documents/manual.pdf/text").json()
    assert text["doc_id"] == "manual.pdf" and text["chunks"][0]["pages"][0] == 1
    for chunk in text["chunks"]:
        assert text["text"][chunk["start"]:chunk["end"]].strip()
    beir = c.get("/api/documents/d1/text").json()
    assert beir["text"] == "Sea otters hold hands while they sleep."


def test_methods_come_from_the_registry(store_path):
    from ragmini.api import defaults
    from retrieval.methods import DEFAULT_K, FUSIONS

    body = client(store_path).get("/api/methods").json()
    assert body["methods"] == ["bm25"]
    assert [f["name"] for f in body["fusions"]] == list(FUSIONS)
    assert not any(f["available"] for f in body["fusions"])  # no sbert in this store
    expected = {"method": "bm25", "k": DEFAULT_K, "compare": ["bm25"],
                "generator": defaults.generator()}
    assert {k: body["defaults"][k] for k in expected} == expected
    assert {g["name"] for g in body["generators"]} == {"distilgpt2", "smollm2", "extractive"}


def test_evals_choose_among_known_query_sets(store_copy, folder):
    c = client(store_copy)
    body = c.get("/api/eval/query-sets").json()
    beir = os.path.realpath(folder.parent / "minibeir")
    assert body["default"] == "bundled"
    assert [q["id"] for q in body["query_sets"]] == ["bundled", f"beir:{beir}:dev",
                                                     f"beir:{beir}:test"]
    assert body["query_sets"][1]["label"] == "minibeir (dev)"
    message = _refused(c.post("/api/eval", json={"query_set": "beir:/etc:dev"}), 400,
                       "bad_request")
    assert "unknown query set" in message and "bundled" in message
    job = c.post("/api/eval", json={"query_set": f"beir:{beir}:dev", "methods": ["bm25"],
                                    "resamples": 100}).json()
    import time

    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = c.get(f"/api/eval/{job['id']}").json()
    assert job["state"] == "done", job
    assert job["result"]["n_queries"] == 1 and job["result"]["methods"]["bm25"]["recall@1"] == 1
    run = c.get("/api/eval/history").json()["runs"][0]
    assert (run["dataset"], run["split"]) == ("minibeir", "dev")


# -- the same, against a real server -----------------------------------------------

@pytest.fixture(scope="module")
def served(store_path, tmp_path_factory):
    store = tmp_path_factory.mktemp("guard-served") / "store"
    shutil.copytree(store_path, store)
    with running_server(store) as base:
        yield base, store


def test_real_server_refuses_cross_site_writes_and_foreign_hosts(served):
    base, store = served
    http = httpx.Client(base_url=base, timeout=60)
    before = http.get("/api/documents").json()["total"]
    upload = [("files", ("evil.md", b"# Evil\n\nplanted by another site", "text/markdown"))]
    _refused(http.post("/api/documents", files=upload, headers=EVIL), 403, "cross_site")
    _refused(http.post("/api/documents", files=upload, headers=CROSS), 403, "cross_site")
    _refused(http.delete("/api/documents/bm25.md", headers=EVIL), 403, "cross_site")
    _refused(http.delete("/api/documents/bm25.md", headers=CROSS), 403, "cross_site")
    _refused(http.post("/api/eval", json={}, headers=CROSS), 403, "cross_site")
    _refused(http.get("/api/status", headers={"Host": "attacker.example"}), 421,
             "host_not_allowed")
    _refused(http.post("/api/documents", files=upload, headers={"Host": "attacker.example"}),
             421, "host_not_allowed")
    assert http.get("/api/documents").json()["total"] == before
    assert not (store / "uploads").exists()
    assert http.get("/api/eval/history").json()["runs"] == []


def test_real_server_same_name_upload_sequence(served, folder):
    """The issue's sequence over HTTP: the folder's bm25.md stays searchable, the
    upload has its own id, and uploads/ is empty once it is deleted."""
    base, store = served
    http = httpx.Client(base_url=base, timeout=120)
    other = [("files", ("bm25.md", b"# Zebras\n\nZebras have stripes.", "text/markdown"))]
    got = http.post("/api/documents", files=other).json()["files"][0]
    assert (got["status"], got["doc_id"]) == ("ingested", "uploads/bm25.md")
    ids = [d["doc_id"] for d in http.get("/api/documents").json()["documents"]]
    assert ids.count("bm25.md") == 1 and ids.count("uploads/bm25.md") == 1
    gone = http.delete(f"/api/documents/{got['doc_id']}").json()
    assert gone["removed"] == [os.path.realpath(store / "uploads" / "bm25.md")]
    assert list((store / "uploads").iterdir()) == []
    hit = http.get("/api/search", params={"q": "how does BM25 rank documents",
                                          "method": "bm25", "k": 1}).json()["hits"][0]
    assert hit["doc_id"] == "bm25.md" and hit["source"] == os.path.realpath(folder / "bm25.md")


def test_real_server_serves_a_pdf_exactly(served, pdf):
    base, _ = served
    http = httpx.Client(base_url=base, timeout=60)
    got = http.get("/api/documents/manual.pdf/file")
    assert got.status_code == 200 and got.content == pdf
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith("inline")
    _refused(http.get("/api/documents/no-such-id/file"), 404, "not_found")


def test_real_server_answers_an_unreadable_request_in_json(served):
    """A 100 KB query string is refused by uvicorn's parser, in the one error shape."""
    import socket

    base, _ = served
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        # By hand: httpx itself refuses a URL this long.
        sock.sendall(b"GET /api/search?q=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: "
                     + host.encode() + b"\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and "could not be read as HTTP" in error["message"]
