"""Property-based tests of the HTTP API, generated from its own OpenAPI schema.

Schemathesis reads /openapi.json from a real `ragmini serve` on a loopback port (over
this module's copy of the bundled-corpus store) and builds requests from it: valid
ones and ones that break the schema on purpose. Every response must be no 5xx, a
status code, content type and body the schema documents, an invalid request must be
refused, and any error, documented or not, must be `{"error": {"code", "message"}}`.

RAGMINI_FUZZ_EXAMPLES=N sets the examples per operation (default 12, derandomized, for
CI; set it, e.g. to 300, for a long randomized run). /api/ask answers with the
extractive generator (no language model) and gets half the examples, as do
uploads, deletes and evals, which run last on this module's throwaway store.

(Schemathesis' own pytest plugin, `schemathesis.pytest.from_fixture`, does not run
under pytest 9.2: it sets `Node._nodeid`, which pytest 9.2 no longer has. The
documented `APIOperation.as_strategy` with Hypothesis' `@given` does the same work.)
"""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402 (checks load on first use)
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from ragmini.server.process import running_server  # noqa: E402

pytestmark = pytest.mark.slow

LONG_RUN = "RAGMINI_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("RAGMINI_FUZZ_EXAMPLES", "12"))
FEW = max(2, EXAMPLES // 2)
LM_GENERATORS = ("distilgpt2", "smollm2")  # the ones that run a language model

READS = [("GET", "/healthz"), ("GET", "/api/status"), ("GET", "/api/methods"),
         ("GET", "/api/search"), ("POST", "/api/compare"), ("GET", "/api/documents"),
         ("GET", "/api/documents/{doc_id}/file"), ("GET", "/api/documents/{doc_id}/text"),
         ("GET", "/api/chunks/{chunk_id}"),
         ("GET", "/api/eval/query-sets"), ("GET", "/api/eval/history"),
         ("GET", "/api/eval/{job_id}"), ("GET", "/api/eval/{job_id}/plot.png")]
WRITES = [("POST", "/api/documents"), ("POST", "/api/eval"), ("DELETE", "/api/documents/{doc_id}")]
ASK = ("POST", "/api/ask")
EVAL_JOBS: list[str] = []  # started by the fuzzing; test_fuzzed_evals_end_cleanly waits


def error_shape(ctx, response, case):
    """Any error, documented or not (405, 401, 413 ...), is `{"error": {"code", "message"}}`."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, body
    assert all(isinstance(v, str) and v for v in error.values()), body
    assert "Traceback" not in response.text
    return True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection, error_shape]
# A multipart file part holds any bytes: the "invalid" uploads Schemathesis makes (an
# object or null where a file belongs) arrive as files holding that JSON text, which
# the server rightly takes (and rejects by type, per file, in a 200).
UPLOAD_CHECKS = [c for c in CHECKS if c is not negative_data_rejection]


@pytest.fixture(scope="module")
def server(served_store):
    with running_server(served_store) as base:
        yield base


@pytest.fixture(scope="module")
def api(server):
    return schemathesis.openapi.from_url(f"{server}/openapi.json", timeout=60)


def fuzz(api, server, method: str, path: str, examples: int, prepare=None, after=None,
         checks=tuple(CHECKS)) -> None:
    """Valid and invalid requests for one operation, each response checked."""
    operation = api[path][method]
    cases = (operation.as_strategy(GenerationMode.POSITIVE)
             | operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=examples, deadline=None, derandomize=not LONG_RUN, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        if prepare:
            prepare(case)
        response = case.call_and_validate(base_url=server, checks=list(checks), timeout=120)
        if after:
            after(response)

    run()


def test_every_operation_is_fuzzed(api):
    """A new endpoint fails here until it is added to one of the lists above."""
    documented = {(op.ok().method.upper(), op.ok().path) for op in api.get_all_operations()}
    assert documented == {*READS, *WRITES, ASK}


@pytest.mark.parametrize("method,path", READS, ids=[f"{m} {p}" for m, p in READS])
def test_read_endpoints(api, server, method, path):
    fuzz(api, server, method, path, EXAMPLES)


def _extractive(case) -> None:
    """The cheap generator, unless the case is about the generator field itself."""
    if isinstance(case.body, dict) and case.body.get("generator", LM_GENERATORS[0]) in LM_GENERATORS:
        case.body["generator"] = "extractive"


def test_ask(api, server):
    fuzz(api, server, *ASK, FEW, prepare=_extractive)


def _record_eval(response) -> None:
    if response.status_code == 202:
        EVAL_JOBS.append(response.json()["id"])


@pytest.mark.parametrize("method,path", WRITES, ids=[f"{m} {p}" for m, p in WRITES])
def test_write_endpoints(api, server, method, path):
    """Uploads (multipart), evals (one at a time: the rest get 409) and deletes."""
    fuzz(api, server, method, path, FEW, after=_record_eval if path == "/api/eval" else None,
         checks=UPLOAD_CHECKS if path == "/api/documents" and method == "POST" else CHECKS)


def test_fuzzed_evals_end_cleanly(server):
    """The evals the fuzzing started end, none with an internal error."""
    client = httpx.Client(base_url=server, timeout=60)
    deadline = time.monotonic() + 180
    for job_id in EVAL_JOBS:
        job = client.get(f"/api/eval/{job_id}").json()
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
            job = client.get(f"/api/eval/{job_id}").json()
        assert job["state"] in ("done", "failed"), job
        assert job["error"] is None or job["error"]["code"] != "internal", job


def _template(path: str) -> re.Pattern:
    """A documented path as the server matches it: a doc_id may hold slashes (a
    folder document's relative path), so `/api/documents/x/file` is also DELETE's
    path for the document `x/file`."""
    parts = re.split(r"(\{[a-z_]+\})", path)
    return re.compile("^" + "".join(
        ".+" if p == "{doc_id}" else "[^/]+" if p.startswith("{") else re.escape(p)
        for p in parts) + "$")


def test_undeclared_methods_get_405_with_allow(api, server):
    """Each path answers a method it does not have with 405, an `Allow` header naming
    exactly the documented methods of every path it matches, and the error shape."""
    paths: dict[str, set[str]] = {}
    for result in api.get_all_operations():
        paths.setdefault(result.ok().path, set()).add(result.ok().method.upper())
    client = httpx.Client(base_url=server, timeout=60)
    for path in paths:
        url = path.replace("{doc_id}", "x").replace("{job_id}", "x")
        methods = set().union(*(m for p, m in paths.items() if _template(p).match(url)))
        for method in ("TRACE", "PATCH", "PUT") if "PUT" not in methods else ():
            response = client.request(method, url)
            assert response.status_code == 405, (method, path, response.text)
            assert set(response.headers["allow"].split(", ")) == methods, (path, response.headers)
            assert set(response.json()["error"]) == {"code", "message"}


def test_chunked_body_over_the_cap_is_refused(server):
    """A body sent without a Content-Length is counted as it arrives: 413, not read whole."""
    def chunks():
        for _ in range(40):
            yield b"x" * 2**15  # 1.25 MB in all, over the 1 MB cap of a JSON body

    response = httpx.post(f"{server}/api/compare", content=chunks(), timeout=60,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"


def test_token_refusals_are_documented(served_store):
    """With --token, the schema lists 401 on every /api/ operation, and each one
    refuses a request without the token in the error shape, with WWW-Authenticate."""
    with running_server(served_store, "--token", "s3cret") as base:
        client = httpx.Client(base_url=base, timeout=60)
        schema = client.get("/openapi.json").json()
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                if not path.startswith("/api/"):
                    assert "401" not in operation["responses"], path
                    continue
                assert "401" in operation["responses"], (method, path)
                url = path.replace("{doc_id}", "x").replace("{job_id}", "0" * 12)
                response = client.request(method.upper(), url)
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
                assert response.json()["error"]["code"] == "unauthorized"
