"""One path through the Store: search, compare, ask and status called with no options
from Python, from the CLI's --json and over HTTP give the same bodies (the front ends
share every default, ragmini.api.defaults), and nothing in ragmini/ outside the API
package imports a stage."""

from __future__ import annotations

import ast
import json

import pytest

import ragmini
from tests.conftest import REPO
from tests.test_cli import run_cli

pytestmark = pytest.mark.slow  # the bundled corpus with real MiniLM

STAGES = {"core", "ingest", "retrieval", "generation", "eval"}
QUERY = "how does BM25 rank documents?"
QUESTION = "What is product quantization?"


def _without(body, *keys):
    """`body` without fields that differ from call to call (timings, a server's path)."""
    if isinstance(body, dict):
        return {k: _without(v, *keys) for k, v in body.items() if k not in keys}
    if isinstance(body, list):
        return [_without(v, *keys) for v in body]
    return body


@pytest.fixture(scope="module")
def http(served_store):
    from fastapi.testclient import TestClient

    from ragmini.server.app import Settings, create_app

    with TestClient(create_app(Settings(store=served_store)),
                    base_url="http://127.0.0.1") as client:
        yield client


def cli_json(capsys, *args) -> dict:
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_search_compare_ask_and_status_give_one_body(served_store, http, capsys):
    store = ragmini.open(served_store)
    served_where = served_store

    python = store.search(QUERY).to_dict()
    assert cli_json(capsys, "search", QUERY, "--store", str(served_where)) == python
    assert http.get("/api/search", params={"q": QUERY}).json() == python
    assert len(python["hits"]) == ragmini.api.defaults.SEARCH_K

    python = store.compare(QUERY).to_dict()
    assert http.post("/api/compare", json={"q": QUERY}).json() == python
    assert list(python["methods"]) == ragmini.api.defaults.compare_methods(
        store.methods().indexed)

    python = store.ask(QUESTION).to_dict()
    assert cli_json(capsys, "ask", QUESTION, "--store", str(served_where)) == python
    assert http.post("/api/ask", json={"question": QUESTION}).json() == python
    assert python["generator"] == ragmini.api.defaults.generator()

    python = _without(store.status().to_dict(), "index_file_bytes")
    assert _without(cli_json(capsys, "status", "--store", str(served_where)),
                    "index_file_bytes") == python
    assert _without(http.get("/api/status").json(), "index_file_bytes") == python


def test_the_http_defaults_are_the_apis(http):
    """What /api/methods says the defaults are is what ragmini.api.defaults holds."""
    defaults = http.get("/api/methods").json()["defaults"]
    d = ragmini.api.defaults
    assert defaults["search_k"] == d.SEARCH_K and defaults["ask_k"] == d.ASK_K
    assert defaults["compare_k"] == d.COMPARE_K and defaults["method"] == d.METHOD
    assert defaults["generator"] == d.generator()
    assert defaults["strict"] is d.STRICT and defaults["abstain"] is d.ABSTAIN


def test_front_ends_import_no_stage():
    """Outside ragmini/api/, nothing in ragmini/ imports ingest, retrieval, generation,
    eval or core, not even inside a function: every front end goes through the API."""
    offenders = []
    for path in sorted((REPO / "ragmini").rglob("*.py")):
        if "api" in path.relative_to(REPO / "ragmini").parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in STAGES]
    assert offenders == []


def test_no_python_file_of_ragmini_is_over_600_lines():
    long = {str(p.relative_to(REPO)): n for p in (REPO / "ragmini").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}
